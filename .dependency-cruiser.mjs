// Import boundaries between the areas of src/ (`src/<area>/`), checked by `npm run lint:deps` in `npm test`.
// The rules name no area: a new folder under src/ is covered the day it lands. docs/architecture.md explains
// them; test/boundaries.test.ts proves each one fires on test/fixtures/boundaries.

/** Test code: `*.test.ts` and anything under a `testdata/` folder. */
const testCode = ['\\.test\\.ts$', '/testdata/'];

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'area-through-index',
      comment:
        'An area uses another area only through its public surface, src/<other>/index.ts (or the capstan/<other> subpath that resolves to it).',
      severity: 'error',
      from: { path: '^src/([^/]+)/' },
      to: { path: '^src/[^/]+/', pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$'] },
    },
    {
      name: 'runtime-imports-no-area',
      comment:
        'src/runtime is the hub every area builds on, so it depends on none of them (its tests may start peers through another area’s index).',
      severity: 'error',
      from: { path: '^src/runtime/', pathNot: testCode },
      to: { path: '^src/[^/]+/', pathNot: '^src/runtime/' },
    },
    {
      name: 'index-exports-no-internal',
      comment:
        'Nothing under an internal/ folder is public: an index.ts (a public surface) does not import it at all.',
      severity: 'error',
      from: { path: '(^|/)index\\.ts$' },
      to: { path: '(^|/)internal/' },
    },
    {
      name: 'no-reexport-of-internal',
      comment:
        'A module outside internal/ does not re-export one inside it: the index re-exporting that module would publish it by the back door.',
      severity: 'error',
      from: { pathNot: ['(^|/)internal/', '(^|/)index\\.ts$'] },
      to: { path: '(^|/)internal/', dependencyTypes: ['export'] },
    },
    {
      name: 'no-circular',
      comment:
        'No import cycles between files, type-only imports included: a cycle, even of types, means the two files are one module in disguise.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import the checker cannot resolve is an import it cannot check (and usually a typo).',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'examples-use-public-api',
      comment:
        'examples/ are programs users copy: they import capstan/<area> only, never a file inside src/.',
      severity: 'error',
      from: { path: '^examples/' },
      to: { path: '^src/', pathNot: '^src/[^/]+/index\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: they are edges of the design even though they vanish at run time.
    tsPreCompilationDeps: true,
    // `capstan/<area>` self-imports resolve, like in our tests, to src/<area>/index.ts.
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['capstan-source', 'import', 'node', 'default'],
      mainFields: ['module', 'main'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
