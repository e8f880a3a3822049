import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, it } from 'node:test';
import { TABLE_END, TABLE_START, writeResults } from '../../reliability/report.ts';
import type { ScenarioReport } from '../../reliability/suite.ts';

const dir = await mkdtemp(path.join(tmpdir(), 'encore-reliability-report-'));
after(() => rm(dir, { recursive: true, force: true }));

const report = (fault: string, lost: number) =>
  ({
    faults: [{ fault, title: fault, times: 1, recovery: { medianMs: 1000, maxMs: 1000, unrecovered: 0 } }],
    events: 10,
    lost,
    duplicated: 0,
    problems: [],
    passed: lost === 0,
  }) as unknown as ScenarioReport;

it('writes the benchmarks format, and a later command replaces only the faults it ran', async () => {
  const files = { json: path.join(dir, 'reliability.json'), doc: path.join(dir, 'doc.md') };
  await writeFile(files.doc, `# doc\n\n${TABLE_START}\n${TABLE_END}\n`);
  const meta = (command: string, began: string) => ({ command, began, durationMs: 1000, machine: 'm' });
  await writeResults(
    [report('sigkill', 0), report('broker-restart', 0)],
    meta('first', '2026-12-01T00:00:00Z'),
    files,
  );
  await writeResults([report('broker-restart', 2)], meta('second', '2026-12-02T00:00:00Z'), files);
  const written = JSON.parse(await readFile(files.json, 'utf8'));
  assert.equal(written.command, 'first; second');
  assert.equal(written.date, '2026-12-02');
  assert.deepEqual(
    written.targets.map((t: { metric: string; value: number; met: boolean }) => [t.metric, t.value, t.met]),
    [
      ['sigkill: outputs lost + duplicated', 0, true],
      ['broker-restart: outputs lost + duplicated', 2, false],
    ],
  );
  assert.match(await readFile(files.doc, 'utf8'), /\| broker-restart \| 1 \| 10 \| 2 \| 0 \|/);
});
