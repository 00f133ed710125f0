// Enforces the layering described in docs/architecture.md ("Layering"):
// protocol is a leaf; job and agent never reach into the server; the server
// never reaches into agent or job; and no module takes part in an import
// cycle.
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', from: {}, to: { circular: true } },
    { name: 'protocol-is-a-leaf', severity: 'error', from: { path: '^src/protocol' }, to: { path: '^src/(server|agent|job|cli)' } },
    { name: 'job-stays-out-of-agent-and-server', severity: 'error', from: { path: '^src/job' }, to: { path: '^src/(server|agent|cli)' } },
    { name: 'agent-stays-out-of-server', severity: 'error', from: { path: '^src/agent' }, to: { path: '^src/(server|cli)' } },
    { name: 'server-stays-out-of-agent-and-job', severity: 'error', from: { path: '^src/server' }, to: { path: '^src/(agent|job|cli)' } },
    { name: 'no-orphans', severity: 'warn', from: { orphan: true, pathNot: ['\\.d\\.ts$', '\\.test\\.ts$'] }, to: {} },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Count type-only imports too: they are dependencies of the design.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
