// Logging throughput: Capstan's logger (deep redaction of secret-named fields and URL passwords, ISO
// time, level labels, synchronous destination) against plain pino with the same synchronous
// destination, and against pino's own `redact` with explicit paths (which cannot match at any depth).
// Everything writes to /dev/null so the disk is not what is measured.
import pino from 'pino';
import { createLogger } from '../src/runtime/log/logger.ts';
import { type Benchmark, type BenchResult, summarize } from './harness.ts';

type LogFn = (obj: Record<string, unknown>, msg: string) => void;

const small = () => ({ requestId: 'r-123', method: 'GET', path: '/api/v1/items', status: 200, ms: 3.2 });
const nested = () => ({
  requestId: 'r-123',
  req: {
    method: 'POST',
    url: '/login',
    headers: { host: 'example', 'user-agent': 'curl/8', authorization: 'Bearer abc', cookie: 'sid=1' },
  },
  user: { name: 'ann', password: 'pw', roles: ['a', 'b'] },
  upstream: 'postgres://app:pa55@db:5432/app',
});

/** Lines per second over `n` calls, repeated `rounds` times. */
function measure(log: LogFn, make: () => Record<string, unknown>, n: number, rounds: number): number[] {
  const rates: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) log(make(), 'request done');
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    rates.push(n / s);
  }
  return rates;
}

const bench: Benchmark = {
  name: 'logging',
  description: 'JSON log lines/s: capstan logger vs plain pino and pino redact paths (sync, /dev/null)',
  async run({ quick, log }) {
    const n = quick ? 5_000 : 50_000;
    const rounds = quick ? 3 : 9;
    const dest = () => pino.destination({ dest: '/dev/null', sync: true });
    const plain = pino({ timestamp: pino.stdTimeFunctions.isoTime }, dest());
    const redactPaths = pino(
      {
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
        redact: ['req.headers.authorization', 'req.headers.cookie', 'user.password', '*.password'],
      },
      dest(),
    );
    const capstan = createLogger({ destination: '/dev/null', format: 'json' });
    const subjects: [string, LogFn][] = [
      ['pino', (o, m) => plain.info(o, m)],
      ['pino-redact-paths', (o, m) => redactPaths.info(o, m)],
      ['capstan', (o, m) => capstan.info(o, m)],
    ];
    const results: BenchResult[] = [];
    for (const [shape, make] of [
      ['small', small],
      ['nested', nested],
    ] as const) {
      // Warm up every subject before measuring any, so JIT order does not favour the first, then
      // interleave the rounds so a noisy neighbour on the shared machine hits every subject alike.
      for (const [, fn] of subjects) measure(fn, make, Math.min(n, 5_000), 1);
      const rates = new Map<string, number[]>(subjects.map(([name]) => [name, []]));
      for (let r = 0; r < rounds; r++) {
        for (const [subject, fn] of subjects) rates.get(subject)!.push(...measure(fn, make, n, 1));
      }
      for (const [subject] of subjects) {
        const s = summarize(rates.get(subject)!);
        log(`${shape} ${subject}: ${Math.round(s.value)} lines/s`);
        results.push({
          subject,
          metric: `lines_per_s_${shape}`,
          unit: 'lines/s',
          ...s,
          notes: shape === 'nested' ? 'secrets in headers, nested user and a URL' : 'five flat fields',
        });
      }
    }
    return results;
  },
  ratios: [
    {
      label: 'capstan / pino, small objects',
      numerator: { subject: 'capstan', metric: 'lines_per_s_small' },
      denominator: { subject: 'pino', metric: 'lines_per_s_small' },
      goal: { op: '>=', value: 0.7 },
    },
    {
      label: 'capstan / pino, nested objects with secrets',
      numerator: { subject: 'capstan', metric: 'lines_per_s_nested' },
      denominator: { subject: 'pino', metric: 'lines_per_s_nested' },
      goal: { op: '>=', value: 0.5 },
    },
    {
      label: 'capstan / pino redact paths, nested objects with secrets',
      numerator: { subject: 'capstan', metric: 'lines_per_s_nested' },
      denominator: { subject: 'pino-redact-paths', metric: 'lines_per_s_nested' },
      goal: { op: '>=', value: 0.7 },
    },
  ],
};

export default bench;
