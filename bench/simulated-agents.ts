// A load-generator process for bench/control-plane-scale.ts: many simulated
// agents speaking the agent protocol (docs/protocol.md) with no engine and
// no sandbox. It runs apart from the bench and the server so that the
// server's CPU is measured alone. Driven over IPC by bench/support/load-generator.ts:
//   parent → { type: 'start', … }  child → { type: 'registered', … }
//   parent → { type: 'claim' }      every agent starts asking for work
//   parent → { type: 'begin' }      statistics reset
//   parent → { type: 'end' }        child → { type: 'stats', … }
//   parent → { type: 'stop' }       child exits
// Each agent registers with the pool token, keeps one long-poll open, and
// heartbeats every heartbeat_interval_ms (first one at a random offset, as
// agents started at different times would). A claimed job is started,
// reported succeeded through the job token's result endpoint, and finished,
// which is everything the server needs to end a plan-only run.
import { Agent as HttpAgent, request } from 'undici';
import { agentPaths, type HeartbeatRequest, type JobAssignment, type PollResponse, type RegisterResponse } from '../src/protocol/agent-api.ts';

export interface StartMessage {
  type: 'start';
  url: string;
  poolToken: string;
  agents: number;
  namePrefix: string;
  /** Registrations in flight at once: a burst of 1,000 would measure the burst, not the steady state. */
  registerConcurrency: number;
}

export interface ChildStats {
  /** [epoch ms when sent, latency ms] of each heartbeat answered 200. */
  heartbeats: [number, number][];
  /** Epoch ms of each claim (poll answered with a job) and each finish answered 204. */
  claims: number[];
  finishes: number[];
  errors: Record<string, number>;
  cpuSeconds: number;
}

const dispatcher = new HttpAgent({ connections: null, bodyTimeout: 120_000, headersTimeout: 120_000, keepAliveTimeout: 60_000 });
let url = '';
let claiming = false;
let stopping = false;
let stats: ChildStats = fresh();
let cpuAtBegin = process.cpuUsage();
// Polls opened with free_slots 0 before claiming began: aborted to re-poll
// asking for work, the way a real agent reopens its poll when a slot frees.
const idlePolls = new Set<AbortController>();
const everyPoll = new Set<AbortController>();

function fresh(): ChildStats {
  return { heartbeats: [], claims: [], finishes: [], errors: {}, cpuSeconds: 0 };
}

const now = () => performance.timeOrigin + performance.now();

function countError(what: string, error: unknown): void {
  if (stopping) return;
  const key = `${what}: ${(error as Error).message.slice(0, 80)}`;
  stats.errors[key] = (stats.errors[key] ?? 0) + 1;
}

async function call<T>(path: string, token: string, body: unknown, signal?: AbortSignal): Promise<{ status: number; body: T }> {
  const response = await request(url + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    dispatcher,
    signal,
  });
  const text = await response.body.text();
  if (response.statusCode >= 300) throw new Error(`${path} HTTP ${response.statusCode} ${text.slice(0, 120)}`);
  return { status: response.statusCode, body: (text ? JSON.parse(text) : undefined) as T };
}

class SimulatedAgent {
  readonly #session: string;
  readonly #intervalMs: number;
  #running: { job_id: string; lease_id: string }[] = [];

  constructor(registered: RegisterResponse) {
    this.#session = registered.session_token;
    this.#intervalMs = registered.heartbeat_interval_ms;
  }

  start(): void {
    this.#scheduleHeartbeat(now() + Math.random() * this.#intervalMs);
    void this.#pollLoop();
  }

  // Heartbeats keep a fixed schedule (not "interval after the last answer"),
  // so a slow server does not lower the offered load.
  #scheduleHeartbeat(at: number): void {
    if (stopping) return;
    setTimeout(() => {
      void this.#heartbeat();
      this.#scheduleHeartbeat(at + this.#intervalMs);
    }, Math.max(0, at - now()));
  }

  async #heartbeat(): Promise<void> {
    const body: HeartbeatRequest = { status: this.#running.length > 0 ? 'busy' : 'idle', running: this.#running };
    const sent = now();
    try {
      await call(agentPaths.heartbeat, this.#session, body);
      stats.heartbeats.push([sent, now() - sent]);
    } catch (error) {
      countError('heartbeat', error);
    }
  }

  async #pollLoop(): Promise<void> {
    while (!stopping) {
      const freeSlots = claiming ? 1 : 0;
      const abort = new AbortController();
      everyPoll.add(abort);
      if (freeSlots === 0) idlePolls.add(abort);
      try {
        const answer = await call<PollResponse>(agentPaths.poll, this.#session, { free_slots: freeSlots, running: [] }, abort.signal);
        for (const job of answer.body?.jobs ?? []) {
          stats.claims.push(now());
          await this.#runJob(job);
        }
      } catch (error) {
        if (abort.signal.aborted) continue;
        countError('poll', error);
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      } finally {
        idlePolls.delete(abort);
        everyPoll.delete(abort);
      }
    }
  }

  // A real agent keeps a free_slots 0 poll open while a job runs; these jobs
  // take a few milliseconds, so the poll is simply reopened afterwards.
  async #runJob(job: JobAssignment): Promise<void> {
    const lease = { job_id: job.job_id, lease_id: job.lease_id };
    this.#running.push(lease);
    try {
      await call(agentPaths.jobStart(job.job_id), this.#session, { lease_id: job.lease_id });
      await call(agentPaths.jobResult, job.job_token, { outcome: 'succeeded', has_changes: false });
      await call(agentPaths.jobFinish(job.job_id), this.#session, { lease_id: job.lease_id, status: 'succeeded' });
      stats.finishes.push(now());
    } catch (error) {
      countError('job', error);
    } finally {
      this.#running = this.#running.filter((entry) => entry !== lease);
    }
  }
}

async function registerAll(message: StartMessage): Promise<SimulatedAgent[]> {
  const agents: SimulatedAgent[] = [];
  let next = 0;
  const worker = async () => {
    while (next < message.agents) {
      const index = next++;
      const body = { name: `${message.namePrefix}-${index}`, version: '0.0.0-bench', driver: 'simulated', concurrency: 1, single: false };
      const registered = await call<RegisterResponse>(agentPaths.register, message.poolToken, body);
      const agent = new SimulatedAgent(registered.body);
      agent.start();
      agents.push(agent);
    }
  };
  await Promise.all(Array.from({ length: message.registerConcurrency }, worker));
  return agents;
}

// Every agent of this process re-polls asking for work, a batch per turn of
// the event loop: aborting 500 polls in one go stalled this process for
// 250-350 ms, which showed up as heartbeat latency that was not the server's.
// The whole flip still takes well under a second, so the server sees every
// agent ask for work in the same second.
async function abortIdlePolls(): Promise<void> {
  const polls = [...idlePolls];
  for (let i = 0; i < polls.length; i += 25) {
    for (const poll of polls.slice(i, i + 25)) poll.abort();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

process.on('message', (message: { type: string }) => {
  switch (message.type) {
    case 'start': {
      const start = message as StartMessage;
      url = start.url;
      const began = now();
      registerAll(start).then(
        (agents) => process.send!({ type: 'registered', agents: agents.length, ms: now() - began }),
        (error: Error) => process.send!({ type: 'failed', error: error.message }),
      );
      break;
    }
    case 'claim':
      claiming = true;
      void abortIdlePolls();
      break;
    case 'begin':
      stats = fresh();
      cpuAtBegin = process.cpuUsage();
      break;
    case 'end': {
      const cpu = process.cpuUsage(cpuAtBegin);
      stats.cpuSeconds = (cpu.user + cpu.system) / 1e6;
      process.send!({ type: 'stats', stats });
      break;
    }
    case 'stop':
      stopping = true;
      for (const poll of everyPoll) poll.abort();
      // Heartbeat timers stop rescheduling; exit without waiting for them.
      void dispatcher.destroy().finally(() => process.exit(0));
      break;
  }
});
