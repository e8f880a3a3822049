/**
 * `encore bench load`: vegeta drives simulated listeners through the HTTP event collector at a ramping
 * arrival rate, while the job (exactly-once, the trained models) pushes recommendations. Per rate, on a
 * fresh app id and ClickHouse database:
 *
 *   simulator ──events──▶ vegeta ──HTTP──▶ encore collect ──Avro──▶ Kafka ──▶ encore run ──▶ recommendations
 *                                                                                                  │
 *                          latency watcher (read_committed) ◀────────────────────────────────────┘
 *
 * Each of vegeta, the collector and the job is its own process. End-to-end latency is the watcher's: event
 * produced (its record timestamp) → triggered recommendation readable under read_committed. The rate is
 * *sustained* when vegeta sent it in full, the collector took every event (failures under 0.1 %, nothing
 * rejected) and the job had committed every event within CATCH_UP_LIMIT_MS of the last one.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { committedSum } from '../bench/streams/harness.ts';
import { spawnEncore, stopChild } from '../cli/child.ts';
import { Consumer } from '../clients/kafka.ts';
import type { Config } from '../core/config.ts';
import { EncoreError, ErrorCodes } from '../core/errors.ts';
import { logger } from '../core/log.ts';
import { quantile } from '../core/quantile.ts';
import { topics } from '../schemas/topics.ts';
import { produceSimulation, recentSimulation } from '../simulator/kafka.ts';
import { up } from '../stack/stack.ts';
import { deprovision, provision } from '../topology/job.ts';
import { watchLatency } from './latency-watcher.ts';
import { rampAndHold, type Threshold, tally, thresholds } from './traffic.ts';
import { attack, ensureVegeta, stageRequests } from './vegeta.ts';

const log = logger('load');
/** Events posted before the load starts, to know the job is up end to end (its first commit). */
export const WARMUP_EVENTS = 20;
const CATCH_UP_LIMIT_MS = 3_000;
/** How long to wait for a job that fell behind, so its late recommendations still count. */
const DRAIN_LIMIT_MS = 60_000;

/** One run at one rate. */
export interface LoadRunOptions {
  rampSeconds: number;
  holdSeconds: number;
  users: number;
  /** Events per HTTP request. */
  batch: number;
  /** The threshold on the end-to-end p99 (ms). */
  p99Ms: number;
  commitIntervalMs: number;
}

export interface LoadOptions extends LoadRunOptions {
  rates: number[];
  /** Steps up from `from` by `step` until a rate is not sustained or `to` is passed. */
  findMax?: { from: number; to: number; step: number };
  outputDir: string;
}

export interface LoadResult {
  system: string;
  rate_events_per_s: number;
  events_posted: number;
  events_rejected: number;
  /** Requests planned but not made (a stage sends its requests late rather than drop them). */
  requests_unsent: number;
  /** p99 of how late requests left against their pace (ms). */
  send_lag_p99_ms: number;
  collector_failed_rate: number;
  collector_p50_ms: number;
  collector_p99_ms: number;
  recommendations: number;
  measured: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  paths: Record<string, number>;
  /** From the last event posted to the job having committed every event; null when it did not catch up. */
  catch_up_ms: number | null;
  sustained: boolean;
  thresholds: Threshold[];
  thresholds_passed: boolean;
}

const round = (n: number) => Math.round(n * 10) / 10;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline)
      throw new EncoreError(ErrorCodes.TIMEOUT, `load: ${what} after ${timeoutMs} ms`);
    await sleep(250);
  }
}

/** A fresh app id and ClickHouse database per run: no run reads another's topics or rows. */
function runConfig(base: Config, rate: number): Config {
  const suffix = randomUUID().slice(0, 8);
  return {
    ...base,
    appId: `load-${rate}-${suffix}`,
    clickhouse: { ...base.clickhouse, database: `load_${suffix}` },
  };
}

/**
 * One load run on `config`'s app id and database (topics and tables are created): the job and the collector
 * start, vegeta ramps to `rate` events/s and holds it, and the run waits for the job to catch up.
 */
export async function loadRun(
  base: Config,
  vegeta: string,
  rate: number,
  options: LoadRunOptions,
): Promise<LoadResult> {
  const config: Config = {
    ...base,
    streams: { ...base.streams, guarantee: 'exactly-once', commitIntervalMs: options.commitIntervalMs },
    collector: { ...base.collector, port: await freePort() },
  };
  const t = topics(config);
  await provision(config);
  const simulation = recentSimulation({ seed: 11, users: options.users, songs: 5_000 });
  await produceSimulation(config, simulation, { limit: 0 }); // the catalog and the profiles
  const stages = rampAndHold(rate / options.batch, options.rampSeconds, options.holdSeconds);
  const needed = WARMUP_EVENTS + options.batch * stages.reduce((sum, stage) => sum + stageRequests(stage), 0);
  // The simulator's events in time order, as the JSON the collector takes: each listener's events are sent
  // in their order (bar the overlap of requests in flight, which the job's grace absorbs).
  const events = Array.from(take(simulation.events, needed), (event) => JSON.stringify(event));
  if (events.length < needed)
    throw new EncoreError(
      ErrorCodes.CONFIG_INVALID,
      `load: ${options.users} users give ${events.length} events; ${needed} are needed: raise --users`,
    );
  const bodies: string[] = [];
  for (let i = WARMUP_EVENTS; i < events.length; i += options.batch)
    bodies.push(
      options.batch === 1 ? (events[i] as string) : `[${events.slice(i, i + options.batch).join(',')}]`,
    );

  const shared = {
    appId: config.appId,
    'clickhouse.database': config.clickhouse.database,
    'streams.guarantee': 'exactly-once',
    'streams.commitIntervalMs': options.commitIntervalMs,
    'kafka.partitions': config.kafka.partitions,
    'serving.modelsDir': config.serving.modelsDir,
    'metrics.port': 0,
    'log.level': 'warn',
  };
  const job = spawnEncore('run', { ...shared, 'streams.instanceId': 'load' });
  const collector = spawnEncore('collect', { ...shared, 'collector.port': config.collector.port });
  const watcher = await watchLatency(config);
  const offsets = new Consumer(config, 'load-progress', { groupId: config.appId, topics: [] });
  await offsets.connect();
  const dir = await mkdtemp(path.join(tmpdir(), 'encore-load-'));
  const collectorUrl = `http://127.0.0.1:${config.collector.port}`;
  try {
    await waitFor(
      'the collector is not healthy',
      async () => (await fetch(`${collectorUrl}/health`)).ok,
      60_000,
    );
    const warmup = `[${events.slice(0, WARMUP_EVENTS).join(',')}]`;
    const warm = await fetch(`${collectorUrl}/v1/events`, { method: 'POST', body: warmup });
    if (warm.status !== 202)
      throw new EncoreError(
        ErrorCodes.PROCESSING_FAILED,
        `load: warm-up events answered ${warm.status}: ${await warm.text()}`,
      );
    const processed = () => committedSum(offsets, t.listeningEvents.name, config.kafka.partitions);
    await waitFor(
      'the job has not committed the warm-up events',
      async () => (await processed()) >= WARMUP_EVENTS,
      180_000,
    );
    log.info({ rate }, 'job up; the load starts');

    // The job's progress (committed input offsets), sampled through the run: when it had every event is
    // known only afterwards, once the collector's answers say how many it took.
    const progress: { at: number; processed: number }[] = [];
    const sampling = new AbortController();
    const sampler = (async () => {
      while (!sampling.signal.aborted) {
        progress.push({ at: Date.now(), processed: await processed() });
        await sleep(250);
      }
    })();
    const loadStarted = Date.now();
    const hits = await attack(vegeta, `${collectorUrl}/v1/events`, stages, bodies, dir);
    const traffic = tally(stages, hits, options.batch);
    const caughtUp = () => progress.find((p) => p.processed >= WARMUP_EVENTS + traffic.accepted);
    await waitFor('', async () => caughtUp() !== undefined, DRAIN_LIMIT_MS).catch(() => undefined);
    sampling.abort();
    await sampler;
    await sleep(1000); // the last recommendations' reads
    const caughtUpAt = caughtUp()?.at;
    // Steady state only: events produced during the ramp (group join, JIT warm-up) are not counted.
    const steadyFrom = loadStarted + options.rampSeconds * 1000;
    const latencies = watcher
      .samples()
      .filter(([producedAt]) => producedAt >= steadyFrom)
      .map(([, ms]) => ms)
      .sort((a, b) => a - b);
    const p99 = latencies.length ? quantile(latencies, 0.99) : Number.NaN;
    const checks = thresholds(traffic, { measured: latencies.length, p99Ms: p99 }, options.p99Ms);
    const catchUpMs =
      caughtUpAt === undefined ? null : Math.max(0, Math.round(caughtUpAt - traffic.lastAcceptedAt));
    const result: LoadResult = {
      system: `encore-eos-commit-${options.commitIntervalMs}ms-via-collector-batch-${options.batch}`,
      rate_events_per_s: rate,
      events_posted: traffic.accepted,
      events_rejected: traffic.rejected,
      requests_unsent: traffic.requestsUnsent,
      send_lag_p99_ms: traffic.sendLagP99Ms,
      collector_failed_rate: round(traffic.failedRate * 1000) / 1000,
      collector_p50_ms: traffic.collectorP50Ms,
      collector_p99_ms: traffic.collectorP99Ms,
      recommendations: watcher.recommendations(),
      measured: latencies.length,
      p50_ms: latencies.length ? quantile(latencies, 0.5) : Number.NaN,
      p99_ms: p99,
      max_ms: latencies.at(-1) ?? Number.NaN,
      paths: watcher.paths(),
      catch_up_ms: catchUpMs,
      sustained:
        checks.every((check) => check.passed || check.of === 'latency') &&
        catchUpMs !== null &&
        catchUpMs <= CATCH_UP_LIMIT_MS,
      thresholds: checks,
      thresholds_passed: checks.every((check) => check.passed),
    };
    log.info({ ...result, paths: undefined, thresholds: undefined }, 'load run done');
    return result;
  } finally {
    await Promise.all([stopChild(job), stopChild(collector)]);
    await watcher.close();
    await offsets.disconnect();
    await rm(dir, { recursive: true, force: true });
  }
}

function* take<T>(items: Iterable<T>, count: number): Generator<T> {
  if (count <= 0) return;
  let n = 0;
  for (const item of items) {
    yield item;
    if (++n >= count) return;
  }
}

/** The machine, with its load average before the runs (other work on it skews every figure). */
function machine(): string {
  const load = loadavg().map((l) => Math.round(l * 100) / 100);
  return `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB; load average before ${load.join(' ')}`;
}

function report(
  name: string,
  command: string,
  machine: string,
  results: LoadResult[],
  extraTargets: object[] = [],
) {
  return {
    name,
    command,
    machine,
    date: new Date().toISOString().slice(0, 10),
    results,
    targets: [
      ...results.flatMap((r) => [
        {
          metric: `${r.rate_events_per_s} ev/s: sustained (sent in full, job caught up within ${CATCH_UP_LIMIT_MS} ms)`,
          goal: 'true',
          value: r.sustained,
          met: r.sustained,
        },
        {
          metric: `${r.rate_events_per_s} ev/s: p99 event produced → recommendation committed (ms), exactly-once`,
          goal: '< 100',
          value: r.p99_ms,
          met: r.p99_ms < 100,
        },
        {
          metric: `${r.rate_events_per_s} ev/s: p99 (ms), the seed's budget`,
          goal: '< 200',
          value: r.p99_ms,
          met: r.p99_ms < 200,
        },
      ]),
      ...extraTargets,
    ],
  };
}

async function write(options: LoadOptions, name: string, body: object) {
  await mkdir(options.outputDir, { recursive: true });
  const file = path.join(options.outputDir, `${name}.json`);
  await writeFile(file, `${JSON.stringify(body, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

function commandLine(options: LoadOptions, rates: string): string {
  return (
    `bin/encore bench load ${rates} --ramp ${options.rampSeconds} --hold ${options.holdSeconds} ` +
    `--users ${options.users} --batch ${options.batch} --p99 ${options.p99Ms} --commit-interval ${options.commitIntervalMs}`
  );
}

function describe(r: LoadResult): string {
  return (
    `${r.rate_events_per_s} ev/s: posted ${r.events_posted}, unsent requests ${r.requests_unsent}, ` +
    `collector p99 ${r.collector_p99_ms} ms; ${r.recommendations} recommendations, e2e p50 ${r.p50_ms} ms ` +
    `p99 ${r.p99_ms} ms (n=${r.measured}); caught up ${r.catch_up_ms ?? 'no'} ms; sustained ${r.sustained}` +
    r.thresholds
      .filter((check) => !check.passed)
      .map((check) => `\n  threshold failed: ${check.name} ${check.limit}, was ${check.value}`)
      .join('')
  );
}

/** A load run on an app id and database of its own, deleted afterwards (the results are what is kept). */
async function isolatedRun(base: Config, vegeta: string, rate: number, options: LoadRunOptions) {
  const config = runConfig(base, rate);
  try {
    return await loadRun(config, vegeta, rate, options);
  } finally {
    await deprovision(config);
  }
}

export async function benchLoad(config: Config, options: LoadOptions): Promise<void> {
  const vegeta = await ensureVegeta(config);
  await up(config);
  const before = machine();
  const failed: number[] = [];
  for (const rate of options.rates) {
    const result = await isolatedRun(config, vegeta, rate, options);
    console.log(describe(result));
    if (!result.thresholds_passed) failed.push(result.rate_events_per_s);
    await write(
      options,
      `load-${rate}`,
      report(`load-${rate}`, commandLine(options, `--rates ${rate}`), before, [result]),
    );
  }
  if (options.findMax) {
    const { from, to, step } = options.findMax;
    const steps: LoadResult[] = [];
    for (let rate = from; rate <= to; rate += step) {
      const result = await isolatedRun(config, vegeta, rate, options);
      console.log(describe(result));
      steps.push(result);
      if (!result.sustained) break;
    }
    const max = steps.filter((r) => r.sustained).at(-1)?.rate_events_per_s ?? 0;
    console.log(`maximum sustained rate: ${max} events/s`);
    await write(
      options,
      'load-max',
      report('load-max', commandLine(options, `--find-max ${from}:${to}:${step}`), before, steps, [
        {
          metric: 'maximum sustained events/s (highest step sustained)',
          goal: '>= 5000',
          value: max,
          met: max >= 5000,
        },
      ]),
    );
  }
  // After every result is written: a failed threshold fails the command, as a load test should. The
  // search for the maximum ends on a failing step by design, so it does not count.
  if (failed.length > 0)
    throw new EncoreError(
      ErrorCodes.PROCESSING_FAILED,
      `load: thresholds failed at ${failed.join(', ')} events/s (see above and bench/results)`,
    );
}
