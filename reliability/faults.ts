/**
 * The faults of issue 7, injected into a LiveRun while its traffic flows. A fault that strikes the servers
 * or the job (kills, outages, a second instance) does so within its window of the events, at seeded random
 * points or at fixed shares of the window decided before the traffic starts, and measures the catch-up
 * after each time it ends. The traffic waits at each such point until the fault has struck there, so every
 * fault strikes under load however long the recoveries before it took on a busy machine. Several such faults
 * in one run take turns, each in its own window. Two faults are in the plan instead and span the
 * whole run: malformed records mixed into the events, and a producer moving to version 2 of the event
 * schema halfway.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Random } from '../simulator/random.ts';
import { COMPONENTS, down, up } from '../stack/stack.ts';
import type { PlanOptions } from './plan.ts';
import type { CatchUp, LiveRun } from './run.ts';

export const FAULT_NAMES = [
  'sigkill',
  'broker-restart',
  'instance-join-leave',
  'clickhouse-outage',
  'malformed-inputs',
  'schema-evolution',
] as const;

export type FaultName = (typeof FAULT_NAMES)[number];

export interface FaultSizes {
  /** SIGKILLs of the job. */
  kills: number;
  /** How long the broker stays down. */
  brokerOutageMs: number;
  /** How long ClickHouse stays down. */
  clickhouseOutageMs: number;
  /** Malformed records mixed into the events. */
  malformed: number;
}

export interface FaultOutcome {
  /** How many times the fault struck (for malformed inputs: the malformed records). */
  times: number;
  /** The catch-up after each time it ended. */
  recoveries: CatchUp[];
  /** What else it saw, for the report. */
  details: Record<string, unknown>;
  /** Ways the fault itself found the job wanting (beyond lost and duplicated outputs). */
  problems: string[];
}

/** The stretch of the traffic a fault strikes in: events [from, to). */
export class Window {
  readonly from: number;
  readonly to: number;

  constructor(from: number, to: number) {
    this.from = from;
    this.to = to;
  }

  /** The event at `share` (0..1) of the window. */
  at(share: number): number {
    return Math.round(this.from + share * (this.to - this.from));
  }
}

export interface Fault {
  name: FaultName;
  /** The fault as the table in docs/RELIABILITY.md names it. */
  title: string;
  /** In the plan (the whole run), or struck within a window of the traffic. */
  kind: 'plan' | 'strike';
  /** What the plan needs for this fault, beyond plain traffic. */
  plan(options: Pick<PlanOptions, 'events'>): Partial<PlanOptions>;
  /**
   * Where in its window it strikes (events sent), decided before the traffic starts: the traffic waits at
   * each point until the fault has struck there (LiveRun.waitAt), so it is under load whatever came before.
   */
  strikesAt(window: Window, random: Random): number[];
  /** Strikes at `points` (from strikesAt), letting the traffic on at each (LiveRun.go). */
  inject(run: LiveRun, points: readonly number[]): Promise<FaultOutcome>;
}

const component = (name: string) => COMPONENTS.find((c) => c.name === name)!;

/** The traffic is there at `point` and waits; the fault strikes and lets it on. */
async function arrive(run: LiveRun, point: number): Promise<void> {
  await run.reached(point);
  run.go(point);
}

/**
 * Stops a server of the stack under load at `stop` for `outageMs`, starts it again, and measures the
 * catch-up. The traffic waits at `back` if it gets there first, so the server comes back under load.
 */
async function outage(
  run: LiveRun,
  [stop, back]: readonly number[],
  server: string,
  outageMs: number,
): Promise<FaultOutcome> {
  await arrive(run, stop!);
  const stoppedAtEvents = run.eventsSent;
  // The broker is the harness's too: its traffic waits for it (see run.ts).
  const broker = server === 'kafka';
  if (broker) await run.holdTraffic();
  const stopped = Date.now();
  await down(run.config, [component(server)]);
  try {
    await sleep(Math.max(0, outageMs - (Date.now() - stopped)));
  } finally {
    await up(run.config, [component(server)]);
    if (broker) await run.resumeTraffic();
  }
  run.go(back!);
  const catchUp = await run.catchUp();
  return {
    times: 1,
    recoveries: [catchUp],
    details: { stoppedAtEvents, outageMs: catchUp.from - stopped },
    problems: [],
  };
}

export function faults(sizes: FaultSizes): Record<FaultName, Fault> {
  return {
    sigkill: {
      name: 'sigkill',
      title: 'SIGKILL the job at random points, restarted each time',
      kind: 'strike',
      plan: () => ({}),
      strikesAt: (window, random) =>
        Array.from({ length: sizes.kills }, () => window.at(random.between(0.05, 0.9))).sort((a, b) => a - b),
      async inject(run, points) {
        const recoveries: CatchUp[] = [];
        const killedAtEvents: number[] = [];
        for (const point of points) {
          // The next kill waits for the previous recovery (the traffic waiting at its point meanwhile), so
          // each recovery time is one crash's.
          await run.reached(point);
          killedAtEvents.push(run.eventsSent);
          await run.killInstance(1);
          run.startInstance(1);
          run.go(point);
          recoveries.push(await run.catchUp());
        }
        return { times: points.length, recoveries, details: { killedAtEvents }, problems: [] };
      },
    },
    'broker-restart': {
      name: 'broker-restart',
      title: 'Kafka broker stopped and restarted mid-run (the job is not restarted)',
      kind: 'strike',
      plan: () => ({}),
      strikesAt: (window) => [window.at(0.3), window.at(0.9)],
      inject: (run, points) => outage(run, points, 'kafka', sizes.brokerOutageMs),
    },
    'instance-join-leave': {
      name: 'instance-join-leave',
      title: 'A second job instance joins, then leaves, under load',
      kind: 'strike',
      plan: () => ({}),
      strikesAt: (window) => [window.at(0.1), window.at(0.6)],
      async inject(run, [join, leave]) {
        await arrive(run, join!);
        const started = Date.now();
        run.startInstance(2);
        // The disruption is the rebalance, once the new instance is up: measured from its first task.
        await run.untilInstanceHasTasks(2);
        const joinedAfterMs = Date.now() - started;
        const joined = await run.catchUp();
        await arrive(run, leave!);
        await run.stopInstance(2);
        const problems: string[] = [];
        const left = await run.catchUp();
        const tasks = await run.operatorMetric('encore_streams_active_tasks');
        const restored = await run.operatorMetric('encore_streams_restored_records_total');
        if (!((tasks['instance-2'] ?? 0) > 0))
          problems.push('the second instance was never given a partition');
        if (!((restored['instance-2'] ?? 0) > 0)) problems.push('the second instance restored no state');
        return {
          times: 1,
          recoveries: [joined, left],
          details: { joinedAfterMs, maxActiveTasks: tasks, restoredRecords: restored },
          problems,
        };
      },
    },
    'clickhouse-outage': {
      name: 'clickhouse-outage',
      title: 'ClickHouse stopped under load, then started',
      kind: 'strike',
      plan: () => ({}),
      strikesAt: (window) => [window.at(0.3), window.at(0.9)],
      inject: (run, points) => outage(run, points, 'clickhouse', sizes.clickhouseOutageMs),
    },
    'malformed-inputs': {
      name: 'malformed-inputs',
      title:
        'Malformed records mixed into valid traffic (garbage, empty, unknown schema id, truncated Avro, absurd values)',
      kind: 'plan',
      plan: () => ({ malformed: sizes.malformed }),
      strikesAt: () => [],
      async inject(run) {
        await run.reached(run.plan.options.events);
        const kinds: Record<string, number> = {};
        for (const probe of run.probesSent.values()) kinds[probe.kind] = (kinds[probe.kind] ?? 0) + 1;
        return { times: run.probesSent.size, recoveries: [], details: { kinds }, problems: [] };
      },
    },
    'schema-evolution': {
      name: 'schema-evolution',
      title: 'The producer moves to v2 of the event schema (an added optional field) mid-run',
      kind: 'plan',
      plan: (options) => ({ v2From: Math.floor(options.events / 2) }),
      strikesAt: () => [],
      async inject(run) {
        const { events, v2From } = run.plan.options;
        await run.reached(events);
        const ids = run.writerSchemaIds;
        const problems =
          ids[1] !== undefined && ids[2] !== undefined && ids[1] !== ids[2]
            ? []
            : [`the events were not written with two schema versions (writer ids ${JSON.stringify(ids)})`];
        return {
          times: 1,
          recoveries: [],
          details: { writerSchemaIds: ids, version2Events: Math.max(0, run.eventsSent - (v2From ?? events)) },
          problems,
        };
      },
    },
  };
}
