import assert from 'node:assert/strict';
import { it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OutgoingRecord } from '../../clients/kafka.ts';
import { producePaced } from '../../simulator/kafka.ts';

const record = (i: number): OutgoingRecord => ({ topic: 't', key: String(i), value: Buffer.from([i]) });

it('a pause sends what came before it first, stops the traffic, and resumes without a burst', async () => {
  const sends: { at: number; keys: string[] }[] = [];
  const producer = {
    send: async (records: readonly OutgoingRecord[]) => {
      sends.push({ at: Date.now(), keys: records.map((r) => r.key as string) });
    },
  };
  let lift = () => {};
  const lifted = new Promise<void>((resolve) => (lift = resolve));
  let sourced = 0;
  function* source() {
    for (let i = 0; i < 40; i++) {
      sourced = i + 1;
      yield record(i);
    }
  }
  let paused = false;
  const done = producePaced(producer, source(), {
    rate: 200,
    tickMs: 10,
    pauseBefore: () => {
      if (sourced !== 10 || paused) return undefined;
      paused = true;
      return lifted;
    },
  });
  await sleep(300);
  // At 200/s the first 10 are due within 50 ms; nothing past the pause goes out while it lasts.
  const beforeLift = sends.flatMap((s) => s.keys);
  assert.deepEqual(
    beforeLift,
    Array.from({ length: 10 }, (_, i) => String(i)),
  );
  const liftedAt = Date.now();
  lift();
  assert.equal(await done, 40);
  const after = sends.filter((s) => s.at >= liftedAt);
  // 30 records at 200/s take ~150 ms after the pause: no batch holds more than a few ticks' worth.
  assert.ok(
    Math.max(...after.map((s) => s.keys.length)) <= 5,
    JSON.stringify(after.map((s) => s.keys.length)),
  );
  assert.ok(after.at(-1)!.at - liftedAt >= 100, 'the rest went at the pace, not in one burst');
});
