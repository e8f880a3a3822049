/**
 * Versioned ClickHouse migrations, applied at start: sinks/migrations/NNNN_name.sql files run in order,
 * each once, recorded in `schema_migrations`. Statements are idempotent (IF NOT EXISTS), so two instances
 * starting together, or a crash between a statement and its record, do no harm.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pRetry from 'p-retry';
import { ClickHouse, isUnavailable, sqlString } from '../clients/clickhouse.ts';
import type { Config } from '../core/config.ts';
import { logger } from '../core/log.ts';

const migrationsDir = fileURLToPath(new URL('./migrations/', import.meta.url));
const log = logger('migrations');

export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

export function readMigrations(dir = migrationsDir): Migration[] {
  return readdirSync(dir)
    .filter((file) => /^\d{4}_[a-z0-9_]+\.sql$/.test(file))
    .sort()
    .map((file) => {
      const sql = readFileSync(path.join(dir, file), 'utf8')
        .split('\n')
        .filter((line) => !line.trimStart().startsWith('--'))
        .join('\n');
      return {
        version: Number(file.slice(0, 4)),
        name: file.slice(5, -4),
        statements: sql
          .split(';')
          .map((s) => s.trim())
          .filter(Boolean),
      };
    });
}

/** Creates the database if needed and applies the migrations it has not seen; returns those applied. */
export async function migrate(config: Config): Promise<Migration[]> {
  const server = new ClickHouse(config, { database: null });
  try {
    await server.command(`CREATE DATABASE IF NOT EXISTS ${config.clickhouse.database}`);
  } finally {
    await server.close();
  }
  const db = new ClickHouse(config);
  try {
    await db.command(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, applied_at DateTime) ' +
        'ENGINE = ReplacingMergeTree() ORDER BY version',
    );
    const applied = new Set(
      (await db.query<{ version: number }>('SELECT version FROM schema_migrations')).map((r) =>
        Number(r.version),
      ),
    );
    const pending = readMigrations().filter((m) => !applied.has(m.version));
    for (const migration of pending) {
      for (const statement of migration.statements) await db.command(statement);
      await db.command(
        `INSERT INTO schema_migrations (version, name, applied_at) VALUES (${migration.version}, ${sqlString(migration.name)}, now())`,
      );
      log.info({ version: migration.version, name: migration.name }, 'migration applied');
    }
    return pending;
  } finally {
    await db.close();
  }
}

/**
 * Applies the migrations once ClickHouse answers: while it cannot be reached, waits (with backoff) until it
 * can or `signal` aborts. A statement ClickHouse refuses fails at once.
 */
export function migrateWhenAvailable(config: Config, signal: AbortSignal): Promise<Migration[]> {
  return pRetry(() => migrate(config), {
    retries: Number.POSITIVE_INFINITY,
    minTimeout: 200,
    maxTimeout: 5_000,
    signal,
    shouldRetry: ({ error }) => isUnavailable(error),
    onFailedAttempt: ({ error, attemptNumber }) => {
      if (isUnavailable(error))
        log.warn(
          { attempt: attemptNumber, err: error.message },
          'ClickHouse unavailable; waiting to migrate',
        );
    },
  });
}
