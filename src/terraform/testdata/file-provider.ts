// A test provider whose remote objects are files in a folder: real, cheap, and easy to change behind
// Terraform's back. Run by the tests as a plugin (node --conditions=capstan-source file-provider.ts).
import { chmodSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { attr, between, block, DiagnosticError, defineProvider, oneOf, serveProvider } from '../index.ts';

export const provider = defineProvider('capstantest', {
  version: '0.0.1',
  description: 'Files as remote objects, for tests.',
  config: {
    root: attr.string().required().env('CAPSTANTEST_ROOT').describe('Folder holding the files.'),
  },
  configure: ({ config }) => ({ root: config.root }),
})
  .resource('file', {
    description: 'A file under the provider root.',
    version: 1,
    schema: {
      id: attr.string().computed().useStateForUnknown().describe('The file name.'),
      name: attr.string().required().requiresReplace().describe('File name under the root.'),
      content: attr.string().required(),
      mode: attr.string().default('0644').validate(oneOf('0644', '0600')),
      size: attr.number().computed(),
      labels: attr.map(attr.string()).optional(),
      extra: attr.dynamic().optional(),
      owner: attr.object({ name: attr.string().required(), uid: attr.int().optional() }).optional(),
      rule: block.list({ port: attr.int().required().validate(between(1, 65535)), protocol: attr.string().default('tcp') }),
    },
    upgrade: {
      // Version 0 called the content `text`.
      0: ({ text, ...rest }) => ({ ...rest, content: text }),
    },
    async create({ plan, client }) {
      if (plan.content.includes('LOG-TO-STDOUT')) console.log('provider code writing to stdout');
      writeFileSync(join(client.root, plan.name), plan.content);
      chmodSync(join(client.root, plan.name), Number.parseInt(plan.mode, 8));
      return { id: plan.name, size: Buffer.byteLength(plan.content) };
    },
    async read({ state, client }) {
      try {
        const content = readFileSync(join(client.root, state.name), 'utf8');
        const stat = statSync(join(client.root, state.name));
        return { content, size: stat.size, mode: `0${(stat.mode & 0o777).toString(8)}` };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
      }
    },
    async update({ plan, client }) {
      writeFileSync(join(client.root, plan.name), plan.content);
      chmodSync(join(client.root, plan.name), Number.parseInt(plan.mode, 8));
      return { size: Buffer.byteLength(plan.content) };
    },
    async delete({ state, client }) {
      rmSync(join(client.root, state.name), { force: true });
    },
    import: ({ id }) => ({ id, name: id }),
    validate({ config, diagnostics }) {
      if (config.name === 'forbidden') diagnostics.error('Forbidden name', 'pick another name', ['name']);
    },
  })
  .dataSource('blob', {
    description: 'A string of `size` bytes (tests message sizes).',
    schema: {
      size: attr.int().required(),
      echo: attr.string().optional(),
      content: attr.string().computed(),
      length: attr.number().computed(),
    },
    async read({ config }) {
      if (config.size < 0) throw new DiagnosticError('Negative size', 'size must be >= 0', ['size']);
      return { content: 'x'.repeat(config.size), length: (config.echo ?? '').length };
    },
  });

if (import.meta.main) await serveProvider(provider);
