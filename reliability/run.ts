/**
 * One reliability run on the local stack: an application of its own (app id, topics, ClickHouse database),
 * the job as `encore run` child processes (instance 1, and others a fault starts), the plan's traffic
 * produced at a rate, and read_committed readers of the recommendations and dead-letter topics. A fault
 * works on the run while the traffic flows (kills and restarts instances, stops servers) and asks it how
 * long catching up took; afterwards the run compares what came out with what the plan must produce.
 *
 * Lost and duplicated, per ledger (each compared by id with the expected outputs, expected.ts):
 *   events            the ClickHouse `events` table (FINAL): every valid event sent, once
 *   scoring points    `session_features` (FINAL): every event but an exit went through the topology once
 *   recommendations   the recommendations topic under read_committed: every expected id, once; and the
 *                     `recommendations` table (FINAL) holds each once
 *   dead letters      the dead-letter topic under read_committed: every malformed record, once, with the
 *                     reason its kind must get; and no valid record
 * Anything found that was not expected (an accepted malformed record, a recommendation nobody triggered)
 * is reported too and fails the run.
 *
 * Catching up, after a fault ends: the first moment the job is back within its usual distance of live,
 * that is every recommendation expected for the inputs sent until a second before has been read, and
 * ClickHouse holds every event and scoring point of the inputs sent until three seconds before (its
 * connector flushes every second). So a recovery is never measured below those margins.
 *
 * The harness's own Kafka clients (the traffic producer, the readers) are not under test: across a broker
 * restart the traffic is held (generated on, handed over once the broker is back) and they start afresh,
 * since librdkafka clients that lived through a restart under load sometimes stalled (a producer whose
 * records all timed out, a reader that read nothing more) while fresh ones worked. The job gets no help.
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { exited, spawnEncore, stopChild } from '../cli/child.ts';
import { ClickHouse, sqlString } from '../clients/clickhouse.ts';
import { type ConsumedRecord, followTopic, type OutgoingRecord, Producer } from '../clients/kafka.ts';
import type { Config } from '../core/config.ts';
import { logger } from '../core/log.ts';
import { SchemaRegistry } from '../schemas/registry.ts';
import { AvroSerde } from '../schemas/serde.ts';
import { topicSerde, topics, valueSubject } from '../schemas/topics.ts';
import { firstEventTime, producePaced, produceTables } from '../simulator/kafka.ts';
import { deprovision, provision } from '../topology/job.ts';
import { type Expected, expectedOutputs, type Ledger } from './expected.ts';
import { asVersion2, LISTENING_EVENT_V2, type Plan, PROBE_HEADER, type Probe } from './plan.ts';

const log = logger('reliability');

/** Everything before this event time: the whole plan. */
const EVERYTHING = Number.MAX_SAFE_INTEGER;
const POLL_MS = 500;
/** How far behind live each path may be and still count as caught up: its usual latency, with room. */
const CAUGHT_UP_WITHIN = { recommendationsMs: 1_000, clickhouseMs: 3_000 };
/** How often the traffic notes how far it got (what catching up is measured against). */
const FRONTIER_SAMPLE_MS = 50;

export interface RunOptions {
  /** Names the run's application and database (the fault, say). */
  name: string;
  /** Inputs per second (events, requests and malformed records together). */
  rate: number;
  partitions: number;
  /** The longest a catch-up may take before the run counts as not recovered. */
  catchUpTimeoutMs: number;
  /** Log level of the job's processes. */
  jobLogLevel: Config['log']['level'];
  /** Leave the run's topics and database in place (to look at them). */
  keep?: boolean;
}

export interface CatchUp {
  /** When measuring began (the fault's end), ms since the epoch. */
  from: number;
  /** Until the last expected recommendation was read; null: not within the timeout. */
  recommendationsMs: number | null;
  /** Until ClickHouse held every event and scoring point; null: not within the timeout. */
  clickhouseMs: number | null;
}

export interface LedgerCheck {
  expected: number;
  found: number;
  lost: number;
  duplicated: number;
  /** Found but never expected. */
  unexpected: number;
  /** A few of the ids concerned, to start looking from. */
  examples: string[];
}

export interface Verdict {
  events: LedgerCheck;
  scoringPoints: LedgerCheck;
  recommendationsRead: LedgerCheck;
  recommendationsTable: LedgerCheck;
  deadLetters: LedgerCheck & { wrongReason: number };
  /** Rows the tables received more than once (replays after a crash), folded by ReplacingMergeTree. */
  replayedRows: { events: number; scoringPoints: number; recommendations: number };
  /** The model versions the live recommendations name (should be the driver's). */
  liveModels: { disengagement: string[]; userTower: string[] };
}

export interface Progress {
  /** Valid events handed to the producer. */
  events: number;
  recommendationsRead: number;
  deadLetters: number;
}

interface Instance {
  child: ChildProcess;
  /** Set when the harness stops or kills it; an exit without it is the job failing. */
  stopping: boolean;
}

interface Letter {
  reason: string;
  copies: number;
}

/** A job process that exited without being told to. */
export interface UnexpectedExit {
  instance: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
}

export class LiveRun {
  readonly config: Config;
  readonly plan: Plan;
  readonly expected: Expected;
  readonly options: RunOptions;
  readonly unexpectedExits: UnexpectedExit[] = [];
  /** The malformed records sent, by probe id. */
  readonly probesSent = new Map<number, Probe>();
  /** The writer schema ids of the events sent, by schema version. */
  readonly writerSchemaIds: Partial<Record<1 | 2, number>> = {};
  private readonly registry: SchemaRegistry;
  private readonly db: ClickHouse;
  private producer: Producer;
  /** Sends handed to the producer and not settled yet. */
  private readonly sending = new Set<Promise<void>>();
  /** While the broker restarts: sends wait for it. */
  private held: { until: Promise<void>; release: () => void } | undefined;
  /** Per topic and partition, the offset after the last record read (readers that start over skip to it). */
  private readonly readTo = new Map<string, number>();
  private readonly instances = new Map<number, Instance>();
  private readonly read = new Map<string, number>();
  private readonly letters = new Map<number, Letter>();
  private readonly strayLetters: string[] = [];
  private lettersRead = 0;
  private readonly liveModels = { disengagement: new Set<string>(), userTower: new Set<string>() };
  private stopReading = new AbortController();
  private reading: Promise<void> = Promise.resolve();
  private eventsQueued = 0;
  /**
   * When the traffic got how far: the event time of the latest valid event handed to the producer (every
   * earlier one was handed over), sampled as it goes.
   */
  private readonly frontiers: { at: number; eventTime: number }[] = [];
  private readonly waiters: { events: number; resolve: () => void }[] = [];
  /** Points (events sent) the traffic waits at until a fault has struck there: see `waitAt`. */
  private readonly barriers = new Map<number, { lifted: Promise<void>; lift: () => void }>();
  private trafficOver = false;
  /** ClickHouse was found to hold every expected event and scoring point before this event time. */
  private clickhouseComplete = Number.NEGATIVE_INFINITY;

  private constructor(config: Config, plan: Plan, expected: Expected, options: RunOptions) {
    this.config = config;
    this.plan = plan;
    this.expected = expected;
    this.options = options;
    this.registry = new SchemaRegistry(config);
    this.db = new ClickHouse(config);
    this.producer = new Producer(config, 'reliability-traffic');
  }

  /**
   * The run's own application, its expected outputs (computed first, in the test driver, so the driver does
   * not compete with the job for CPU), its topics, catalog and profiles, the reader, and instance 1.
   */
  static async prepare(
    base: Config,
    plan: Plan,
    options: RunOptions,
    onDriverProgress?: (inputs: number) => void,
  ): Promise<LiveRun> {
    const suffix = randomUUID().slice(0, 8);
    const config: Config = {
      ...base,
      appId: `reliability-${options.name}-${suffix}`,
      clickhouse: {
        ...base.clickhouse,
        database: `reliability_${options.name.replaceAll('-', '_')}_${suffix}`,
      },
      kafka: { ...base.kafka, partitions: options.partitions },
      serving: { ...base.serving, modelsDir: path.resolve(base.serving.modelsDir) },
    };
    const expected = await expectedOutputs(config, plan, onDriverProgress);
    log.debug(
      {
        run: config.appId,
        events: expected.events.size,
        scoringPoints: expected.scoringPoints.size,
        recommendations: expected.recommendations.size,
        nearThreshold: expected.nearThreshold.size,
        ms: expected.driverMs,
      },
      'expected outputs computed',
    );
    const run = new LiveRun(config, plan, expected, options);
    await provision(config);
    await run.producer.connect();
    await produceTables(
      config,
      run.producer,
      run.registry,
      plan.simulation,
      firstEventTime(plan.validEvents()),
    );
    run.reading = run.readOutputs(run.stopReading.signal);
    run.startInstance(1);
    return run;
  }

  /** Valid events handed to the producer so far. */
  get eventsSent(): number {
    return this.eventsQueued;
  }

  /**
   * Makes the traffic stop after `events` valid events until `go(events)`: a fault decides where it strikes
   * before the traffic starts, so that however long the faults before it take (a slow recovery on a busy
   * machine), the traffic has not ended when it strikes. The pace resumes where it stopped, without a burst.
   */
  waitAt(events: number): void {
    let lift = () => {};
    const lifted = new Promise<void>((resolve) => (lift = resolve));
    this.barriers.set(events, { lifted, lift });
  }

  /** Lets the traffic on past `events` (see `waitAt`); nothing if it was not told to wait there. */
  go(events: number): void {
    this.barriers.get(events)?.lift();
    this.barriers.delete(events);
  }

  /** Resolves once `events` valid events have been handed to the producer. */
  reached(events: number): Promise<void> {
    if (this.eventsQueued >= events || this.trafficOver) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ events, resolve }));
  }

  progress(): Progress {
    return { events: this.eventsQueued, recommendationsRead: this.read.size, deadLetters: this.lettersRead };
  }

  /** Starts instance `id` of the job (instance ids are kept across restarts: the new one fences the old). */
  startInstance(id: number): void {
    const child = spawnEncore('run', {
      appId: this.config.appId,
      'clickhouse.database': this.config.clickhouse.database,
      'kafka.partitions': this.config.kafka.partitions,
      'metrics.port': 0,
      'streams.instanceId': `instance-${id}`,
      'serving.modelsDir': this.config.serving.modelsDir,
      // Frequent samples: the rebalance fault reads each instance's tasks from them.
      'sinks.operatorMetricsIntervalMs': 1000,
      'log.level': this.options.jobLogLevel,
    });
    const instance: Instance = { child, stopping: false };
    this.instances.set(id, instance);
    child.once('exit', (code, signal) => {
      if (instance.stopping) return;
      log.error({ run: this.config.appId, instance: id, code, signal }, 'a job instance exited by itself');
      this.unexpectedExits.push({ instance: id, code, signal, at: Date.now() });
    });
    log.debug({ run: this.config.appId, instance: id, pid: child.pid }, 'job instance started');
  }

  /** SIGKILL: no shutdown, no commit. */
  async killInstance(id: number): Promise<void> {
    const instance = this.instance(id);
    instance.stopping = true;
    instance.child.kill('SIGKILL');
    await exited(instance.child);
    log.debug({ run: this.config.appId, instance: id }, 'job instance killed');
  }

  /** SIGTERM: the instance commits what it processed and leaves its group. */
  async stopInstance(id: number): Promise<void> {
    const instance = this.instance(id);
    instance.stopping = true;
    await stopChild(instance.child);
    this.instances.delete(id);
    log.debug({ run: this.config.appId, instance: id }, 'job instance stopped');
  }

  /** Whether instance `id` is running (it may have exited by itself). */
  running(id: number): boolean {
    const child = this.instances.get(id)?.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  private instance(id: number): Instance {
    const instance = this.instances.get(id);
    if (!instance) throw new Error(`no job instance ${id} in run ${this.config.appId}`);
    return instance;
  }

  /** Produces the whole plan at the run's rate; resolves once every record is acknowledged. */
  async sendTraffic(onProgress?: (progress: Progress) => void): Promise<void> {
    try {
      await producePaced({ send: (records) => this.send(records) }, this.records(onProgress), {
        rate: this.options.rate,
        pauseBefore: () => this.barriers.get(this.eventsQueued)?.lifted,
      });
    } finally {
      // The plan may hold fewer events than a fault waits for: the end of the traffic is as far as it gets.
      for (const waiter of this.waiters.splice(0)) waiter.resolve();
      this.trafficOver = true;
    }
  }

  /** Hands records to the current producer, or once the broker is back while it restarts. */
  private send(records: readonly OutgoingRecord[]): Promise<void> {
    const sent = this.held
      ? this.held.until.then(() => this.producer.send(records))
      : this.producer.send(records);
    this.sending.add(sent);
    const settled = () => this.sending.delete(sent);
    sent.then(settled, settled);
    return sent;
  }

  /** Before the broker stops: later records wait, and those already handed over are acknowledged. */
  async holdTraffic(): Promise<void> {
    let release = () => {};
    const until = new Promise<void>((resolve) => (release = resolve));
    this.held = { until, release };
    await Promise.allSettled([...this.sending]);
  }

  /** Once the broker is back: a fresh producer and fresh readers, then the records held meanwhile. */
  async resumeTraffic(): Promise<void> {
    const previous = this.producer;
    this.producer = new Producer(this.config, 'reliability-traffic');
    await this.producer.connect();
    await previous.disconnect();
    this.stopReading.abort();
    await this.reading;
    this.stopReading = new AbortController();
    this.reading = this.readOutputs(this.stopReading.signal);
    const held = this.held;
    this.held = undefined;
    held?.release();
  }

  /** The plan's inputs as records, noting each as it is handed over. */
  private async *records(onProgress?: (progress: Progress) => void): AsyncGenerator<OutgoingRecord> {
    const t = topics(this.config);
    const events = { 1: topicSerde(this.registry, t.listeningEvents), 2: this.version2Serde() };
    const requests = topicSerde(this.registry, t.recommendationRequests);
    for (const input of this.plan.inputs()) {
      if (input.kind === 'malformed') {
        const { probe } = input;
        this.probesSent.set(probe.id, probe);
        yield {
          topic: t.listeningEvents.name,
          key: probe.key,
          value: await probe.value(events[1]),
          headers: { [PROBE_HEADER]: String(probe.id) },
        };
      } else if (input.kind === 'request') {
        const { request } = input;
        yield {
          topic: t.recommendationRequests.name,
          key: request.userId,
          value: await requests.serialize(request),
        };
      } else {
        const { event, index, writer } = input;
        const value =
          writer === 2
            ? await events[2].serialize(asVersion2(event, index))
            : await events[1].serialize(event);
        this.writerSchemaIds[writer] ??= await events[writer].register();
        this.queued(event.timestamp);
        yield { topic: t.listeningEvents.name, key: event.userId, value };
      }
      onProgress?.(this.progress());
    }
  }

  /** Events as a producer on version 2 of the schema writes them (registered under the same subject). */
  private version2Serde() {
    return new AvroSerde(
      this.registry,
      valueSubject(topics(this.config).listeningEvents.name),
      LISTENING_EVENT_V2,
    );
  }

  private queued(eventTime: number) {
    this.eventsQueued += 1;
    const now = Date.now();
    const last = this.frontiers.at(-1);
    if (last && now - last.at < FRONTIER_SAMPLE_MS) last.eventTime = eventTime;
    else this.frontiers.push({ at: now, eventTime });
    for (const waiter of this.waiters.filter((w) => w.events <= this.eventsQueued)) {
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  }

  /**
   * How long until the job is back within its usual distance of live (CAUGHT_UP_WITHIN), measured from now:
   * call it when a fault has ended. With `everything`, until the whole plan's outputs are there (once the
   * traffic is over).
   */
  async catchUp({ everything = false } = {}): Promise<CatchUp> {
    const from = Date.now();
    const target = (within: number) => (everything ? EVERYTHING : this.frontierAt(Date.now() - within));
    const recommendations = this.expected.recommendations.byTime();
    let read = 0;
    const result: CatchUp = { from, recommendationsMs: null, clickhouseMs: null };
    while (
      (result.recommendationsMs === null || result.clickhouseMs === null) &&
      Date.now() - from < this.options.catchUpTimeoutMs
    ) {
      await sleep(POLL_MS);
      const { recommendationsMs, clickhouseMs } = CAUGHT_UP_WITHIN;
      if (result.recommendationsMs === null && (everything || Date.now() - from >= recommendationsMs)) {
        const before = target(recommendationsMs);
        while (read < recommendations.length && this.read.has(recommendations[read]!.id)) read += 1;
        if (read === recommendations.length || recommendations[read]!.time >= before)
          result.recommendationsMs = Date.now() - from;
      }
      if (
        result.clickhouseMs === null &&
        (everything || Date.now() - from >= clickhouseMs) &&
        (await this.clickhouseHolds(target(clickhouseMs)))
      )
        result.clickhouseMs = Date.now() - from;
    }
    log.debug({ run: this.config.appId, ...result }, 'caught up');
    return result;
  }

  /** The event time the traffic had reached at wall time `at`. */
  private frontierAt(at: number): number {
    let found = Number.NEGATIVE_INFINITY;
    for (let i = this.frontiers.length - 1; i >= 0; i--) {
      if (this.frontiers[i]!.at <= at) {
        found = this.frontiers[i]!.eventTime;
        break;
      }
    }
    return found;
  }

  /**
   * Whether ClickHouse has the expected events and scoring points before `before` (false while it is down).
   * Rows stay once written, so only those after what was found complete last time are counted.
   */
  private async clickhouseHolds(before: number): Promise<boolean> {
    const from = this.clickhouseComplete;
    if (before <= from) return true;
    const { events, scoringPoints } = this.expected;
    const within = (ledger: Ledger) => ledger.countBefore(before) - ledger.countBefore(from);
    const range = [
      ...(from === Number.NEGATIVE_INFINITY ? [] : [`timestamp_ms >= ${from}`]),
      ...(before === EVERYTHING ? [] : [`timestamp_ms < ${before}`]),
    ];
    const where = range.length > 0 ? `WHERE ${range.join(' AND ')}` : '';
    try {
      const [row] = await this.db.query<{ events: string; points: string }>(
        `SELECT (SELECT uniqExact(event_id) FROM events ${where}) AS events, ` +
          `(SELECT uniqExact(event_id) FROM session_features ${where}) AS points`,
      );
      if (Number(row?.events) < within(events) || Number(row?.points) < within(scoringPoints)) return false;
      this.clickhouseComplete = before;
      return true;
    } catch {
      return false; // down, or the connector has not created its tables yet
    }
  }

  /** Resolves once instance `id` reports running a task (its operator metrics), or after the catch-up timeout. */
  async untilInstanceHasTasks(id: number): Promise<void> {
    const deadline = Date.now() + this.options.catchUpTimeoutMs;
    while (Date.now() < deadline && this.running(id)) {
      const tasks = await this.operatorMetric('encore_streams_active_tasks').catch(() => undefined);
      if ((tasks?.[`instance-${id}`] ?? 0) > 0) return;
      await sleep(POLL_MS);
    }
  }

  /** A series of the job's operator-metrics trail: its highest value per instance (label sets summed). */
  async operatorMetric(metric: string): Promise<Record<string, number>> {
    const rows = await this.db.query<{ instance: string; value: number }>(
      'SELECT instance, sum(highest) AS value FROM (' +
        `SELECT instance, labels, max(value) AS highest FROM operator_metrics WHERE metric = ${sqlString(metric)} ` +
        'GROUP BY instance, labels) GROUP BY instance',
    );
    return Object.fromEntries(rows.map((row) => [row.instance, Number(row.value)]));
  }

  /**
   * Reads recommendations and dead letters (read_committed, outside any group) until stopped, counting each
   * id. Started again after a broker restart, readers begin at the start of each partition: records read
   * before are skipped by offset, so a copy is counted only when Kafka holds it twice.
   */
  private async readOutputs(signal: AbortSignal): Promise<void> {
    const t = topics(this.config);
    const recommendations = topicSerde(this.registry, t.recommendations);
    const deadLetters = topicSerde(this.registry, t.deadLetter);
    const unread = (record: ConsumedRecord) => {
      const key = `${record.topic}\u0000${record.partition}`;
      if (record.offset < (this.readTo.get(key) ?? 0)) return false;
      this.readTo.set(key, record.offset + 1);
      return true;
    };
    const readers = [
      followTopic(this.config, t.recommendations.name, {
        signal,
        onRecord: async (record) => {
          if (!unread(record)) return;
          const { recommendationId, modelVersions } = await recommendations.deserialize(record.value);
          this.read.set(recommendationId, (this.read.get(recommendationId) ?? 0) + 1);
          // Null where nothing was served (an explicit request has no score, a fallback no user tower).
          if (modelVersions.disengagement) this.liveModels.disengagement.add(modelVersions.disengagement);
          if (modelVersions.userTower) this.liveModels.userTower.add(modelVersions.userTower);
        },
      }),
      followTopic(this.config, t.deadLetter.name, {
        signal,
        onRecord: async (record) => {
          if (!unread(record)) return;
          const letter = await deadLetters.deserialize(record.value);
          this.lettersRead += 1;
          const probe = letter.headers[PROBE_HEADER];
          if (probe === undefined) {
            this.strayLetters.push(`${letter.reason}: ${letter.errorMessage}`);
            return;
          }
          const seen = this.letters.get(Number(probe));
          if (seen) seen.copies += 1;
          else this.letters.set(Number(probe), { reason: letter.reason, copies: 1 });
        },
      }),
    ];
    for (const result of await Promise.allSettled(readers.map((reader) => reader.done)))
      if (result.status === 'rejected' && !signal.aborted)
        log.error({ err: (result.reason as Error).message }, 'a reader of the outputs stopped');
  }

  /**
   * After the traffic: waits for the whole plan's outputs, lets late duplicates show (a few commit
   * intervals), stops the job and compares what came out with what was expected.
   */
  async finish(): Promise<{ finalCatchUp: CatchUp; verdict: Verdict }> {
    const finalCatchUp = await this.catchUp({ everything: true });
    await sleep(3 * this.config.streams.commitIntervalMs + 2 * this.config.sinks.flushIntervalMs);
    for (const id of [...this.instances.keys()]) await this.stopInstance(id);
    this.stopReading.abort();
    await this.reading;
    return { finalCatchUp, verdict: await this.verdict() };
  }

  private async verdict(): Promise<Verdict> {
    const table = async (name: string, id: string, ledger: Ledger) => {
      const rows = await this.db.query<{ id: string; copies: string }>(
        `SELECT ${id} AS id, count() AS copies FROM ${name} FINAL GROUP BY ${id}`,
      );
      const [raw] = await this.db.query<{ rows: string }>(`SELECT count() AS rows FROM ${name}`);
      const found = new Map(rows.map((row) => [row.id, Number(row.copies)]));
      let folded = Number(raw?.rows ?? 0);
      for (const copies of found.values()) folded -= copies;
      return { check: compare(ledger.times, found), replayed: folded };
    };
    const events = await table('events', 'event_id', this.expected.events);
    const points = await table('session_features', 'event_id', this.expected.scoringPoints);
    const recommendations = await table(
      'recommendations',
      'recommendation_id',
      this.expected.recommendations,
    );

    const probes = [...this.probesSent.values()];
    const letters = compare(
      new Set(probes.map((probe) => String(probe.id))),
      new Map([...this.letters].map(([id, letter]) => [String(id), letter.copies])),
    );
    const wrong = probes.filter((probe) => {
      const letter = this.letters.get(probe.id);
      return letter !== undefined && letter.reason !== probe.reason;
    });
    return {
      events: events.check,
      scoringPoints: points.check,
      recommendationsRead: compare(this.expected.recommendations.times, this.read),
      recommendationsTable: recommendations.check,
      deadLetters: {
        ...letters,
        // A valid record dead-lettered is one the topology did not process: unexpected, and lost.
        unexpected: letters.unexpected + this.strayLetters.length,
        examples: [
          ...letters.examples,
          ...wrong.slice(0, 3).map((p) => `probe ${p.id} (${p.kind}): ${this.letters.get(p.id)!.reason}`),
          ...this.strayLetters.slice(0, 3),
        ],
        wrongReason: wrong.length,
      },
      replayedRows: {
        events: events.replayed,
        scoringPoints: points.replayed,
        recommendations: recommendations.replayed,
      },
      liveModels: {
        disengagement: [...this.liveModels.disengagement],
        userTower: [...this.liveModels.userTower],
      },
    };
  }

  /** Stops whatever still runs and, unless kept, deletes the run's topics and database. */
  async close(): Promise<void> {
    for (const [id, instance] of this.instances) {
      instance.stopping = true;
      instance.child.kill('SIGKILL');
      await exited(instance.child);
      this.instances.delete(id);
    }
    this.stopReading.abort();
    await this.reading;
    await this.producer.disconnect();
    if (!this.options.keep)
      await deprovision(this.config).catch((error: Error) =>
        log.warn(
          { run: this.config.appId, err: error.message },
          "could not delete the run's topics and database",
        ),
      );
    await this.db.close();
    this.registry.close();
  }
}

/** The ids of a ledger, or of anything else keyed by id. */
interface Ids {
  readonly size: number;
  has(id: string): boolean;
  keys(): Iterable<string>;
}

/** Expected ids against the copies found of each id. */
function compare(expected: Ids, found: ReadonlyMap<string, number>): LedgerCheck {
  const examples: string[] = [];
  let lost = 0;
  let duplicated = 0;
  for (const id of expected.keys()) {
    const copies = found.get(id) ?? 0;
    if (copies === 0 && lost++ < 3) examples.push(`lost ${id}`);
    if (copies > 1) {
      duplicated += copies - 1;
      if (duplicated <= 3) examples.push(`${copies} × ${id}`);
    }
  }
  let unexpected = 0;
  for (const id of found.keys()) if (!expected.has(id) && unexpected++ < 3) examples.push(`unexpected ${id}`);
  return { expected: expected.size, found: found.size, lost, duplicated, unexpected, examples };
}
