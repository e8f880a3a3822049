/**
 * The TypeScript encoder against the Python one: held-out scoring points of the trainer's fixture, read
 * back from the dataset rows into SessionFeatures, must encode to exactly the tensors PyTorch was fed. And
 * the cases the fixture does not hold: unknown songs, users and categories, short and long sequences, and
 * points of another feature spec.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type ort from 'onnxruntime-node';
import { isEncoreError } from '../../core/errors.ts';
import type { SessionFeatures } from '../../schemas/types.generated.ts';
import {
  encodeFeatures,
  type ModelMetadata,
  parseModelMetadata,
  readModelMetadata,
} from '../../udfs/encode.ts';
import { type FixtureModels, fixtureModels } from '../helpers/models.ts';

let models: FixtureModels;
before(async () => {
  models = await fixtureModels();
});

const values = (tensor: ort.Tensor) => Array.from(tensor.data as Float32Array | BigInt64Array, Number);

describe('encoding against the trainer', () => {
  it('gives exactly the tensors PyTorch was fed, for every model version, with and without the user input', async () => {
    const inputSets = new Set<string>();
    for (const version of models.versions)
      for (const [name, scored] of Object.entries(models.cases[version]!)) {
        const metadata = await readModelMetadata(scored.metadata);
        const feeds = encodeFeatures(metadata, scored.points);
        assert.deepEqual(Object.keys(feeds), Object.keys(scored.inputs), `${name} ${version}: input names`);
        for (const [input, expected] of Object.entries(scored.inputs)) {
          const tensor = feeds[input]!;
          assert.equal(tensor.type, expected.dtype, `${name} ${version} ${input}: dtype`);
          assert.deepEqual(tensor.dims, expected.dims, `${name} ${version} ${input}: dims`);
          // float32 both sides, from the same float64 values: equal, not close.
          assert.deepEqual(values(tensor), expected.data, `${name} ${version} ${input}: values`);
        }
        inputSets.add(Object.keys(feeds).join());
      }
    assert.equal(inputSets.size, 2, 'the fixture has models with and without the user input');
  });

  it('would notice a difference: the points of one row encode differently from another', async () => {
    const scored = models.cases[models.versions[0]]!.disengagement;
    const metadata = await readModelMetadata(scored.metadata);
    const shifted = [...scored.points.slice(1), scored.points[0]!];
    assert.notDeepEqual(values(encodeFeatures(metadata, shifted).seq_song!), scored.inputs.seq_song!.data);
  });
});

/** A point with `plays` songs, the current one last, plus what a test overrides. */
function point(
  metadata: ModelMetadata,
  plays: number,
  overrides: Partial<SessionFeatures> = {},
): SessionFeatures {
  const songs = metadata.featureSpec.vocabularies.songs.ids;
  return {
    eventId: 'e-1',
    userId: metadata.featureSpec.vocabularies.users?.ids[0] ?? 'user-000000',
    sessionId: 'user-000000/0',
    timestamp: 0,
    eventType: 'PLAY',
    songId: songs[plays - 1] ?? null,
    device: 'MOBILE',
    subscription: 'FREE',
    featureSpec: metadata.featureSpec.version,
    features: metadata.featureSpec.numeric.map((_, i) => i + 0.5),
    seqSongIds: Array.from({ length: plays }, (_, i) => songs[i]!),
    seqSkipped: Array.from({ length: plays }, (_, i) => i % 2 === 1),
    seqDwellSeconds: Array.from({ length: plays }, (_, i) => 10 + i),
    seqGapSeconds: Array.from({ length: plays }, (_, i) => (i === 0 ? 0 : 100 + i)),
    highIntentSongIds: [],
    mediumIntentSongIds: [],
    ...overrides,
  };
}

describe('encoding rules', () => {
  let metadata: ModelMetadata;
  let length: number;
  before(async () => {
    // The version with the user input, so that its mapping is covered too.
    const withUser = models.versions
      .map((version) => models.cases[version]!.disengagement)
      .find((scored) => 'user' in scored.inputs)!;
    metadata = await readModelMetadata(withUser.metadata);
    length = metadata.featureSpec.sequence.length;
  });

  it('left-pads a short session: the current play last, padding index 0 and values 0', () => {
    const feeds = encodeFeatures(metadata, [point(metadata, 3)]);
    const { firstIndex } = metadata.featureSpec.vocabularies.songs;
    const pad = length - 3;
    assert.deepEqual(values(feeds.seq_song!), [
      ...Array(pad).fill(0),
      firstIndex,
      firstIndex + 1,
      firstIndex + 2,
    ]);
    assert.deepEqual(values(feeds.seq_skipped!), [...Array(pad).fill(0), 0, 1, 0]);
    assert.deepEqual(values(feeds.seq_dwell!), [...Array(pad).fill(0), 10, 11, 12]);
    assert.deepEqual(values(feeds.seq_gap!), [...Array(pad).fill(0), 0, 101, 102]);
  });

  it('keeps the last `length` plays of a longer session', () => {
    const plays = length + 5;
    const feeds = encodeFeatures(metadata, [point(metadata, plays)]);
    const { firstIndex } = metadata.featureSpec.vocabularies.songs;
    assert.deepEqual(
      values(feeds.seq_song!),
      Array.from({ length }, (_, i) => firstIndex + 5 + i),
    );
    assert.deepEqual(
      values(feeds.seq_dwell!),
      Array.from({ length }, (_, i) => 15 + i),
    );
  });

  it('maps unknown songs and users to the unknown index, unknown categories to 0', () => {
    const known = point(metadata, 2);
    const unknown = point(metadata, 2, {
      userId: 'user-never-seen',
      device: 'TOASTER',
      eventType: 'TELEPORT',
      subscription: 'LIFETIME',
      seqSongIds: ['song-never-seen', known.seqSongIds[1]!],
    });
    const feeds = encodeFeatures(metadata, [known, unknown]);
    const { songs, users } = metadata.featureSpec.vocabularies;
    assert.deepEqual(values(feeds.user!), [users!.firstIndex, users!.unknownIndex]);
    assert.deepEqual(values(feeds.seq_song!).slice(2 * length - 2), [
      songs.unknownIndex,
      songs.firstIndex + 1,
    ]);
    const categorical = values(feeds.categorical!);
    const width = metadata.featureSpec.categorical.length;
    assert.deepEqual(categorical.slice(width), Array(width).fill(0));
    // The known point's categories are their indices in the spec's lists, in the spec's order.
    assert.deepEqual(
      categorical.slice(0, width),
      metadata.featureSpec.categorical.map(({ name, values: list }) =>
        list.indexOf({ device: 'MOBILE', event_type: 'PLAY', subscription: 'FREE' }[name]!),
      ),
    );
    assert.ok(categorical.slice(0, width).every((index) => index > 0));
  });

  it('passes the numeric features raw, in order, one row per point', () => {
    const feeds = encodeFeatures(metadata, [point(metadata, 1), point(metadata, 2)]);
    const width = metadata.featureSpec.numeric.length;
    assert.deepEqual(feeds.numeric!.dims, [2, width]);
    assert.deepEqual(
      values(feeds.numeric!),
      [...Array(2)].flatMap(() => Array.from({ length: width }, (_, i) => i + 0.5)),
    );
  });

  it('feeds only the inputs the metadata lists', () => {
    const withoutUser = { ...metadata, inputs: metadata.inputs.filter((input) => input.name !== 'user') };
    assert.ok(!('user' in encodeFeatures(withoutUser, [point(metadata, 1)])));
  });

  it('refuses a batch with a point of another feature spec, naming both versions', () => {
    const stale = point(metadata, 2, { eventId: 'e-stale', featureSpec: 'session-000000000000' });
    assert.throws(
      () => encodeFeatures(metadata, [point(metadata, 1), stale]),
      (error: unknown) =>
        isEncoreError(error, 'ENCORE_MODEL_INVALID') &&
        error.message.includes(metadata.featureSpec.version) &&
        error.message.includes('session-000000000000') &&
        error.message.includes('e-stale'),
    );
  });

  it('refuses a point whose values do not fit its spec', () => {
    assert.throws(
      () => encodeFeatures(metadata, [point(metadata, 2, { features: [1, 2, 3] })]),
      (error: unknown) =>
        isEncoreError(error, 'ENCORE_MODEL_INVALID') && /3 numeric features/.test(error.message),
    );
    assert.throws(
      () => encodeFeatures(metadata, [point(metadata, 2, { seqDwellSeconds: [1] })]),
      (error: unknown) => isEncoreError(error, 'ENCORE_MODEL_INVALID'),
    );
  });
});

describe('metadata.json', () => {
  let dir: string;
  let raw: Record<string, unknown>;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'encore-metadata-'));
    raw = JSON.parse(await readFile(models.cases[models.versions[0]]!.disengagement.metadata, 'utf8'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const refused = (file: string, field: RegExp) => (error: unknown) =>
    isEncoreError(error, 'ENCORE_MODEL_INVALID') &&
    error.message.startsWith(`${file}: `) &&
    field.test(error.message);

  it("reads the trainer's metadata", async () => {
    const metadata = parseModelMetadata(raw, 'metadata.json');
    assert.equal(metadata.name, 'disengagement');
    assert.equal(metadata.featureSpec.vocabularies.songs.ids.length, 120);
    assert.equal(metadata.inputs[0]!.name, 'numeric');
    assert.ok(metadata.threshold !== undefined);
  });

  it('names the file and the missing field', async () => {
    const file = path.join(dir, 'missing.json');
    const { feature_spec: spec, ...rest } = raw as { feature_spec: Record<string, unknown> };
    const { sequence: _, ...withoutSequence } = spec;
    await writeFile(file, JSON.stringify({ ...rest, feature_spec: withoutSequence }));
    await assert.rejects(readModelMetadata(file), refused(file, /field feature_spec\.sequence: /));
  });

  it('refuses what the job does not compute: another categorical, other sequence fields', () => {
    const spec = raw.feature_spec as Record<string, unknown>;
    const categorical = spec.categorical as { name: string }[];
    assert.throws(
      () =>
        parseModelMetadata(
          {
            ...raw,
            feature_spec: { ...spec, categorical: [...categorical, { name: 'country', values: ['X'] }] },
          },
          'm.json',
        ),
      refused(
        'm.json',
        /field feature_spec\.categorical\.3\.name: the job computes the categoricals device, event_type, subscription only/,
      ),
    );
    assert.throws(
      () =>
        parseModelMetadata(
          {
            ...raw,
            feature_spec: { ...spec, sequence: { length: 32, fields: ['seq_song_ids', 'seq_skipped'] } },
          },
          'm.json',
        ),
      refused('m.json', /field feature_spec\.sequence\.fields: /),
    );
  });

  it('refuses an input whose shape disagrees with the spec, or an input it does not know', () => {
    const inputs = raw.inputs as { name: string; shape: unknown[] }[];
    const widened = inputs.map((input) =>
      input.name === 'numeric' ? { ...input, shape: ['batch', 99] } : input,
    );
    assert.throws(
      () => parseModelMetadata({ ...raw, inputs: widened }, 'm.json'),
      refused('m.json', /field inputs\.0: numeric is float32 \[batch,99\]/),
    );
    const extra = [...inputs, { name: 'mood', dtype: 'float32', shape: ['batch'] }];
    assert.throws(
      () => parseModelMetadata({ ...raw, inputs: extra }, 'm.json'),
      refused('m.json', /unknown input mood/),
    );
  });

  it('names a file that is not JSON', async () => {
    const file = path.join(dir, 'broken.json');
    await writeFile(file, '{"name": ');
    await assert.rejects(readModelMetadata(file), refused(file, /cannot read it/));
  });
});
