import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { buildDataset } from '../../cli/dataset.ts';
import { loadConfig } from '../../core/config.ts';
import { simulate } from '../../simulator/model.ts';
import { readMigrations } from '../../sinks/migrate.ts';
import { FEATURE_SPEC } from '../../topology/listening/features.ts';
import { readJsonLines } from '../helpers/files.ts';

/** Column names of a table, as the migrations create it. */
function columnsOf(table: string): string[] {
  const create = readMigrations()
    .flatMap((m) => m.statements)
    .find((s) => s.startsWith(`CREATE TABLE IF NOT EXISTS ${table} (`))!;
  const body = create.slice(create.indexOf('(') + 1, create.lastIndexOf(') ENGINE'));
  return body
    .split('\n')
    .map((line) => line.trim().split(' ')[0]!)
    .filter(Boolean);
}

describe('encore dataset', () => {
  it('runs simulated listening through the topology into files shaped like the sink tables', async () => {
    const out = await mkdtemp(path.join(tmpdir(), 'encore-dataset-'));
    const simulation = simulate({ seed: 3, users: 20, songs: 200, start: Date.UTC(2026, 8, 1), days: 2 });
    const report = await buildDataset(loadConfig({ env: {} }), simulation, out);
    assert.ok(report.events > 100, `${report.events} events`);
    assert.equal(report.invalidEvents, 0);

    const files = {
      session_features: await readJsonLines(path.join(out, 'session_features.jsonl')),
      disengagement_labels: await readJsonLines(path.join(out, 'disengagement_labels.jsonl')),
      sessions: await readJsonLines(path.join(out, 'sessions.jsonl')),
      events: await readJsonLines(path.join(out, 'events.jsonl')),
      songs: await readJsonLines(path.join(out, 'songs.jsonl')),
    };
    for (const [table, rows] of Object.entries(files)) {
      assert.ok(rows.length > 0, `${table} has rows`);
      assert.deepEqual(
        Object.keys(rows[0]!).sort(),
        columnsOf(table).sort(),
        `${table}: the table's columns`,
      );
    }
    assert.equal(files.events.length, report.events);
    // Every scoring point is labelled (the stream's end is pushed past every horizon), once.
    const points = new Set(files.session_features.map((r) => r.event_id));
    const labelled = files.disengagement_labels.map((r) => r.event_id);
    assert.equal(new Set(labelled).size, labelled.length);
    assert.deepEqual(new Set(labelled), points);
    assert.ok(files.session_features.every((r) => r.feature_spec === FEATURE_SPEC.version));
    assert.ok(
      files.disengagement_labels.some((r) => r.label === 1) &&
        files.disengagement_labels.some((r) => r.label === 0),
    );
    const spec = JSON.parse(await readFile(path.join(out, 'feature-spec.json'), 'utf8'));
    assert.equal(spec.version, FEATURE_SPEC.version);
  });
});
