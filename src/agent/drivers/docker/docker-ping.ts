// Whether a Docker daemon answers at DOCKER_HOST, asked with node:http the
// way dockerode's ping() asks (GET /_ping, 200 expected), so that an agent
// with `auto` on a host without Docker never loads dockerode (about 30 MiB
// of resident memory with its gRPC, protobuf and SSH dependencies).
//
// process.getBuiltinModule rather than `import … from 'node:http'`: an ES
// import of node:http evaluates every export, and its lazy WebSocket getter
// loads Node's bundled fetch and WebSocket code (about 12 MiB resident).
const http = process.getBuiltinModule('node:http');
const https = process.getBuiltinModule('node:https');

const pingTimeoutMs = 5_000;

/** Undefined when the daemon answers, else why not (an error message or the HTTP status). */
export function pingDocker(dockerHost: string, timeoutMs = pingTimeoutMs): Promise<string | undefined> {
  const url = new URL(dockerHost);
  const client = url.protocol === 'https:' ? https : http;
  const target =
    url.protocol === 'unix:'
      ? { socketPath: url.pathname }
      : { host: url.hostname, port: Number(url.port || 2375) };
  return new Promise((resolve) => {
    const request = client.get({ ...target, path: '/_ping', agent: false }, (response) => {
      response.resume();
      resolve(response.statusCode === 200 ? undefined : `HTTP ${response.statusCode} from /_ping`);
    });
    // A daemon behind a firewall that drops packets would otherwise hold the agent's start for minutes.
    request.setTimeout(timeoutMs, () => request.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    request.on('error', (error) => resolve(error.message));
  });
}
