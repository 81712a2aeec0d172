// `capstan kube new operator <name>`: a small project that works on the first run, as `kubebuilder init` +
// `create api` give: a custom resource from a zod schema, a controller owning a ConfigMap, the operator
// definition the CLI reads, a main that runs it, and a test against a real control plane. Files only: the
// CLI writes them; nothing here touches the disk, so a test can inspect them.
import { KubeError, KubeErrorCode } from './errors.ts';

/** Options of {@link scaffoldOperator}. */
export interface ScaffoldOptions {
  /** The project and operator name, a lower-case DNS label: `website-operator`. */
  name: string;
  /** The API group of its custom resource. Default `example.com`. */
  group?: string;
  /** The custom resource's kind. Default `Widget`. */
  kind?: string;
  /** The `capstan` dependency written into package.json. Default `*`. */
  capstanVersion?: string;
}

/** One file of the project: a path relative to its folder, and its text. */
export interface ScaffoldFile {
  readonly path: string;
  readonly text: string;
}

const DNS_LABEL = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The files of a new operator project. `npm install && npm test` runs its test against a real kube-apiserver
 * (started by `capstan/testing`); `npx capstan kube manifests src/operator.ts --image <image>` renders what a
 * cluster needs.
 */
export function scaffoldOperator(options: ScaffoldOptions): ScaffoldFile[] {
  const { name } = options;
  const group = options.group ?? 'example.com';
  const kind = options.kind ?? 'Widget';
  const problems: string[] = [];
  if (!DNS_LABEL.test(name)) problems.push(`name ${JSON.stringify(name)}: use a lower-case DNS label`);
  if (!/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(group))
    problems.push(`group ${JSON.stringify(group)}: a domain with a dot`);
  if (!/^[A-Z][A-Za-z0-9]*$/.test(kind)) problems.push(`kind ${JSON.stringify(kind)}: PascalCase`);
  if (problems.length > 0) {
    throw new KubeError(KubeErrorCode.usage, `cannot scaffold: ${problems.join('; ')}`, { problems });
  }
  const lower = kind.toLowerCase();
  const files: ScaffoldFile[] = [
    {
      path: 'package.json',
      text: `${JSON.stringify(
        {
          name,
          version: '0.1.0',
          private: true,
          type: 'module',
          scripts: {
            start: 'node src/main.ts',
            test: 'node --test --test-concurrency=1 "src/**/*.test.ts"',
            typecheck: 'tsc -p tsconfig.json',
            crds: 'capstan crd generate src/operator.ts -o config/crd',
            manifests: `capstan kube manifests src/operator.ts --image ${name}:dev -o config/deploy`,
          },
          engines: { node: '>=24' },
          dependencies: { capstan: options.capstanVersion ?? '*', zod: '^4' },
          devDependencies: { '@types/node': '^24', typescript: '^5.9' },
        },
        null,
        2,
      )}\n`,
    },
    {
      path: 'tsconfig.json',
      text: `${JSON.stringify(
        {
          compilerOptions: {
            target: 'es2024',
            module: 'nodenext',
            strict: true,
            noEmit: true,
            allowImportingTsExtensions: true,
            erasableSyntaxOnly: true,
            verbatimModuleSyntax: true,
            skipLibCheck: true,
            types: ['node'],
          },
          include: ['src'],
        },
        null,
        2,
      )}\n`,
    },
    {
      path: `src/${lower}.ts`,
      text: `// The ${kind} custom resource: the zod schemas are the single source of its TypeScript types and of its
// CRD's OpenAPI schema (\`npm run crds\`), so the apiserver enforces what the types say.
import { customResource, statusConditions } from 'capstan/kube';
import { z } from 'zod';

export const ${kind}Spec = z.object({
  message: z.string().min(1).max(256).describe('What the ${lower} says'),
  copies: z.int32().min(1).max(10).default(1).describe('Keys written into its ConfigMap'),
});

export const ${kind}Status = z.object({
  conditions: statusConditions(),
  observedGeneration: z.int().optional(),
});

export const ${kind} = customResource('${kind}')
  .inGroup('${group}')
  .version('v1alpha1', {
    spec: ${kind}Spec,
    status: ${kind}Status,
    printerColumns: [{ name: 'Message', type: 'string', jsonPath: '.spec.message' }],
  })
  .storedAs('v1alpha1');

/** A ${kind} as the apiserver returns it (defaults applied). */
export type ${kind}Object = NonNullable<(typeof ${kind})['__object']>;
`,
    },
    {
      path: 'src/controller.ts',
      text: `// The reconciler: read the ${kind} from the cache, make its ConfigMap match, report a Ready condition.
import { Action, ConfigMap, controller, predicates, type Reconciler, setCondition } from 'capstan/kube';
import { ${kind}, type ${kind}Object } from './${lower}.ts';

export const reconcile: Reconciler<${kind}Object> = async (request, ctx) => {
  const ${lower} = ctx.get(); // the current state, never the event that woke us
  if (!${lower}) return Action.awaitChange(); // deleted: the garbage collector removes the ConfigMap
  const data: Record<string, string> = {};
  for (let i = 0; i < ${lower}.spec.copies; i++) data[\`message-\${i}\`] = ${lower}.spec.message;
  // Server-side apply, owned by the ${kind}: idempotent, so a retry never makes a second ConfigMap.
  await ctx.apply(ConfigMap, { metadata: { name: \`\${request.name}-message\` }, data });
  const generation = ${lower}.metadata.generation ?? 0;
  await ctx.applyStatus({
    observedGeneration: generation,
    conditions: setCondition(${lower}.status?.conditions ?? [], {
      type: 'Ready',
      status: 'True',
      reason: 'Applied',
      message: \`\${${lower}.spec.copies} copies\`,
      observedGeneration: generation,
    }),
  });
  return Action.awaitChange();
};

export const ${lower}Controller = controller(${kind})
  .owns(ConfigMap)
  .withPredicates(predicates.generationChanged()) // its own status writes do not wake it
  .build(reconcile);
`,
    },
    {
      path: 'src/operator.ts',
      text: `// The operator module: what \`capstan kube rbac\`, \`capstan kube manifests\` and \`capstan crd generate\` read.
import { defineOperator } from 'capstan/kube';
import { ${lower}Controller } from './controller.ts';
import { ${kind} } from './${lower}.ts';

export { ${kind} } from './${lower}.ts';

export const operator = defineOperator({
  name: '${name}',
  resources: [${kind}],
  controllers: [${lower}Controller],
});
`,
    },
    {
      path: 'src/main.ts',
      text: `// The program the Deployment runs: /livez, /readyz and /metrics on PORT (8080), the controllers under leader
// election when LEADER_ELECTION=true, a graceful drain on SIGTERM. \`npm start\` runs it against your kubeconfig.
import { runOperator } from 'capstan/kube';
import { operator } from './operator.ts';

await runOperator(operator);
`,
    },
    {
      path: 'src/controller.test.ts',
      text: `// Runs the operator against a real kube-apiserver and etcd (capstan/testing starts them; no cluster needed).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigMap, crdManifests, isConditionTrue, Namespace, runOperator } from 'capstan/kube';
import { type ControlPlane, startControlPlane } from 'capstan/testing';
import { operator } from './operator.ts';
import { ${kind} } from './${lower}.ts';

let cp: ControlPlane;

before(async () => {
  cp = await startControlPlane();
  await cp.installCrds(crdManifests([${kind}]));
  await cp.client.resource(Namespace).create({ metadata: { name: 'demo' } });
});

after(() => cp?.stop());

async function eventually<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const until = Date.now() + 30_000;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > until) assert.fail(\`\${what}: not within 30 s\`);
    await sleep(200);
  }
}

test('a ${kind} gets its ConfigMap and a Ready condition', async () => {
  const running = await runOperator(operator, {
    client: cp.client,
    handleSignals: false,
    env: { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
  });
  try {
    const ${lower}s = cp.client.resource(${kind}, 'demo');
    await ${lower}s.create(${kind}.newObject({ name: 'hello', namespace: 'demo' }, { message: 'hi', copies: 2 }));
    const cm = await eventually('ConfigMap', () => cp.client.resource(ConfigMap, 'demo').getOptional('hello-message'));
    assert.deepEqual(cm.data, { 'message-0': 'hi', 'message-1': 'hi' });
    const ready = await eventually('Ready', async () => {
      const o = await ${lower}s.get('hello');
      return isConditionTrue(o.status?.conditions ?? [], 'Ready') ? o : undefined;
    });
    assert.equal(ready.status?.observedGeneration, ready.metadata.generation);
    assert.equal((await fetch(\`\${running.url}/readyz\`)).status, 200);
  } finally {
    await running.stop();
  }
});
`,
    },
    {
      path: 'README.md',
      text: `# ${name}

A Kubernetes operator written with [Capstan](https://github.com/capstan-dev/capstan): the \`${kind}\`
custom resource (\`${group}/v1alpha1\`) and a controller that keeps a ConfigMap per ${kind}.

| file | what |
|---|---|
| \`src/${lower}.ts\` | the custom resource: zod schemas for spec and status |
| \`src/controller.ts\` | the reconciler and its controller (\`owns(ConfigMap)\`) |
| \`src/operator.ts\` | the operator definition the CLI reads |
| \`src/main.ts\` | the program the Deployment runs |
| \`src/controller.test.ts\` | a test against a real kube-apiserver and etcd |

\`\`\`sh
npm test                                   # starts a real control plane for the test (binaries cached by capstan)
npm run crds                               # config/crd/*.yaml
npx capstan kube rbac src/operator.ts      # the least-privilege roles the controllers need
npx capstan kube manifests src/operator.ts --image registry.example.com/${name}:0.1.0 | kubectl apply -f -
npm start                                  # run it against the cluster in your kubeconfig
\`\`\`

The controller's RBAC is derived from what it watches and owns: a reconciler that reads or writes other
kinds through \`ctx.client\` declares them in \`defineOperator({ rules })\`.
`,
    },
  ];
  return files;
}
