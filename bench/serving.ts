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
import { Consumer, type OutgoingRecord, Producer } from '../clients/kafka.ts';
import type { Config } from '../core/config.ts';
import { quantile } from '../core/quantile.ts';
import { SchemaRegistry } from '../schemas/registry.ts';
import { topicSerde, topics } from '../schemas/topics.ts';
import { DAY, simulate } from '../simulator/model.ts';
import { up } from '../stack/stack.ts';
import { provision } from '../topology/job.ts';
import { scanVersions } from '../udfs/models.ts';
import type { ModelName } from '../udfs/onnx.ts';

const TICK_MS = 20;

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
  const today = Math.floor(Date.now() / DAY) * DAY;
  const simulation = simulate({
    seed: 11,
    users: options.users,
    songs: 5_000,
    start: today - 3 * DAY,
    days: 3,
  });
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
    const songSerde = topicSerde(registry, t.songs);
    const profileSerde = topicSerde(registry, t.userProfiles);
    const eventSerde = topicSerde(registry, t.listeningEvents);
    const tables: OutgoingRecord[] = [];
    for (const song of simulation.songs)
      tables.push({ topic: t.songs.name, key: song.songId, value: await songSerde.serialize(song) });
    for (const profile of simulation.profiles)
      tables.push({
        topic: t.userProfiles.name,
        key: profile.userId,
        value: await profileSerde.serialize(profile),
      });
    await producer.send(tables);
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
    const events = simulation.events[Symbol.iterator]();
    const began = Date.now();
    let produced = 0;
    let failure: Error | undefined;
    while (produced < total) {
      if (failure) throw failure;
      const due = Math.min(total, Math.floor(((Date.now() - began) / 1000) * rate));
      const batch: OutgoingRecord[] = [];
      for (; produced + batch.length < due; ) {
        const next = events.next();
        if (next.done) throw new Error('the simulation ran out of events; use more --users');
        batch.push({
          topic: t.listeningEvents.name,
          key: next.value.userId,
          value: await eventSerde.serialize(next.value),
        });
        producedAt.set(next.value.eventId, Date.now());
      }
      if (batch.length > 0) producer.send(batch).catch((error: Error) => (failure ??= error));
      produced += batch.length;
      bar.update(produced, { recs: recommendations, measured: latencies.length });
      await sleep(TICK_MS);
    }
    await sleep(3000); // the last triggers' recommendations
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
