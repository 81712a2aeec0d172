import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** `-o, --output <dir>` of the commands that print Kubernetes objects. */
export interface OutputOptions {
  output?: string;
}

/** Multi-document YAML on stdout, or one file per object in `-o`, numbered so `kubectl apply -f dir` keeps the order. */
export async function writeObjects(
  objects: ReadonlyArray<Record<string, unknown>>,
  opts: OutputOptions,
): Promise<void> {
  const { stringify } = await import('yaml');
  const texts = objects.map((o) => stringify(o, { lineWidth: 0 }));
  if (opts.output === undefined) {
    process.stdout.write(texts.join('---\n'));
    return;
  }
  mkdirSync(opts.output, { recursive: true });
  const width = String(objects.length).length;
  objects.forEach((o, i) => {
    const meta = (o['metadata'] ?? {}) as { name?: string };
    const kind = String(o['kind'] ?? 'object').toLowerCase();
    const file = join(
      opts.output!,
      `${String(i + 1).padStart(width, '0')}-${kind}-${meta.name ?? 'unnamed'}.yaml`,
    );
    writeFileSync(file, texts[i]!);
    process.stdout.write(`wrote ${file}\n`);
  });
}
