// One more agent, in the bench's own process and on its own connection, that
// heartbeats every `intervalMs` through the measured window: how fast the
// server answers a heartbeat, without the load generators' own delays (there
// 500 simulated agents share one event loop, and on a small machine the load
// generators share its cores with the server). It registers, heartbeats, and
// never polls.
import { Agent, request } from 'undici';
import { agentPaths, type RegisterResponse } from '../../src/protocol/agent-api.ts';

export interface HeartbeatProbe {
  /** Stops heartbeating; the latency of each heartbeat sent, ms. */
  stop(): Promise<number[]>;
}

export async function startHeartbeatProbe(url: string, poolToken: string, intervalMs = 50): Promise<HeartbeatProbe> {
  const dispatcher = new Agent({ connections: 1 });
  const post = async (path: string, token: string, body: unknown): Promise<string> => {
    const response = await request(url + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      dispatcher,
    });
    const text = await response.body.text();
    if (response.statusCode >= 300) throw new Error(`heartbeat probe: ${path} HTTP ${response.statusCode} ${text.slice(0, 120)}`);
    return text;
  };
  const registered = JSON.parse(
    await post(agentPaths.register, poolToken, { name: 'heartbeat-probe', version: '0.0.0-bench', driver: 'simulated', concurrency: 1, single: false }),
  ) as RegisterResponse;
  const latencies: number[] = [];
  let stopping = false;
  const loop = (async () => {
    while (!stopping) {
      const sent = performance.now();
      await post(agentPaths.heartbeat, registered.session_token, { status: 'idle', running: [] });
      latencies.push(performance.now() - sent);
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    async stop() {
      stopping = true;
      try {
        await loop;
      } finally {
        await dispatcher.close();
      }
      return latencies;
    },
  };
}
