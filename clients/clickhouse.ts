/**
 * The one module that talks to ClickHouse (through @clickhouse/client over HTTP). SQL written for Encore
 * stays portable between Debian's ClickHouse 18.16 (the local stack) and current releases (deployments),
 * so this wrapper sends no settings the old server does not know.
 */
import { ClickHouseLogLevel, type ClickHouseClient as Client, createClient } from '@clickhouse/client';
import { type Config, endpoints } from '../core/config.ts';
import { EncoreError, ErrorCodes } from '../core/errors.ts';

export class ClickHouse {
  private readonly client: Client;
  readonly database: string;

  /** `database: null` connects without selecting one (to create it). */
  constructor(config: Config, options: { database?: string | null } = {}) {
    this.database = options.database === undefined ? config.clickhouse.database : (options.database ?? '');
    this.client = createClient({
      url: endpoints(config).clickhouseUrl,
      username: config.clickhouse.username,
      password: config.clickhouse.password,
      ...(this.database ? { database: this.database } : {}),
      request_timeout: 30_000,
      compression: { request: false, response: false },
      application: config.appId,
      // Failures reach the caller as EncoreErrors and are logged there, once, in the job's structured log.
      log: { level: ClickHouseLogLevel.OFF },
    });
  }

  async ping(): Promise<boolean> {
    const result = await this.client.ping();
    return result.success;
  }

  async command(sql: string): Promise<void> {
    try {
      await this.client.command({ query: sql });
    } catch (error) {
      throw clickhouseError(sql, error);
    }
  }

  async query<Row>(sql: string): Promise<Row[]> {
    try {
      const result = await this.client.query({ query: sql, format: 'JSONEachRow' });
      return await result.json<Row>();
    } catch (error) {
      throw clickhouseError(sql, error);
    }
  }

  async insert<Row extends Record<string, unknown>>(table: string, rows: readonly Row[]): Promise<void> {
    if (rows.length === 0) return;
    try {
      await this.client.insert({ table, values: rows as Row[], format: 'JSONEachRow' });
    } catch (error) {
      throw clickhouseError(`INSERT INTO ${table}`, error);
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

function clickhouseError(sql: string, cause: unknown): EncoreError {
  const message = cause instanceof Error ? cause.message : String(cause);
  const statement = sql.length > 200 ? `${sql.slice(0, 200)}…` : sql;
  return new EncoreError(ErrorCodes.CLICKHOUSE_FAILED, `ClickHouse failed on "${statement}": ${message}`, {
    cause,
  });
}

const UNAVAILABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
]);

/** The server could not be reached (down, restarting): worth waiting for, unlike a refused statement. */
export function isUnavailable(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && UNAVAILABLE.has(code)) return true;
    if (/socket hang up|Timeout error/i.test(e.message)) return true;
  }
  return false;
}

/** Quotes a string literal for SQL built from trusted parts (ClickHouse 18.16 has no query parameters). */
export function sqlString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
