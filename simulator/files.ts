/**
 * A simulation as files: `events.jsonl`, `songs.jsonl`, `profiles.jsonl`, one JSON object per line in the
 * TypeScript types' shape (camelCase, enums as strings). The dataset builder and the importers' outputs
 * share this layout.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Simulation } from './model.ts';

export const SIMULATION_FILES = { events: 'events.jsonl', songs: 'songs.jsonl', profiles: 'profiles.jsonl' };

/** Lines are written in chunks of this many: one write per line would dominate the run time. */
const CHUNK_LINES = 5_000;

async function writeJsonLines(
  file: string,
  rows: Iterable<unknown>,
  onRows?: (written: number) => void,
): Promise<number> {
  const out = createWriteStream(file);
  const failed = new Promise<never>((_, reject) => out.once('error', reject));
  let count = 0;
  let chunk: string[] = [];
  const flush = async () => {
    if (!out.write(`${chunk.join('\n')}\n`)) await Promise.race([once(out, 'drain'), failed]);
    onRows?.(count);
    chunk = [];
  };
  for (const row of rows) {
    chunk.push(JSON.stringify(row));
    count++;
    if (chunk.length === CHUNK_LINES) await flush();
  }
  if (chunk.length > 0) await flush();
  out.end();
  await Promise.race([once(out, 'finish'), failed]);
  return count;
}

export interface WrittenSimulation {
  events: number;
  songs: number;
  profiles: number;
}

/** Writes the three files into `dir` (created if needed); `onEvents` reports the events written so far. */
export async function writeSimulation(
  simulation: Simulation,
  dir: string,
  onEvents?: (written: number) => void,
): Promise<WrittenSimulation> {
  await mkdir(dir, { recursive: true });
  return {
    songs: await writeJsonLines(path.join(dir, SIMULATION_FILES.songs), simulation.songs),
    profiles: await writeJsonLines(path.join(dir, SIMULATION_FILES.profiles), simulation.profiles),
    events: await writeJsonLines(path.join(dir, SIMULATION_FILES.events), simulation.events, onEvents),
  };
}
