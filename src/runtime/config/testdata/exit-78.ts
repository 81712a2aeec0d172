// Child process for the exit-78 test: loadConfigOrExit must stop the program before "started".
import { loadConfigOrExit } from '../config.ts';
import { exporterConfig } from './service-config.ts';

const cfg = loadConfigOrExit(exporterConfig);
process.stdout.write(`started on ${cfg.port}\n`);
