/**
 * The faults of issue 7, injected into a LiveRun while its traffic flows. A fault that strikes the servers
 * or the job (kills, outages, a second instance) does so within its window of the events, at seeded random
 * points or at fixed shares of the window, and measures the catch-up after each time it ends; several such
 * faults in one run take turns, each in its own window. Two faults are in the plan instead and span the
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
  inject(run: LiveRun, window: Window, random: Random): Promise<FaultOutcome>;
}

const component = (name: string) => COMPONENTS.find((c) => c.name === name)!;

/** A fault meant to strike under load that came after the traffic: the run was sized wrong, so it fails. */
const afterTraffic = (run: LiveRun, what: string) =>
  run.trafficFlowing
    ? []
    : [`${what} after the traffic had ended, not under load: use more events or a lower rate`];

/** Stops a server of the stack under load for `outageMs`, starts it again, and measures the catch-up. */
async function outage(run: LiveRun, window: Window, server: string, outageMs: number): Promise<FaultOutcome> {
  await run.reached(window.at(0.3));
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
  const problems = afterTraffic(run, `${server} came back`);
  const catchUp = await run.catchUp();
  return {
    times: 1,
    recoveries: [catchUp],
    details: { stoppedAtEvents, outageMs: catchUp.from - stopped },
    problems,
  };
}

export function faults(sizes: FaultSizes): Record<FaultName, Fault> {
  return {
    sigkill: {
      name: 'sigkill',
      title: 'SIGKILL the job at random points, restarted each time',
      kind: 'strike',
      plan: () => ({}),
      async inject(run, window, random) {
        const points = Array.from({ length: sizes.kills }, () => window.at(random.between(0.05, 0.9))).sort(
          (a, b) => a - b,
        );
        const recoveries: CatchUp[] = [];
        const killedAtEvents: number[] = [];
        const problems: string[] = [];
        for (const point of points) {
          // The next kill waits for the previous recovery, so each recovery time is one crash's.
          await run.reached(point);
          killedAtEvents.push(run.eventsSent);
          await run.killInstance(1);
          run.startInstance(1);
          problems.push(...afterTraffic(run, `kill ${killedAtEvents.length} came`));
          recoveries.push(await run.catchUp());
        }
        return { times: points.length, recoveries, details: { killedAtEvents }, problems };
      },
    },
    'broker-restart': {
      name: 'broker-restart',
      title: 'Kafka broker stopped and restarted mid-run (the job is not restarted)',
      kind: 'strike',
      plan: () => ({}),
      inject: (run, window) => outage(run, window, 'kafka', sizes.brokerOutageMs),
    },
    'instance-join-leave': {
      name: 'instance-join-leave',
      title: 'A second job instance joins, then leaves, under load',
      kind: 'strike',
      plan: () => ({}),
      async inject(run, window) {
        await run.reached(window.at(0.1));
        const started = Date.now();
        run.startInstance(2);
        // The disruption is the rebalance, once the new instance is up: measured from its first task.
        await run.untilInstanceHasTasks(2);
        const joinedAfterMs = Date.now() - started;
        const joined = await run.catchUp();
        await run.reached(window.at(0.6));
        await run.stopInstance(2);
        const problems = afterTraffic(run, 'the second instance left');
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
      inject: (run, window) => outage(run, window, 'clickhouse', sizes.clickhouseOutageMs),
    },
    'malformed-inputs': {
      name: 'malformed-inputs',
      title:
        'Malformed records mixed into valid traffic (garbage, empty, unknown schema id, truncated Avro, absurd values)',
      kind: 'plan',
      plan: () => ({ malformed: sizes.malformed }),
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
