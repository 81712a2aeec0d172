// Test helper: run the real `promtool check metrics` (from the Debian prometheus package) on an
// exposition. Installs the peer through the catalogue, so a fresh machine (and CI) gets it too.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ensurePeers } from '../../../testing/index.ts';

/** Result of `promtool check metrics`: exit code 0 clean, 3 lint findings, 1 parse error. */
export interface PromtoolResult {
  code: number;
  output: string;
}

/** Path of promtool, installing the `prometheus` peer first if it is missing. */
export function promtoolPath(): string {
  ensurePeers(['prometheus']);
  const path = '/usr/bin/promtool';
  if (!existsSync(path)) throw new Error('promtool not found after installing the prometheus peer');
  return path;
}

/** Feed `exposition` (text format 0.0.4) to `promtool check metrics` on stdin. */
export async function promtoolCheck(exposition: string): Promise<PromtoolResult> {
  const child = spawn(promtoolPath(), ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => {
    output += d;
  });
  child.stderr.on('data', (d) => {
    output += d;
  });
  const done = new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code ?? -1));
  });
  child.stdin.on('error', () => {});
  child.stdin.end(exposition);
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  try {
    return { code: await done, output };
  } finally {
    clearTimeout(timer);
  }
}

/** Parse text-format sample lines into `name{labels}` → value (comments skipped). */
export function parseSamples(exposition: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of exposition.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    const series = line.slice(0, i);
    if (out.has(series)) throw new Error(`duplicate series ${series}`);
    out.set(series, line.slice(i + 1));
  }
  return out;
}
