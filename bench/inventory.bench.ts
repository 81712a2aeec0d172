// `--list` of an Ansible inventory of 10,000 hosts, the whole process as Ansible runs it: the wrapper that
// `capstan inventory script` writes (sh exec'ing Node on the built inventory program), from spawn to the last
// byte of JSON. Beside it: `capstan inventory --list` through the CLI (it loads the runtime), the same hosts
// in a YAML file instead of JSON, and the floor, a Node process that only prints the finished JSON.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Benchmark, type BenchResult, summarize } from './harness.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const HOSTS = 10_000;

/** A fleet of HOSTS hosts: four roles, two environments, zones and teams as labels, a tenth tagged canary. */
function fleet(): Record<string, unknown> {
  const hosts: Record<string, unknown> = {};
  for (let i = 0; i < HOSTS; i++) {
    const role = ['db', 'web', 'cache', 'api'][i % 4];
    const env = ['prod', 'stage'][i % 2];
    hosts[`${role}-${env}-${i}`] = {
      vars: { ansible_host: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, rack: `r${i % 40}` },
      labels: { zone: `eu-${i % 3}`, team: `t${i % 7}` },
      ...(i % 10 === 0 ? { tags: ['canary'] } : {}),
    };
  }
  return { hosts };
}

/** The same hosts as YAML, block style, as people write it. */
function asYaml(data: { hosts: Record<string, { vars: object; labels: object; tags?: string[] }> }): string {
  const lines = ['hosts:'];
  for (const [name, h] of Object.entries(data.hosts)) {
    lines.push(`  ${name}:`, '    vars:');
    for (const [k, v] of Object.entries(h.vars)) lines.push(`      ${k}: ${v}`);
    lines.push('    labels:');
    for (const [k, v] of Object.entries(h.labels)) lines.push(`      ${k}: ${v}`);
    if (h.tags) lines.push(`    tags: [${h.tags.join(', ')}]`);
  }
  return `${lines.join('\n')}\n`;
}

const RULES = [
  'groups:',
  '  - name: databases',
  '    namePrefix: db-',
  '    vars: { db_port: 5432 }',
  '  - name: env_$1',
  "    nameRegex: '^\\w+-(\\w+)-'",
  '  - name: zone_$1',
  '    label: zone',
  '  - name: canaries',
  '    tag: canary',
  '  - name: production',
  '    children: [env_prod]',
].join('\n');

/** Wall time of one run of `command args`, stdout read to the end; fails on a non-zero exit. */
function timeRun(command: string, args: string[]): Promise<{ ms: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let bytes = 0;
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      bytes += c.length;
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c;
    });
    child.once('error', reject);
    child.once('close', (code) => {
      const ms = performance.now() - started;
      if (code !== 0)
        reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr.slice(0, 500)}`));
      else resolve({ ms, bytes });
    });
  });
}

const bench: Benchmark = {
  name: 'inventory',
  description: `capstan inventory --list of ${HOSTS.toLocaleString('en')} hosts (static source, 5 group rules), whole process, as Ansible runs it`,
  async run({ quick, log }) {
    log('building dist (tsc -p tsconfig.build.json)');
    execFileSync(
      process.execPath,
      [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
      {
        cwd: root,
        stdio: 'inherit',
      },
    );
    const dist = join(root, 'dist');
    const dir = mkdtempSync(join(tmpdir(), 'capstan-bench-inventory-'));
    try {
      const data = fleet() as Parameters<typeof asYaml>[0];
      writeFileSync(join(dir, 'hosts.json'), JSON.stringify(data));
      writeFileSync(join(dir, 'hosts.yaml'), asYaml(data));
      const jsonConfig = join(dir, 'inventory.yaml');
      const yamlConfig = join(dir, 'inventory-yaml.yaml');
      writeFileSync(jsonConfig, `sources:\n  - type: static\n    file: hosts.json\n${RULES}\n`);
      writeFileSync(yamlConfig, `sources:\n  - type: static\n    file: hosts.yaml\n${RULES}\n`);
      const { inventoryWrapperScript } = (await import(
        join(dist, 'ansible', 'index.js')
      )) as typeof import('../src/ansible/index.ts');
      const wrapper = join(dir, 'inventory.sh');
      writeFileSync(wrapper, inventoryWrapperScript({ configFile: jsonConfig }));
      chmodSync(wrapper, 0o755);

      // What every subject must print: checked once, so a fast wrong answer cannot win.
      const out = execFileSync(wrapper, ['--list'], { maxBuffer: 64 * 1024 * 1024 }).toString();
      const inventory = JSON.parse(out) as Record<string, { hosts?: string[] }> & {
        _meta: { hostvars: Record<string, unknown> };
      };
      if (Object.keys(inventory._meta.hostvars).length !== HOSTS) throw new Error('wrong host count');
      if (inventory['databases']?.hosts?.length !== HOSTS / 4) throw new Error('wrong databases group');
      if (inventory['canaries']?.hosts?.length !== HOSTS / 10) throw new Error('wrong canaries group');
      const finished = join(dir, 'inventory.json');
      writeFileSync(finished, out);
      const viaCli = execFileSync(
        process.execPath,
        [join(dist, 'cli', 'main.js'), 'inventory', '--config', jsonConfig, '--list'],
        { maxBuffer: 64 * 1024 * 1024 },
      ).toString();
      if (viaCli !== out) throw new Error('the CLI prints another inventory than the wrapper');

      const subjects: Array<{
        subject: string;
        command: string;
        args: string[];
        notes: string;
        goal?: boolean;
      }> = [
        {
          subject: 'capstan',
          command: wrapper,
          args: ['--list'],
          notes: 'the wrapper `capstan inventory script` writes: sh exec node dist/ansible/inventory-main.js',
          goal: true,
        },
        {
          subject: 'capstan-cli',
          command: process.execPath,
          args: [join(dist, 'cli', 'main.js'), 'inventory', '--config', jsonConfig, '--list'],
          notes: 'node dist/cli/main.js inventory --list (the CLI loads the runtime for its error handling)',
        },
        {
          subject: 'capstan-yaml-hosts',
          command: process.execPath,
          args: [join(dist, 'ansible', 'inventory-main.js'), '--config', yamlConfig, '--list'],
          notes: 'the same hosts in a YAML file (1.3 MB: the yaml parser is the cost)',
        },
        {
          subject: 'node-print',
          command: process.execPath,
          args: ['-e', `process.stdout.write(require('fs').readFileSync(${JSON.stringify(finished)}))`],
          notes: 'floor: a Node process printing the finished JSON',
        },
      ];
      const runs = quick ? 5 : 15;
      const times = new Map(subjects.map((s) => [s.subject, [] as number[]]));
      // One warm-up each (page cache), then alternating rounds so a busy moment hits every subject.
      for (const s of subjects) await timeRun(s.command, s.args);
      for (let round = 0; round < runs; round++) {
        for (const s of subjects) times.get(s.subject)!.push((await timeRun(s.command, s.args)).ms);
      }
      const results: BenchResult[] = subjects.map((s) => ({
        subject: s.subject,
        metric: 'list-ms',
        unit: 'ms',
        ...summarize(times.get(s.subject)!.map((t) => Math.round(t * 10) / 10)),
        notes: `${s.notes}; ${(out.length / 1e6).toFixed(1)} MB of JSON`,
        ...(s.goal
          ? { goal: { op: '<' as const, value: 300, why: 'issue 13: --list of 10,000 hosts, whole process' } }
          : {}),
      }));
      return results;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  ratios: [
    {
      label: 'wrapper / Node printing the same JSON',
      numerator: { subject: 'capstan', metric: 'list-ms' },
      denominator: { subject: 'node-print', metric: 'list-ms' },
    },
    {
      label: 'CLI / wrapper',
      numerator: { subject: 'capstan-cli', metric: 'list-ms' },
      denominator: { subject: 'capstan', metric: 'list-ms' },
    },
  ],
};

export default bench;
