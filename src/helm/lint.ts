// `helm capstan lint`: render a chart with the caller's helm and have the cluster validate every manifest
// by a server-side apply in dry-run with strict field validation. The apiserver checks what it would check
// on install (built-in kinds, CRD schemas, CEL rules, immutable fields against live objects, admission
// webhooks that allow dry runs), so the findings are the ones `helm install` would hit, with field paths.
import { parseAllDocuments } from 'yaml';
import type { ApiResource, KubeClient } from '../kube/index.ts';
import type { HelmEnv } from './env.ts';
import { HelmError, HelmErrorCode } from './errors.ts';
import type { SecretsKey } from './secrets.ts';
import { decryptedValuesArgs, type HelmRun, spawnHelm, ValuePipes } from './secrets-run.ts';

/** One manifest of a rendered chart. */
export interface RenderedManifest {
  /** The template it came from (helm's `# Source:` line), or `document N`. */
  readonly source: string;
  readonly object: Record<string, unknown>;
}

/** One thing the cluster rejects. */
export interface LintProblem {
  readonly source: string;
  /** `Kind/name` (or `Kind` when it has no name). */
  readonly object: string;
  /** The field path (`spec.replicas`), or '' when the problem is the whole object. */
  readonly field: string;
  /** The apiserver's reason (`FieldValueInvalid`, `FieldValueRequired`, `BadRequest`...) or Capstan's (`UnknownKind`). */
  readonly reason: string;
  readonly message: string;
}

/** What {@link lintChart} found. */
export interface LintReport {
  /** How many manifests were validated. */
  readonly manifests: number;
  readonly problems: readonly LintProblem[];
  /** Things the caller should know (a namespace substituted for one that does not exist yet). */
  readonly notes: readonly string[];
}

/** Format a problem on one line: `source: Kind/name: field: message (reason)`. */
export function formatLintProblem(p: LintProblem): string {
  return `${p.source}: ${p.object}: ${p.field ? `${p.field}: ` : ''}${p.message} (${p.reason})`;
}

/** Split helm's rendered output into manifests, each with its template (`List` kinds are expanded). */
export function parseRendered(text: string): RenderedManifest[] {
  const manifests: RenderedManifest[] = [];
  for (const [i, doc] of parseAllDocuments(text).entries()) {
    if (doc.errors.length > 0)
      throw new HelmError(
        HelmErrorCode.badChart,
        `rendered document ${i + 1} is not YAML: ${doc.errors[0]!.message}`,
      );
    // Helm writes `# Source: <chart>/templates/<file>` after `---`; the parser hangs it on the document or its first node.
    const comments = `${doc.commentBefore ?? ''}\n${(doc.contents as { commentBefore?: string } | null)?.commentBefore ?? ''}`;
    const source = /Source: (\S+)/.exec(comments)?.[1] ?? `document ${i + 1}`;
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value))
      throw new HelmError(
        HelmErrorCode.badChart,
        `${source}: a manifest is a map, not ${JSON.stringify(value).slice(0, 60)}`,
      );
    const object = value as Record<string, unknown>;
    if (
      typeof object['kind'] === 'string' &&
      object['kind'].endsWith('List') &&
      Array.isArray(object['items'])
    ) {
      for (const item of object['items'] as unknown[])
        manifests.push({ source, object: item as Record<string, unknown> });
    } else manifests.push({ source, object });
  }
  return manifests;
}

/** Options of {@link renderChart} and {@link lintChart}. */
export interface RenderOptions {
  env: HelmEnv;
  /** Secrets key (or a function returning it) for encrypted `-f` files; asked only when one is found. */
  key?: SecretsKey | (() => SecretsKey);
  signal?: AbortSignal;
}

/**
 * `helm template <args>` with the caller's helm, encrypted values decrypted into pipes. Fails with
 * `CAP_ERR_HELM_HELM_FAILED` (helm's stderr in the message) when helm cannot render the chart.
 */
export async function renderChart(
  args: readonly string[],
  options: RenderOptions,
): Promise<RenderedManifest[]> {
  const noKey = (): SecretsKey => {
    throw new HelmError(HelmErrorCode.secretsNoKey, 'an encrypted values file needs a secrets key');
  };
  const pipes = new ValuePipes();
  let run: HelmRun;
  try {
    const { argv, plaintexts } = decryptedValuesArgs(args, options.key ?? noKey, (i) => pipes.path(i));
    pipes.feed(plaintexts);
    run = await spawnHelm(['template', ...argv], {
      env: options.env,
      capture: true,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } finally {
    await pipes.close();
  }
  if (run.status !== 0)
    throw new HelmError(
      HelmErrorCode.helmFailed,
      `helm template failed (exit ${run.status}): ${run.stderr.trim()}`,
    );
  return parseRendered(run.stdout);
}

interface ApiStatus {
  kind?: string;
  message?: string;
  reason?: string;
  details?: { causes?: Array<{ reason?: string; message?: string; field?: string }> };
}

/** Problems from a refused dry run: one per cause, or the message split into path and text. */
function problemsOf(status: ApiStatus, text: string, source: string, object: string): LintProblem[] {
  const causes = status.details?.causes ?? [];
  if (causes.length > 0) {
    return causes.map((c) => ({
      source,
      object,
      field: c.field ?? '',
      reason: c.reason ?? status.reason ?? 'Invalid',
      message: (c.message ?? '').trim(),
    }));
  }
  const message = (status.message ?? text).trim();
  // Strict field validation and typed-patch errors: `... : .spec.replicaz: field not declared in schema`.
  const lines = message.split('\n').flatMap((l) => l.split(/, (?=\.)/));
  const found = lines
    .map((l) =>
      /(?:^|: |\s)\.?((?:[A-Za-z_$][\w$-]*|\[[^\]]*\])(?:\.[\w$-]+|\[[^\]]*\])*): (.+)$/.exec(l.trim()),
    )
    .filter((m): m is RegExpExecArray => m !== null);
  if (found.length > 0) {
    return found.map((m) => ({
      source,
      object,
      field: m[1]!,
      reason: status.reason ?? 'BadRequest',
      message: m[2]!,
    }));
  }
  return [{ source, object, field: '', reason: status.reason ?? 'Invalid', message }];
}

/** Options of {@link lintChart}. */
export interface LintOptions extends RenderOptions {
  /** A client for the cluster; default from `KUBECONFIG` and `HELM_KUBECONTEXT`. */
  kube?: KubeClient;
}

/**
 * Render a chart (`helm template <args>`) and validate each manifest against the cluster: discovery finds
 * the kind (a kind no group serves, such as a CR whose CRD is not installed, is a problem), then a
 * server-side apply with `dryRun=All` and `fieldValidation=Strict` runs the apiserver's validation without
 * storing anything. Namespaced objects go to their namespace, else `HELM_NAMESPACE`; one that does not exist
 * yet (`--create-namespace`) is validated in `default` and noted.
 */
export async function lintChart(args: readonly string[], options: LintOptions): Promise<LintReport> {
  const manifests = await renderChart(args, options);
  // Loaded here: the other commands of the plugin (a downloader above all) need no Kubernetes client.
  const { KubeClient } = await import('../kube/index.ts');
  const kube =
    options.kube ??
    (await KubeClient.fromKubeconfig(
      { env: options.env.vars, ...(options.env.kubeContext ? { context: options.env.kubeContext } : {}) },
      { userAgent: 'capstan-helm-lint', fieldManager: 'capstan-lint' },
    ));
  const signal = options.signal;
  const call = signal ? { signal } : {};
  const problems: LintProblem[] = [];
  const notes: string[] = [];
  const discovery = new Map<string, Promise<ApiResource[] | undefined>>();
  const namespaces = new Map<string, Promise<string>>();
  const validationNamespace = (ns: string): Promise<string> => {
    let found = namespaces.get(ns);
    if (!found) {
      found = (async () => {
        const res = await kube.request({ path: `/api/v1/namespaces/${encodeURIComponent(ns)}`, ...call });
        await res.body.dump();
        if (res.status === 200) return ns;
        if (res.status !== 404)
          throw new HelmError(HelmErrorCode.lintFailed, `reading namespace ${ns}: HTTP ${res.status}`);
        notes.push(`namespace ${ns} does not exist yet: its objects were validated in namespace default`);
        return 'default';
      })();
      namespaces.set(ns, found);
    }
    return found;
  };
  try {
    for (const { source, object } of manifests) {
      const apiVersion = object['apiVersion'];
      const kind = object['kind'];
      const metadata = (object['metadata'] ?? {}) as Record<string, unknown>;
      const name = typeof metadata['name'] === 'string' ? metadata['name'] : undefined;
      const label = `${typeof kind === 'string' ? kind : '?'}${name ? `/${name}` : ''}`;
      const problem = (field: string, reason: string, message: string) =>
        problems.push({ source, object: label, field, reason, message });
      if (typeof apiVersion !== 'string' || !apiVersion) {
        problem('apiVersion', 'FieldValueRequired', 'apiVersion is required');
        continue;
      }
      if (typeof kind !== 'string' || !kind) {
        problem('kind', 'FieldValueRequired', 'kind is required');
        continue;
      }
      let resources = discovery.get(apiVersion);
      if (!resources) {
        resources = kube.apiResources(apiVersion, call).then(
          (list) => list.resources,
          (err: { status?: number }) => {
            if (err.status === 404) return undefined;
            throw err;
          },
        );
        discovery.set(apiVersion, resources);
      }
      const served = await resources;
      const resource = served?.find((r) => r.kind === kind && !r.name.includes('/'));
      if (!resource) {
        const defined = manifests.some(
          (m) =>
            m.object['kind'] === 'CustomResourceDefinition' &&
            JSON.stringify(m.object).includes(`"kind":"${kind}"`),
        );
        problem(
          '',
          'UnknownKind',
          served
            ? `${apiVersion} serves no kind ${kind}`
            : `the cluster serves no ${apiVersion}${defined ? ' (this chart defines its CRD: install the CRD first)' : ' (is its CRD installed?)'}`,
        );
        continue;
      }
      const body: Record<string, unknown> = { ...object, metadata: { ...metadata } };
      let path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
      if (resource.namespaced) {
        const wanted =
          typeof metadata['namespace'] === 'string' && metadata['namespace']
            ? metadata['namespace']
            : options.env.namespace;
        const ns = await validationNamespace(wanted);
        (body['metadata'] as Record<string, unknown>)['namespace'] = ns;
        path += `/namespaces/${encodeURIComponent(ns)}`;
      }
      path += `/${resource.name}`;
      const res = name
        ? await kube.request({
            method: 'PATCH',
            path: `${path}/${encodeURIComponent(name)}`,
            query: { dryRun: 'All', fieldManager: 'capstan-lint', force: true, fieldValidation: 'Strict' },
            contentType: 'application/apply-patch+yaml',
            body: JSON.stringify(body),
            idempotent: true,
            ...call,
          })
        : await kube.request({
            method: 'POST',
            path,
            query: { dryRun: 'All', fieldManager: 'capstan-lint', fieldValidation: 'Strict' },
            json: body,
            ...call,
          });
      const text = await res.body.text();
      if (res.status >= 200 && res.status < 300) continue;
      let status: ApiStatus = {};
      try {
        status = JSON.parse(text) as ApiStatus;
      } catch {
        // Not a Status: the text itself is the message.
      }
      if (res.status === 401 || res.status === 403)
        throw new HelmError(
          HelmErrorCode.lintFailed,
          `the cluster refused the dry run of ${label}: ${status.message ?? text}`,
        );
      problems.push(...problemsOf(status, text, source, label));
    }
  } finally {
    if (!options.kube) await kube.close();
  }
  return { manifests: manifests.length, problems, notes };
}
