// A TCP forwarder that records who connected: put in front of a server that
// listens on loopback only (git-http-server.ts's git server), it lets pods
// reach that server at the node's address, and tells the test the address
// each connection came from, so a test can show a pod (not this host) did
// the talking.
import net from 'node:net';
import type { TestHooks } from './cluster.ts';

export interface RecordingForwarder {
  /** The address it listens on, as given. */
  readonly host: string;
  readonly port: number;
  /** The remote address of every connection accepted, in order. */
  readonly peers: readonly string[];
}

/** Listens on a free port of `host` and forwards every connection to `target`; closed when the test ends. */
export async function startRecordingForwarder(t: TestHooks, host: string, target: { readonly host: string; readonly port: number }): Promise<RecordingForwarder> {
  const peers: string[] = [];
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    peers.push(client.remoteAddress ?? 'unknown');
    const upstream = net.connect(target);
    for (const socket of [client, upstream]) {
      open.add(socket);
      // A peer that goes away mid-request is no failure of the test.
      socket.on('error', () => undefined);
      socket.once('close', () => {
        open.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  t.after(async () => {
    for (const socket of open) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { host, port: (server.address() as net.AddressInfo).port, peers };
}
