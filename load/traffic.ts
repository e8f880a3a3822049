/**
 * The shape of a load run's traffic and how its outcome is judged: the ramp, what the collector's answers
 * say, and the thresholds that fail a run.
 */
import { quantile } from '../core/quantile.ts';
import { type Hit, type Stage, stageRequests } from './vegeta.ts';

/**
 * A ramp from near zero to `requestsPerSecond` in one-second steps (the middle of each second's linear
 * ramp), then the rate held.
 */
export function rampAndHold(requestsPerSecond: number, rampSeconds: number, holdSeconds: number): Stage[] {
  const ramp = Array.from({ length: rampSeconds }, (_, k) => ({
    requestsPerSecond: Math.max(1, Math.round((requestsPerSecond * (k + 0.5)) / rampSeconds)),
    seconds: 1,
  }));
  return [...ramp, { requestsPerSecond, seconds: holdSeconds }];
}

/** What the collector's answers say about the events sent. */
export interface Tally {
  requestsPlanned: number;
  requestsSent: number;
  /** Events the collector took (202, or the accepted part of a 207). */
  accepted: number;
  /** Events the collector refused as invalid (400, or the rejected part of a 207). */
  rejected: number;
  /** Requests with no answer or an answer other than 202, 207 and 400. */
  failed: number;
  /** `failed` as a share of the requests sent (1 when none was sent). */
  failedRate: number;
  /** Requests planned that vegeta did not make. */
  requestsUnsent: number;
  collectorP50Ms: number;
  collectorP99Ms: number;
  /** p99 of how late requests left against their stage's pace: vegeta could not keep the rate. */
  sendLagP99Ms: number;
  /** When the last accepted event had been acknowledged (epoch ms). */
  lastAcceptedAt: number;
}

interface CollectorAnswer {
  accepted?: number;
  rejected?: unknown[];
}

export function tally(stages: readonly Stage[], hits: readonly Hit[], batch: number): Tally {
  let accepted = 0;
  let rejected = 0;
  let failed = 0;
  let lastAcceptedAt = 0;
  const firstSent = new Map<number, number>();
  for (const hit of hits)
    firstSent.set(hit.stage, Math.min(firstSent.get(hit.stage) ?? hit.sentAt, hit.sentAt));
  const lags: number[] = [];
  for (const hit of hits) {
    const pace = stages[hit.stage]?.requestsPerSecond ?? Number.POSITIVE_INFINITY;
    lags.push(Math.max(0, hit.sentAt - ((firstSent.get(hit.stage) ?? hit.sentAt) + (hit.seq * 1000) / pace)));
    let took = 0;
    if (hit.code === 202) took = batch;
    else if (hit.code === 207 || hit.code === 400) {
      const answer = JSON.parse(hit.body) as CollectorAnswer;
      took = answer.accepted ?? 0;
      rejected += answer.rejected?.length ?? batch - took;
    } else failed++;
    accepted += took;
    if (took > 0) lastAcceptedAt = Math.max(lastAcceptedAt, hit.sentAt + hit.latencyMs);
  }
  const latencies = hits.map((hit) => hit.latencyMs).sort((a, b) => a - b);
  lags.sort((a, b) => a - b);
  const at = (sorted: number[], q: number) =>
    sorted.length ? Math.round(quantile(sorted, q) * 10) / 10 : Number.NaN;
  const requestsPlanned = stages.reduce((sum, stage) => sum + stageRequests(stage), 0);
  return {
    requestsPlanned,
    requestsSent: hits.length,
    accepted,
    rejected,
    failed,
    failedRate: hits.length ? failed / hits.length : 1,
    requestsUnsent: requestsPlanned - hits.length,
    collectorP50Ms: at(latencies, 0.5),
    collectorP99Ms: at(latencies, 0.99),
    sendLagP99Ms: at(lags, 0.99),
    lastAcceptedAt,
  };
}

/** Requests leaving this late against their pace mean the load generator did not keep the rate. */
export const SEND_LAG_LIMIT_MS = 100;

export interface Threshold {
  /** Whether it judges the traffic (was the load sent and taken) or the job's latency. */
  of: 'traffic' | 'latency';
  name: string;
  limit: string;
  value: number;
  passed: boolean;
}

/**
 * The run fails when the collector failed or refused valid traffic, when the load generator did not send
 * every request it planned or sent them late, or when the end-to-end p99 is over `p99Ms` (or nothing was
 * measured).
 */
export function thresholds(
  traffic: Tally,
  endToEnd: { measured: number; p99Ms: number },
  p99Ms: number,
): Threshold[] {
  return [
    {
      of: 'traffic',
      name: 'collector failures (share of requests)',
      limit: '< 0.001',
      value: traffic.failedRate,
      passed: traffic.failedRate < 0.001,
    },
    {
      of: 'traffic',
      name: 'events rejected',
      limit: '= 0',
      value: traffic.rejected,
      passed: traffic.rejected === 0,
    },
    {
      of: 'traffic',
      name: 'requests not sent',
      limit: '= 0',
      value: traffic.requestsUnsent,
      passed: traffic.requestsUnsent === 0,
    },
    {
      of: 'traffic',
      name: 'send lag p99 (ms): the rate was not kept',
      limit: `< ${SEND_LAG_LIMIT_MS}`,
      value: traffic.sendLagP99Ms,
      passed: traffic.sendLagP99Ms < SEND_LAG_LIMIT_MS,
    },
    {
      of: 'latency',
      name: 'recommendations measured',
      limit: '> 0',
      value: endToEnd.measured,
      passed: endToEnd.measured > 0,
    },
    {
      of: 'latency',
      name: 'end-to-end p99 (ms)',
      limit: `< ${p99Ms}`,
      value: endToEnd.p99Ms,
      passed: endToEnd.p99Ms < p99Ms,
    },
  ];
}
