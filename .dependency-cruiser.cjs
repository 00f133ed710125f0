// Enforces the layering described in docs/architecture.md ("Layering"):
// protocol is a leaf; job and agent never reach into the server; the server
// never reaches into agent or job; no module takes part in an import cycle;
// and inside the server, each domain folder has the same parts (repo.ts for
// its SQL, service.ts for its rules and authorisation, routes for HTTP),
// domains reach each other through services, and SQL stays in repositories.

/** A routes file of the server: `routes.ts`, or `<what>-routes.ts` (protocol-routes, job-token-routes, backend-routes, health-routes, metrics-routes). */
const routesFile = '^src/server/.*routes\\.ts$';
/** Tests may reach past the layers to set up and inspect what they test. */
const tests = ['\\.test\\.ts$', '\\.test-support\\.ts$'];

module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', from: {}, to: { circular: true } },
    { name: 'protocol-is-a-leaf', severity: 'error', from: { path: '^src/protocol' }, to: { path: '^src/(server|agent|job|cli|launcher)' } },
    { name: 'job-stays-out-of-agent-and-server', severity: 'error', from: { path: '^src/job' }, to: { path: '^src/(server|agent|cli)' } },
    { name: 'vcs-library-stays-a-library', severity: 'error', from: { path: '^src/vcs' }, to: { path: '^src/(server|agent|job|cli|launcher)' } },
    { name: 'agent-stays-out-of-server', severity: 'error', from: { path: '^src/agent' }, to: { path: '^src/(server|cli|launcher)' } },
    {
      name: 'launcher-stays-out-of-the-rest',
      severity: 'error',
      from: { path: '^src/launcher' },
      to: { path: '^src/(agent|job|cli|server)', pathNot: '^src/server/http/errors\\.ts$' },
    },
    { name: 'server-stays-out-of-agent-and-job', severity: 'error', from: { path: '^src/server' }, to: { path: '^src/(agent|job|cli|launcher)' } },
    {
      name: 'only-app-wires-routes',
      comment: 'A domain reaches another through its service, never its routes: only src/server/app.ts imports a routes file, to register it.',
      severity: 'error',
      from: { path: '^src/server/', pathNot: ['^src/server/app\\.ts$', ...tests] },
      to: { path: routesFile },
    },
    {
      name: 'routes-go-through-services',
      comment: 'Routes parse, authenticate, call a service and present: every read and write goes through a service, where the rules are. A repository\'s row types may be imported to present rows.',
      severity: 'error',
      from: { path: routesFile },
      to: { path: '^src/server/[^/]+/repo\\.ts$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'sql-only-in-repositories',
      comment:
        'SQL is written in repo.ts files and db/ (the dialects, migrations and schema) only, so each domain\'s queries are in one place. ' +
        'Everywhere else Kysely may be imported for its types (a transaction handed to repositories), not to build queries. ' +
        'postgres-notifier.ts is the one exception: it is the wake-up channel between replicas (LISTEN on its own connection, pg_notify), no table\'s data.',
      severity: 'error',
      from: { path: '^src/server/', pathNot: ['^src/server/[^/]+/repo\\.ts$', '^src/server/db/', '^src/server/postgres-notifier\\.ts$', ...tests] },
      to: { path: '^node_modules/(?:kysely|pg)/', dependencyTypesNot: ['type-only'] },
    },
    { name: 'no-orphans', severity: 'warn', from: { orphan: true, pathNot: ['\\.d\\.ts$', '\\.test\\.ts$'] }, to: {} },
  ],
  required: [
    {
      name: 'routes-have-a-service',
      comment: 'Every domain folder with routes has a service.ts, and its routes use it.',
      severity: 'error',
      module: { path: '^src/server/([^/]+)/[^/]*routes\\.ts$' },
      to: { path: '^src/server/$1/service\\.ts$' },
    },
    {
      name: 'services-have-a-repository',
      comment: 'Every domain\'s service.ts has a repo.ts beside it, holding the domain\'s SQL, and uses it.',
      severity: 'error',
      module: { path: '^src/server/([^/]+)/service\\.ts$' },
      to: { path: '^src/server/$1/repo\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Count type-only imports too: they are dependencies of the design.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
