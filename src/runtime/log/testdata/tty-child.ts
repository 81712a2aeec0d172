// Child for the TTY test: a logger with no format option, so LOG_FORMAT and isatty decide.
import { createLogger } from '../logger.ts';

createLogger({ component: 'tty' }).info({ password: 'pw' }, 'hello tty');
