/**
 * A scenario: one run with one fault (the long command, one row of docs/RELIABILITY.md each) or several (the
 * short suite in CI: the faults that strike take turns, each in its share of the traffic). It builds the
 * plan the faults need, runs it live with the faults injected, and sums up the verdict: times, events, lost,
 * duplicated and recovery, with the details behind them.
 */
import type { Config } from '../core/config.ts';
import { quantile } from '../core/quantile.ts';
import { mixSeed, Random } from '../simulator/random.ts';
import { type Fault, type FaultName, type FaultOutcome, type FaultSizes, faults, Window } from './faults.ts';
import { Plan, type PlanOptions } from './plan.ts';
import { type CatchUp, LiveRun, type Progress, type RunOptions, type Verdict } from './run.ts';

export interface ScenarioOptions extends Omit<RunOptions, 'name'> {
  faults: readonly FaultName[];
  sizes: FaultSizes;
  plan: Omit<PlanOptions, 'malformed' | 'v2From'>;
  /** Told of the driver's progress (inputs), then of the traffic's. */
  onDriverProgress?: (inputs: number) => void;
  onProgress?: (progress: Progress) => void;
}

export interface Recovery {
  /** Injections whose catch-up was measured. */
  measured: number;
  /** Catch-ups that did not finish within the timeout. */
  unrecovered: number;
  medianMs: number | null;
  maxMs: number | null;
}

export interface FaultReport extends FaultOutcome {
  fault: FaultName;
  title: string;
  /** From each injection's end until recommendations and ClickHouse caught up. */
  recovery: Recovery;
}

export interface ScenarioReport {
  faults: FaultReport[];
  /** Valid events sent. */
  events: number;
  malformed: number;
  requests: number;
  lost: number;
  duplicated: number;
  /** Outputs nobody expected (an accepted malformed record, a recommendation nobody triggered). */
  unexpected: number;
  /** After the traffic, until every expected output was there. */
  finalCatchUp: CatchUp;
  verdict: Verdict;
  expected: {
    scoringPoints: number;
    recommendations: number;
    /** Scoring points within float noise of their threshold (their decision could go either way). */
    nearThreshold: number;
    models: { disengagement: string | null; userTower: string | null };
  };
  durations: { driverMs: number; liveMs: number };
  problems: string[];
  passed: boolean;
}

/** Until both the recommendations and ClickHouse caught up; null if either did not. */
const recoveredMs = (c: CatchUp) =>
  c.recommendationsMs === null || c.clickhouseMs === null
    ? null
    : Math.max(c.recommendationsMs, c.clickhouseMs);

function summarise(recoveries: readonly CatchUp[]): Recovery {
  const times = recoveries.map(recoveredMs);
  const measured = times.filter((t): t is number => t !== null).sort((a, b) => a - b);
  return {
    measured: recoveries.length,
    unrecovered: times.length - measured.length,
    medianMs: measured.length ? quantile(measured, 0.5) : null,
    maxMs: measured.at(-1) ?? null,
  };
}

/** Salt of the faults' random stream (kill points), apart from the plan's. */
const FAULT_SEED = 0xfa17;

export async function runScenario(base: Config, options: ScenarioOptions): Promise<ScenarioReport> {
  const chosen = options.faults.map((name) => faults(options.sizes)[name]);
  const plan = new Plan(
    Object.assign({ ...options.plan, malformed: 0 }, ...chosen.map((fault) => fault.plan(options.plan))),
  );
  const name = options.faults.length === 1 ? options.faults[0]! : 'faults';
  const run = await LiveRun.prepare(base, plan, { ...options, name }, options.onDriverProgress);
  try {
    const began = Date.now();
    const random = new Random(mixSeed(options.plan.seed, FAULT_SEED));
    const { events } = options.plan;
    // The faults that strike take turns, each in its share of the events; those in the plan span the run.
    const strikes = chosen.filter((fault) => fault.kind === 'strike');
    const points = new Map(
      chosen.map((fault) => {
        const i = strikes.indexOf(fault);
        const window =
          i < 0
            ? new Window(0, events)
            : new Window((events * i) / strikes.length, (events * (i + 1)) / strikes.length);
        return [fault, fault.strikesAt(window, random)] as const;
      }),
    );
    for (const point of [...points.values()].flat()) run.waitAt(point);
    const strike = async (fault: Fault) => {
      try {
        return [fault.name, await fault.inject(run, points.get(fault)!)] as const;
      } finally {
        // A fault that failed half-way must not leave the traffic waiting.
        for (const point of points.get(fault)!) run.go(point);
      }
    };
    const inTurn = async () => {
      const outcomes: (readonly [FaultName, FaultOutcome])[] = [];
      for (const fault of strikes) outcomes.push(await strike(fault));
      return outcomes;
    };
    const [, struck, planned] = await Promise.all([
      run.sendTraffic(options.onProgress),
      inTurn(),
      Promise.all(chosen.filter((fault) => fault.kind === 'plan').map(strike)),
    ]);
    const outcomes = new Map([...struck, ...planned]);
    const { finalCatchUp, verdict } = await run.finish();
    const liveMs = Date.now() - began;
    const reports = chosen.map((fault): FaultReport => {
      const outcome = outcomes.get(fault.name)!;
      return { fault: fault.name, title: fault.title, ...outcome, recovery: summarise(outcome.recoveries) };
    });
    const checks = [
      verdict.events,
      verdict.scoringPoints,
      verdict.recommendationsRead,
      verdict.recommendationsTable,
      verdict.deadLetters,
    ];
    const sum = (key: 'lost' | 'duplicated' | 'unexpected') => checks.reduce((n, check) => n + check[key], 0);
    const problems = [
      ...reports.flatMap((r) => r.problems.map((p) => `${r.fault}: ${p}`)),
      ...reports.flatMap((r) =>
        r.recovery.unrecovered > 0
          ? [
              `${r.fault}: ${r.recovery.unrecovered} of ${r.recovery.measured} catch-ups did not finish in time`,
            ]
          : [],
      ),
      ...describe(run, verdict, finalCatchUp),
    ];
    const report: ScenarioReport = {
      faults: reports,
      events: run.eventsSent,
      malformed: run.probesSent.size,
      requests: run.expected.requests,
      lost: sum('lost'),
      duplicated: sum('duplicated'),
      unexpected: sum('unexpected'),
      finalCatchUp,
      verdict,
      expected: {
        scoringPoints: run.expected.scoringPoints.size,
        recommendations: run.expected.recommendations.size,
        nearThreshold: run.expected.nearThreshold.size,
        models: run.expected.models,
      },
      durations: { driverMs: run.expected.driverMs, liveMs },
      problems,
      passed: false,
    };
    report.passed =
      report.lost === 0 && report.duplicated === 0 && report.unexpected === 0 && !problems.length;
    return report;
  } finally {
    await run.close();
  }
}

/** What went wrong, in words (lost and duplicated outputs are counted in the report itself). */
function describe(run: LiveRun, verdict: Verdict, final: CatchUp): string[] {
  const problems: string[] = [];
  for (const exit of run.unexpectedExits)
    problems.push(
      `job instance ${exit.instance} exited by itself (${exit.signal ?? `code ${exit.code}`}) at ${new Date(exit.at).toISOString()}`,
    );
  if (final.recommendationsMs === null || final.clickhouseMs === null)
    problems.push('the outputs were not all there within the catch-up timeout after the traffic');
  const checks = {
    'events in ClickHouse': verdict.events,
    'scoring points in ClickHouse': verdict.scoringPoints,
    'recommendations read (read_committed)': verdict.recommendationsRead,
    'recommendations in ClickHouse': verdict.recommendationsTable,
    'dead letters': verdict.deadLetters,
  };
  for (const [name, check] of Object.entries(checks))
    if (check.lost || check.duplicated || check.unexpected)
      problems.push(
        `${name}: ${check.lost} lost, ${check.duplicated} duplicated, ${check.unexpected} unexpected (${check.examples.join('; ')})`,
      );
  if (verdict.deadLetters.wrongReason > 0)
    problems.push(`${verdict.deadLetters.wrongReason} malformed records dead-lettered with the wrong reason`);
  for (const model of ['disengagement', 'userTower'] as const) {
    const others = verdict.liveModels[model].filter((version) => version !== run.expected.models[model]);
    if (others.length > 0)
      problems.push(
        `the job served ${model} ${others.join(', ')}; the expected outputs, ${run.expected.models[model]}`,
      );
  }
  const { lost, unexpected } = verdict.recommendationsRead;
  if ((lost || unexpected) && run.expected.nearThreshold.size > 0)
    problems.push(
      `${run.expected.nearThreshold.size} scoring points were within float noise of their threshold: a recommendation decided there may differ without anything being lost`,
    );
  return problems;
}
