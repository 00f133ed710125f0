// The server's settings that must agree: each pair is refused with a
// sentence that names both settings and their values, and accepted at the
// boundary.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../config/settings.ts';
import { loadServerConfig } from './config.ts';

function refusal(env: Record<string, string>): string {
  try {
    loadServerConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.message;
  }
  assert.fail(`the settings were accepted: ${JSON.stringify(env)}`);
}

test('the defaults agree with each other', () => {
  const config = loadServerConfig({});
  assert.ok(config.leaseTimeout >= 3 * config.heartbeatInterval);
});

test('a lease shorter than three heartbeats is refused, naming both settings', () => {
  const message = refusal({ OUTPOST_LEASE_TIMEOUT: '6s' });
  assert.match(message, /OUTPOST_LEASE_TIMEOUT=6s is shorter than 3 × OUTPOST_AGENT_HEARTBEAT_INTERVAL=10s/);
  assert.match(message, /at least 30s/);
  assert.match(refusal({ OUTPOST_LEASE_TIMEOUT: '2999ms', OUTPOST_AGENT_HEARTBEAT_INTERVAL: '1s' }), /OUTPOST_LEASE_TIMEOUT=2999ms/);
  assert.equal(loadServerConfig({ OUTPOST_LEASE_TIMEOUT: '3s', OUTPOST_AGENT_HEARTBEAT_INTERVAL: '1s', OUTPOST_SWEEP_INTERVAL: '1s' }).leaseTimeout, 3_000);
});

test('a sweep interval not shorter than the lease is refused', () => {
  assert.match(refusal({ OUTPOST_SWEEP_INTERVAL: '30s' }), /OUTPOST_SWEEP_INTERVAL=30s is not shorter than OUTPOST_LEASE_TIMEOUT=30s/);
  assert.equal(loadServerConfig({ OUTPOST_SWEEP_INTERVAL: '29s' }).sweepInterval, 29_000);
});

test('a poll held longer than a minute is refused: agents give up on a connection silent for two', () => {
  assert.match(refusal({ OUTPOST_POLL_TIMEOUT: '10m' }), /OUTPOST_POLL_TIMEOUT="10m": expected a duration from 1s to 1m/);
  assert.equal(loadServerConfig({ OUTPOST_POLL_TIMEOUT: '60s' }).pollTimeout, 60_000);
});

test('every contradiction is reported at once', () => {
  const message = refusal({ OUTPOST_LEASE_TIMEOUT: '5s', OUTPOST_SWEEP_INTERVAL: '10s' });
  assert.match(message, /OUTPOST_LEASE_TIMEOUT=5s is shorter/);
  assert.match(message, /OUTPOST_SWEEP_INTERVAL=10s is not shorter/);
});
