// `capstan cloud aws s3 ls|du|gc`: object storage through the AWS SDK (loaded only when a command runs),
// every call under a deadline, gc dry-run unless --yes.
import { Command } from 'commander';
import { CliError, CliErrorCode } from './errors.ts';
import { runAction } from './run-action.ts';

interface S3Flags {
  endpointUrl?: string;
  region?: string;
  profile?: string;
  timeout: string;
  output: string;
  prefix?: string;
  progress?: boolean;
}

interface GcFlags extends S3Flags {
  olderThan?: string;
  match?: string;
  yes?: boolean;
}

const FORMATS = ['table', 'json', 'yaml'];

function withS3Flags(command: Command): Command {
  return command
    .argument('<bucket>', 'the bucket')
    .option('--prefix <prefix>', 'only keys starting with this')
    .option(
      '--endpoint-url <url>',
      'a custom endpoint (S3-compatible servers; path-style addressing)',
      process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL,
    )
    .option('--region <region>', 'AWS region (default: AWS_REGION / the profile)')
    .option('--profile <name>', 'a profile of ~/.aws/config (default: AWS_PROFILE)')
    .option('--timeout <duration>', 'deadline of each call, retries and credential look-up included', '30s')
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .option('--progress', 'progress on stderr even when it is not a terminal');
}

async function openStore(bucket: string, flags: S3Flags) {
  if (!FORMATS.includes(flags.output)) {
    throw new CliError(CliErrorCode.usage, `-o must be one of ${FORMATS.join(', ')}, got ${flags.output}`);
  }
  const { parseDuration } = await import('../runtime/index.ts');
  const timeoutMs = parseDuration(flags.timeout);
  if (timeoutMs === undefined || timeoutMs <= 0) {
    throw new CliError(
      CliErrorCode.usage,
      `--timeout must be a duration above 0 (e.g. 30s), got ${flags.timeout}`,
    );
  }
  const { createS3Store } = await import('../cloud/index.ts');
  return createS3Store({
    bucket,
    timeoutMs,
    ...(flags.endpointUrl ? { endpoint: flags.endpointUrl } : {}),
    ...(flags.region ? { region: flags.region } : {}),
    ...(flags.profile ? { profile: flags.profile } : {}),
  });
}

function progressPrinter(flags: S3Flags): ((seen: number) => void) | undefined {
  if (!(flags.progress === true || process.stderr.isTTY === true)) return undefined;
  return (seen) => process.stderr.write(`\rlisted ${seen} objects`);
}

function endProgress(flags: S3Flags): void {
  if (flags.progress === true || process.stderr.isTTY === true) process.stderr.write('\n');
}

async function print(format: string, value: unknown, table: () => string): Promise<void> {
  if (format === 'json') process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else if (format === 'yaml') {
    const { toYaml } = await import('../yaml/index.ts');
    process.stdout.write(toYaml(value));
  } else process.stdout.write(table());
}

/** Columns padded to their widest cell. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

const objectRows = (objects: readonly { key: string; size: number; lastModified: Date }[]) =>
  objects.map((o) => [o.lastModified.toISOString(), String(o.size), o.key]);

function s3Command(): Command {
  const s3 = new Command('s3').description('S3 buckets: list, sizes, delete unused objects');
  s3.addCommand(
    withS3Flags(new Command('ls').description('List every object (all pages)')).action(
      (bucket: string, flags: S3Flags) =>
        runAction('capstan cloud aws s3 ls', async ({ signal }) => {
          const store = await openStore(bucket, flags);
          try {
            const { listAll } = await import('../cloud/index.ts');
            const onPage = progressPrinter(flags);
            const objects = await listAll(store, flags.prefix, { signal, ...(onPage ? { onPage } : {}) });
            if (onPage) endProgress(flags);
            await print(
              flags.output,
              objects.map((o) => ({ key: o.key, size: o.size, lastModified: o.lastModified.toISOString() })),
              () => formatTable(['LAST MODIFIED', 'SIZE', 'KEY'], objectRows(objects)),
            );
          } finally {
            store.close();
          }
        }),
    ),
  );
  s3.addCommand(
    withS3Flags(new Command('du').description('Count objects and sum their sizes')).action(
      (bucket: string, flags: S3Flags) =>
        runAction('capstan cloud aws s3 du', async ({ signal }) => {
          const store = await openStore(bucket, flags);
          try {
            const { listAll, usageOf } = await import('../cloud/index.ts');
            const onPage = progressPrinter(flags);
            const usage = usageOf(
              await listAll(store, flags.prefix, { signal, ...(onPage ? { onPage } : {}) }),
            );
            if (onPage) endProgress(flags);
            const value = { bucket, prefix: flags.prefix ?? '', ...usage };
            await print(flags.output, value, () =>
              formatTable(
                ['BUCKET', 'PREFIX', 'OBJECTS', 'BYTES'],
                [[bucket, value.prefix, String(usage.objects), String(usage.bytes)]],
              ),
            );
          } finally {
            store.close();
          }
        }),
    ),
  );
  s3.addCommand(
    withS3Flags(
      new Command('gc').description(
        'Delete unused objects (older than --older-than, under --prefix, matching --match): prints the plan; deletes only with --yes',
      ),
    )
      .option('--older-than <duration>', 'only objects last modified longer ago than this (e.g. 30d, 12h)')
      .option('--match <regexp>', 'only keys this regular expression matches')
      .option('--yes', 'delete the planned objects (without it: dry run)')
      .action((bucket: string, flags: GcFlags) =>
        runAction('capstan cloud aws s3 gc', async ({ signal }) => {
          const { parseDuration } = await import('../runtime/index.ts');
          const olderThanMs = flags.olderThan === undefined ? undefined : parseDuration(flags.olderThan);
          if (flags.olderThan !== undefined && olderThanMs === undefined) {
            throw new CliError(
              CliErrorCode.usage,
              `--older-than must be a duration (e.g. 30d), got ${flags.olderThan}`,
            );
          }
          let pattern: RegExp | undefined;
          try {
            pattern = flags.match === undefined ? undefined : new RegExp(flags.match);
          } catch (error) {
            throw new CliError(
              CliErrorCode.usage,
              `--match is not a regular expression: ${(error as Error).message}`,
            );
          }
          const { executeGc, listAll, planGc } = await import('../cloud/index.ts');
          // Validate the rule before any call.
          const rule = {
            ...(olderThanMs === undefined ? {} : { olderThanMs }),
            ...(flags.prefix === undefined ? {} : { prefix: flags.prefix }),
            ...(pattern === undefined ? {} : { pattern }),
          };
          planGc([], rule);
          const store = await openStore(bucket, flags);
          try {
            const onPage = progressPrinter(flags);
            const plan = planGc(
              await listAll(store, flags.prefix, { signal, ...(onPage ? { onPage } : {}) }),
              rule,
            );
            if (onPage) endProgress(flags);
            await print(
              flags.output,
              {
                bucket,
                dryRun: !flags.yes,
                objects: plan.map((o) => ({
                  key: o.key,
                  size: o.size,
                  lastModified: o.lastModified.toISOString(),
                })),
              },
              () => formatTable(['LAST MODIFIED', 'SIZE', 'KEY'], objectRows(plan)),
            );
            if (!flags.yes) {
              process.stderr.write(
                `dry run: ${plan.length} objects would be deleted; pass --yes to delete them\n`,
              );
              return;
            }
            const { deleted } = await executeGc(store, plan, { signal });
            process.stderr.write(`deleted ${deleted} objects\n`);
          } finally {
            store.close();
          }
        }),
      ),
  );
  return s3;
}

export function command(): Command {
  const aws = new Command('aws').description('AWS resources through the official SDK');
  aws.addCommand(s3Command());
  return new Command('cloud').description('Cloud resources: capstan cloud aws s3 ls|du|gc').addCommand(aws);
}
