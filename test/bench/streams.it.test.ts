/**
 * The runtime benchmark's smoke run: every system on a tiny input through the real harness, so none of the
 * five implementations (nor the harness) rots between benchmark runs. Correctness only; no timing.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { benchStreams, SYSTEMS } from '../../bench/streams/run.ts';
import { loadConfig } from '../../core/config.ts';

it('every benchmark system computes the expected sessions on a small input', async () => {
  const output = path.join(await mkdtemp(path.join(tmpdir(), 'bench-smoke-')), 'streams.json');
  await benchStreams(loadConfig(), {
    events: 3_000,
    users: 300,
    partitions: 4,
    systems: SYSTEMS.map((s) => s.name),
    seed: 11,
    timeoutMs: 120_000,
    output,
  });
  const results = JSON.parse(readFileSync(output, 'utf8')) as {
    results: { system: string; correct: boolean; problems: string[] }[];
  };
  assert.deepEqual(
    results.results.map((r) => r.system),
    SYSTEMS.map((s) => s.name),
  );
  for (const r of results.results) assert.ok(r.correct, `${r.system}: ${r.problems.join('; ')}`);
});
