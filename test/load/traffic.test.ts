import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rampAndHold, tally, thresholds } from '../../load/traffic.ts';
import type { Hit } from '../../load/vegeta.ts';

const hit = (overrides: Partial<Hit>): Hit => ({
  stage: 0,
  seq: 0,
  sentAt: 1_000,
  latencyMs: 5,
  code: 202,
  body: '',
  error: '',
  ...overrides,
});

describe('the traffic of a load run', () => {
  it('ramps in one-second steps to the rate, then holds it', () => {
    assert.deepEqual(rampAndHold(1_000, 4, 30), [
      { requestsPerSecond: 125, seconds: 1 },
      { requestsPerSecond: 375, seconds: 1 },
      { requestsPerSecond: 625, seconds: 1 },
      { requestsPerSecond: 875, seconds: 1 },
      { requestsPerSecond: 1_000, seconds: 30 },
    ]);
    assert.deepEqual(rampAndHold(2, 4, 1)[0], { requestsPerSecond: 1, seconds: 1 });
  });

  it('counts the events the collector took, refused and failed, from its answers', () => {
    const stages = [{ requestsPerSecond: 10, seconds: 1 }];
    const result = tally(
      stages,
      [
        hit({ seq: 0, code: 202, sentAt: 1_000, latencyMs: 4 }),
        hit({
          seq: 1,
          code: 207,
          sentAt: 1_100,
          body: '{"accepted":3,"rejected":[{"index":1},{"index":4}]}',
        }),
        hit({ seq: 2, code: 400, sentAt: 1_200, body: '{"accepted":0,"rejected":[{"index":0}]}' }),
        hit({ seq: 3, code: 500, sentAt: 1_300, latencyMs: 900 }),
        hit({ seq: 4, code: 0, sentAt: 1_400, error: 'connection refused' }),
      ],
      5,
    );
    assert.equal(result.requestsPlanned, 10);
    assert.equal(result.requestsSent, 5);
    assert.equal(result.accepted, 5 + 3);
    assert.equal(result.rejected, 2 + 1);
    assert.equal(result.failed, 2);
    // Only answers that took events count for the last acknowledgement.
    assert.equal(result.lastAcceptedAt, 1_105);
    assert.equal(result.collectorP50Ms, 5);
  });

  it("measures how late requests left against their stage's pace", () => {
    const stages = [
      { requestsPerSecond: 100, seconds: 1 },
      { requestsPerSecond: 10, seconds: 1 },
    ];
    const onTime = Array.from({ length: 100 }, (_, seq) => hit({ stage: 0, seq, sentAt: 5_000 + seq * 10 }));
    // The second stage's first request sets its clock; the others left 250 ms after their slots.
    const late = Array.from({ length: 10 }, (_, seq) =>
      hit({ stage: 1, seq, sentAt: 9_000 + seq * 100 + (seq > 0 ? 250 : 0) }),
    );
    assert.equal(tally(stages, onTime, 1).sendLagP99Ms, 0);
    assert.equal(tally(stages, [...onTime, ...late], 1).sendLagP99Ms, 250);
  });

  it('fails the run on failures, refusals, unsent requests or the end-to-end p99, naming each', () => {
    const stages = [{ requestsPerSecond: 4, seconds: 1 }];
    const clean = tally(
      stages,
      [0, 1, 2, 3].map((seq) => hit({ seq })),
      1,
    );
    const failedNames = (traffic: ReturnType<typeof tally>, p99Ms: number, measured = 10) =>
      thresholds(traffic, { measured, p99Ms }, 200)
        .filter((check) => !check.passed)
        .map((check) => check.name);
    assert.deepEqual(failedNames(clean, 150), []);
    const late = tally(
      stages,
      [0, 1, 2, 3].map((seq) => hit({ seq, sentAt: 1_000 + seq * 300 })),
      1,
    );
    assert.deepEqual(failedNames(late, 150), ['send lag p99 (ms): the rate was not kept']);
    assert.deepEqual(failedNames(clean, 250), ['end-to-end p99 (ms)']);
    assert.deepEqual(failedNames(clean, Number.NaN, 0), ['recommendations measured', 'end-to-end p99 (ms)']);
    const broken = tally(
      stages,
      [hit({ seq: 0, code: 500 }), hit({ seq: 1, code: 400, body: '{"rejected":[{}]}' })],
      1,
    );
    assert.deepEqual(failedNames(broken, 150), [
      'collector failures (share of requests)',
      'events rejected',
      'requests not sent',
    ]);
  });
});
