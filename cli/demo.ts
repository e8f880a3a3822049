/**
 * `encore demo`: the whole pipeline end to end on the local stack, with a live summary:
 *
 *   simulator → Kafka (songs, profiles, listening events, a few malformed records)
 *     → the job: sessions, features, labels, disengagement scoring (ONNX), recommendations
 *     → <app>-recommendations (read back here, read_committed) and ClickHouse (the connector)
 *
 * Without trained models in `serving.modelsDir` it first trains quick ones (a small simulation, one epoch
 * each, about 2 minutes on 2 cores; once: later demos reuse them), unless --no-train: then the skip-burst
 * rule triggers and the popularity / taste-cluster fallbacks serve, as each recommendation's path says.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import cliProgress from 'cli-progress';
import { ClickHouse } from '../clients/clickhouse.ts';
import { Consumer, Producer } from '../clients/kafka.ts';
import type { Config } from '../core/config.ts';
import { setLogLevel } from '../core/log.ts';
import { quantile } from '../core/quantile.ts';
import { SchemaRegistry } from '../schemas/registry.ts';
import { topicSerde, topics } from '../schemas/topics.ts';
import type { ListeningEvent, Recommendation, Song } from '../schemas/types.generated.ts';
import { produceSimulation } from '../simulator/kafka.ts';
import { DAY, type Simulation, simulate } from '../simulator/model.ts';
import { up } from '../stack/stack.ts';
import { type JobListener, provision, runJob } from '../topology/job.ts';
import { disengagementTriggers } from '../topology/recommend/serving.ts';
import type { StreamsListener } from '../topology/streams/kafka-streams.ts';
import { scanVersions } from '../udfs/models.ts';
import type { ModelName } from '../udfs/onnx.ts';
import { trainModels } from './training.ts';

export interface DemoOptions {
  seconds: number;
  rate: number;
  users: number;
  seed: number;
  /** Train quick models first when `serving.modelsDir` lacks one (false: --no-train). */
  train: boolean;
  signal: AbortSignal;
}

/** The ClickHouse tables the live summary counts (rows the connector inserted during this run). */
const TABLES = [
  'events',
  'session_features',
  'disengagement_labels',
  'sessions',
  'model_scores',
  'recommendations',
  'recommendation_feedback',
] as const;
type Table = (typeof TABLES)[number];

const MODELS: readonly ModelName[] = ['disengagement', 'user-tower'];

/**
 * The demo's quick training: the demo's own listeners (the same seed, at most 1,000 of them) over 4
 * simulated days, one epoch per model on 30,000 sampled points. About 2 minutes on 2 cores; the models
 * are weaker than `bin/encore train`'s (28 days, 4-5 epochs, ~12 minutes) but real.
 */
const QUICK_TRAINING = { maxUsers: 1_000, days: 4 };
const QUICK_TRAINER_OPTIONS = [
  '--epochs',
  '1',
  '--tower-epochs',
  '1',
  '--test-days',
  '1',
  '--validation-days',
  '1',
  '--max-train-points',
  '30000',
];

const HOUR = 3_600_000;
/** Longest wait for the job to have its tasks (state restored) before events are produced. */
const READY_TIMEOUT_MS = 60_000;
/** Produce times are kept this long for the latency of the recommendations they trigger. */
const PRODUCE_TIME_KEPT_MS = 120_000;
/** The job counts as drained once no recommendation came for this long. */
const QUIET_AFTER_MS = 1_500;
/** After the drain: explicit requests sent, and how long their answers are awaited. */
const EXPLICIT_REQUESTS = 2;
const EXPLICIT_WAIT_MS = 10_000;

const PATH_LABELS: Record<string, string> = {
  MODEL: 'MODEL',
  CACHE: 'CACHE',
  TASTE_CLUSTER_FALLBACK: 'TASTE-CLUSTER',
  POPULARITY_FALLBACK: 'POPULARITY',
};

export async function demo(config: Config, options: DemoOptions): Promise<void> {
  console.log('Starting the local stack (Kafka, schema registry, ClickHouse)…');
  for (const r of await up(config)) console.log(`  ${r.name.padEnd(16)} ${r.action} in ${r.ms} ms`);
  await ensureModels(config, options);
  if (options.signal.aborted) return;
  await provision(config);
  await sendMalformed(config);

  // Two simulated days: a listener's day is compressed into a few seconds of the demo.
  const { start, continued } = await simulationStart(config);
  console.log(
    `\nSimulated listening from ${new Date(start).toISOString().slice(0, 16).replace('T', ' ')} UTC` +
      (continued
        ? ", after the previous demo's last event (the job's state, cooldowns included, is in simulated time)."
        : '.'),
  );
  const simulation = simulate({ seed: options.seed, users: options.users, songs: 5_000, start, days: 2 });
  const songs = new Map(simulation.songs.map((song) => [song.songId, song]));

  const totals = { produced: 0, consumed: 0, deadLettered: 0 };
  const rows = Object.fromEntries(TABLES.map((table) => [table, 0])) as Record<Table, number>;
  const triggers = { pushed: 0, cooldown: 0, 'push-off': 0 };
  const produceTimes = new ProduceTimes();
  const startedAt = Date.now();
  const stopJob = new AbortController();
  let tasksReady: (tasks: string[]) => void = () => {};
  const ready = new Promise<string[]>((resolve) => (tasksReady = resolve));
  // runJob hands its listener to the streams runtime, whose onTasks says when the tasks are restored.
  const listener: JobListener & StreamsListener = {
    onCommit: (report) => {
      totals.consumed += report.records;
      totals.deadLettered += report.deadLettered;
    },
    onFlush: (report) => {
      for (const table of TABLES) rows[table] += report.rows.get(table) ?? 0;
    },
    onTasks: (tasks) => {
      if (tasks.length > 0) tasksReady(tasks);
    },
  };
  // The live view is the demo's output: the job's info logs would scroll it away (warnings still show).
  const logLevel = config.log.level;
  if (logLevel === 'info') setLogLevel('warn');
  console.log('\nStarting the job (topology, ClickHouse connector); its state is restored from Kafka first…');
  const job = runJob(config, stopJob.signal, listener);
  const watch = watchRecommendations(config, startedAt, produceTimes, stopJob.signal);
  const total = options.seconds * options.rate;
  const bars = new cliProgress.MultiBar({ hideCursor: true }, cliProgress.Presets.shades_classic);
  let ticker: NodeJS.Timeout | undefined;
  let show = () => {};
  let produced = { songs: 0, profiles: 0, events: 0 };
  let explicit: Recommendation[] = [];
  try {
    const interrupted = new Promise<string[]>((resolve) =>
      options.signal.addEventListener('abort', () => resolve([]), { once: true }),
    );
    const tasks = await Promise.race([
      ready,
      job.then(() => []),
      interrupted,
      sleep(READY_TIMEOUT_MS, [], { ref: false }),
    ]);
    if (options.signal.aborted) return;
    console.log(
      tasks.length > 0
        ? `Job running after ${((Date.now() - startedAt) / 1000).toFixed(1)} s (tasks ${tasks.join(', ')}): ` +
            `producing ${total} events at ${options.rate}/s.\n`
        : `The job has no tasks after ${READY_TIMEOUT_MS / 1000} s: producing anyway.\n`,
    );
    const progress = bars.create(
      total,
      0,
      { produced: 0, rate: 0, deadLettered: 0 },
      {
        format:
          '{bar} {percentage}% | {duration}s | produced {produced} events ({rate}/s) | dead letters {deadLettered}',
      },
    );
    const lines = [0, 1, 2].map(() => bars.create(1, 0, { text: '' }, { format: '{text}' }));
    const began = Date.now();
    show = () => {
      void disengagementTriggers.get().then((metric) => {
        for (const { labels, value } of metric.values)
          if (labels.outcome && labels.outcome in triggers)
            triggers[labels.outcome as keyof typeof triggers] = value;
      });
      const seconds = Math.max((Date.now() - began) / 1000, 0.001);
      progress.update(totals.produced, {
        produced: totals.produced,
        rate: Math.round(totals.produced / seconds),
        deadLettered: totals.deadLettered,
      });
      const texts = [
        `ClickHouse rows   events ${rows.events} · scoring points ${rows.session_features} · ` +
          `labels ${rows.disengagement_labels} · sessions ${rows.sessions} · model scores ${rows.model_scores} · ` +
          `recommendations ${rows.recommendations} · feedback ${rows.recommendation_feedback}`,
        `Disengagement     triggers ${triggers.pushed + triggers.cooldown + triggers['push-off']} ` +
          `(${triggers.pushed} pushed, ${triggers.cooldown} held back by the cooldown) → recommendations ` +
          `${watch.stats.count}: ${shares(watch.stats.byPath, watch.stats.count) || 'none yet'}`,
        `Latency           event acked by Kafka → recommendation built ${percentiles(watch.stats.builtMs)}` +
          ` · → readable (read_committed) ${percentiles(watch.stats.readableMs)}`,
      ];
      for (const [i, text] of texts.entries()) lines[i]!.update(0, { text });
    };
    ticker = setInterval(show, 250);
    produced = await produceSimulation(config, produceTimes.track(simulation), {
      rate: options.rate,
      limit: total,
      signal: options.signal,
      onProgress: (n) => {
        totals.produced = n;
        produceTimes.acked(n);
      },
    });
    // Let the job drain what was produced (the connector writing it, the last recommendations coming out)
    // before stopping it.
    const drainUntil = Date.now() + 30_000;
    const draining = () =>
      rows.events < totals.produced || Date.now() - watch.stats.lastArrival < QUIET_AFTER_MS;
    while (draining() && Date.now() < drainUntil && !options.signal.aborted) await sleep(100);
    if (!options.signal.aborted) explicit = await requestRecommendations(config, produceTimes, watch);
    await sleep(config.streams.commitIntervalMs + 500, undefined, { signal: options.signal }).catch(() => {});
  } finally {
    clearInterval(ticker);
    show();
    bars.stop();
    stopJob.abort();
    await Promise.all([job, watch.done]);
    setLogLevel(logLevel);
  }
  console.log(
    `\nProduced ${produced.songs} songs (the job's catalog, read from the songs topic), ${produced.profiles} ` +
      `profiles and ${totals.produced} events; the topology committed ${totals.consumed} records ` +
      `(${totals.deadLettered} malformed ones to the dead-letter topic).`,
  );
  summarizeRecommendations(watch.stats, triggers);
  printExamples(watch.stats, explicit, songs);
  await summarizeClickHouse(config, rows);
}

/**
 * Where the simulated period starts: two days ago for a first demo, so it ends around now. The job keeps
 * its state in simulated time (sessions, each listener's last push for the cooldown), so a demo replaying a
 * period an earlier one produced would find most listeners still cooling down: a later demo continues one
 * hour after the latest scoring point in ClickHouse instead (the simulated clock may then pass the real one).
 */
async function simulationStart(config: Config): Promise<{ start: number; continued: boolean }> {
  const twoDaysAgo = Math.floor(Date.now() / DAY) * DAY - 2 * DAY;
  const db = new ClickHouse(config);
  try {
    const [row] = await db.query<{ last: string | number }>(
      'SELECT max(timestamp_ms) AS last FROM session_features',
    );
    const last = Number(row?.last ?? 0);
    if (last >= twoDaysAgo) return { start: Math.ceil(last / HOUR + 1) * HOUR, continued: true };
  } catch {
    // no table yet: the connector creates it when the job starts
  } finally {
    await db.close();
  }
  return { start: twoDaysAgo, continued: false };
}

/** The newest complete version folder of each model (what the job's model registry serves first). */
async function servedVersions(modelsDir: string): Promise<Partial<Record<ModelName, string>>> {
  const versions: Partial<Record<ModelName, string>> = {};
  for (const name of MODELS) versions[name] = (await scanVersions(modelsDir, name)).complete.at(-1);
  return versions;
}

/** Trains quick models when a model is missing (unless --no-train); the job never needs them to run. */
async function ensureModels(config: Config, options: DemoOptions): Promise<void> {
  const dir = config.serving.modelsDir;
  const before = await servedVersions(dir);
  const missing = MODELS.filter((name) => !before[name]);
  if (missing.length === 0) {
    console.log(
      `\nModels in ${dir}: disengagement ${before.disengagement}, user tower ${before['user-tower']} ` +
        '(newer versions written there are picked up while the job runs).',
    );
    return;
  }
  const fallbacks =
    'the skip-burst rule triggers and the popularity / taste-cluster fallbacks serve (see each path)';
  if (!options.train) {
    console.log(`\nNo ${missing.join(' or ')} model in ${dir} (--no-train): ${fallbacks}.`);
    return;
  }
  if (!process.env.ENCORE_PYTHON) {
    console.log(
      `\nNo ${missing.join(' or ')} model in ${dir}, and no trainer here (ENCORE_PYTHON: run the demo ` +
        `through bin/encore to train): ${fallbacks}.`,
    );
    return;
  }
  const users = Math.min(options.users, QUICK_TRAINING.maxUsers);
  console.log(
    `\nNo ${missing.join(' or ')} model in ${dir} yet: training quick demo models first. This happens once:\n` +
      `later demos reuse them (--no-train skips it; bin/encore train makes the full-size ones).\n` +
      `  ${users} simulated listeners × ${QUICK_TRAINING.days} days (seed ${options.seed}) → encore dataset → ` +
      `PyTorch, 1 epoch per model → ONNX; about 2 minutes on 2 idle cores.\n`,
  );
  const began = Date.now();
  try {
    await trainModels(
      { out: dir, seed: options.seed, device: 'cpu', users, days: QUICK_TRAINING.days },
      QUICK_TRAINER_OPTIONS,
    );
  } catch (error) {
    if (options.signal.aborted) return;
    console.log(`\nTraining failed (${(error as Error).message}): ${fallbacks}.`);
    return;
  }
  const after = await servedVersions(dir);
  console.log(
    `\nTrained in ${Math.round((Date.now() - began) / 1000)} s: disengagement ${after.disengagement ?? 'none'}, ` +
      `user tower ${after['user-tower'] ?? 'none'} in ${dir}.`,
  );
}

/**
 * When each event the demo produced was acknowledged by Kafka, by event id: the start of the latency of
 * the recommendation it triggers. produceSimulation reads the events in order and reports after each
 * acknowledged batch how many it produced, so the first `n` events read are the ones acknowledged.
 */
class ProduceTimes {
  private readonly read: ListeningEvent[] = [];
  private acknowledged = 0;
  private readonly times = new Map<string, number>();
  private readonly batches: { at: number; ids: string[] }[] = [];
  /** Each listener's latest event time (simulated) among the produced events. */
  readonly lastEventAt = new Map<string, number>();

  track(simulation: Simulation): Simulation {
    const read = this.read;
    return {
      ...simulation,
      events: {
        *[Symbol.iterator]() {
          for (const event of simulation.events) {
            read.push(event);
            yield event;
          }
        },
      },
    };
  }

  acked(produced: number): void {
    const now = Date.now();
    if (produced === this.acknowledged) return;
    const batch = this.read.splice(0, produced - this.acknowledged);
    this.acknowledged = produced;
    for (const event of batch) {
      this.times.set(event.eventId, now);
      this.lastEventAt.set(event.userId, event.timestamp);
    }
    this.batches.push({ at: now, ids: batch.map((event) => event.eventId) });
    while (this.batches.length > 0 && this.batches[0]!.at < now - PRODUCE_TIME_KEPT_MS)
      for (const id of this.batches.shift()!.ids) this.times.delete(id);
  }

  /** The acknowledgement time of an event this demo produced (within the last 2 minutes). */
  of(eventId: string | null): number | undefined {
    return eventId === null ? undefined : this.times.get(eventId);
  }
}

interface RecommendationStats {
  count: number;
  byPath: Map<string, number>;
  /** Why a path other than MODEL served: path → reason → count. */
  reasons: Map<string, Map<string, number>>;
  builtMs: number[];
  readableMs: number[];
  /** Recommendations whose triggering event this demo did not produce (an earlier run's backlog). */
  untimed: number;
  /** The latest recommendation per trigger and path. */
  latest: Map<string, Recommendation>;
  /** Answers to explicit requests, by request id. */
  answers: Map<string, Recommendation>;
  /** When the latest recommendation was read (wall clock). */
  lastArrival: number;
}

/**
 * Reads the recommendations topic as a downstream service would (read_committed, its own group), keeping
 * those generated since the demo began: counts, paths and the latency from the triggering event's
 * production (both times on this machine's clock: the simulated event times are not wall-clock times).
 */
function watchRecommendations(
  config: Config,
  since: number,
  produceTimes: ProduceTimes,
  signal: AbortSignal,
) {
  const stats: RecommendationStats = {
    count: 0,
    byPath: new Map(),
    reasons: new Map(),
    builtMs: [],
    readableMs: [],
    untimed: 0,
    latest: new Map(),
    answers: new Map(),
    lastArrival: 0,
  };
  const t = topics(config);
  const done = (async () => {
    const registry = new SchemaRegistry(config);
    const serde = topicSerde(registry, t.recommendations);
    const consumer = new Consumer(config, 'demo-recommendations', {
      groupId: `${config.appId}-demo-${process.pid}-${since}`,
      topics: [t.recommendations.name],
      isolation: 'read_committed',
      fromBeginning: true,
    });
    try {
      await consumer.connect();
      while (!signal.aborted) {
        const records = await consumer.poll(1000, 100);
        const arrived = Date.now();
        for (const record of records) {
          if (record.value === null) continue;
          const recommendation = await serde.deserialize(record.value);
          if (recommendation.generatedAt < since) continue;
          stats.count++;
          stats.lastArrival = arrived;
          const { path, pathReason, trigger } = recommendation;
          stats.byPath.set(path, (stats.byPath.get(path) ?? 0) + 1);
          if (pathReason !== null) {
            const reasons = stats.reasons.get(path) ?? new Map<string, number>();
            reasons.set(pathReason, (reasons.get(pathReason) ?? 0) + 1);
            stats.reasons.set(path, reasons);
          }
          stats.latest.set(`${trigger} ${path}`, recommendation);
          if (recommendation.requestId !== null) stats.answers.set(recommendation.requestId, recommendation);
          if (trigger !== 'DISENGAGEMENT') continue;
          const producedAt = produceTimes.of(recommendation.triggerEventId);
          if (producedAt === undefined) stats.untimed++;
          else {
            stats.builtMs.push(recommendation.generatedAt - producedAt);
            stats.readableMs.push(arrived - producedAt);
          }
        }
      }
    } finally {
      await consumer.disconnect().catch(() => {});
      registry.close();
    }
  })();
  return { stats, done };
}

/** Explicit requests (an app's "recommend something" button) for the last listeners, and their answers. */
async function requestRecommendations(
  config: Config,
  produceTimes: ProduceTimes,
  watch: ReturnType<typeof watchRecommendations>,
): Promise<Recommendation[]> {
  const users = [...produceTimes.lastEventAt.entries()].slice(-EXPLICIT_REQUESTS);
  if (users.length === 0) return [];
  const t = topics(config);
  const registry = new SchemaRegistry(config);
  const producer = new Producer(config, 'demo-requests');
  const ids: string[] = [];
  try {
    await producer.connect();
    const serde = topicSerde(registry, t.recommendationRequests);
    const records = [];
    for (const [userId, lastEventAt] of users) {
      const requestId = `demo-${Date.now()}-${ids.length + 1}`;
      ids.push(requestId);
      // Stamped in simulated time (the listener's latest event): a wall-clock stamp would be days ahead of
      // the stream time and make every later event late.
      const value = await serde.serialize({ requestId, userId, count: null, requestedAt: lastEventAt });
      records.push({ topic: t.recommendationRequests.name, key: userId, value });
    }
    await producer.send(records);
  } finally {
    await producer.disconnect();
    registry.close();
  }
  const until = Date.now() + EXPLICIT_WAIT_MS;
  while (ids.some((id) => !watch.stats.answers.has(id)) && Date.now() < until) await sleep(100);
  return ids.flatMap((id) => watch.stats.answers.get(id) ?? []);
}

/** A few records no app should send, to show the dead-letter path: each lands there with its reason. */
async function sendMalformed(config: Config) {
  const t = topics(config);
  const registry = new SchemaRegistry(config);
  const producer = new Producer(config, 'demo-malformed');
  await producer.connect();
  try {
    const serde = topicSerde(registry, t.listeningEvents);
    await serde.register();
    await producer.send([
      { topic: t.listeningEvents.name, key: 'malformed-1', value: Buffer.from('{"json": "not avro"}') },
      { topic: t.listeningEvents.name, key: 'malformed-2', value: Buffer.from([0, 0, 0, 0, 1, 2]) },
    ]);
  } finally {
    await producer.disconnect();
    registry.close();
  }
}

function percentiles(values: number[]): string {
  if (values.length === 0) return 'p50 – p99 –';
  const sorted = [...values].sort((a, b) => a - b);
  return `p50 ${quantile(sorted, 0.5)} ms p99 ${quantile(sorted, 0.99)} ms`;
}

function shares(byPath: Map<string, number>, total: number): string {
  return [...byPath.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([path, n]) => `${PATH_LABELS[path] ?? path} ${Math.round((100 * n) / total)}%`)
    .join(' · ');
}

function summarizeRecommendations(stats: RecommendationStats, triggers: Record<string, number>) {
  const triggered = Object.values(triggers).reduce((a, b) => a + b, 0);
  console.log(
    `\nRecommendations this run: ${stats.count}, read back from the recommendations topic (read_committed).` +
      `\n  Disengagement triggers: ${triggered} scoring points at or over the threshold ` +
      `(${triggers.pushed} pushed, ${triggers.cooldown} held back by the cooldown` +
      `${triggers['push-off'] ? `, ${triggers['push-off']} not pushed: serving.push is off` : ''}).`,
  );
  for (const [path, n] of [...stats.byPath.entries()].sort((a, b) => b[1] - a[1])) {
    const reasons = [...(stats.reasons.get(path) ?? new Map<string, number>()).entries()]
      .map(([reason, count]) => `${reason} ${count}`)
      .join(', ');
    console.log(
      `  ${path.padEnd(24)} ${String(n).padStart(6)} (${((100 * n) / stats.count).toFixed(1)}%)` +
        (reasons ? `  why not MODEL: ${reasons}` : ''),
    );
  }
  console.log(
    `  Latency, from the triggering event's acknowledgement by Kafka (wall clock; the events' own timestamps` +
      ` are simulated time), ${stats.builtMs.length} disengagement recommendations:` +
      `\n    → recommendation built (its generatedAt)        ${percentiles(stats.builtMs)}` +
      `\n    → readable by a read_committed consumer         ${percentiles(stats.readableMs)}` +
      (stats.untimed > 0 ? `\n    (${stats.untimed} triggered by events of an earlier run: not timed)` : ''),
  );
}

function describe(recommendation: Recommendation, songs: Map<string, Song>): string {
  const r = recommendation;
  const trigger =
    r.trigger === 'EXPLICIT_REQUEST'
      ? `EXPLICIT_REQUEST (${r.requestId})`
      : r.score !== null && r.threshold !== null
        ? `DISENGAGEMENT: score ${r.score.toFixed(3)} ≥ threshold ${r.threshold.toFixed(3)}`
        : 'DISENGAGEMENT: skip-burst rule (no disengagement model)';
  const versions = r.modelVersions;
  const lines = [
    `  ${r.userId} · ${trigger} · path ${r.path}${r.pathReason ? ` (${r.pathReason})` : ''}`,
    `    models: disengagement ${versions.disengagement ?? '–'} · user tower ${versions.userTower ?? '–'} · ` +
      `ranker ${versions.ranker ?? '–'}`,
  ];
  for (const item of r.items.slice(0, 5)) {
    const song = songs.get(item.songId);
    const name = song ? `${song.title} — ${song.artistName} (${song.genre})` : item.songId;
    lines.push(
      `    ${String(item.rank).padStart(2)}. ${name.padEnd(48)} ${item.score.toFixed(3).padStart(7)}  ` +
        (item.reasons.join(', ') || '–'),
    );
  }
  if (r.items.length > 5) lines.push(`    … ${r.items.length - 5} more`);
  return lines.join('\n');
}

/** A model-served push, one from another path, and the answers to the explicit requests. */
function printExamples(stats: RecommendationStats, explicit: Recommendation[], songs: Map<string, Song>) {
  const pushes = [...stats.latest.entries()].filter(([key]) => key.startsWith('DISENGAGEMENT '));
  const model = pushes.find(([key]) => key.endsWith(' MODEL'))?.[1];
  const other = pushes.find(([key]) => !key.endsWith(' MODEL'))?.[1];
  const examples = [model, other, ...explicit].filter((r): r is Recommendation => r !== undefined);
  if (examples.length === 0) return;
  console.log('\nExamples (top 5 songs, score, reasons):');
  for (const recommendation of examples) console.log(describe(recommendation, songs));
}

async function summarizeClickHouse(config: Config, rows: Record<Table, number>) {
  const db = new ClickHouse(config);
  try {
    const counts = await Promise.all(
      TABLES.map(async (table) => {
        const [row] = await db.query<{ n: string | number }>(`SELECT count() AS n FROM ${table}`);
        return { table, 'rows this run': rows[table], 'rows in all': Number(row?.n ?? 0) };
      }),
    );
    console.log(
      `\nClickHouse ${config.clickhouse.database} (rows the connector wrote this run, and in all):`,
    );
    console.table(Object.fromEntries(counts.map(({ table, ...rest }) => [table, rest])));
    console.log(
      '\nMore questions, with their SQL: docs/ANALYTICS.md (views recommendation_acceptance, ' +
        `score_distribution, model_latency, daily_engagement…). Query it yourself:\n` +
        `  clickhouse-client --port ${config.clickhouse.tcpPort} --database ${config.clickhouse.database}`,
    );
  } finally {
    await db.close();
  }
}
