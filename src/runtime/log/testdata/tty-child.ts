// Child for the TTY test: a logger with no format option but LOG_FORMAT's (read here, at the edge), so
// LOG_FORMAT and isatty decide.
import { loadConfig } from '../../config/config.ts';
import { createLogger, logConfig } from '../logger.ts';

createLogger({ component: 'tty', ...loadConfig(logConfig) }).info({ password: 'pw' }, 'hello tty');
