import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import prand, { type RandomGenerator } from 'pure-rand';
import { stopChild } from '../../cli/child.ts';
import { Admin, Consumer, readPartition } from '../../clients/kafka.ts';
import type { Config } from '../../core/config.ts';
import { Contracts } from '../../schemas/contracts.ts';
import { SchemaRegistry } from '../../schemas/registry.ts';
import { AvroSerde } from '../../schemas/serde.ts';
import { valueSubject } from '../../schemas/topics.ts';
import type { ListeningEvent, UserProfile } from '../../schemas/types.generated.ts';
import { up } from '../../stack/stack.ts';
import {
  benchEvent,
  committedSum,
  deleteRunTopics,
  KEEP_FOREVER,
  produceAll,
  progressBar,
  startSystem,
  T0,
  treeRssMib,
} from './harness.ts';
import { kafkaStreamsJava } from './systems/kafka-streams-java.ts';
import { nodefluent } from './systems/nodefluent.ts';
import type { BenchSystem } from './systems/system.ts';
import { encoreAtLeastOnce, encoreExactlyOnce, rawPassthrough } from './systems/typescript.ts';

const _ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MINUTE = 60_000;
const GAP = 30 * MINUTE;
export const SYSTEMS: BenchSystem[] = [
  rawPassthrough,
  encoreAtLeastOnce,
  encoreExactlyOnce,
  kafkaStreamsJava,
  nodefluent,
];

export interface StreamsBenchOptions {
  events: number;
  users: number;
  partitions: number;
  systems: string[];
  seed: number;
  /** Longest a system may take for the whole input before it is reported as failed. */
  timeoutMs: number;
  output: string;
}

interface SystemResult {
  system: string;
  guarantee: string;
  events: number;
  events_per_s: number | null;
  seconds: number | null;
  output_records: number;
  correct: boolean;
  problems: string[];
  peak_rss_mib: number;
  p50_ms: null;
  p99_ms: null;
}

/** Per user: the final event count of each session, in order (what every system must end with). */
type ExpectedSessions = Map<string, number[]>;

function random(rng: RandomGenerator, max: number): number {
  return prand.unsafeUniformIntDistribution(0, max - 1, rng);
}

/**
 * The input, in event-time order as a live stream would be: time advances a minute per round; a user
 * listens a song per round, and one pause in eight lasts 31 to 150 minutes, which starts a new session.
 * Each user keeps a fixed offset of under a minute within the round, so no event is ever late.
 */
function* generateEvents(
  options: StreamsBenchOptions,
  expected: ExpectedSessions,
): Generator<ListeningEvent> {
  const rng = prand.xoroshiro128plus(options.seed);
  const perUser = Math.ceil(options.events / options.users);
  // due[r]: the users whose next event falls in round r.
  const due: number[][] = [Array.from({ length: options.users }, (_, u) => u)];
  const lastRound = new Array<number>(options.users).fill(-1);
  const sent = new Array<number>(options.users).fill(0);
  let emitted = 0;
  for (let round = 0; emitted < options.events; round++) {
    for (const u of due[round] ?? []) {
      if (emitted >= options.events) break;
      const userId = `user-${u}`;
      const sessions = expected.get(userId) ?? [];
      if (lastRound[u] === -1 || round - lastRound[u]! > GAP / MINUTE) sessions.push(1);
      else sessions[sessions.length - 1]! += 1;
      expected.set(userId, sessions);
      lastRound[u] = round;
      const count = ++sent[u]!;
      emitted++;
      if (count < perUser) {
        const pause = random(rng, 8) === 0 ? GAP / MINUTE + 1 + random(rng, 120) : 1 + random(rng, 4);
        due[round + pause] ??= [];
        due[round + pause]!.push(u);
      }
      yield benchEvent({
        eventId: `e-${u}-${count}`,
        userId,
        type: random(rng, 4) === 0 ? 'SKIP' : 'PLAY',
        timestamp: T0 + round * MINUTE + (u % 60) * 1000,
        songId: `song-${random(rng, 50_000)}`,
        positionMs: random(rng, 200_000),
      });
    }
    due[round] = [];
  }
}

function profile(u: number): UserProfile {
  return {
    userId: `user-${u}`,
    createdAt: T0 - 365 * 24 * 60 * MINUTE,
    country: ['SE', 'DE', 'FR', 'US', 'BR'][u % 5]!,
    preferredLanguage: null,
    birthYear: null,
    subscription: 'PREMIUM',
    allowExplicit: true,
    favouriteGenres: [],
    updatedAt: T0 - 24 * 60 * MINUTE,
  } as UserProfile;
}

/** Final count per user and session start, read from the output (read_committed), then compared. */
async function checkOutput(
  config: Config,
  topic: string,
  partitions: number,
  expected: ExpectedSessions | undefined,
): Promise<{ records: number; problems: string[] }> {
  const finals = new Map<string, Map<number, number>>();
  let records = 0;
  for (let partition = 0; partition < partitions; partition++) {
    records += await readPartition(config, topic, partition, {
      onRecord: (record) => {
        if (!expected) return;
        const value = JSON.parse(record.value!.toString()) as { user: string; start: number; count: number };
        const sessions = finals.get(value.user) ?? new Map<number, number>();
        sessions.set(value.start, value.count);
        finals.set(value.user, sessions);
      },
    });
  }
  const problems: string[] = [];
  for (const [user, counts] of expected ?? []) {
    const seen = [...(finals.get(user) ?? new Map()).entries()].sort((a, b) => a[0] - b[0]).map(([, n]) => n);
    if (seen.join(',') !== counts.join(',')) {
      problems.push(`${user}: expected sessions ${counts.join(',')}, got ${seen.join(',') || 'none'}`);
      if (problems.length >= 5) break;
    }
  }
  return { records, problems };
}

interface RunContext {
  config: Config;
  options: StreamsBenchOptions;
  eventsTopic: string;
  profilesTopic: string;
  prefix: string;
  expected: ExpectedSessions;
}

async function runSystem(ctx: RunContext, system: BenchSystem): Promise<SystemResult> {
  const { config, options } = ctx;
  const outputTopic = `${ctx.prefix}-${system.name}-out`;
  const applicationId = `${ctx.prefix}-${system.name}`;
  const admin = new Admin(config);
  await admin.ensureTopics([
    { name: outputTopic, partitions: options.partitions, replicationFactor: 1, config: KEEP_FOREVER },
  ]);
  await admin.close();
  const child = await startSystem(config, system, {
    events: ctx.eventsTopic,
    profiles: ctx.profilesTopic,
    output: outputTopic,
    applicationId,
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  child.stdout!.resume();
  const monitor = new Consumer(config, 'bench-monitor', { groupId: applicationId, topics: [] });
  await monitor.connect().catch(async (error: unknown) => {
    await stopChild(child);
    throw error;
  });
  const bar = progressBar(`  ${system.name.padEnd(18)} {bar} {value}/{total} {rate}/s`);
  bar.start(options.events, 0, { rate: 0 });
  let first: { at: number; committed: number } | undefined;
  let last: { at: number; committed: number } | undefined;
  let peakRss = 0;
  const deadline = Date.now() + options.timeoutMs;
  const problems: string[] = [];
  try {
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        problems.push(`exited early (${child.exitCode ?? child.signalCode}): ${stderr.trim().slice(-600)}`);
        break;
      }
      const committed = await committedSum(monitor, ctx.eventsTopic, options.partitions);
      const at = performance.now();
      peakRss = Math.max(peakRss, treeRssMib(child.pid!));
      if (!first && committed > 0) first = { at, committed };
      if (first) last = { at, committed };
      const rate =
        first && at > first.at ? Math.round((committed - first.committed) / ((at - first.at) / 1000)) : 0;
      bar.update(committed, { rate });
      if (committed >= options.events) break;
      await sleep(200);
    }
  } finally {
    bar.stop();
    // Also when sampling failed: a system left running would outlive the benchmark.
    await Promise.allSettled([monitor.disconnect(), stopChild(child)]);
  }
  const done = last !== undefined && last.committed >= options.events;
  if (!done && problems.length === 0) {
    problems.push(
      `timed out after ${options.timeoutMs} ms at ${last?.committed ?? 0} events: ${stderr.trim().slice(-600)}`,
    );
  }
  // The passthrough copies events; it computes no sessions, it only has to move every record.
  const passthrough = system.name === rawPassthrough.name;
  const output = await checkOutput(
    config,
    outputTopic,
    options.partitions,
    passthrough ? undefined : ctx.expected,
  );
  problems.push(...output.problems);
  if (passthrough && output.records < options.events)
    problems.push(`copied ${output.records} of ${options.events} records`);
  const seconds = done && last!.at > first!.at ? (last!.at - first!.at) / 1000 : null;
  return {
    system: system.name,
    guarantee: system.guarantee,
    events: options.events,
    events_per_s: seconds ? Math.round((last!.committed - first!.committed) / seconds) : null,
    seconds: seconds === null ? null : Math.round(seconds * 10) / 10,
    output_records: output.records,
    correct: done && problems.length === 0,
    problems,
    peak_rss_mib: Math.round(peakRss),
    p50_ms: null,
    p99_ms: null,
  };
}

export async function benchStreams(config: Config, options: StreamsBenchOptions): Promise<void> {
  await up(config);
  const prefix = `bench-${Date.now().toString(36)}`;
  const eventsTopic = `${prefix}-events`;
  const profilesTopic = `${prefix}-profiles`;
  const admin = new Admin(config);
  await admin.ensureTopics([
    { name: eventsTopic, partitions: options.partitions, replicationFactor: 1, config: KEEP_FOREVER },
    {
      name: profilesTopic,
      partitions: options.partitions,
      replicationFactor: 1,
      config: { 'cleanup.policy': 'compact' },
    },
  ]);
  await admin.close();
  const registry = new SchemaRegistry(config);
  const events = new AvroSerde(registry, valueSubject(eventsTopic), Contracts.listeningEvent);
  const profiles = new AvroSerde(registry, valueSubject(profilesTopic), Contracts.userProfile);
  console.log(
    `Input: ${options.events} events, ${options.users} users, ${options.partitions} partitions (${prefix})`,
  );
  await produceAll(
    config,
    'profiles',
    options.users,
    (function* () {
      for (let u = 0; u < options.users; u++) {
        const value = profile(u);
        // Older than every event: a system that orders by timestamp loads the table first.
        yield profiles.serialize(value).then((bytes) => ({
          topic: profilesTopic,
          key: value.userId,
          value: bytes,
          timestamp: value.updatedAt,
        }));
      }
    })(),
  );
  const expected: ExpectedSessions = new Map();
  await produceAll(
    config,
    'events',
    options.events,
    (function* () {
      for (const event of generateEvents(options, expected)) {
        yield events.serialize(event).then((bytes) => ({
          topic: eventsTopic,
          key: event.userId,
          value: bytes,
          timestamp: event.timestamp,
        }));
      }
    })(),
  );
  const sessions = [...expected.values()].reduce((n, s) => n + s.length, 0);
  console.log(`  ${sessions} sessions expected`);

  const ctx: RunContext = { config, options, eventsTopic, profilesTopic, prefix, expected };
  const results: SystemResult[] = [];
  for (const system of SYSTEMS.filter((s) => options.systems.includes(s.name))) {
    const result = await runSystem(ctx, system);
    results.push(result);
    console.log(
      `  ${system.name.padEnd(18)} ${String(result.events_per_s ?? '-').padStart(8)} events/s  ${result.correct ? 'correct' : `WRONG: ${result.problems.join('; ')}`}`,
    );
  }
  registry.close();
  await deleteRunTopics(config, prefix);
  writeResults(options, results, sessions);
}

function writeResults(options: StreamsBenchOptions, results: SystemResult[], sessions: number) {
  const rate = (name: string) => results.find((r) => r.system === name && r.correct)?.events_per_s ?? null;
  const ratio = (a: string, b: string) => {
    const x = rate(a);
    const y = rate(b);
    return x !== null && y !== null ? Math.round((x / y) * 100) / 100 : null;
  };
  const targets = [
    {
      metric: 'encore-eos events_per_s / raw-passthrough events_per_s',
      goal: '>= 0.5',
      value: ratio('encore-eos', 'raw-passthrough'),
      min: 0.5,
    },
    {
      metric: 'encore-eos events_per_s / kafka-streams-java events_per_s',
      goal: '>= 1',
      value: ratio('encore-eos', 'kafka-streams-java'),
      min: 1,
    },
    {
      metric: 'encore-alos events_per_s / nodefluent events_per_s',
      goal: '>= 5',
      value: ratio('encore-alos', 'nodefluent'),
      min: 5,
    },
  ].map(({ min, ...t }) => ({ ...t, met: t.value !== null && t.value >= min }));
  const file = {
    name: 'streams-runtime',
    command: `bin/encore bench streams --events ${options.events} --users ${options.users} --partitions ${options.partitions}`,
    machine: `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB`,
    date: new Date().toISOString().slice(0, 10),
    input: { events: options.events, users: options.users, partitions: options.partitions, sessions },
    results,
    targets,
  };
  writeFileSync(options.output, `${JSON.stringify(file, null, 2)}\n`);
  console.log(`\nWrote ${options.output}`);
  for (const t of targets)
    console.log(`  ${t.met ? 'met    ' : 'MISSED '} ${t.metric} = ${t.value} (${t.goal})`);
}
