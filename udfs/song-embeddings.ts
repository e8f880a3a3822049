/**
 * The catalog's song embeddings as the trainer writes them (training/encore_training/export.py,
 * `write_song_embeddings`): `<models>/user-tower/<version>/song-embeddings.jsonl`, one JSON object per
 * line, `{"model_version": "...", "song_id": "...", "embedding": [float, ...]}` (the song_embeddings
 * ClickHouse table's shape), unit vectors scored by inner product with the user tower's output.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { SongVectors } from './ann.ts';

export const SONG_EMBEDDINGS_FILE = 'song-embeddings.jsonl';

export interface SongEmbeddings extends SongVectors {
  modelVersion: string;
  dimensions: number;
}

interface Row {
  model_version?: unknown;
  song_id?: unknown;
  embedding?: unknown;
}

/** Reads the whole file into one contiguous array; a malformed line fails with its file and line number. */
export async function loadSongEmbeddings(file: string): Promise<SongEmbeddings> {
  const ids: string[] = [];
  let modelVersion: string | undefined;
  let dimensions = 0;
  let vectors = new Float32Array(0);
  let lineNumber = 0;
  const fail = (why: string) => new Error(`${file}:${lineNumber}: ${why}`);

  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    lineNumber++;
    if (line.trim() === '') continue;
    let row: Row;
    try {
      row = JSON.parse(line) as Row;
    } catch (error) {
      throw fail(`not JSON (${(error as Error).message})`);
    }
    const { model_version: version, song_id: songId, embedding } = row;
    if (typeof version !== 'string' || typeof songId !== 'string' || !Array.isArray(embedding))
      throw fail('expected {"model_version": string, "song_id": string, "embedding": [numbers]}');
    if (modelVersion === undefined) {
      modelVersion = version;
      dimensions = embedding.length;
      if (dimensions === 0) throw fail('empty embedding');
    } else if (version !== modelVersion) {
      throw fail(`model_version ${version} in a file of model_version ${modelVersion}`);
    }
    if (embedding.length !== dimensions)
      throw fail(`embedding has ${embedding.length} dimensions, the file's first one ${dimensions}`);
    if (vectors.length < (ids.length + 1) * dimensions) {
      const grown = new Float32Array(Math.max(1024, 2 * ids.length) * dimensions);
      grown.set(vectors);
      vectors = grown;
    }
    const offset = ids.length * dimensions;
    for (let j = 0; j < dimensions; j++) {
      const value = embedding[j];
      if (typeof value !== 'number' || !Number.isFinite(value))
        throw fail(`embedding[${j}] is not a finite number`);
      vectors[offset + j] = value;
    }
    ids.push(songId);
  }
  if (modelVersion === undefined) throw new Error(`${file}: no song embeddings`);
  return { modelVersion, dimensions, ids, vectors: vectors.slice(0, ids.length * dimensions) };
}
