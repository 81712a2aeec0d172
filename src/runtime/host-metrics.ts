// Host metrics from Linux /proc, in node_exporter's names, as a background Collector: the scrape
// serves the last reading and never waits on the filesystem.
import { readFile, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Collector, MetricDesc, Sample } from './metrics/index.ts';

/** Options of {@link hostMetricsCollector}. */
export interface HostMetricsOptions {
  /** Mount point of procfs (node_exporter's `--path.procfs`). Default `/proc`. */
  procPath?: string;
  /** Pause between readings in ms. Default 5000. */
  intervalMs?: number;
  /** Collector name, the prefix of its own health gauges. Default `host_metrics`. */
  name?: string;
}

// USER_HZ is 100 on every Linux architecture Node supports; /proc/stat counts in those ticks.
const TICKS_PER_SECOND = 100;
const CPU_MODES = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'] as const;
const MEMINFO_FIELDS: Record<string, string> = {
  MemTotal: 'node_memory_MemTotal_bytes',
  MemFree: 'node_memory_MemFree_bytes',
  MemAvailable: 'node_memory_MemAvailable_bytes',
  Buffers: 'node_memory_Buffers_bytes',
  Cached: 'node_memory_Cached_bytes',
  SwapTotal: 'node_memory_SwapTotal_bytes',
  SwapFree: 'node_memory_SwapFree_bytes',
};

const DESCS: MetricDesc[] = [
  { name: 'node_load1', help: '1m load average.', type: 'gauge' },
  { name: 'node_load5', help: '5m load average.', type: 'gauge' },
  { name: 'node_load15', help: '15m load average.', type: 'gauge' },
  { name: 'node_procs_running', help: 'Number of processes in runnable state.', type: 'gauge' },
  {
    name: 'node_cpu_seconds_total',
    help: 'Seconds the CPUs spent in each mode.',
    type: 'counter',
    labelNames: ['cpu', 'mode'],
  },
  { name: 'node_context_switches_total', help: 'Total number of context switches.', type: 'counter' },
  { name: 'node_boot_time_seconds', help: 'Node boot time, in unixtime.', type: 'gauge' },
  ...Object.entries(MEMINFO_FIELDS).map(([field, name]) => ({
    name,
    help: `Memory information field ${field}_bytes.`,
    type: 'gauge' as const,
  })),
  {
    name: 'node_network_receive_bytes_total',
    help: 'Network device statistic receive_bytes.',
    type: 'counter',
    labelNames: ['device'],
  },
  {
    name: 'node_network_transmit_bytes_total',
    help: 'Network device statistic transmit_bytes.',
    type: 'counter',
    labelNames: ['device'],
  },
];

/** Parse /proc/loadavg: `0.10 0.20 0.30 2/180 1234`. */
export function parseLoadavg(text: string): Sample[] {
  const [l1, l5, l15, procs] = text.trim().split(/\s+/);
  const running = Number((procs ?? '').split('/')[0]);
  return [
    { name: 'node_load1', value: Number(l1) },
    { name: 'node_load5', value: Number(l5) },
    { name: 'node_load15', value: Number(l15) },
    { name: 'node_procs_running', value: running },
  ].filter((s) => Number.isFinite(s.value));
}

/** Parse /proc/meminfo (kB values) into node_memory_*_bytes gauges. */
export function parseMeminfo(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\w+):\s+(\d+)(?:\s+kB)?$/.exec(line.trim());
    const name = m && MEMINFO_FIELDS[m[1]!];
    if (name) samples.push({ name, value: Number(m[2]) * 1024 });
  }
  return samples;
}

/** Parse /proc/stat: per-CPU mode counters, context switches, boot time. */
export function parseStat(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const parts = line.trim().split(/\s+/);
    const key = parts[0] ?? '';
    if (/^cpu\d+$/.test(key)) {
      const cpu = key.slice(3);
      CPU_MODES.forEach((mode, i) => {
        const ticks = Number(parts[i + 1]);
        if (Number.isFinite(ticks)) {
          samples.push({
            name: 'node_cpu_seconds_total',
            labels: { cpu, mode },
            value: ticks / TICKS_PER_SECOND,
          });
        }
      });
    } else if (key === 'ctxt') {
      samples.push({ name: 'node_context_switches_total', value: Number(parts[1]) });
    } else if (key === 'btime') {
      samples.push({ name: 'node_boot_time_seconds', value: Number(parts[1]) });
    }
  }
  return samples;
}

/** Parse /proc/net/dev: received and transmitted bytes per device. */
export function parseNetDev(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const device = line.slice(0, colon).trim();
    const fields = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (fields.length < 9) continue;
    samples.push({ name: 'node_network_receive_bytes_total', labels: { device }, value: fields[0]! });
    samples.push({ name: 'node_network_transmit_bytes_total', labels: { device }, value: fields[8]! });
  }
  return samples;
}

/**
 * A {@link Collector} of host metrics read from procfs (load, CPU, memory, network), named like
 * node_exporter's so existing dashboards and alerts work. Register it with
 * `registry.registerCollector(hostMetricsCollector())`.
 */
export function hostMetricsCollector(options: HostMetricsOptions = {}): Collector {
  const proc = options.procPath ?? '/proc';
  const read = (file: string, signal: AbortSignal) =>
    readFile(join(proc, file), { encoding: 'utf8', signal });
  return {
    name: options.name ?? 'host_metrics',
    intervalMs: options.intervalMs ?? 5000,
    describe: () => DESCS,
    async collect(signal) {
      const [loadavg, meminfo, stat, netdev] = await Promise.all([
        read('loadavg', signal),
        read('meminfo', signal),
        read('stat', signal),
        read('net/dev', signal),
      ]);
      return [...parseLoadavg(loadavg), ...parseMeminfo(meminfo), ...parseStat(stat), ...parseNetDev(netdev)];
    },
  };
}

/** Options of {@link filesystemCollector}. */
export interface FilesystemCollectorOptions {
  /** Mount points whose space is exported. Default `['/']`. */
  mounts?: readonly string[];
  /** Pause between readings in ms. Default 5000. */
  intervalMs?: number;
  /** Collector name, the prefix of its own health gauges. Default `filesystem`. */
  name?: string;
}

/**
 * A {@link Collector} of free and total bytes per mount point (statfs, in the background), with
 * node_exporter's names `node_filesystem_avail_bytes` and `node_filesystem_size_bytes`.
 */
export function filesystemCollector(options: FilesystemCollectorOptions = {}): Collector {
  const mounts = options.mounts ?? ['/'];
  return {
    name: options.name ?? 'filesystem',
    intervalMs: options.intervalMs ?? 5000,
    describe: () => [
      {
        name: 'node_filesystem_avail_bytes',
        help: 'Bytes available to non-root users.',
        type: 'gauge',
        labelNames: ['mountpoint'],
      },
      {
        name: 'node_filesystem_size_bytes',
        help: 'Filesystem size in bytes.',
        type: 'gauge',
        labelNames: ['mountpoint'],
      },
    ],
    async collect() {
      const samples: Sample[] = [];
      for (const mountpoint of mounts) {
        const s = await statfs(mountpoint);
        samples.push({
          name: 'node_filesystem_avail_bytes',
          labels: { mountpoint },
          value: s.bavail * s.bsize,
        });
        samples.push({
          name: 'node_filesystem_size_bytes',
          labels: { mountpoint },
          value: s.blocks * s.bsize,
        });
      }
      return samples;
    },
  };
}
