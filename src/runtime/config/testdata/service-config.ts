// Fixture for `capstan config doc|check` and the exit-78 test: a module exporting two definitions.
import { defineConfig, listenFields } from '../config.ts';
import { env } from '../env-types.ts';

/** The exporter's own settings. */
export const exporterConfig = defineConfig({
  name: 'exporter',
  prefix: 'EXPORTER_',
  fields: {
    ...listenFields,
    databaseUrl: env
      .url({ protocols: ['postgres:', 'postgresql:'] })
      .env('DATABASE_URL')
      .secret()
      .describe('Database to export from'),
    scrapeInterval: env.duration().default('30s').describe('Time between scrapes'),
    targets: env.list().describe('Hosts to scrape'),
    apiToken: env.string({ minLength: 8 }).secret().describe('Token for the upstream API'),
  },
});

/** Feature switches. */
export const featureConfig = defineConfig({
  name: 'features',
  prefix: 'FEATURE',
  fields: {
    fastPath: env.bool().default(false).describe('Use the fast path'),
  },
});

/** Not a definition: the CLI must ignore it. */
export const notAConfig = { prefix: 'X_', fields: {} };
