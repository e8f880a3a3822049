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
  private readonly config: Config;
  readonly database: string;

  /** `database: null` connects without selecting one (to create it). */
  constructor(config: Config, options: { database?: string | null } = {}) {
    this.config = config;
    this.database = options.database === undefined ? config.clickhouse.database : (options.database ?? '');
    this.client = createClient({
      // The URL carries no credentials (they go in a header), so it may appear in messages.
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
      throw this.error(sql, error);
    }
  }

  async query<Row>(sql: string): Promise<Row[]> {
    try {
      const result = await this.client.query({ query: sql, format: 'JSONEachRow' });
      return await result.json<Row>();
    } catch (error) {
      throw this.error(sql, error);
    }
  }

  async insert<Row extends Record<string, unknown>>(table: string, rows: readonly Row[]): Promise<void> {
    if (rows.length === 0) return;
    try {
      await this.client.insert({ table, values: rows as Row[], format: 'JSONEachRow' });
    } catch (error) {
      throw this.error(`INSERT INTO ${table}`, error);
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private error(sql: string, cause: unknown): EncoreError {
    const message = cause instanceof Error ? cause.message : String(cause);
    if (LOGIN_REFUSED.has(serverErrorCode(cause) ?? 0)) {
      return new EncoreError(
        ErrorCodes.AUTHENTICATION_FAILED,
        `ClickHouse at ${endpoints(this.config).clickhouseUrl} refused user ${this.config.clickhouse.username}: ` +
          `${message.trim()} (check clickhouse.username, and clickhouse.password or clickhouse.passwordFile)`,
        { cause },
      );
    }
    const statement = sql.length > 200 ? `${sql.slice(0, 200)}…` : sql;
    return new EncoreError(ErrorCodes.CLICKHOUSE_FAILED, `ClickHouse failed on "${statement}": ${message}`, {
      cause,
    });
  }
}

/**
 * ClickHouse's error codes for a refused login: UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD,
 * IP_ADDRESS_NOT_ALLOWED (18.16) and AUTHENTICATION_FAILED (current releases, which merge the first three).
 */
const LOGIN_REFUSED = new Set([192, 193, 194, 195, 516]);

/**
 * The server's error code: the client parses current releases' errors into a `code`; 18.16's message format
 * ("Code: 193, e.displayText() = …") it does not, so that one is read from the message.
 */
function serverErrorCode(error: unknown): number | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  const text = typeof code === 'string' ? code : /^Code: (\d+)/.exec(error.message)?.[1];
  return text === undefined ? undefined : Number(text);
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
