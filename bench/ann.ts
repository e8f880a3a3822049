/**
 * Retrieval: usearch against hnswlib-node on song embeddings shaped like the two-tower model's (64
 * dimensions, unit vectors, clustered by genre and artist), both against exact search. For each catalog
 * size and HNSW setting: build time, index size, recall@100 against exact, and single-query latency.
 *
 *   bin/encore bench ann --sizes 100000,1000000
 *
 * usearch is not a dependency (hnswlib-node won, see docs/BENCHMARKS.md); to compare again, install it
 * without saving (`npm install --no-save usearch`). Without it, only hnswlib-node and exact are measured.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import hnswlib from 'hnswlib-node';
import { quantile } from '../core/quantile.ts';
import { Random } from '../simulator/random.ts';
import { ExactSongIndex, type HnswParameters } from '../udfs/ann.ts';
import { progressBar } from './streams/harness.ts';

export interface AnnBenchOptions {
  sizes: number[];
  queries: number;
  dimensions: number;
  /** Graphs to build, each searched with every `expansionSearch`. */
  builds: Pick<HnswParameters, 'connectivity' | 'expansionAdd'>[];
  expansionSearch: number[];
  seed: number;
  output: string;
}

const K = 100;
const RECALL_GOAL = 0.95;
const P50_GOAL_MS = 1;
/** Queries run before timing starts (page faults, caches, JIT); not timed, not counted. */
const WARMUP_QUERIES = 50;

/**
 * Embeddings with the structure a trained song tower gives: genres (of Zipf-like popularity) hold artists,
 * artists hold songs, each level a Gaussian around the one above; normalised like the trainer's output.
 */
class ClusteredEmbeddings {
  private readonly random: Random;
  private readonly dimensions: number;
  private readonly artists: Float64Array[];

  constructor(random: Random, dimensions: number, genres = 50, artists = 5_000) {
    this.random = random;
    this.dimensions = dimensions;
    const gaussian = (around: Float64Array | undefined, sd: number) =>
      Float64Array.from({ length: dimensions }, (_, j) => (around?.[j] ?? 0) + random.normal(0, sd));
    const genreCentroids = Array.from({ length: genres }, () => gaussian(undefined, 1));
    const popularity = genreCentroids.map((_, rank) => 1 / (rank + 1));
    this.artists = Array.from({ length: artists }, () =>
      gaussian(genreCentroids[random.weighted(popularity)], 0.7),
    );
  }

  /** `count` unit vectors, row-major. */
  draw(count: number, onProgress?: (drawn: number) => void): Float32Array {
    const { dimensions, random } = this;
    const out = new Float32Array(count * dimensions);
    for (let row = 0; row < count; row++) {
      const artist = random.pick(this.artists);
      const offset = row * dimensions;
      let norm = 0;
      for (let j = 0; j < dimensions; j++) {
        const value = artist[j]! + random.normal(0, 0.5);
        out[offset + j] = value;
        norm += value * value;
      }
      const scale = 1 / Math.sqrt(norm);
      for (let j = 0; j < dimensions; j++) out[offset + j]! *= scale;
      if (row % 10_000 === 0) onProgress?.(row);
    }
    onProgress?.(count);
    return out;
  }
}

/** One library's graph, built: search returns row numbers, best first. */
interface BuiltIndex {
  search(query: Float32Array, k: number): ArrayLike<number | bigint>;
}

interface Library {
  name: string;
  buildThreads: number;
  /** Builds the graph and returns a search for each ef_search, with the serialized index's bytes. */
  build(
    vectors: Float32Array,
    dimensions: number,
    parameters: Pick<HnswParameters, 'connectivity' | 'expansionAdd'>,
    expansionSearch: number[],
    onProgress: (added: number) => void,
  ): { bytes: number; searches: Map<number, BuiltIndex> };
}

function scratchFile(name: string, write: (file: string) => void): number {
  const dir = mkdtempSync(path.join(tmpdir(), 'encore-ann-'));
  try {
    const file = path.join(dir, name);
    write(file);
    return statSync(file).size;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** hnswlib-node adds one point per call, on the calling thread, and takes plain arrays, not typed ones. */
const HNSWLIB: Library = {
  name: 'hnswlib-node',
  buildThreads: 1,
  build(vectors, dimensions, { connectivity, expansionAdd }, expansionSearch, onProgress) {
    const count = vectors.length / dimensions;
    const index = new hnswlib.HierarchicalNSW('ip', dimensions);
    index.initIndex({ maxElements: count, m: connectivity, efConstruction: expansionAdd, randomSeed: 100 });
    for (let row = 0; row < count; row++) {
      index.addPoint(Array.from(vectors.subarray(row * dimensions, (row + 1) * dimensions)), row);
      if (row % 10_000 === 0) onProgress(row);
    }
    onProgress(count);
    const searches = new Map<number, BuiltIndex>(
      expansionSearch.map((ef) => [
        ef,
        {
          search: (query, k) => {
            index.setEf(ef);
            return index.searchKnn(Array.from(query), k).neighbors;
          },
        },
      ]),
    );
    return { bytes: scratchFile('hnswlib.index', (file) => index.writeIndexSync(file)), searches };
  },
};

/** The part of usearch's API used here: it is loaded only when installed. */
interface UsearchModule {
  Index: new (config: {
    dimensions: number;
    metric: 'ip';
    quantization: 'f32';
    connectivity: number;
    expansion_add: number;
    expansion_search: number;
    multi: boolean;
  }) => {
    add(keys: BigUint64Array, vectors: Float32Array, threads: number): void;
    search(query: Float32Array, k: number, threads: number): { keys: BigUint64Array };
    save(file: string): void;
    load(file: string): void;
  };
}

/**
 * usearch builds on every core (threads 0) and fixes ef_search when an index is created: one graph is
 * built, saved, and loaded again under each ef_search.
 */
function usearch(module: UsearchModule): Library {
  return {
    name: 'usearch',
    buildThreads: cpus().length,
    build(vectors, dimensions, { connectivity, expansionAdd }, expansionSearch, onProgress) {
      const create = (ef: number) =>
        new module.Index({
          dimensions,
          metric: 'ip',
          quantization: 'f32',
          connectivity,
          expansion_add: expansionAdd,
          expansion_search: ef,
          multi: false,
        });
      const built = create(expansionSearch[0]!);
      const count = vectors.length / dimensions;
      const chunk = 10_000;
      for (let start = 0; start < count; start += chunk) {
        const end = Math.min(start + chunk, count);
        const keys = BigUint64Array.from({ length: end - start }, (_, i) => BigInt(start + i));
        built.add(keys, vectors.subarray(start * dimensions, end * dimensions), 0);
        onProgress(end);
      }
      const searches = new Map<number, BuiltIndex>();
      const bytes = scratchFile('usearch.index', (file) => {
        built.save(file);
        for (const ef of expansionSearch) {
          const loaded = create(ef);
          loaded.load(file);
          searches.set(ef, { search: (query, k) => loaded.search(query, k, 1).keys });
        }
      });
      return { bytes, searches };
    },
  };
}

async function libraries(): Promise<Library[]> {
  // A computed specifier: usearch is optional, so the type checker must not look for it.
  const name = 'usearch';
  try {
    const module = (await import(name)) as { default: UsearchModule };
    return [usearch(module.default), HNSWLIB];
  } catch {
    console.log('usearch is not installed (npm install --no-save usearch): measuring hnswlib-node only');
    return [HNSWLIB];
  }
}

interface Queries {
  warmup: Float32Array[];
  timed: Float32Array[];
}

interface Timing {
  p50_ms: number;
  p99_ms: number;
}

/** Each query alone, timed with performance.now() after a warm-up, as the job searches: one at a time. */
function timeQueries<T>(
  { warmup, timed }: Queries,
  search: (query: Float32Array) => T,
): { results: T[] } & Timing {
  for (const query of warmup) search(query);
  const millis: number[] = [];
  const results = timed.map((query) => {
    const start = performance.now();
    const result = search(query);
    millis.push(performance.now() - start);
    return result;
  });
  millis.sort((a, b) => a - b);
  const at = (q: number) => round(quantile(millis, q), 4);
  return { results, p50_ms: at(0.5), p99_ms: at(0.99) };
}

const round = (value: number, digits: number) => Number(value.toFixed(digits));

function recall(truth: Set<number>[], found: ArrayLike<number | bigint>[]): number {
  let hits = 0;
  let wanted = 0;
  found.forEach((rows, q) => {
    wanted += truth[q]!.size;
    for (let i = 0; i < rows.length; i++) if (truth[q]!.has(Number(rows[i]))) hits++;
  });
  return round(hits / wanted, 4);
}

interface AnnResult extends Timing {
  system: string;
  songs: number;
  dimensions: number;
  queries: number;
  connectivity: number | null;
  expansion_add: number | null;
  expansion_search: number | null;
  build_s: number | null;
  build_threads: number | null;
  index_mib: number | null;
  recall_at_100: number;
}

const settingOf = (r: AnnResult) => `${r.system} ${r.connectivity} ${r.expansion_add} ${r.expansion_search}`;

/**
 * A library's setting for the job: among those with recall@100 ≥ goal at every size measured, the lowest
 * p50 at the largest; failing that, the best recall there. Returns its row at the largest size.
 */
function best(results: AnnResult[], library: string, largest: number): AnnResult | undefined {
  const rows = results.filter((r) => r.system === library);
  const missing = new Set(rows.filter((r) => r.recall_at_100 < RECALL_GOAL).map(settingOf));
  const atLargest = rows.filter((r) => r.songs === largest);
  const good = atLargest.filter((r) => !missing.has(settingOf(r))).sort((a, b) => a.p50_ms - b.p50_ms);
  return good[0] ?? atLargest.sort((a, b) => b.recall_at_100 - a.recall_at_100)[0];
}

export async function benchAnn(options: AnnBenchOptions) {
  const load = loadavg().map((l) => round(l, 2));
  console.log(`load average before: ${load.join(' ')} on ${cpus().length} cores`);
  const random = new Random(options.seed);
  const model = new ClusteredEmbeddings(random, options.dimensions);
  const library = await libraries();
  const results: AnnResult[] = [];
  const queryRows = model.draw(WARMUP_QUERIES + options.queries);
  const rows = Array.from({ length: WARMUP_QUERIES + options.queries }, (_, q) =>
    queryRows.subarray(q * options.dimensions, (q + 1) * options.dimensions),
  );
  const queries: Queries = { warmup: rows.slice(0, WARMUP_QUERIES), timed: rows.slice(WARMUP_QUERIES) };
  const common = (songs: number) => ({ songs, dimensions: options.dimensions, queries: options.queries });

  for (const songs of options.sizes) {
    console.log(`${songs.toLocaleString('en')} songs × ${options.dimensions} dimensions`);
    const generating = progressBar('  embeddings {bar} {value}/{total}');
    generating.start(songs, 0);
    const vectors = model.draw(songs, (drawn) => generating.update(drawn));
    generating.stop();

    const ids = Array.from({ length: songs }, (_, row) => String(row));
    const exact = new ExactSongIndex({ ids, vectors });
    const exactBar = progressBar('  exact      {bar} {value}/{total} queries');
    exactBar.start(rows.length, 0);
    const exactRun = timeQueries(queries, (query) => {
      const found = exact.search(query, K);
      exactBar.increment();
      return new Set(found.map((match) => Number(match.songId)));
    });
    exactBar.stop();
    const truth = exactRun.results;
    results.push({
      system: 'exact',
      ...common(songs),
      connectivity: null,
      expansion_add: null,
      expansion_search: null,
      build_s: null,
      build_threads: null,
      index_mib: round(vectors.byteLength / 2 ** 20, 1),
      recall_at_100: 1,
      p50_ms: exactRun.p50_ms,
      p99_ms: exactRun.p99_ms,
    });

    for (const lib of library) {
      for (const parameters of options.builds) {
        const label = `${lib.name} M=${parameters.connectivity} efC=${parameters.expansionAdd}`;
        const bar = progressBar(`  ${label.padEnd(30)} {bar} {value}/{total} {duration}s`);
        bar.start(songs, 0);
        const start = performance.now();
        const built = lib.build(vectors, options.dimensions, parameters, options.expansionSearch, (added) =>
          bar.update(added),
        );
        const buildSeconds = round((performance.now() - start) / 1000, 1);
        bar.stop();
        for (const [ef, index] of built.searches) {
          const run = timeQueries(queries, (query) => index.search(query, K));
          const row: AnnResult = {
            system: lib.name,
            ...common(songs),
            connectivity: parameters.connectivity,
            expansion_add: parameters.expansionAdd,
            expansion_search: ef,
            build_s: buildSeconds,
            build_threads: lib.buildThreads,
            index_mib: round(built.bytes / 2 ** 20, 1),
            recall_at_100: recall(truth, run.results),
            p50_ms: run.p50_ms,
            p99_ms: run.p99_ms,
          };
          results.push(row);
          console.log(
            `    ef=${ef}: recall@100 ${row.recall_at_100}, p50 ${row.p50_ms} ms, p99 ${row.p99_ms} ms (build ${buildSeconds} s, ${row.index_mib} MiB)`,
          );
        }
      }
    }
  }

  const largest = Math.max(...options.sizes);
  const choices = library.flatMap((lib) => best(results, lib.name, largest) ?? []);
  const chosen = [...choices].sort(
    (a, b) =>
      Number(b.recall_at_100 >= RECALL_GOAL) - Number(a.recall_at_100 >= RECALL_GOAL) || a.p50_ms - b.p50_ms,
  )[0];
  const file = {
    name: 'ann',
    command: `bin/encore bench ann --sizes ${options.sizes.join(',')} --queries ${options.queries} --dimensions ${options.dimensions} --builds ${options.builds.map((b) => `${b.connectivity}x${b.expansionAdd}`).join(',')} --ef ${options.expansionSearch.join(',')} --seed ${options.seed}`,
    machine: `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB`,
    date: new Date().toISOString().slice(0, 10),
    load_average: { before: load, after: loadavg().map((l) => round(l, 2)) },
    results,
    choice: { per_library: choices, chosen },
    targets: chosen
      ? [
          {
            metric: `ANN recall@100 against exact at ${largest} songs (${chosen.system}, chosen setting)`,
            goal: `>= ${RECALL_GOAL}`,
            value: chosen.recall_at_100,
            met: chosen.recall_at_100 >= RECALL_GOAL,
          },
          {
            metric: `ANN p50_ms at ${largest} songs (${chosen.system}, chosen setting)`,
            goal: `<= ${P50_GOAL_MS}`,
            value: chosen.p50_ms,
            met: chosen.p50_ms <= P50_GOAL_MS,
          },
        ]
      : [],
  };
  writeFileSync(options.output, `${JSON.stringify(file, null, 2)}\n`);
  console.log(`chosen: ${JSON.stringify(chosen)}`);
  for (const t of file.targets) console.log(`${t.met ? 'met' : 'MISSED'}: ${t.metric} ${t.goal}: ${t.value}`);
  console.log(`results in ${options.output}`);
}
