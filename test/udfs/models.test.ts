/**
 * The model registry and the inference UDFs on real models (the trainer's fixture, two versions of each):
 * the newest version serves and agrees with PyTorch; a version dropped into the folder replaces it while
 * scoring goes on; announcements pin, unpin and add a challenger; versions that cannot be loaded change
 * nothing; no model at all is an empty snapshot.
 */
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../core/config.ts';
import { isEncoreError } from '../../core/errors.ts';
import { registry as metrics } from '../../core/metrics.ts';
import type { ModelAnnouncement } from '../../schemas/types.generated.ts';
import { ModelRegistry, type ModelRegistryOptions, type ModelSwap } from '../../udfs/models.ts';
import type { ModelName } from '../../udfs/onnx.ts';
import { type FixtureModels, fixtureModels } from '../helpers/models.ts';

const TOLERANCE = 1e-4;
const MODELS: ModelName[] = ['disengagement', 'user-tower'];

let models: FixtureModels;
let older: string;
let newer: string;
const scratch: string[] = [];
before(async () => {
  models = await fixtureModels();
  [older, newer] = models.versions;
});
after(() => Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true }))));

/** A models folder of its own holding `versions` of both models. */
async function modelsDir(...versions: string[]): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'encore-models-'));
  scratch.push(dir);
  for (const version of versions) await copyVersion(dir, version);
  return dir;
}

function copyVersion(dir: string, version: string, names = MODELS) {
  return Promise.all(
    names.map((name) =>
      cp(path.join(models.dir, name, version), path.join(dir, name, version), { recursive: true }),
    ),
  );
}

function newRegistry(
  dir: string,
  serving: Partial<ReturnType<typeof loadConfig>['serving']> = {},
  options: ModelRegistryOptions = {},
) {
  const defaults = loadConfig({ env: {} }).serving;
  const registry = new ModelRegistry(
    { serving: { ...defaults, modelsDir: dir, modelPollMs: 0, ...serving } },
    options,
  );
  after(() => registry.close());
  return registry;
}

const maxDifference = (actual: ArrayLike<number>, expected: readonly number[]) =>
  Math.max(...Array.from(actual, (x, i) => Math.abs(x - expected[i]!)));

const announcement = (
  model: string,
  version: string | null,
  role: ModelAnnouncement['role'] = 'CHAMPION',
): ModelAnnouncement => ({ model, version, role, announcedAt: Date.now() });

describe('serving the newest version', () => {
  it('loads the newest version of each model, without a challenger', async () => {
    const registry = newRegistry(models.dir);
    await registry.start();
    const served = registry.current();
    assert.equal(served.disengagement?.version, newer);
    assert.equal(served.userTower?.version, newer);
    assert.equal(served.disengagementChallenger, undefined);
    const info = await metrics.getSingleMetricAsString('encore_model_info');
    assert.match(
      info,
      new RegExp(`encore_model_info\\{model="disengagement",role="champion",version="${newer}"\\} 1`),
    );
    assert.match(
      info,
      new RegExp(`encore_model_info\\{model="user-tower",role="champion",version="${newer}"\\} 1`),
    );
  });

  it('scores and embeds like PyTorch, in micro-batches, for both versions', async () => {
    for (const version of models.versions) {
      // maxBatch 7: the 40 points go through in six calls of the session.
      const registry = newRegistry(await modelsDir(version), { maxBatch: 7 });
      await registry.start();
      const { disengagement, userTower } = registry.current();
      const scored = models.cases[version]!;

      const scores = await disengagement!.score(scored.disengagement.points);
      assert.equal(scores.length, scored.disengagement.points.length);
      const difference = maxDifference(scores, scored.disengagement.expected);
      assert.ok(difference <= TOLERANCE, `${version} disengagement: max difference ${difference}`);
      assert.ok(disengagement!.threshold > 0 && disengagement!.threshold < 1);

      const vectors = await userTower!.embed(scored['user-tower'].points);
      assert.deepEqual([vectors.length, userTower!.dimensions], scored['user-tower'].dims);
      const flat = vectors.flatMap((v) => Array.from(v));
      const towerDifference = maxDifference(flat, scored['user-tower'].expected);
      assert.ok(towerDifference <= TOLERANCE, `${version} user tower: max difference ${towerDifference}`);
      for (const v of vectors) assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-4, 'unit vectors');
    }
  });

  it('runs calls made together (one per task) as one model call, each getting its own rows', async () => {
    const registry = newRegistry(await modelsDir(newer));
    await registry.start();
    const { disengagement } = registry.current();
    const { points, expected } = models.cases[newer]!.disengagement;
    const modelCalls = async () => {
      const { values } = await metrics.getSingleMetric('encore_inference_duration_seconds')!.get();
      return (values as { metricName?: string; labels: Record<string, unknown>; value: number }[])
        .filter((v) => v.metricName?.endsWith('_count'))
        .filter((v) => v.labels.model === 'disengagement' && v.labels.version === newer)
        .reduce((sum, v) => sum + v.value, 0);
    };
    const before = await modelCalls();
    const bounds = [0, 9, 10, 25, points.length];
    const calls = bounds.slice(1).map((end, i) => disengagement!.score(points.slice(bounds[i], end)));
    // A call the model cannot read fails alone, not the batch it would have joined.
    await assert.rejects(
      disengagement!.score([{ ...points[0]!, featureSpec: 'session-elsewhere' }]),
      (error: unknown) => isEncoreError(error, 'ENCORE_MODEL_INVALID'),
    );
    const parts = await Promise.all(calls);
    assert.equal((await modelCalls()) - before, 1, 'one model call for the four calls');
    assert.deepEqual(
      parts.map((p) => p.length),
      [9, 1, 15, points.length - 25],
    );
    const difference = maxDifference(Float32Array.from(parts.flatMap((p) => Array.from(p))), expected);
    assert.ok(difference <= TOLERANCE, `max difference ${difference}`);
  });

  it('searches its version’s song embeddings and looks songs up', async () => {
    const registry = newRegistry(models.dir);
    await registry.start();
    const tower = registry.current().userTower!;
    const [query] = await tower.embed(models.cases[newer]!['user-tower'].points.slice(0, 1));
    const found = tower.songs.search(query!, 10);
    assert.equal(tower.songs.kind, 'exact');
    assert.equal(tower.songs.size, models.songs.length);
    assert.equal(found.length, 10);
    const best = tower.songVector(found[0]!.songId)!;
    assert.equal(best.length, tower.dimensions);
    const dot = best.reduce((sum, x, j) => sum + x * query![j]!, 0);
    assert.ok(Math.abs(dot - found[0]!.score) < 1e-5, 'the score is the inner product with the song vector');
    assert.equal(tower.songVector('song-not-in-catalog'), undefined);
  });

  it('builds an HNSW index off the main thread from serving.exactSearchBelow on', async () => {
    const exact = newRegistry(models.dir);
    const hnsw = newRegistry(models.dir, { exactSearchBelow: 1 });
    await Promise.all([exact.start(), hnsw.start()]);
    const a = exact.current().userTower!;
    const b = hnsw.current().userTower!;
    assert.equal(b.songs.kind, 'hnsw');
    const queries = await a.embed(models.cases[newer]!['user-tower'].points);
    for (const query of queries)
      assert.deepEqual(
        b.songs.search(query, 10).map((m) => m.songId),
        a.songs.search(query, 10).map((m) => m.songId),
      );
  });

  it('serves an empty snapshot when no model was trained yet', async () => {
    const empty = newRegistry(await modelsDir());
    await empty.start();
    assert.deepEqual(empty.current(), {});
    const nowhere = newRegistry(path.join(tmpdir(), 'encore-no-such-models-dir'));
    await nowhere.start();
    assert.deepEqual(nowhere.current(), {});
  });

  it('refuses points of another feature spec with MODEL_INVALID, naming both versions', async () => {
    const registry = newRegistry(models.dir);
    await registry.start();
    const model = registry.current().disengagement!;
    const [first] = models.cases[newer]!.disengagement.points;
    await assert.rejects(
      model.score([{ ...first!, featureSpec: 'session-elsewhere' }]),
      (error: unknown) =>
        isEncoreError(error, 'ENCORE_MODEL_INVALID') &&
        error.message.includes('session-elsewhere') &&
        error.message.includes(model.featureSpec),
    );
  });
});

describe('hot swap', () => {
  it('serves a version dropped into the folder while scoring goes on, and releases the old one after the grace delay', async () => {
    const dir = await modelsDir(older);
    const registry = newRegistry(dir, { modelPollMs: 50 }, { releaseGraceMs: 200 });
    const swaps: ModelSwap[] = [];
    registry.onSwap((swap) => swaps.push(swap));
    await registry.start();
    const first = registry.current();
    assert.equal(first.disengagement?.version, older);

    const points = models.cases[newer]!.disengagement.points;
    const seen: string[] = [];
    let failures = 0;
    let scoring = true;
    const loop = (async () => {
      while (scoring) {
        const { disengagement, userTower } = registry.current();
        try {
          await Promise.all([disengagement!.score(points), userTower!.embed(points)]);
          seen.push(`${disengagement!.version} ${userTower!.version}`);
        } catch (error) {
          failures++;
          console.error(error);
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();

    // Copied file by file, as an operator would: the registry may see the folder half written.
    await copyVersion(dir, newer);
    const deadline = Date.now() + 30_000;
    while (swaps.filter((s) => s.toVersion === newer).length < 2 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    const afterSwap = seen.length;
    while (seen.length < afterSwap + 20) await new Promise((resolve) => setTimeout(resolve, 5));
    scoring = false;
    await loop;

    assert.equal(failures, 0, 'no scoring call failed');
    assert.deepEqual(
      swaps.map((s) => [s.model, s.role, s.fromVersion, s.toVersion]).sort(),
      [
        ['disengagement', 'champion', null, older],
        ['disengagement', 'champion', older, newer],
        ['user-tower', 'champion', null, older],
        ['user-tower', 'champion', older, newer],
      ].sort(),
    );
    assert.equal(seen[0], `${older} ${older}`);
    assert.equal(seen.at(-1), `${newer} ${newer}`);
    const scores = await registry.current().disengagement!.score(points);
    assert.ok(maxDifference(scores, models.cases[newer]!.disengagement.expected) <= TOLERANCE);

    // The replaced models are released once the grace delay is over: calls on them fail, not crash.
    await new Promise((resolve) => setTimeout(resolve, 400));
    await assert.rejects(
      first.disengagement!.score(points),
      (error: unknown) => isEncoreError(error, 'ENCORE_INFERENCE_FAILED') && error.message.includes(older),
    );
    await assert.rejects(first.userTower!.embed(points), (error: unknown) =>
      isEncoreError(error, 'ENCORE_INFERENCE_FAILED'),
    );
  });

  it('releases every model on close', async () => {
    const registry = newRegistry(models.dir);
    await registry.start();
    const { disengagement } = registry.current();
    await registry.close();
    assert.deepEqual(registry.current(), {});
    await assert.rejects(disengagement!.score(models.cases[newer]!.disengagement.points), (error: unknown) =>
      isEncoreError(error, 'ENCORE_INFERENCE_FAILED'),
    );
  });
});

describe('announcements', () => {
  it('pins a champion version, which the folder no longer overrides, and unpins back to the newest', async () => {
    const registry = newRegistry(models.dir);
    const swaps: ModelSwap[] = [];
    await registry.start();
    registry.onSwap((swap) => swaps.push(swap));

    assert.equal(await registry.announce(announcement('disengagement', older)), true);
    assert.equal(registry.current().disengagement?.version, older);
    await registry.refresh();
    assert.equal(
      registry.current().disengagement?.version,
      older,
      'pinned: the newer folder does not override it',
    );
    assert.equal(registry.current().userTower?.version, newer, 'the other model keeps following the newest');

    assert.equal(await registry.announce(announcement('disengagement', null)), true);
    assert.equal(registry.current().disengagement?.version, newer);
    assert.deepEqual(
      swaps.map((s) => [s.model, s.role, s.fromVersion, s.toVersion]),
      [
        ['disengagement', 'champion', newer, older],
        ['disengagement', 'champion', older, newer],
      ],
    );
  });

  it('loads a disengagement challenger next to the champion and withdraws it', async () => {
    const registry = newRegistry(models.dir);
    await registry.start();
    assert.equal(await registry.announce(announcement('disengagement', older, 'CHALLENGER')), true);
    const served = registry.current();
    assert.equal(served.disengagement?.version, newer);
    assert.equal(served.disengagementChallenger?.version, older);
    const scored = models.cases[older]!.disengagement;
    const scores = await served.disengagementChallenger!.score(scored.points);
    assert.ok(maxDifference(scores, scored.expected) <= TOLERANCE);
    assert.match(
      await metrics.getSingleMetricAsString('encore_model_info'),
      new RegExp(`encore_model_info\\{model="disengagement",role="challenger",version="${older}"\\} 1`),
    );

    assert.equal(await registry.announce(announcement('disengagement', null, 'CHALLENGER')), true);
    assert.equal(registry.current().disengagementChallenger, undefined);
    assert.equal(registry.current().disengagement?.version, newer);
    assert.equal(served.disengagementChallenger?.version, older, 'a snapshot taken before is never changed');
  });

  it('ignores a user-tower challenger, unknown models and versions that are no folder names', async () => {
    const registry = newRegistry(models.dir);
    await registry.start();
    const before = registry.current();
    assert.equal(await registry.announce(announcement('user-tower', older, 'CHALLENGER')), false);
    assert.equal(await registry.announce(announcement('mood', older)), false);
    assert.equal(await registry.announce(announcement('disengagement', `../disengagement/${older}`)), false);
    assert.equal(registry.current(), before);
  });
});

describe('versions that cannot be served', () => {
  /** A disengagement folder `version` with the newer model and its metadata changed by `edit`. */
  async function brokenVersion(
    dir: string,
    version: string,
    edit: (metadata: Record<string, unknown>) => void,
  ) {
    const source = path.join(models.dir, 'disengagement', newer);
    const target = path.join(dir, 'disengagement', version);
    await mkdir(target, { recursive: true });
    await cp(path.join(source, 'model.onnx'), path.join(target, 'model.onnx'));
    const metadata = JSON.parse(await readFile(path.join(source, 'metadata.json'), 'utf8'));
    metadata.version = version;
    edit(metadata);
    await writeFile(path.join(target, 'metadata.json'), JSON.stringify(metadata));
  }

  it('keeps the current model when a newer folder has bad metadata, or lacks files', async () => {
    const dir = await modelsDir(older);
    const registry = newRegistry(dir);
    await registry.start();
    await brokenVersion(dir, 'zzzz-broken', (metadata) => delete metadata.threshold);
    await mkdir(path.join(dir, 'disengagement', 'zzzz-incomplete'));
    await writeFile(path.join(dir, 'disengagement', 'zzzz-incomplete', 'model.onnx'), '');
    await registry.refresh();
    assert.equal(registry.current().disengagement?.version, older);
    assert.equal(await registry.announce(announcement('disengagement', 'zzzz-broken')), false);
    assert.equal(await registry.announce(announcement('disengagement', 'no-such-version')), false);
    assert.equal(await registry.announce(announcement('disengagement', older, 'CHALLENGER')), true);
    assert.equal(await registry.announce(announcement('disengagement', 'zzzz-broken', 'CHALLENGER')), false);
    const served = registry.current();
    assert.equal(served.disengagement?.version, older);
    assert.equal(
      served.disengagementChallenger?.version,
      older,
      'a refused challenger leaves the current one',
    );
  });

  it('serves the newest loadable version at start when the newest cannot be loaded', async () => {
    const dir = await modelsDir(older);
    await brokenVersion(dir, 'zzzz-wrong-inputs', (metadata) => {
      (metadata.inputs as { name: string }[]).reverse();
    });
    const registry = newRegistry(dir);
    await registry.start();
    assert.equal(registry.current().disengagement?.version, older);
  });
});
