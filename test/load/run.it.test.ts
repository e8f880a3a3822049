/**
 * A short load run, for real: vegeta (built from the Go module proxy, cached) posts simulated listening to
 * the collector at a ramping rate, the job runs as its own process, and the latency watcher measures end to
 * end. Every event the collector accepted is in ClickHouse exactly once, recommendations were measured, and
 * the run's thresholds fail it when the end-to-end p99 is over its limit (here an impossible 1 ms), and
 * only that one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClickHouse } from '../../clients/clickhouse.ts';
import type { Config } from '../../core/config.ts';
import { loadRun, WARMUP_EVENTS } from '../../load/run.ts';
import { ensureVegeta } from '../../load/vegeta.ts';
import { up } from '../../stack/stack.ts';
import { isolatedConfig } from '../helpers/env.ts';

const base = isolatedConfig('load');
// No models: the skip-burst rule triggers and the fallbacks answer, whatever models this machine has.
const config: Config = {
  ...base,
  serving: { ...base.serving, modelsDir: mkdtempSync(path.join(tmpdir(), 'encore-no-models-')) },
};

describe('a load run through vegeta and the collector', () => {
  it('loses no event, measures end-to-end latency, and fails on a crossed latency threshold', async () => {
    const vegeta = await ensureVegeta(config);
    await up(config);
    const result = await loadRun(config, vegeta, 100, {
      rampSeconds: 3,
      holdSeconds: 8,
      users: 100,
      batch: 1,
      p99Ms: 1,
      commitIntervalMs: 100,
    });
    // The ramp's 3 one-second steps (17, 50 and 83 events) and 8 s at 100/s.
    assert.equal(result.events_posted, 950);
    assert.equal(result.events_rejected, 0);
    assert.equal(result.requests_unsent, 0);
    assert.notEqual(result.catch_up_ms, null, 'the job did not commit every event');
    assert.ok(result.measured > 0, 'no triggered recommendation was measured');
    assert.ok(result.p99_ms > 1, `p99 ${result.p99_ms} ms`);
    assert.deepEqual(
      result.thresholds.filter((check) => !check.passed).map((check) => check.name),
      ['end-to-end p99 (ms)'],
    );
    assert.equal(result.thresholds_passed, false);

    const db = new ClickHouse(config);
    try {
      const expected = WARMUP_EVENTS + result.events_posted;
      let counts = { n: '0', distinct: '0' };
      for (let tries = 0; tries < 60 && Number(counts.n) < expected; tries++) {
        [counts = counts] = await db.query<{ n: string; distinct: string }>(
          'SELECT count() AS n, uniqExact(event_id) AS distinct FROM events',
        );
        await sleep(500);
      }
      assert.deepEqual(
        { rows: Number(counts.n), events: Number(counts.distinct) },
        { rows: expected, events: expected },
      );
    } finally {
      await db.close();
    }
  });
});
