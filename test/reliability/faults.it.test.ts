/**
 * The short reliability suite (the long one is `bin/encore reliability`, docs/RELIABILITY.md): one run of
 * simulated listening through the job, served by real (tiny) models, with every fault of issue 7 in it.
 * Malformed records and a move to version 2 of the event schema span the run; three SIGKILLs, a broker
 * restart, a second instance joining and leaving, and a ClickHouse outage take turns. Nothing may be lost
 * or duplicated: every event once in ClickHouse, every scoring point once, every recommendation the test
 * driver makes from the same input read once under read_committed (and once in ClickHouse), every
 * malformed record once in the dead-letter topic with its reason. Recovery times are printed, not asserted.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { FAULT_NAMES } from '../../reliability/faults.ts';
import { runScenario } from '../../reliability/suite.ts';
import { up } from '../../stack/stack.ts';
import { isolatedConfig } from '../helpers/env.ts';
import { fixtureModels } from '../helpers/models.ts';

const base = isolatedConfig('reliability');

describe('reliability under faults (short)', { timeout: 900_000 }, () => {
  // A fault that failed half-way must not leave the stack down for the next test file.
  after(() => up(base));

  it('loses and duplicates nothing through kills, a broker restart, a rebalance, a ClickHouse outage, malformed inputs and a schema change', async () => {
    const models = await fixtureModels();
    const report = await runScenario(
      { ...base, serving: { ...base.serving, modelsDir: models.dir } },
      {
        faults: FAULT_NAMES,
        sizes: { kills: 3, brokerOutageMs: 10_000, clickhouseOutageMs: 10_000, malformed: 2_000 },
        plan: { seed: 7, events: 72_000, users: 3_000, songs: 120, requestEvery: 500 },
        rate: 400,
        partitions: 2,
        catchUpTimeoutMs: 180_000,
        jobLogLevel: 'warn',
      },
    );
    for (const fault of report.faults)
      console.log(
        `# ${fault.fault}: ${fault.times} × , recovery median ${fault.recovery.medianMs} ms, max ${fault.recovery.maxMs} ms`,
      );
    console.log(
      `# ${report.events} events, ${report.malformed} malformed, ${report.requests} requests, ` +
        `${report.expected.recommendations} recommendations; driver ${report.durations.driverMs} ms, live ${report.durations.liveMs} ms`,
    );
    assert.deepEqual(report.problems, [], 'no problem found');
    assert.deepEqual(
      { lost: report.lost, duplicated: report.duplicated, unexpected: report.unexpected },
      { lost: 0, duplicated: 0, unexpected: 0 },
    );
    const struck = Object.fromEntries(report.faults.map((f) => [f.fault, f]));
    assert.equal(struck.sigkill!.times, 3);
    assert.equal(report.verdict.deadLetters.found, 2_000, 'every malformed record dead-lettered');
    assert.ok(
      (struck['schema-evolution']!.details.version2Events as number) > 0,
      'version-2 events were sent',
    );
    assert.ok(report.expected.recommendations > 0 && report.verdict.events.found === report.events);
  });
});
