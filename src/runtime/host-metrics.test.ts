import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { hostMetricsCollector, parseLoadavg, parseMeminfo, parseNetDev, parseStat } from './host-metrics.ts';

test('parses /proc/loadavg, meminfo, stat and net/dev', () => {
  assert.deepEqual(parseLoadavg('0.50 0.25 0.10 3/180 1234\n'), [
    { name: 'node_load1', value: 0.5 },
    { name: 'node_load5', value: 0.25 },
    { name: 'node_load15', value: 0.1 },
    { name: 'node_procs_running', value: 3 },
  ]);
  assert.deepEqual(parseMeminfo('MemTotal:       1000 kB\nHugePages_Total:       0\nMemFree: 10 kB\n'), [
    { name: 'node_memory_MemTotal_bytes', value: 1024000 },
    { name: 'node_memory_MemFree_bytes', value: 10240 },
  ]);
  const stat = parseStat(
    'cpu  1 2 3 4 5 6 7 8 0 0\ncpu0 100 0 50 1000 0 0 0 0 0 0\nctxt 42\nbtime 1700000000\n',
  );
  assert.deepEqual(
    stat.filter((s) => s.name === 'node_cpu_seconds_total').map((s) => [s.labels, s.value]),
    [
      [{ cpu: '0', mode: 'user' }, 1],
      [{ cpu: '0', mode: 'nice' }, 0],
      [{ cpu: '0', mode: 'system' }, 0.5],
      [{ cpu: '0', mode: 'idle' }, 10],
      [{ cpu: '0', mode: 'iowait' }, 0],
      [{ cpu: '0', mode: 'irq' }, 0],
      [{ cpu: '0', mode: 'softirq' }, 0],
      [{ cpu: '0', mode: 'steal' }, 0],
    ],
  );
  assert.ok(stat.some((s) => s.name === 'node_context_switches_total' && s.value === 42));
  const net = parseNetDev('Inter-|   Receive\n face |bytes\n    lo: 100 1 0 0 0 0 0 0 200 2 0 0 0 0 0 0\n');
  assert.deepEqual(net, [
    { name: 'node_network_receive_bytes_total', labels: { device: 'lo' }, value: 100 },
    { name: 'node_network_transmit_bytes_total', labels: { device: 'lo' }, value: 200 },
  ]);
});

test('the collector reads the real /proc and fails clearly on a missing procfs', async () => {
  const real = await hostMetricsCollector().collect(AbortSignal.timeout(10_000));
  assert.ok(real.some((s) => s.name === 'node_memory_MemTotal_bytes' && s.value > 0));
  assert.ok(real.some((s) => s.name === 'node_network_receive_bytes_total' && s.labels?.device === 'lo'));
  const dir = mkdtempSync(join(tmpdir(), 'capstan-proc-'));
  try {
    mkdirSync(join(dir, 'net'));
    writeFileSync(join(dir, 'loadavg'), '1 2 3 4/5 6\n');
    await assert.rejects(
      Promise.resolve(hostMetricsCollector({ procPath: dir }).collect(AbortSignal.timeout(10_000))),
      { code: 'ENOENT' },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
