// What git inherits from this process's environment when the server or a
// VCS agent runs it: what git needs to find its helpers, and what an agent
// behind a proxy or a private CA needs to reach its git server. Everything
// else (GIT_DIR, GIT_CONFIG_*, HOME, credentials, askpass) stays out.
const inheritedVariables = [
  'PATH', 'TMPDIR',
  'http_proxy', 'https_proxy', 'no_proxy', 'all_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'ALL_PROXY',
  'SSL_CERT_FILE', 'SSL_CERT_DIR', 'GIT_SSL_CAINFO', 'GIT_SSL_CAPATH',
];

/** The variables git is given from this process's environment, read when a git session starts. */
export function gitInheritedEnvironment(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const name of inheritedVariables) {
    const value = env[name];
    if (value !== undefined) kept[name] = value;
  }
  return kept;
}
