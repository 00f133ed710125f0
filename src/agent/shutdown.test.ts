import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { loadAgentConfig } from './config.ts';
import { AgentShutdown, type StoppableAgent } from './shutdown.ts';
import type { StopAction } from './shutdown-config.ts';

class FakeAgent implements StoppableAgent {
  readonly stops: { action: StopAction; reason: string }[] = [];
  jobs = ['job-1'];
  stop(action: StopAction, reason: string): void {
    this.stops.push({ action, reason });
  }
  runningJobIds(): string[] {
    return this.jobs;
  }
}

function shutdownOf(agent: FakeAgent, action: StopAction, drainTimeoutMs = 60_000, graceTimeoutMs = 60_000) {
  const exits: number[] = [];
  const shutdown = new AgentShutdown(agent, { action, drainTimeoutMs, graceTimeoutMs }, pino({ level: 'silent' }), (code) => void exits.push(code));
  return { shutdown, exits };
}

test('each further signal escalates one step: drain, grace, force, then exit 130', (t) => {
  const agent = new FakeAgent();
  const { shutdown, exits } = shutdownOf(agent, 'drain');
  t.after(() => shutdown.dispose());
  shutdown.onSignal('SIGTERM');
  shutdown.onSignal('SIGINT');
  shutdown.onSignal('SIGHUP');
  assert.deepEqual(agent.stops.map((stop) => stop.action), ['drain', 'grace', 'force']);
  assert.match(agent.stops[1]!.reason, /received SIGINT again/);
  assert.deepEqual(exits, []);
  shutdown.onSignal('SIGTERM');
  assert.deepEqual(exits, [130]);
});

test('the configured action is the first step', (t) => {
  const agent = new FakeAgent();
  const { shutdown } = shutdownOf(agent, 'grace');
  t.after(() => shutdown.dispose());
  shutdown.onSignal('SIGTERM');
  shutdown.onSignal('SIGTERM');
  assert.deepEqual(agent.stops.map((stop) => stop.action), ['grace', 'force']);
});

test('the drain timeout leads to grace and the grace timeout to force while jobs run', async (t) => {
  const agent = new FakeAgent();
  const { shutdown } = shutdownOf(agent, 'drain', 30, 30);
  t.after(() => shutdown.dispose());
  shutdown.onSignal('SIGTERM');
  await sleep(150);
  assert.deepEqual(agent.stops.map((stop) => stop.action), ['drain', 'grace', 'force']);
  assert.match(agent.stops[1]!.reason, /drain timeout of 30 ms passed/);
  assert.match(agent.stops[2]!.reason, /grace timeout of 30 ms passed/);
});

test('no escalation once no job is left', async (t) => {
  const agent = new FakeAgent();
  agent.jobs = [];
  const { shutdown } = shutdownOf(agent, 'drain', 20, 20);
  t.after(() => shutdown.dispose());
  shutdown.onSignal('SIGTERM');
  await sleep(80);
  assert.deepEqual(agent.stops.map((stop) => stop.action), ['drain']);
});

test('stop settings: defaults, the Scalr agent\'s SCALR_* names and its grace-shutdown / force-shutdown spellings', () => {
  const defaults = loadAgentConfig({ OUTPOST_AGENT_TOKEN: 'x' });
  assert.deepEqual(
    [defaults.onStopAction, defaults.drainTimeout, defaults.graceShutdownTimeout, defaults.disconnectOnStop],
    ['drain', 3_600_000, 60_000, true],
  );
  const scalr = loadAgentConfig({
    SCALR_AGENT_TOKEN: 'x',
    SCALR_AGENT_WORKER_ON_STOP_ACTION: 'grace-shutdown',
    SCALR_AGENT_WORKER_DRAIN_TIMEOUT: '3600',
    SCALR_AGENT_WORKER_GRACE_SHUTDOWN_TIMEOUT: '50',
    SCALR_AGENT_DISCONNECT_ON_STOP: 'false',
  });
  assert.deepEqual([scalr.onStopAction, scalr.drainTimeout, scalr.graceShutdownTimeout, scalr.disconnectOnStop], ['grace', 3_600_000, 50_000, false]);
  assert.equal(loadAgentConfig({ OUTPOST_AGENT_TOKEN: 'x', OUTPOST_AGENT_WORKER_ON_STOP_ACTION: 'Force-Shutdown' }).onStopAction, 'force');
  assert.throws(() => loadAgentConfig({ OUTPOST_AGENT_TOKEN: 'x', OUTPOST_AGENT_WORKER_ON_STOP_ACTION: 'pause' }), /expected drain, grace/);
});
