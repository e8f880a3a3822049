/**
 * `encore bench udf`: the inference UDFs as the job calls them, one call at a time on one thread (no
 * stack). The disengagement model's `score` at each batch size (encoding included; encoding alone too), and
 * the user tower's `embed` with the top-K search of its song index (exact and HNSW each alone, then the
 * kind serving.exactSearchBelow picks after `embed`), for the models in serving.modelsDir
 * (`bin/encore train`), else the trainer fixture's tiny models (which need ENCORE_PYTHON). Scoring points
 * are drawn from each model's metadata (its vocabularies and categories, random values, sessions of 1 to
 * the sequence length plays): the cost does not depend on the values.
 *
 *   bin/encore bench udf --batches 1,16,64,256
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import path from 'node:path';
import type { Config } from '../core/config.ts';
import { quantile } from '../core/quantile.ts';
import type { SessionFeatures } from '../schemas/types.generated.ts';
import { Random } from '../simulator/random.ts';
import { ExactSongIndex, HnswSongIndex } from '../udfs/ann.ts';
import { encodeFeatures, type ModelMetadata, readModelMetadata } from '../udfs/encode.ts';
import { ModelRegistry, type ServingModels } from '../udfs/models.ts';
import { METADATA_FILE } from '../udfs/onnx.ts';

export interface UdfBenchOptions {
  /** Models folder; default serving.modelsDir, and the fixture's models when that has none. */
  models?: string;
  batches: number[];
  /** Timed calls per setting. */
  calls: number;
  /** Songs retrieved per user-tower query. */
  k: number;
  seed: number;
  output: string;
}

const P99_GOAL_MS = 1;
const round = (value: number, digits: number) => Number(value.toFixed(digits));

/** Scoring points a model reads, drawn from its metadata. */
function pointsFor(metadata: ModelMetadata, count: number, random: Random): SessionFeatures[] {
  const { version, numeric, categorical, sequence, vocabularies } = metadata.featureSpec;
  const users = vocabularies.users?.ids ?? ['user-000000'];
  const category = (name: string) =>
    random.pick(categorical.find((c) => c.name === name)?.values ?? ['UNKNOWN']);
  return Array.from({ length: count }, (_, i) => {
    const plays = random.int(1, sequence.length);
    const songs = Array.from({ length: plays }, () => random.pick(vocabularies.songs.ids));
    return {
      eventId: `bench-${i}`,
      userId: random.pick(users),
      sessionId: `bench/${i}`,
      timestamp: Date.now(),
      eventType: category('event_type'),
      songId: songs.at(-1)!,
      device: category('device'),
      subscription: category('subscription'),
      featureSpec: version,
      features: numeric.map(() => random.between(0, 3)),
      seqSongIds: songs,
      seqSkipped: songs.map(() => random.chance(0.3)),
      seqDwellSeconds: songs.map(() => random.between(5, 240)),
      seqGapSeconds: songs.map((_, j) => (j === 0 ? 0 : random.between(5, 240))),
      highIntentSongIds: [],
      mediumIntentSongIds: [],
    };
  });
}

interface Timing {
  calls: number;
  p50_ms: number;
  p99_ms: number;
}

/** Times `calls` sequential calls after a warm-up (JIT, onnxruntime's first runs, caches). */
async function timeCalls(calls: number, call: (i: number) => unknown): Promise<Timing> {
  for (let i = 0; i < Math.max(50, calls / 10); i++) await call(i);
  const millis: number[] = [];
  for (let i = 0; i < calls; i++) {
    const start = performance.now();
    await call(i);
    millis.push(performance.now() - start);
  }
  millis.sort((a, b) => a - b);
  const at = (q: number) => round(quantile(millis, q), 4);
  return { calls, p50_ms: at(0.5), p99_ms: at(0.99) };
}

interface UdfResult extends Timing {
  system: string;
  step: string;
  batch: number;
  per_point_p50_ms: number;
  per_point_p99_ms: number;
  points_per_s: number;
}

function row(system: string, step: string, batch: number, timing: Timing): UdfResult {
  return {
    system,
    step,
    batch,
    ...timing,
    per_point_p50_ms: round(timing.p50_ms / batch, 5),
    per_point_p99_ms: round(timing.p99_ms / batch, 5),
    points_per_s: Math.round((1000 * batch) / timing.p50_ms),
  };
}

/** The models to measure: serving.modelsDir's, else the trainer fixture's (when no folder was named). */
async function servedModels(
  config: Config,
  folder: string | undefined,
): Promise<{ registry: ModelRegistry; dir: string; source: string }> {
  const open = async (dir: string) => {
    const registry = new ModelRegistry({ serving: { ...config.serving, modelsDir: dir, modelPollMs: 0 } });
    await registry.start();
    const { disengagement, userTower } = registry.current();
    if (disengagement && userTower) return registry;
    await registry.close();
    return undefined;
  };
  const dir = folder ?? config.serving.modelsDir;
  const trained = await open(dir);
  if (trained) return { registry: trained, dir, source: 'trained (bin/encore train)' };
  if (folder) throw new Error(`${folder} holds no loadable disengagement and user-tower models`);
  console.log(`no trained models in ${dir}: training the fixture's tiny ones (ENCORE_PYTHON)`);
  // A test helper: the fixture exists for the tests, and the benchmark only falls back on it.
  const { fixtureModels } = await import('../test/helpers/models.ts');
  const fixture = await fixtureModels();
  const registry = await open(fixture.dir);
  if (!registry) throw new Error(`the fixture's models in ${fixture.dir} did not load`);
  return { registry, dir: fixture.dir, source: 'trainer fixture (training/tests/serving_fixture.py)' };
}

export async function benchUdf(config: Config, options: UdfBenchOptions) {
  const load = loadavg().map((l) => round(l, 2));
  console.log(`load average before: ${load.join(' ')} on ${cpus().length} cores`);
  const { registry, dir, source } = await servedModels(config, options.models);
  const { disengagement, userTower } = registry.current() as Required<ServingModels>;
  const metadataOf = (name: string, version: string) =>
    readModelMetadata(path.join(dir, name, version, METADATA_FILE));
  const disengagementMetadata = await metadataOf('disengagement', disengagement.version);
  const towerMetadata = await metadataOf('user-tower', userTower.version);
  const random = new Random(options.seed);
  const results: UdfResult[] = [];
  const report = (result: UdfResult) => {
    results.push(result);
    console.log(
      `  ${`${result.system} ${result.step}`.padEnd(28)} batch ${String(result.batch).padStart(4)}: p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms per call; ${result.per_point_p50_ms} ms per point (p50)`,
    );
  };

  try {
    console.log(`models: ${source}, ${dir}; serving.threads ${config.serving.threads}`);
    for (const batch of options.batches) {
      // A pool of batches cycled through, so that one batch's values are not all that is measured.
      const pool = Array.from({ length: 16 }, () => pointsFor(disengagementMetadata, batch, random));
      report(
        row(
          'disengagement',
          'score',
          batch,
          await timeCalls(options.calls, (i) => disengagement.score(pool[i % 16]!)),
        ),
      );
      report(
        row(
          'disengagement',
          'encode only',
          batch,
          await timeCalls(options.calls, (i) => encodeFeatures(disengagementMetadata, pool[i % 16]!)),
        ),
      );
    }
    const queries = Array.from({ length: 16 }, () => pointsFor(towerMetadata, 1, random));
    report(
      row('user-tower', 'embed', 1, await timeCalls(options.calls, (i) => userTower.embed(queries[i % 16]!))),
    );
    const vectors = await userTower.embed(queries.flat());
    // Both kinds of index over the model's songs, whichever serving.exactSearchBelow picks for the job.
    const ids = towerMetadata.featureSpec.vocabularies.songs.ids;
    const songs = { ids, vectors: new Float32Array(ids.length * userTower.dimensions) };
    ids.forEach((id, i) => {
      songs.vectors.set(userTower.songVector(id)!, i * userTower.dimensions);
    });
    for (const index of [new ExactSongIndex(songs), new HnswSongIndex(songs)]) {
      const timing = await timeCalls(options.calls, (i) => index.search(vectors[i % 16]!, options.k));
      report(row('user-tower', `top-${options.k} (${index.kind}, ${index.size} songs)`, 1, timing));
    }
    const search = `top-${options.k} (${userTower.songs.kind}: serving.exactSearchBelow ${config.serving.exactSearchBelow})`;
    report(
      row(
        'user-tower',
        `embed + ${search}`,
        1,
        await timeCalls(options.calls, async (i) => {
          const [vector] = await userTower.embed(queries[i % 16]!);
          return userTower.songs.search(vector!, options.k);
        }),
      ),
    );
  } finally {
    await registry.close();
  }

  const single = results.find((r) => r.system === 'disengagement' && r.step === 'score' && r.batch === 1);
  const file = {
    name: 'udf',
    command: `bin/encore bench udf${options.models ? ` --models ${options.models}` : ''} --batches ${options.batches.join(',')} --calls ${options.calls} --k ${options.k} --seed ${options.seed}`,
    machine: `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB`,
    date: new Date().toISOString().slice(0, 10),
    load_average: { before: load, after: loadavg().map((l) => round(l, 2)) },
    models: {
      source,
      dir,
      disengagement: disengagement.version,
      user_tower: userTower.version,
      intra_op_threads: config.serving.threads,
    },
    results,
    targets: single
      ? [
          {
            metric: 'disengagement UDF p99_ms per call at batch 1 (encoding and inference)',
            goal: `<= ${P99_GOAL_MS}`,
            value: single.p99_ms,
            met: single.p99_ms <= P99_GOAL_MS,
          },
        ]
      : [],
  };
  writeFileSync(options.output, `${JSON.stringify(file, null, 2)}\n`);
  for (const t of file.targets) console.log(`${t.met ? 'met' : 'MISSED'}: ${t.metric} ${t.goal}: ${t.value}`);
  console.log(`results in ${options.output}`);
}
