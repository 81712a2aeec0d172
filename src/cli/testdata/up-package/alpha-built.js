// What `dist/` would hold for ./alpha: proves the built CLI picks the `default` target.
export const upServices = [
  { name: 'alpha-built', description: 'fixture alpha-built', start: async () => ({ urls: {} }) },
];
