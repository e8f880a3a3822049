/**
 * The trainer on the real ClickHouse (18.16, the local stack): the tables the connector fills (here from
 * the dataset builder's rows) are read over HTTP with FINAL, both models train and export, and the catalog's
 * song embeddings land in the song_embeddings table. Needs the trainer's virtualenv (ENCORE_PYTHON, set by
 * bin/encore for `encore test`).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildDataset } from '../../cli/dataset.ts';
import { ClickHouse } from '../../clients/clickhouse.ts';
import { endpoints } from '../../core/config.ts';
import { simulate } from '../../simulator/model.ts';
import { migrate } from '../../sinks/migrate.ts';
import { isolatedConfig } from '../helpers/env.ts';
import { readJsonLines } from '../helpers/files.ts';

const config = isolatedConfig('trainer');
const db = new ClickHouse(config);
const training = fileURLToPath(new URL('../../training', import.meta.url));
const SONGS = 300;

describe('the trainer reads ClickHouse', () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'encore-trainer-'));
    await migrate(config);
    const data = path.join(dir, 'data');
    const simulation = simulate({ seed: 5, users: 40, songs: SONGS, start: Date.UTC(2026, 8, 1), days: 6 });
    await buildDataset(config, simulation, data);
    for (const table of ['session_features', 'disengagement_labels', 'songs']) {
      const rows = await readJsonLines(path.join(data, `${table}.jsonl`));
      // Twice, as a replay would: the trainer must read each row once (FINAL).
      await db.insert(table, rows);
      await db.insert(table, rows);
    }
  });

  after(async () => {
    await db.command(`DROP DATABASE IF EXISTS ${config.clickhouse.database}`);
    await db.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('trains and exports both models from the tables, and writes the song embeddings table', async () => {
    const python = process.env.ENCORE_PYTHON;
    assert.ok(python, 'ENCORE_PYTHON must name the trainer venv’s python (bin/encore test sets it)');
    const out = path.join(dir, 'models');
    const trained = spawnSync(
      python,
      [
        ...['-m', 'encore_training', 'train', '--clickhouse', endpoints(config).clickhouseUrl],
        ...[
          '--database',
          config.clickhouse.database,
          '--out',
          out,
          '--seed',
          '3',
          '--quiet',
          '--threads',
          '1',
        ],
        ...['--epochs', '1', '--tower-epochs', '1', '--test-days', '2', '--validation-days', '1'],
      ],
      { cwd: training, encoding: 'utf8', env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } },
    );
    assert.equal(trained.status, 0, `the trainer failed:\n${trained.stderr.slice(-3000)}`);
    for (const model of ['disengagement', 'user-tower']) {
      const [version] = await readdir(path.join(out, model));
      assert.ok(version, `${model} has a version`);
      assert.ok(existsSync(path.join(out, model, version, 'model.onnx')), `${model}/model.onnx`);
    }
    const [row] = await db.query<{ songs: string; versions: string }>(
      'SELECT uniqExact(song_id) AS songs, uniqExact(model_version) AS versions FROM song_embeddings FINAL',
    );
    assert.deepEqual([Number(row!.songs), Number(row!.versions)], [SONGS, 1]);
  });
});
