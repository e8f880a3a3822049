/**
 * Retrieval: the catalog's song embeddings behind one search interface, top-K by inner product (the
 * two-tower model's score; equal to cosine for the unit vectors the trainer exports). Small catalogs are
 * searched exactly; larger ones through an HNSW graph (hnswlib-node, chosen over usearch by
 * `bin/encore bench ann`, see docs/BENCHMARKS.md). The index is built once per song-embeddings file: at
 * start and on model change, there off the event loop (`buildSongIndexOffThread`).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import hnswlib from 'hnswlib-node';

export interface SongMatch {
  songId: string;
  /** Inner product of the query and the song's embedding: higher is closer. */
  score: number;
}

export interface SongIndex {
  readonly kind: 'exact' | 'hnsw';
  readonly size: number;
  readonly dimensions: number;
  /** The `k` songs with the highest score, best first, leaving out those `exclude` returns true for. */
  search(query: Float32Array, k: number, exclude?: (songId: string) => boolean): SongMatch[];
}

/** Songs and their embeddings, row-major: song `i` is `vectors[i * dimensions, (i + 1) * dimensions)`. */
export interface SongVectors {
  ids: readonly string[];
  vectors: Float32Array;
}

function dimensionsOf({ ids, vectors }: SongVectors): number {
  if (ids.length === 0) throw new RangeError('a song index needs at least one song');
  const dimensions = vectors.length / ids.length;
  if (!Number.isInteger(dimensions))
    throw new RangeError(`${vectors.length} vector values do not divide into ${ids.length} songs`);
  return dimensions;
}

function checkQuery(index: SongIndex, query: Float32Array, k: number) {
  if (query.length !== index.dimensions)
    throw new RangeError(
      `query has ${query.length} dimensions, the song index ${index.dimensions}: the user tower and the song embeddings come from different models`,
    );
  if (!Number.isInteger(k) || k <= 0) throw new RangeError(`k must be a positive integer, got ${k}`);
}

/**
 * Brute force over one contiguous array: every song scored, the best `k` kept in a min-heap. Exact, so it
 * is the ground truth of the ANN index's recall, and fast enough on its own for small catalogs.
 */
export class ExactSongIndex implements SongIndex {
  readonly kind = 'exact';
  readonly size: number;
  readonly dimensions: number;
  private readonly ids: readonly string[];
  private readonly vectors: Float32Array;

  constructor(songs: SongVectors) {
    this.dimensions = dimensionsOf(songs);
    this.size = songs.ids.length;
    this.ids = songs.ids;
    this.vectors = songs.vectors;
  }

  search(query: Float32Array, k: number, exclude?: (songId: string) => boolean): SongMatch[] {
    checkQuery(this, query, k);
    const heap = new TopK(Math.min(k, this.size));
    const { vectors, dimensions } = this;
    for (let song = 0, offset = 0; song < this.size; song++, offset += dimensions) {
      let score = 0;
      for (let j = 0; j < dimensions; j++) score += query[j]! * vectors[offset + j]!;
      // The filter is asked only about songs that would make the list: it may be a costly lookup.
      if (heap.admits(score) && !exclude?.(this.ids[song]!)) heap.push(score, song);
    }
    return heap.sorted().map(({ item, score }) => ({ songId: this.ids[item]!, score }));
  }
}

/** The `capacity` highest-scored items seen: a binary min-heap, its root the lowest score kept. */
class TopK {
  private readonly scores: Float64Array;
  private readonly items: Int32Array;
  private count = 0;

  constructor(capacity: number) {
    this.scores = new Float64Array(capacity);
    this.items = new Int32Array(capacity);
  }

  admits(score: number): boolean {
    return this.count < this.scores.length || score > this.scores[0]!;
  }

  push(score: number, item: number) {
    const { scores, items } = this;
    if (this.count < scores.length) {
      let at = this.count++;
      while (at > 0) {
        const parent = (at - 1) >> 1;
        if (scores[parent]! <= score) break;
        scores[at] = scores[parent]!;
        items[at] = items[parent]!;
        at = parent;
      }
      scores[at] = score;
      items[at] = item;
      return;
    }
    // Full: the new item replaces the root and sinks to its place.
    let at = 0;
    for (;;) {
      const left = 2 * at + 1;
      if (left >= this.count) break;
      const right = left + 1;
      const child = right < this.count && scores[right]! < scores[left]! ? right : left;
      if (scores[child]! >= score) break;
      scores[at] = scores[child]!;
      items[at] = items[child]!;
      at = child;
    }
    scores[at] = score;
    items[at] = item;
  }

  sorted(): { item: number; score: number }[] {
    return Array.from({ length: this.count }, (_, i) => ({
      item: this.items[i]!,
      score: this.scores[i]!,
    })).sort((a, b) => b.score - a.score);
  }
}

/** HNSW graph parameters (Malkov & Yashunin): M, ef_construction, ef_search. */
export interface HnswParameters {
  /** Neighbours per node (M): recall and memory grow with it. */
  connectivity: number;
  /** Candidates considered while inserting (ef_construction): graph quality against build time. */
  expansionAdd: number;
  /** Candidates considered while searching (ef_search, at least k): recall against latency. */
  expansionSearch: number;
}

/**
 * From `bin/encore bench ann` (docs/BENCHMARKS.md): M 16 and ef_construction 128 as the benchmark chose.
 * ef_search 150 rather than its 100: at 100k songs, ef_search 100 gave recall@100 0.957 in one run and
 * 0.949 in another; 150 met 0.95 at both sizes in both runs, for about 0.03 ms more at 1M songs.
 */
export const DEFAULT_HNSW: HnswParameters = { connectivity: 16, expansionAdd: 128, expansionSearch: 150 };

/** Songs added between progress reports while building. */
const PROGRESS_EVERY = 10_000;

/** Seed of the graph's level draws: the same songs build the same graph. */
const GRAPH_SEED = 100;

/**
 * An HNSW graph over the songs on hnswlib-node; labels are row numbers, mapped back to song ids. Building
 * runs on the calling thread (hnswlib-node adds one point per call): about 3 minutes for 1M songs here, so
 * the job builds in a worker thread (`buildSongIndexOffThread`), which saves the graph for `load`.
 */
export class HnswSongIndex implements SongIndex {
  readonly kind = 'hnsw';
  readonly size: number;
  readonly dimensions: number;
  private readonly ids: readonly string[];
  private readonly index: hnswlib.HierarchicalNSW;

  /** Builds the graph over `songs`, unless `graph` is one already built over them (see `load`). */
  constructor(
    songs: SongVectors,
    parameters: HnswParameters = DEFAULT_HNSW,
    onProgress?: (added: number) => void,
    graph?: hnswlib.HierarchicalNSW,
  ) {
    this.dimensions = dimensionsOf(songs);
    this.size = songs.ids.length;
    this.ids = songs.ids;
    this.index = graph ?? buildGraph(songs.vectors, this.dimensions, parameters, onProgress);
    this.index.setEf(parameters.expansionSearch);
  }

  /** A graph `save`d over the same songs, read on libuv's thread pool rather than the event loop. */
  static async load(
    songs: SongVectors,
    file: string,
    parameters: HnswParameters = DEFAULT_HNSW,
  ): Promise<HnswSongIndex> {
    const graph = new hnswlib.HierarchicalNSW('ip', dimensionsOf(songs));
    await graph.readIndex(file);
    if (graph.getCurrentCount() !== songs.ids.length)
      throw new RangeError(
        `${file} holds ${graph.getCurrentCount()} songs, not the ${songs.ids.length} given`,
      );
    return new HnswSongIndex(songs, parameters, undefined, graph);
  }

  /** Writes the graph (not the song ids) for `load`. */
  async save(file: string): Promise<void> {
    await this.index.writeIndex(file);
  }

  search(query: Float32Array, k: number, exclude?: (songId: string) => boolean): SongMatch[] {
    checkQuery(this, query, k);
    // The filter runs inside the graph search, so excluded songs cost no extra round.
    const filter = exclude && ((song: number) => !exclude(this.ids[song]!));
    const { neighbors, distances } = this.index.searchKnn(Array.from(query), Math.min(k, this.size), filter);
    // hnswlib's inner-product distance is 1 - dot.
    return neighbors.map((song, i) => ({ songId: this.ids[song]!, score: 1 - distances[i]! }));
  }
}

function buildGraph(
  vectors: Float32Array,
  dimensions: number,
  parameters: HnswParameters,
  onProgress?: (added: number) => void,
): hnswlib.HierarchicalNSW {
  const size = vectors.length / dimensions;
  const graph = new hnswlib.HierarchicalNSW('ip', dimensions);
  graph.initIndex({
    maxElements: size,
    m: parameters.connectivity,
    efConstruction: parameters.expansionAdd,
    randomSeed: GRAPH_SEED,
  });
  for (let song = 0; song < size; song++) {
    // The binding takes plain arrays, not typed ones.
    graph.addPoint(Array.from(vectors.subarray(song * dimensions, (song + 1) * dimensions)), song);
    if ((song + 1) % PROGRESS_EVERY === 0) onProgress?.(song + 1);
  }
  onProgress?.(size);
  return graph;
}

export interface SongIndexOptions {
  /**
   * Catalogs smaller than this are searched exactly (serving.exactSearchBelow: exact search costs about
   * 88 ns per song and query at 64 dimensions, see docs/BENCHMARKS.md).
   */
  exactBelow: number;
  hnsw?: HnswParameters;
  onProgress?: (added: number) => void;
}

export function buildSongIndex(songs: SongVectors, options: SongIndexOptions): SongIndex {
  return searchedExactly(songs, options)
    ? new ExactSongIndex(songs)
    : new HnswSongIndex(songs, options.hnsw, options.onProgress);
}

function searchedExactly(songs: SongVectors, { exactBelow }: Pick<SongIndexOptions, 'exactBelow'>): boolean {
  return songs.ids.length < exactBelow;
}

/** What udfs/index-worker.ts is given: the embeddings file to read and where to save the graph. */
export interface IndexBuildTask {
  embeddingsFile: string;
  graphFile: string;
  parameters: HnswParameters;
}

/**
 * `buildSongIndex` without blocking the event loop for minutes: an HNSW graph is built in a worker thread,
 * saved to a temporary file and read back here. The worker reads the embeddings from `embeddingsFile` (the
 * song-embeddings.jsonl `songs` were loaded from) itself, so that hundreds of MB of vectors are not copied
 * to it on this thread. Aborting `signal` stops the worker.
 */
export async function buildSongIndexOffThread(
  songs: SongVectors,
  embeddingsFile: string,
  options: Omit<SongIndexOptions, 'onProgress'> & { signal?: AbortSignal },
): Promise<SongIndex> {
  if (searchedExactly(songs, options)) return new ExactSongIndex(songs);
  const parameters = options.hnsw ?? DEFAULT_HNSW;
  const dir = await mkdtemp(path.join(tmpdir(), 'encore-song-index-'));
  try {
    const task: IndexBuildTask = { embeddingsFile, graphFile: path.join(dir, 'graph.bin'), parameters };
    await inWorker(task, options.signal);
    return await HnswSongIndex.load(songs, task.graphFile, parameters);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function inWorker(task: IndexBuildTask, signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted();
  const worker = new Worker(new URL('./index-worker.ts', import.meta.url), { workerData: task });
  let abort: (() => void) | undefined;
  return new Promise<void>((resolve, reject) => {
    abort = () => reject(signal!.reason);
    signal?.addEventListener('abort', abort, { once: true });
    // The worker's one message: the graph is saved.
    worker.once('message', () => resolve());
    worker.once('error', reject);
    // After a message or an error this rejects a settled promise: a no-op.
    worker.once('exit', (code) =>
      reject(new Error(`the song index worker exited (code ${code}) before saving the graph`)),
    );
  }).finally(() => {
    signal?.removeEventListener('abort', abort!);
    // Its work is done or abandoned either way: a thread left running would outlive every model swap.
    void worker.terminate();
  });
}
