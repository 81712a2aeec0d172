// Strict decoding of a ~10 MB Kubernetes manifest stream (commented Deployments, Services and ConfigMaps,
// generated) into detailed zod schemas, against the same text parsed plainly by the `yaml` package (what
// capstan/yaml builds on: parseAllDocuments + toJS) and by js-yaml 5 (loadAll). The question is what
// strictness costs: known-field checks, zod validation, duplicate keys, positions for problems.
import { load as jsYamlLoad, loadAll as jsYamlLoadAll } from 'js-yaml';
import { parseAllDocuments } from 'yaml';
import { kubeObjectSchema, parseAllStrict, schemaByKind } from '../src/yaml/index.ts';
import { manifestSchemas } from '../src/yaml/testdata/manifest-schemas.ts';
import type { Benchmark, BenchResult } from './harness.ts';
import { peakRssMb, summarize } from './harness.ts';

function deployment(i: number): string {
  const name = `svc-${i}`;
  return `# ${name}: owned by team ${i % 17}; page the on-call before scaling down.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  namespace: team-${i % 17}
  labels:
    app.kubernetes.io/name: ${name}
    app.kubernetes.io/part-of: shop   # umbrella app
  annotations:
    deploy.example.com/revision: "${i}"
spec:
  replicas: ${i % 4}   # 0 is valid: scaled down outside business hours
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      app.kubernetes.io/name: ${name}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 0}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: ${name}
    spec:
      serviceAccountName: ${name}
      terminationGracePeriodSeconds: 30
      containers:
      - name: app
        image: registry.example.com/shop/${name}:1.${i % 50}.${i % 7}
        imagePullPolicy: IfNotPresent
        args: ["--port=8080", "--log-format=json", '--instance=${i}']
        ports:
        - name: http
          containerPort: 8080
          protocol: TCP
        env:
        - name: GOMAXPROCS
          value: "2"
        - name: DB_PASSWORD
          valueFrom:
            secretKeyRef: {name: ${name}-db, key: password}
        resources:
          requests: {cpu: 100m, memory: 128Mi}
          limits:
            memory: 256Mi   # no CPU limit
        readinessProbe:
          httpGet: {path: /readyz, port: http}
          periodSeconds: 5
        livenessProbe:
          httpGet:
            path: /livez
            port: 8080
          failureThreshold: 3
        volumeMounts:
        - name: config
          mountPath: /etc/app
          readOnly: true
      volumes:
      - name: config
        configMap: {name: ${name}-config}
`;
}

function service(i: number): string {
  return `# Front door of svc-${i}.
apiVersion: v1
kind: Service
metadata:
  name: svc-${i}
  namespace: team-${i % 17}
spec:
  type: ClusterIP
  selector:
    app.kubernetes.io/name: svc-${i}
  ports:
  - name: http
    port: 80
    targetPort: http
`;
}

function configMap(i: number): string {
  return `apiVersion: v1
kind: ConfigMap
metadata:
  name: svc-${i}-config
  namespace: team-${i % 17}
data:
  LOG_LEVEL: info
  FEATURES: "search,checkout-v2"
  app.ini: |
    [server]
    port = 8080
    # keep in sync with the probe
    ready_path = /readyz
`;
}

/** A manifest stream of at least `bytes`, and how many documents it has. */
function manifests(bytes: number): { text: string; documents: number } {
  const parts: string[] = [];
  let size = 0;
  let i = 0;
  while (size < bytes) {
    for (const doc of [deployment(i), service(i), configMap(i)]) {
      parts.push(doc);
      size += doc.length + 4;
    }
    i++;
  }
  return { text: parts.join('---\n'), documents: parts.length };
}

function time(passes: number, fn: () => number, expect: number, subject: string): number[] {
  const ms: number[] = [];
  for (let p = 0; p < passes; p++) {
    const t0 = performance.now();
    const n = fn();
    ms.push(performance.now() - t0);
    if (n !== expect) throw new Error(`${subject}: decoded ${n} documents, expected ${expect}`);
  }
  return ms;
}

const bench: Benchmark = {
  name: 'yaml',
  description:
    'Decoding a ~10 MB commented manifest stream (Deployments, Services, ConfigMaps): capstan/yaml parseAllStrict ' +
    'into detailed zod schemas (known fields, duplicate keys, zod) vs the yaml package plain (parseAllDocuments + ' +
    'toJS) vs js-yaml 5 loadAll. Time per decode of the whole stream.',
  async run({ quick, log }) {
    const { text, documents } = manifests(10 * 1024 * 1024);
    const mb = text.length / 1e6;
    // The yaml package decodes ~1-4 MB/s here: a pass of all three takes 10-40 s, so few passes.
    const passes = quick ? 2 : 5;
    log(`${mb.toFixed(1)} MB, ${documents} documents, ${passes} passes each (after a 1 MB warm-up)`);
    const selector = schemaByKind(manifestSchemas, kubeObjectSchema);
    const subjects: { subject: string; fn: () => number; notes: string }[] = [
      {
        subject: 'capstan',
        fn: () => parseAllStrict(text, selector, { file: 'bench.yaml' }).length,
        notes: 'parseAllStrict with schemaByKind (Deployment, Service, ConfigMap schemas; strict metadata)',
      },
      {
        subject: 'yaml',
        fn: () => parseAllDocuments(text).map((d) => d.toJS()).length,
        notes: 'yaml 2 parseAllDocuments + toJS, default options (no schema)',
      },
      {
        subject: 'js-yaml',
        fn: () => {
          let n = 0;
          jsYamlLoadAll(text, () => {
            n++;
          });
          return n;
        },
        notes: 'js-yaml 5 loadAll (no schema, no positions kept)',
      },
    ];
    // js-yaml is checked to read the same data as the others on one document.
    const first = text.slice(0, text.indexOf('---\n'));
    if (JSON.stringify(jsYamlLoad(first)) !== JSON.stringify(parseAllDocuments(first)[0]!.toJS())) {
      throw new Error('js-yaml and yaml disagree on the first document');
    }
    const results: BenchResult[] = [];
    // Interleaved passes, so a slower moment of the shared machine hits every subject alike.
    const samples = new Map<string, number[]>(subjects.map((s) => [s.subject, []]));
    const warm = manifests(1024 * 1024).text;
    parseAllStrict(warm, selector);
    parseAllDocuments(warm).map((d) => d.toJS());
    jsYamlLoadAll(warm, () => {});
    for (let p = 0; p < passes; p++) {
      for (const s of subjects) samples.get(s.subject)!.push(...time(1, s.fn, documents, s.subject));
    }
    for (const s of subjects) {
      const ms = samples.get(s.subject)!;
      const sum = summarize(ms);
      log(`${s.subject}: median ${sum.value.toFixed(0)} ms (${(mb / (sum.value / 1000)).toFixed(1)} MB/s)`);
      results.push({
        subject: s.subject,
        metric: 'decode ms',
        unit: 'ms',
        ...sum,
        peakRssMb: peakRssMb(),
        notes: `${s.notes}; ${mb.toFixed(1)} MB, ${documents} documents`,
      });
      results.push({
        subject: s.subject,
        metric: 'MB/s',
        unit: 'MB/s',
        value: mb / (sum.value / 1000),
        samples: ms.length,
      });
    }
    return results;
  },
  ratios: [
    {
      label: 'strict decoding / plain yaml parse (time)',
      numerator: { subject: 'capstan', metric: 'decode ms' },
      denominator: { subject: 'yaml', metric: 'decode ms' },
      goal: { op: '<=', value: 1.3, why: 'strictness costs under 30%' },
    },
    {
      label: 'strict decoding / js-yaml loadAll (time)',
      numerator: { subject: 'capstan', metric: 'decode ms' },
      denominator: { subject: 'js-yaml', metric: 'decode ms' },
    },
  ],
};

export default bench;
