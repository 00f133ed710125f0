import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TurnGate } from './turn-gate.ts';

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('TurnGate', () => {
  it('admits one piece of work per event-loop turn, first come first admitted, so other callbacks run in between', async () => {
    const gate = new TurnGate(1);
    const events: string[] = [];
    let ticking = true;
    // Stands for the requests the loop reads between admissions (heartbeats).
    const ticker = (async () => {
      while (ticking) {
        events.push('tick');
        await turn();
      }
    })();
    await Promise.all([0, 1, 2, 3].map((i) => gate.run(async () => void events.push(`work ${i}`))));
    ticking = false;
    await ticker;
    const works = events.filter((event) => event.startsWith('work'));
    assert.deepEqual(works, ['work 0', 'work 1', 'work 2', 'work 3']);
    for (let i = 1; i < events.length; i++) {
      assert.ok(!(events[i]!.startsWith('work') && events[i - 1]!.startsWith('work')), `two admissions in one turn: ${events.join(', ')}`);
    }
  });

  it('keeps at most `concurrency` pieces of work running', async () => {
    const gate = new TurnGate(3);
    let running = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 10 }, () =>
        gate.run(async () => {
          running += 1;
          most = Math.max(most, running);
          await new Promise((resolve) => setTimeout(resolve, 5));
          running -= 1;
        }),
      ),
    );
    assert.equal(most, 3);
    assert.equal(gate.active, 0);
    assert.equal(gate.waiting, 0);
  });

  it('passes results and errors through and frees the slot after an error', async () => {
    const gate = new TurnGate(1);
    await assert.rejects(gate.run(() => Promise.reject(new Error('boom'))), /boom/);
    assert.equal(await gate.run(async () => 42), 42);
    assert.equal(gate.active, 0);
  });

  it('refuses a concurrency that is not a positive integer', () => {
    assert.throws(() => new TurnGate(0), /positive integer/);
    assert.throws(() => new TurnGate(1.5), /positive integer/);
  });
});
