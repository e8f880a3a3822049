/**
 * A short load run, for real: k6 (built from the Go module proxy, cached) posts simulated listening to the
 * collector at a ramping rate, the job runs as its own process, and the latency watcher measures end to
 * end. Every event k6 had accepted is in ClickHouse exactly once, recommendations were measured, and k6's
 * thresholds fail the run when the end-to-end p99 is over its limit (here an impossible 1 ms).
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClickHouse } from '../../clients/clickhouse.ts';
import type { Config } from '../../core/config.ts';
import { ensureK6 } from '../../load/k6.ts';
import { loadRun, WARMUP_EVENTS } from '../../load/run.ts';
import { up } from '../../stack/stack.ts';
import { isolatedConfig } from '../helpers/env.ts';

const base = isolatedConfig('load');
// No models: the skip-burst rule triggers and the fallbacks answer, whatever models this machine has.
const config: Config = {
  ...base,
  serving: { ...base.serving, modelsDir: mkdtempSync(path.join(tmpdir(), 'encore-no-models-')) },
};

describe('a load run through k6 and the collector', () => {
  it('loses no event, measures end-to-end latency, and fails k6 on a crossed latency threshold', async () => {
    const k6 = await ensureK6(config);
    await up(config);
    const result = await loadRun(config, k6, 100, {
      rampSeconds: 3,
      holdSeconds: 8,
      users: 100,
      batch: 1,
      p99Ms: 1,
      commitIntervalMs: 100,
    });
    assert.ok(result.events_posted >= 500, `k6 posted only ${result.events_posted} events`);
    assert.equal(result.events_rejected, 0);
    assert.notEqual(result.catch_up_ms, null, 'the job did not commit every event');
    assert.ok(result.measured > 0, 'no triggered recommendation was measured');
    assert.ok(result.p99_ms > 1, `p99 ${result.p99_ms} ms`);
    assert.equal(result.k6_thresholds_passed, false, 'k6 passed a 1 ms end-to-end p99 threshold');

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
