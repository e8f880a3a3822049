import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Random } from '../../simulator/random.ts';
import { buildSongIndex, ExactSongIndex, HnswSongIndex, type SongVectors } from '../../udfs/ann.ts';
import { loadSongEmbeddings } from '../../udfs/song-embeddings.ts';

/** `count` seeded unit vectors, ids "s0", "s1", … */
function unitVectors(count: number, dimensions: number, seed: number): SongVectors {
  const random = new Random(seed);
  const vectors = new Float32Array(count * dimensions);
  for (let row = 0; row < count; row++) {
    const offset = row * dimensions;
    let norm = 0;
    for (let j = 0; j < dimensions; j++) {
      vectors[offset + j] = random.normal();
      norm += vectors[offset + j]! ** 2;
    }
    for (let j = 0; j < dimensions; j++) vectors[offset + j]! /= Math.sqrt(norm);
  }
  return { ids: Array.from({ length: count }, (_, i) => `s${i}`), vectors };
}

const row = (songs: SongVectors, index: number, dimensions: number) =>
  songs.vectors.slice(index * dimensions, (index + 1) * dimensions);

describe('exact search', () => {
  // Four songs in two dimensions; the query points along x.
  const songs = {
    ids: ['x', 'y', 'minus-x', 'diagonal'],
    vectors: Float32Array.of(1, 0, 0, 1, -1, 0, 0.6, 0.8),
  };
  const index = new ExactSongIndex(songs);

  it('ranks by inner product, best first, with the scores', () => {
    const found = index.search(Float32Array.of(1, 0), 3);
    assert.deepEqual(
      found.map((m) => m.songId),
      ['x', 'diagonal', 'y'],
    );
    assert.deepEqual(
      found.map((m) => Math.round(m.score * 1e6) / 1e6),
      [1, 0.6, 0],
    );
  });

  it('inner product, not cosine: a longer query scales the scores', () => {
    assert.equal(index.search(Float32Array.of(2, 0), 1)[0]!.score, 2);
  });

  it('returns the whole catalog when k exceeds it', () => {
    assert.deepEqual(
      index.search(Float32Array.of(1, 0), 10).map((m) => m.songId),
      ['x', 'diagonal', 'y', 'minus-x'],
    );
  });

  it('leaves out excluded songs and still fills k', () => {
    const found = index.search(Float32Array.of(1, 0), 2, (id) => id === 'x');
    assert.deepEqual(
      found.map((m) => m.songId),
      ['diagonal', 'y'],
    );
  });
});

describe('HNSW index (hnswlib-node)', () => {
  const dimensions = 32;
  const songs = unitVectors(5_000, dimensions, 11);
  const exact = new ExactSongIndex(songs);
  const hnsw = new HnswSongIndex(songs);
  const queries = unitVectors(100, dimensions, 12);

  it('finds at least 90 % of the exact top 10', () => {
    let hits = 0;
    for (let q = 0; q < 100; q++) {
      const query = row(queries, q, dimensions);
      const truth = new Set(exact.search(query, 10).map((m) => m.songId));
      hits += hnsw.search(query, 10).filter((m) => truth.has(m.songId)).length;
    }
    assert.ok(hits / 1000 >= 0.9, `recall@10 ${hits / 1000}`);
  });

  it('scores like exact search: inner product, best first', () => {
    const query = row(queries, 0, dimensions);
    const [best] = exact.search(query, 1);
    const found = hnsw.search(query, 5);
    assert.equal(found[0]!.songId, best!.songId);
    assert.ok(Math.abs(found[0]!.score - best!.score) < 1e-5);
    for (let i = 1; i < found.length; i++) assert.ok(found[i - 1]!.score >= found[i]!.score);
  });

  it('leaves out excluded songs and still returns k', () => {
    const query = row(queries, 1, dimensions);
    const top = new Set(hnsw.search(query, 50).map((m) => m.songId));
    const found = hnsw.search(query, 10, (id) => top.has(id));
    assert.equal(found.length, 10);
    for (const match of found) assert.ok(!top.has(match.songId), `${match.songId} was excluded`);
  });

  it('returns fewer than k when the filter leaves fewer songs', () => {
    const found = hnsw.search(row(queries, 2, dimensions), 10, (id) => id !== 's7' && id !== 's8');
    assert.deepEqual(found.map((m) => m.songId).sort(), ['s7', 's8']);
  });
});

describe('buildSongIndex', () => {
  it('searches exactly below the threshold and through HNSW from it on', () => {
    assert.equal(buildSongIndex(unitVectors(99, 8, 1), { exactBelow: 100 }).kind, 'exact');
    assert.equal(buildSongIndex(unitVectors(100, 8, 1), { exactBelow: 100 }).kind, 'hnsw');
  });

  it('refuses a query of another dimension, naming both', () => {
    for (const exactBelow of [1_000, 1]) {
      const index = buildSongIndex(unitVectors(200, 8, 1), { exactBelow });
      assert.throws(() => index.search(new Float32Array(16), 5), {
        name: 'RangeError',
        message: /query has 16 dimensions, the song index 8/,
      });
    }
  });

  it('refuses vectors that do not divide into the songs', () => {
    assert.throws(
      () => buildSongIndex({ ids: ['a', 'b'], vectors: new Float32Array(5) }, { exactBelow: 10 }),
      /5 vector values/,
    );
  });
});

const dir = await mkdtemp(path.join(tmpdir(), 'encore-embeddings-'));
after(() => rm(dir, { recursive: true, force: true }));

describe('song embeddings file', () => {
  it('loads what export.py writes into one contiguous array', async () => {
    const file = path.join(dir, 'song-embeddings.jsonl');
    await writeFile(
      file,
      '{"model_version": "v1", "song_id": "a", "embedding": [0.6, 0.8]}\n' +
        '{"model_version": "v1", "song_id": "b", "embedding": [1.0, 0.0]}\n',
    );
    const loaded = await loadSongEmbeddings(file);
    assert.equal(loaded.modelVersion, 'v1');
    assert.equal(loaded.dimensions, 2);
    assert.deepEqual(loaded.ids, ['a', 'b']);
    assert.deepEqual(loaded.vectors, Float32Array.of(0.6, 0.8, 1, 0));
    assert.equal(new ExactSongIndex(loaded).search(Float32Array.of(0, 1), 1)[0]!.songId, 'a');
  });

  it('names the file and line of a malformed row', async () => {
    const file = path.join(dir, 'bad.jsonl');
    await writeFile(
      file,
      '{"model_version": "v1", "song_id": "a", "embedding": [0.6, 0.8]}\n' +
        '{"model_version": "v1", "song_id": "b", "embedding": [1.0]}\n',
    );
    await assert.rejects(loadSongEmbeddings(file), {
      message: `${file}:2: embedding has 1 dimensions, the file's first one 2`,
    });
  });
});
