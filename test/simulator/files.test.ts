import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, it } from 'node:test';
import { writeSimulation } from '../../simulator/files.ts';
import { simulate } from '../../simulator/model.ts';

const dir = await mkdtemp(path.join(tmpdir(), 'encore-simulate-'));
after(() => rm(dir, { recursive: true, force: true }));

it('writes events, songs and profiles as JSON lines in the types’ shape', async () => {
  const simulation = simulate({ seed: 5, users: 30, songs: 300, start: Date.UTC(2026, 8, 1), days: 2 });
  let reported = 0;
  const written = await writeSimulation(simulation, dir, (n) => {
    reported = n;
  });
  const lines = async (name: string) =>
    (await readFile(path.join(dir, name), 'utf8'))
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
  const events = await lines('events.jsonl');
  assert.deepEqual(events, [...simulation.events]);
  assert.equal(written.events, events.length);
  assert.equal(reported, events.length);
  assert.deepEqual(await lines('songs.jsonl'), simulation.songs);
  assert.deepEqual(await lines('profiles.jsonl'), simulation.profiles);
});
