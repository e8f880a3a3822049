/** What the runtime benchmarks share: producing the input, watching a system's progress, stopping it. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import cliProgress from 'cli-progress';
import { Admin, type Consumer, type OutgoingRecord, Producer } from '../../clients/kafka.ts';
import { type Config, endpoints } from '../../core/config.ts';
import type { ListeningEvent } from '../../schemas/types.generated.ts';
import type { BenchSystem } from './systems/system.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Event time of the benchmark inputs: weeks ago, fixed so that an input is reproducible. */
export const T0 = Date.UTC(2026, 10, 1);

/** A playback event; the fields no benchmark job reads are filled in plainly. */
export function benchEvent(
  fields: Pick<ListeningEvent, 'eventId' | 'userId' | 'type' | 'timestamp' | 'songId' | 'positionMs'>,
): ListeningEvent {
  return {
    ...fields,
    seekToMs: null,
    searchQuery: null,
    device: 'MOBILE',
    context: {
      appVersion: '1.0.0',
      os: 'android',
      country: null,
      source: 'PLAYLIST',
      sourceId: null,
      recommendationId: null,
      shuffle: false,
      timezoneOffsetMinutes: 60,
    },
  } as ListeningEvent;
}

/**
 * Records carry their event time (weeks ago, fixed for a reproducible input); with the broker's default
 * 7-day retention, their segments would be deleted under the systems' feet.
 */
export const KEEP_FOREVER = { 'retention.ms': '-1' };

export function progressBar(format: string) {
  return new cliProgress.SingleBar(
    { format, hideCursor: true, noTTYOutput: true, notTTYSchedule: 10_000 },
    cliProgress.Presets.shades_classic,
  );
}

export async function produceAll(
  config: Config,
  label: string,
  total: number,
  records: Iterable<Promise<OutgoingRecord>>,
) {
  const producer = new Producer(config, 'bench-input');
  await producer.connect();
  const bar = progressBar(`  ${label.padEnd(10)} {bar} {value}/{total} {duration}s`);
  bar.start(total, 0);
  let batch: Promise<OutgoingRecord>[] = [];
  let sent = 0;
  const flush = async () => {
    await producer.send(await Promise.all(batch));
    sent += batch.length;
    bar.update(sent);
    batch = [];
  };
  for (const record of records) {
    batch.push(record);
    if (batch.length >= 20_000) await flush();
  }
  await flush();
  bar.stop();
  await producer.disconnect();
}

/** Committed offsets of `group` on `topic`, summed over partitions (what it has processed for good). */
export async function committedSum(consumer: Consumer, topic: string, partitions: number): Promise<number> {
  const offsets = await consumer.committed(
    Array.from({ length: partitions }, (_, partition) => ({ topic, partition })),
  );
  return offsets.reduce((sum, o) => sum + Math.max(0, o.offset), 0);
}

function rssMib(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** All descendants' RSS too: a launcher may start the real process as a child. */
export function treeRssMib(pid: number): number {
  let total = rssMib(pid);
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    for (const child of children) total += treeRssMib(Number(child));
  } catch {
    // the process is gone
  }
  return total;
}

/** Starts a system with the contract's environment (bench/streams/README.md). */
export async function startSystem(
  config: Config,
  system: BenchSystem,
  topics: { events: string; profiles?: string; output: string; applicationId: string },
): Promise<ChildProcess> {
  const { command, args } = await system.prepare();
  return spawn(command, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      ENCORE_LOG_LEVEL: 'warn',
      BENCH_BOOTSTRAP: endpoints(config).kafkaBootstrap,
      BENCH_REGISTRY_URL: endpoints(config).schemaRegistryUrl,
      BENCH_EVENTS_TOPIC: topics.events,
      BENCH_PROFILES_TOPIC: topics.profiles ?? '',
      BENCH_OUTPUT_TOPIC: topics.output,
      BENCH_APPLICATION_ID: topics.applicationId,
      BENCH_GUARANTEE: system.guarantee,
      BENCH_STATE_DIR: mkdtempSync(path.join(tmpdir(), `bench-${system.name}-`)),
    },
  });
}

/** Deletes the run's topics (inputs, outputs and the systems' internal topics all start with its prefix). */
export async function deleteRunTopics(config: Config, prefix: string): Promise<void> {
  const admin = new Admin(config);
  try {
    const names = (await admin.describeCluster()).topics.map((t) => t.name);
    await admin.deleteTopics(names.filter((name) => name.startsWith(`${prefix}-`)));
  } finally {
    await admin.close();
  }
}
