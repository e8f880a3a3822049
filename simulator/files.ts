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

/** A JSON-lines file written as rows come, in chunks, waiting for the disk when it falls behind. */
export class JsonLinesWriter {
  private readonly out: ReturnType<typeof createWriteStream>;
  private readonly failed: Promise<never>;
  private chunk: string[] = [];
  count = 0;

  constructor(file: string) {
    this.out = createWriteStream(file);
    this.failed = new Promise<never>((_, reject) => this.out.once('error', reject));
    this.failed.catch(() => undefined); // surfaced by the next write or close
  }

  async write(rows: Iterable<unknown>): Promise<void> {
    for (const row of rows) {
      this.chunk.push(JSON.stringify(row));
      this.count++;
      if (this.chunk.length === CHUNK_LINES) await this.flush();
    }
  }

  async close(): Promise<number> {
    if (this.chunk.length > 0) await this.flush();
    this.out.end();
    await Promise.race([once(this.out, 'finish'), this.failed]);
    return this.count;
  }

  private async flush() {
    const text = `${this.chunk.join('\n')}\n`;
    this.chunk = [];
    if (!this.out.write(text)) await Promise.race([once(this.out, 'drain'), this.failed]);
  }
}

export async function writeJsonLines(
  file: string,
  rows: Iterable<unknown>,
  onRows?: (written: number) => void,
): Promise<number> {
  const writer = new JsonLinesWriter(file);
  let batch: unknown[] = [];
  for (const row of rows) {
    batch.push(row);
    if (batch.length === CHUNK_LINES) {
      await writer.write(batch);
      onRows?.(writer.count);
      batch = [];
    }
  }
  await writer.write(batch);
  onRows?.(writer.count);
  return writer.close();
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
