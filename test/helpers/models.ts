/**
 * Real tiny models for tests: the trainer's serving fixture (training/tests/serving_fixture.py) trains
 * twice on its fixture dataset (120 songs `song-000000`…`song-000119`, 40 users) and exports both models
 * each time, so the models folder holds two versions of each; with them come held-out scoring points as
 * the dataset stores them, the tensors PyTorch was fed for them and its outputs. About 20 s, once per test
 * process. Needs the trainer's virtualenv: ENCORE_PYTHON names its python (bin/encore test sets it).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { SessionFeatures } from '../../schemas/types.generated.ts';
import type { ModelName } from '../../udfs/onnx.ts';
import { readJsonLines } from './files.ts';

const training = fileURLToPath(new URL('../../training', import.meta.url));

/** A catalog row of the fixture dataset (songs.jsonl, the ClickHouse songs table's shape). */
export interface FixtureSongRow {
  song_id: string;
  title: string;
  artist_id: string;
  artist_name: string;
  album_id: string | null;
  genre: string;
  language: string | null;
  popularity: number;
  explicit: number;
  release_date: string;
  added_at_ms: string;
  duration_ms: string;
  audio_features: number[];
}

/** A scoring point as the dataset stores it (features.jsonl, the session_features table's shape). */
export interface FeatureRow {
  event_id: string;
  user_id: string;
  session_id: string;
  timestamp_ms: string;
  event_type: string;
  song_id: string | null;
  device: string;
  subscription: string;
  feature_spec: string;
  features: number[];
  seq_song_ids: string[];
  seq_skipped: number[];
  seq_dwell_s: number[];
  seq_gap_s: number[];
  high_intent_song_ids?: string[];
  medium_intent_song_ids?: string[];
}

export interface EncodedTensor {
  dtype: 'float32' | 'int64';
  dims: number[];
  data: number[];
}

/** One model version's held-out points with what PyTorch was fed and gave for them. */
export interface ScoredCase {
  /** The version folder's metadata.json. */
  metadata: string;
  rows: FeatureRow[];
  /** `rows` as the stream's SessionFeatures. */
  points: SessionFeatures[];
  /** The model's inputs, by name, as PyTorch got them. */
  inputs: Record<string, EncodedTensor>;
  /** PyTorch's outputs, row-major, and their shape. */
  expected: number[];
  dims: number[];
}

export interface FixtureModels {
  /** The models folder: `<dir>/<name>/<version>/{model.onnx, metadata.json, …}`. */
  dir: string;
  /** The two versions (each the version of both models), oldest first as the registry sorts them. */
  versions: [string, string];
  /** The catalog the models were trained on. */
  songs: FixtureSongRow[];
  /** Per version, per model. */
  cases: Record<string, Record<ModelName, ScoredCase>>;
}

/** A dataset row back into the record the stream computed it from. */
export function sessionFeaturesFromRow(row: FeatureRow): SessionFeatures {
  return {
    eventId: row.event_id,
    userId: row.user_id,
    sessionId: row.session_id,
    timestamp: Number(row.timestamp_ms),
    eventType: row.event_type,
    songId: row.song_id,
    device: row.device,
    subscription: row.subscription,
    featureSpec: row.feature_spec,
    features: row.features,
    seqSongIds: row.seq_song_ids,
    seqSkipped: row.seq_skipped.map((flag) => flag !== 0),
    seqDwellSeconds: row.seq_dwell_s,
    seqGapSeconds: row.seq_gap_s,
    highIntentSongIds: row.high_intent_song_ids ?? [],
    mediumIntentSongIds: row.medium_intent_song_ids ?? [],
  };
}

interface FixtureOutput {
  runs: {
    seed: number;
    version: string;
    cases: (Omit<ScoredCase, 'points'> & { model: string })[];
  }[];
}

async function build(): Promise<FixtureModels> {
  const python = process.env.ENCORE_PYTHON;
  assert.ok(python, 'ENCORE_PYTHON must name the trainer venv’s python (bin/encore test sets it)');
  const out = await mkdtemp(path.join(tmpdir(), 'encore-fixture-models-'));
  process.once('exit', () => rmSync(out, { recursive: true, force: true }));
  try {
    await promisify(execFile)(python, ['-m', 'tests.serving_fixture', out], {
      cwd: training,
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
      maxBuffer: 64 * 2 ** 20,
    });
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    throw new Error(`the serving fixture failed:\n${stderr?.slice(-3000) ?? (error as Error).message}`);
  }
  const output = JSON.parse(await readFile(path.join(out, 'serving.json'), 'utf8')) as FixtureOutput;
  const versions = output.runs.map((run) => run.version).sort();
  assert.equal(versions.length, 2, 'the fixture trains two versions');
  assert.notEqual(versions[0], versions[1], 'the fixture runs gave the same version');
  const cases: FixtureModels['cases'] = {};
  for (const run of output.runs) {
    const byModel: Partial<Record<ModelName, ScoredCase>> = {};
    for (const { model, ...scored } of run.cases) {
      const name = path.basename(path.dirname(path.dirname(model))) as ModelName;
      byModel[name] = { ...scored, points: scored.rows.map(sessionFeaturesFromRow) };
    }
    cases[run.version] = byModel as Record<ModelName, ScoredCase>;
  }
  return {
    dir: path.join(out, 'models'),
    versions: versions as [string, string],
    songs: (await readJsonLines(path.join(out, 'data', 'songs.jsonl'))) as unknown as FixtureSongRow[],
    cases,
  };
}

let fixture: Promise<FixtureModels> | undefined;

/** The fixture's models and points, trained on first use in this process and shared after. */
export function fixtureModels(): Promise<FixtureModels> {
  fixture ??= build();
  return fixture;
}
