// A TCP proxy a test controls, to put a network partition between an agent
// and the server: the agent is given the proxy's URL, and the test cuts and
// restores the link while everything else (server, engine, provisioners)
// keeps running.
//
//   const proxy = await TcpProxy.start(t, new URL(server.url).port);
//   const agent = await startAgent({ url: proxy.url }, { token, t });
//   proxy.cut();      // established connections are reset; new ones wait
//   proxy.restore();  // what waited reaches the server now, late
//
// cut() resets every established connection (the peer sees ECONNRESET), and
// then, by default, blackholes: new connections are accepted and what they
// send is held, unanswered, like packets into a partition that TCP keeps
// retransmitting. restore() delivers the held bytes to the server, as a
// healed network would, so the test sees exactly how the server answers a
// partitioned client's late requests. `cut('refuse')` resets new connections
// at once instead, for clients that should fail fast.
import net from 'node:net';
import type { TestHooks } from './cluster.ts';

export type CutMode = 'blackhole' | 'refuse';

interface HeldConnection {
  readonly client: net.Socket;
  readonly chunks: Buffer[];
}

export class TcpProxy {
  readonly #server: net.Server;
  readonly #targetPort: number;
  readonly #targetHost: string;
  /** Every pair in use, so cut() and close() can end them. */
  readonly #links = new Set<net.Socket>();
  #held: HeldConnection[] = [];
  #mode: CutMode | undefined;
  /** Connections opened while blackholed, ever (held or since delivered). */
  #heldTotal = 0;

  private constructor(targetPort: number, targetHost: string) {
    this.#targetPort = targetPort;
    this.#targetHost = targetHost;
    this.#server = net.createServer((client) => this.#accept(client));
  }

  /** Listens on a free port of 127.0.0.1 and forwards to `targetHost:targetPort`; closed when the test ends. */
  static async start(t: TestHooks, targetPort: number | string, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    const proxy = new TcpProxy(Number(targetPort), targetHost);
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once('error', reject);
      proxy.#server.listen(0, '127.0.0.1', () => resolve());
    });
    t.after(() => proxy.close());
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get isCut(): boolean {
    return this.#mode !== undefined;
  }

  /** How many connections were opened while blackholed (held now or delivered since). */
  get heldConnections(): number {
    return this.#heldTotal;
  }

  /**
   * The first line each connection held right now has sent so far (for
   * HTTP/1.1, its request line: one request per connection, since a client
   * waits for the answer): lets a test wait until a given request is stuck
   * in the partition.
   */
  heldRequestLines(): string[] {
    return this.#held.flatMap((held) => {
      const text = Buffer.concat(held.chunks).toString('latin1');
      const end = text.indexOf('\r\n');
      return end >= 0 ? [text.slice(0, end)] : [];
    });
  }

  /** Resets every established connection; new ones are held (`blackhole`) or reset (`refuse`) until restore(). */
  cut(mode: CutMode = 'blackhole'): void {
    this.#mode = mode;
    for (const socket of this.#links) {
      // resetAndDestroy() on a half-closed socket spins the event loop
      // (Node 24); one that is already closing needs no reset anyway.
      if (socket.readyState === 'open') socket.resetAndDestroy();
      else socket.destroy();
    }
    this.#links.clear();
  }

  /** Forwards again; the held connections are connected to the server and what they sent is delivered. */
  restore(): void {
    this.#mode = undefined;
    const held = this.#held;
    this.#held = [];
    for (const connection of held) {
      if (connection.client.destroyed) continue;
      connection.client.removeAllListeners('data');
      this.#forward(connection.client, connection.chunks);
    }
  }

  async close(): Promise<void> {
    for (const socket of this.#links) socket.destroy();
    for (const held of this.#held) held.client.destroy();
    this.#held = [];
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: net.Socket): void {
    // A reset peer is expected here; an unhandled 'error' would crash the test process.
    client.on('error', () => undefined);
    if (this.#mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    if (this.#mode === 'blackhole') {
      const connection: HeldConnection = { client, chunks: [] };
      this.#heldTotal++;
      this.#held.push(connection);
      client.on('data', (chunk: Buffer) => connection.chunks.push(chunk));
      client.once('close', () => {
        this.#held = this.#held.filter((other) => other !== connection);
      });
      return;
    }
    this.#forward(client, []);
  }

  /** Pipes `client` to a new connection to the server, sending `pending` first. */
  #forward(client: net.Socket, pending: Buffer[]): void {
    const upstream = net.connect({ port: this.#targetPort, host: this.#targetHost });
    upstream.on('error', () => client.destroy());
    for (const chunk of pending) upstream.write(chunk);
    this.#links.add(client);
    this.#links.add(upstream);
    const forget = (): void => {
      this.#links.delete(client);
      this.#links.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.once('close', forget);
    upstream.once('close', forget);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
