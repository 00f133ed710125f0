// The agent's Prometheus metrics (docs/reliability.md lists them). The agent,
// its job runners and the provider cache call the plain methods here; only
// this file knows prom-client. One Registry per agent (not prom-client's
// global one), so an agent started in-process (quickstart, tests) keeps its
// own counts.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** How a job ended on this agent (JobEnd in job-end.ts); listed so each series exists from the start. */
const jobResults = ['succeeded', 'failed', 'canceled', 'not_started', 'abandoned', 'stopped'] as const;

/**
 * Claim latency spans a claim round trip with work waiting (milliseconds) up
 * to a long-poll held until work arrives (the server's poll timeout, 25 s).
 */
const claimBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class AgentMetrics {
  readonly registry = new Registry();
  readonly #running: Gauge;
  readonly #finished: Counter<'result'>;
  readonly #claimLatency: Histogram;
  readonly #heartbeatFailures: Counter;
  readonly #logBytes: Counter;
  readonly #providerRequests: Counter<'result'>;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.#running = new Gauge({ name: 'outpost_agent_jobs_running', help: 'Jobs this agent is running now.', registers });
    this.#finished = new Counter({
      name: 'outpost_agent_jobs_finished_total',
      help: 'Jobs this agent finished, by how they ended (succeeded, failed, canceled, not_started, abandoned, stopped).',
      labelNames: ['result'],
      registers,
    });
    for (const result of jobResults) this.#finished.inc({ result }, 0);
    this.#claimLatency = new Histogram({
      name: 'outpost_agent_claim_latency_seconds',
      help: 'From the start of a long-poll that asked for work (a slot was free) to the moment it delivered a job.',
      buckets: claimBuckets,
      registers,
    });
    this.#heartbeatFailures = new Counter({ name: 'outpost_agent_heartbeat_failures_total', help: 'Heartbeats that failed (the server did not answer, or answered with an error).', registers });
    this.#logBytes = new Counter({ name: 'outpost_agent_log_bytes_total', help: 'Bytes of job output the control plane confirmed it stored.', registers });
    this.#providerRequests = new Counter({
      name: 'outpost_agent_provider_cache_requests_total',
      help: 'Provider packages the provider cache served to jobs: from disk (hit) or fetched from upstream (download).',
      labelNames: ['result'],
      registers,
    });
    for (const result of ['hit', 'download']) this.#providerRequests.inc({ result }, 0);
  }

  jobStarted(): void {
    this.#running.inc();
  }

  /** `result` is how the job ended (a JobEnd). */
  jobFinished(result: string): void {
    this.#running.dec();
    this.#finished.inc({ result });
  }

  /** A poll that asked for work delivered `jobs` jobs, `seconds` after it started. */
  jobsClaimed(jobs: number, seconds: number): void {
    for (let i = 0; i < jobs; i++) this.#claimLatency.observe(seconds);
  }

  heartbeatFailed(): void {
    this.#heartbeatFailures.inc();
  }

  logBytesShipped(bytes: number): void {
    if (bytes > 0) this.#logBytes.inc(bytes);
  }

  providerServed(result: 'hit' | 'download'): void {
    this.#providerRequests.inc({ result });
  }
}
