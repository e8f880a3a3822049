/**
 * `encore demo`: the pipeline end to end on the local stack, with a live summary. The listening simulator
 * produces Avro events (and a few malformed records) into Kafka at a chosen rate; the job tracks sessions,
 * computes features and disengagement labels, and the connector writes it all to ClickHouse, where it
 * stays for the analyst queries of docs/ANALYTICS.md.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import cliProgress from 'cli-progress';
import { ClickHouse } from '../clients/clickhouse.ts';
import { Producer } from '../clients/kafka.ts';
import type { Config } from '../core/config.ts';
import { SchemaRegistry } from '../schemas/registry.ts';
import { topicSerde, topics } from '../schemas/topics.ts';
import { produceSimulation } from '../simulator/kafka.ts';
import { DAY, simulate } from '../simulator/model.ts';
import { up } from '../stack/stack.ts';
import { provision, runJob } from '../topology/job.ts';

export interface DemoOptions {
  seconds: number;
  rate: number;
  users: number;
  seed: number;
  signal: AbortSignal;
}

const TABLES = ['events', 'session_features', 'disengagement_labels', 'sessions'] as const;

export async function demo(config: Config, options: DemoOptions): Promise<void> {
  console.log('Starting the local stack (Kafka, schema registry, ClickHouse)…');
  for (const r of await up(config)) console.log(`  ${r.name.padEnd(16)} ${r.action} in ${r.ms} ms`);
  await provision(config);
  await sendMalformed(config);

  const totals = {
    produced: 0,
    consumed: 0,
    deadLettered: 0,
    events: 0,
    session_features: 0,
    disengagement_labels: 0,
    sessions: 0,
  };
  const stopJob = new AbortController();
  const job = runJob(config, stopJob.signal, {
    onCommit: (report) => {
      totals.consumed += report.records;
      totals.deadLettered += report.deadLettered;
    },
    onFlush: ({ rows }) => {
      for (const table of TABLES) totals[table] += rows.get(table) ?? 0;
    },
  });

  const total = options.seconds * options.rate;
  const bar = new cliProgress.SingleBar(
    {
      format:
        '{bar} {percentage}% | {duration}s | produced {produced} ({rate}/s) | ClickHouse: events {events}, ' +
        'scoring points {session_features}, labels {disengagement_labels}, sessions {sessions} | dead letters {deadLettered}',
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { ...totals, rate: 0 });
  const began = Date.now();
  const show = () =>
    bar.update(totals.produced, {
      ...totals,
      rate: Math.round(totals.produced / Math.max((Date.now() - began) / 1000, 0.001)),
    });
  const ticker = setInterval(show, 250);
  try {
    // Two simulated days ending now: a listener's day is compressed into a few seconds of the demo.
    const today = Math.floor(Date.now() / DAY) * DAY;
    const simulation = simulate({
      seed: options.seed,
      users: options.users,
      songs: 5_000,
      start: today - 2 * DAY,
      days: 2,
    });
    await produceSimulation(config, simulation, {
      rate: options.rate,
      limit: total,
      signal: options.signal,
      onProgress: (produced) => {
        totals.produced = produced;
      },
    });
    // Let the job drain what was produced (and the connector write it) before stopping it.
    const drainUntil = Date.now() + 30_000;
    while (totals.events < totals.produced && Date.now() < drainUntil && !options.signal.aborted)
      await sleep(100);
  } finally {
    clearInterval(ticker);
    show();
    bar.stop();
    stopJob.abort();
    await job;
  }
  await summarize(config, totals);
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

async function summarize(config: Config, totals: Record<string, number>) {
  const db = new ClickHouse(config);
  try {
    console.log(
      `\nProduced ${totals.produced} events; the topology committed ${totals.consumed} records ` +
        `(${totals.deadLettered} malformed ones to the dead-letter topic).`,
    );
    const days = await db.query<Record<string, string | number>>(
      'SELECT day, sessions, listeners, avg_session_minutes, skip_rate, exit_share FROM daily_engagement ORDER BY day',
    );
    console.log(`\nClickHouse ${config.clickhouse.database}.daily_engagement (all runs so far):`);
    console.table(days);
    const labels = await db.query<Record<string, string | number>>(
      'SELECT day, scoring_points, positive_share, exits, searches, skip_bursts, silences FROM label_balance ORDER BY day',
    );
    console.log('\nWhat ended listening (disengagement labels):');
    console.table(labels);
    console.log(
      `\nMore questions, with their SQL: docs/ANALYTICS.md. Query it yourself:\n` +
        `  clickhouse-client --port ${config.clickhouse.tcpPort} --database ${config.clickhouse.database}`,
    );
  } finally {
    await db.close();
  }
}
