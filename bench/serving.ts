/**
 * `encore bench serving`: end-to-end recommendation latency on the local stack. The job runs as `encore run`
 * in its own process (exactly-once, the trained models in serving.modelsDir); simulated listening goes into
 * Kafka at a fixed rate; a read_committed consumer of the recommendations topic notes when each pushed
 * recommendation becomes readable. Latency = that moment − when its triggering event was handed to the
 * producer (so it includes the producer's linger, the broker, the job's poll, inference, the transaction
 * commit and the consumer's fetch). The first seconds of each run (group join, restoration) are not counted.
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import cliProgress from 'cli-progress';
import { spawnEncore, stopChild } from '../cli/child.ts';
import { Consumer, Producer } from '../clients/kafka.ts';
import type { Config } from '../core/config.ts';
import { quantile } from '../core/quantile.ts';
import { SchemaRegistry } from '../schemas/registry.ts';
import { topicSerde, topics } from '../schemas/topics.ts';
import { firstEventTime, producePaced, produceTables, recentSimulation } from '../simulator/kafka.ts';
import { up } from '../stack/stack.ts';
import { deprovision, provision } from '../topology/job.ts';
import { scanVersions } from '../udfs/models.ts';
import type { ModelName } from '../udfs/onnx.ts';

export interface ServingBenchOptions {
  rates: number[];
  seconds: number;
  warmupSeconds: number;
  users: number;
  commitIntervalMs: number;
  output: string;
}

interface RateResult {
  system: string;
  rate_events_per_s: number;
  events: number;
  recommendations: number;
  measured: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  appended_to_generated: { p50_ms: number; p99_ms: number };
  generated_to_committed_read: { p50_ms: number; p99_ms: number };
  paths: Record<string, number>;
}

/** A run ends once no recommendation has arrived for this long after the last event... */
const QUIET_MS = 5_000;
/** ...or this long after it, for a job far behind. */
const DRAIN_LIMIT_MS = 180_000;

const percentile = (sorted: number[], p: number) =>
  sorted.length === 0 ? Number.NaN : quantile(sorted, p / 100);

/** What the job will serve first: the newest complete version folder. */
async function newestVersion(config: Config, model: ModelName): Promise<string | undefined> {
  return (await scanVersions(config.serving.modelsDir, model)).complete.at(-1);
}

function startJob(config: Config): ChildProcess {
  return spawnEncore('run', {
    appId: config.appId,
    'clickhouse.database': config.clickhouse.database,
    'metrics.port': 0,
    'streams.commitIntervalMs': config.streams.commitIntervalMs,
    'streams.instanceId': 'bench-serving',
    'log.level': 'warn',
  });
}

async function runRate(base: Config, rate: number, options: ServingBenchOptions): Promise<RateResult> {
  const suffix = randomUUID().slice(0, 8);
  const config: Config = {
    ...base,
    appId: `bench-serving-${rate}-${suffix}`,
    clickhouse: { ...base.clickhouse, database: `bench_serving_${suffix}` },
    streams: { ...base.streams, guarantee: 'exactly-once', commitIntervalMs: options.commitIntervalMs },
  };
  const t = topics(config);
  await provision(config);
  const registry = new SchemaRegistry(config);
  const producer = new Producer(config, 'bench-serving');
  const reader = new Consumer(config, 'bench-serving-reader', {
    groupId: `${config.appId}-reader`,
    topics: [t.recommendations.name],
    isolation: 'read_committed',
    fetchWaitMaxMs: config.streams.fetchWaitMaxMs,
  });
  const total = rate * (options.seconds + options.warmupSeconds);
  const simulation = recentSimulation({ seed: 11, users: options.users, songs: 5_000 });
  const producedAt = new Map<string, number>();
  const latencies: number[] = [];
  /** The two halves: until the recommender built the list (generatedAt), and from there until readable. */
  const toGenerated: number[] = [];
  const generatedToRead: number[] = [];
  const paths: Record<string, number> = {};
  let recommendations = 0;
  const job = startJob(config);
  const stopReading = new AbortController();
  try {
    await producer.connect();
    await reader.connect();
    const eventSerde = topicSerde(registry, t.listeningEvents);
    await produceTables(config, producer, registry, simulation, firstEventTime(simulation.events));
    const recommendationSerde = topicSerde(registry, t.recommendations);
    const measureFrom = Date.now() + options.warmupSeconds * 1000;
    const reading = (async () => {
      while (!stopReading.signal.aborted) {
        for (const record of await reader.poll(500, 20)) {
          const arrived = Date.now();
          const recommendation = await recommendationSerde.deserialize(record.value);
          recommendations++;
          paths[recommendation.path] = (paths[recommendation.path] ?? 0) + 1;
          const sent = producedAt.get(recommendation.triggerEventId ?? '');
          if (sent !== undefined && sent >= measureFrom) {
            latencies.push(arrived - sent);
            toGenerated.push(recommendation.generatedAt - sent);
            generatedToRead.push(arrived - recommendation.generatedAt);
          }
        }
      }
    })();
    const bar = new cliProgress.SingleBar(
      {
        format: `  ${rate} ev/s {bar} {value}/{total} events | recommendations {recs} | measured {measured}`,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { recs: 0, measured: 0 });
    let queued = 0;
    async function* records() {
      for (const event of simulation.events) {
        const record = {
          topic: t.listeningEvents.name,
          key: event.userId,
          value: await eventSerde.serialize(event),
        };
        producedAt.set(event.eventId, Date.now());
        bar.update(++queued, { recs: recommendations, measured: latencies.length });
        yield record;
      }
    }
    const produced = await producePaced(producer, records(), { rate, limit: total });
    if (produced < total) throw new Error('the simulation ran out of events; use more --users');
    // The last triggers' recommendations: a job that fell behind still delivers them, late, and they count.
    // Reading stops once none has come for QUIET_MS (or after DRAIN_LIMIT_MS).
    const drainUntil = Date.now() + DRAIN_LIMIT_MS;
    let seen = -1;
    while (seen !== recommendations && Date.now() < drainUntil) {
      seen = recommendations;
      await sleep(QUIET_MS);
    }
    bar.update(produced, { recs: recommendations, measured: latencies.length });
    bar.stop();
    stopReading.abort();
    await reading;
    for (const list of [latencies, toGenerated, generatedToRead]) list.sort((a, b) => a - b);
    return {
      system: `encore-eos-commit-${options.commitIntervalMs}ms`,
      rate_events_per_s: rate,
      events: produced,
      recommendations,
      measured: latencies.length,
      p50_ms: percentile(latencies, 50),
      p99_ms: percentile(latencies, 99),
      max_ms: latencies.at(-1) ?? Number.NaN,
      appended_to_generated: { p50_ms: percentile(toGenerated, 50), p99_ms: percentile(toGenerated, 99) },
      generated_to_committed_read: {
        p50_ms: percentile(generatedToRead, 50),
        p99_ms: percentile(generatedToRead, 99),
      },
      paths,
    };
  } finally {
    await stopChild(job);
    await producer.disconnect();
    await reader.disconnect();
    registry.close();
    await deprovision(config);
  }
}

export async function benchServing(config: Config, options: ServingBenchOptions): Promise<void> {
  const disengagement = await newestVersion(config, 'disengagement');
  const userTower = await newestVersion(config, 'user-tower');
  if (!disengagement || !userTower)
    throw new Error(`no trained models in ${config.serving.modelsDir}: run \`bin/encore train\` first`);
  console.log(`models: disengagement ${disengagement}, user-tower ${userTower}`);
  await up(config);
  const load = loadavg().map((l) => Math.round(l * 100) / 100);
  const results: RateResult[] = [];
  for (const rate of options.rates) results.push(await runRate(config, rate, options));
  const targets = results.flatMap((r) => [
    {
      metric: `${r.system} at ${r.rate_events_per_s} ev/s: p99 event appended → recommendation committed (ms)`,
      goal: '< 100',
      value: r.p99_ms,
      met: r.p99_ms < 100,
    },
    {
      metric: `${r.system} at ${r.rate_events_per_s} ev/s: p99 (ms), the seed's budget`,
      goal: '< 200',
      value: r.p99_ms,
      met: r.p99_ms < 200,
    },
  ]);
  const report = {
    name: 'serving-latency',
    command: `bin/encore bench serving --rates ${options.rates.join(',')} --seconds ${options.seconds} --commit-interval ${options.commitIntervalMs}`,
    machine: `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB; load average before ${load.join(' ')}`,
    date: new Date().toISOString().slice(0, 10),
    models: { disengagement, userTower },
    results,
    targets,
  };
  await mkdir(path.dirname(options.output), { recursive: true });
  await writeFile(options.output, `${JSON.stringify(report, null, 2)}\n`);
  for (const r of results)
    console.log(
      `${r.rate_events_per_s} ev/s: ${r.recommendations} recommendations, p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms (n=${r.measured}); ` +
        `to generated p50/p99 ${r.appended_to_generated.p50_ms}/${r.appended_to_generated.p99_ms} ms, ` +
        `generated to read ${r.generated_to_committed_read.p50_ms}/${r.generated_to_committed_read.p99_ms} ms`,
    );
  console.log(`wrote ${options.output}`);
}
