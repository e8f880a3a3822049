// Listening traffic for Encore's HTTP event collector, at a ramping arrival rate. Run it through
// `bin/encore bench load`, which builds k6, writes the events, starts the job and the collector and the
// latency watcher, and passes everything below as environment variables:
//
//   EVENTS_FILE     JSON lines of listening events from the simulator, in time order (required)
//   COLLECTOR_URL   http://host:port/v1/events (required)
//   LATENCY_URL     the watcher's samples endpoint; without it no end-to-end latency is measured
//   RATE            events/s to reach and hold          RAMP_S / HOLD_S   seconds of ramp and of hold
//   BATCH           events per request (1 = every event posted as it happens, as a live app does)
//   START_INDEX     the first event to post (events before it were posted by the caller)
//   P99_MS          end-to-end p99 threshold (ms)       SUMMARY_FILE      where the JSON summary goes
//
// Events go out in the simulator's order: iteration i posts events [i*BATCH, (i+1)*BATCH), so each user's
// events arrive in their order (bar the overlap of concurrent requests, which the job's grace absorbs).

import { sleep } from 'k6';
import { SharedArray } from 'k6/data';
import exec from 'k6/execution';
import http from 'k6/http';
import { Counter, Trend } from 'k6/metrics';

const env = (name, fallback) => {
  const value = __ENV[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set (see load/listening.js)`);
  return value;
};
const positive = (name, fallback) => {
  const value = Number(env(name, fallback));
  if (!(value > 0)) throw new Error(`${name} must be a positive number, got ${__ENV[name]}`);
  return value;
};

const RATE = positive('RATE', '1000');
const BATCH = positive('BATCH', '1');
const START_INDEX = Number(env('START_INDEX', '0'));
const RAMP_S = positive('RAMP_S', '10');
const HOLD_S = positive('HOLD_S', '30');
const DRAIN_S = 5;
const P99_MS = positive('P99_MS', '200');
const COLLECTOR_URL = env('COLLECTOR_URL');
const LATENCY_URL = __ENV.LATENCY_URL;

// Kept as the JSON lines they are: a request body is the lines themselves, never re-serialized.
const events = new SharedArray('events', () =>
  open(env('EVENTS_FILE'))
    .split('\n')
    .filter((line) => line.length > 0),
);

const rejected = new Counter('events_rejected');
const posted = new Counter('events_posted');
const endToEnd = new Trend('e2e_latency', true);
const measured = new Counter('recommendations_measured');

const requestsPerSecond = Math.max(1, Math.round(RATE / BATCH));
const scenarios = {
  listeners: {
    executor: 'ramping-arrival-rate',
    exec: 'listen',
    startRate: Math.max(1, Math.round(requestsPerSecond / 20)),
    timeUnit: '1s',
    stages: [
      { target: requestsPerSecond, duration: `${RAMP_S}s` },
      { target: requestsPerSecond, duration: `${HOLD_S}s` },
    ],
    // Requests wait for Kafka's acknowledgement (tens of ms): enough VUs to keep the rate while they wait.
    preAllocatedVUs: Math.min(500, Math.max(50, Math.ceil(requestsPerSecond / 10))),
    maxVUs: Math.min(2000, Math.max(100, requestsPerSecond)),
  },
};
if (LATENCY_URL)
  scenarios.latency = {
    executor: 'constant-vus',
    exec: 'watch',
    vus: 1,
    duration: `${RAMP_S + HOLD_S + DRAIN_S}s`,
  };

export const options = {
  scenarios,
  thresholds: {
    // The collector's failures and rejections: valid traffic must all be taken.
    'http_req_failed{scenario:listeners}': ['rate<0.001'],
    events_rejected: ['count<1'],
    // k6 could not start requests on time: the rate asked for was not the rate sent.
    dropped_iterations: ['count<1'],
    ...(LATENCY_URL ? { e2e_latency: [`p(99)<${P99_MS}`], recommendations_measured: ['count>0'] } : {}),
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'max'],
};

export function listen() {
  const first = START_INDEX + exec.scenario.iterationInTest * BATCH;
  if (first + BATCH > events.length)
    exec.test.abort(`the events file has ${events.length} events; the run needs more (more users or days)`);
  const lines = [];
  for (let i = first; i < first + BATCH; i++) lines.push(events[i]);
  const body = BATCH === 1 ? lines[0] : `[${lines.join(',')}]`;
  const response = http.post(COLLECTOR_URL, body, { headers: { 'content-type': 'application/json' } });
  if (response.status === 202) posted.add(BATCH);
  else if (response.status === 207 || response.status === 400) {
    const answer = response.json();
    rejected.add(answer.rejected ? answer.rejected.length : BATCH);
    posted.add(answer.accepted ?? 0);
  }
}

// Steady state only: events produced during the ramp (group join, JIT warm-up) are not counted.
let cursor = 0;
export function watch() {
  const steadyFrom = Date.now() - exec.instance.currentTestRunDuration + RAMP_S * 1000;
  const answer = http.get(`${LATENCY_URL}?after=${cursor}`, { tags: { name: 'latency-watcher' } }).json();
  cursor = answer.next;
  for (const [producedAt, latencyMs] of answer.samples) {
    if (producedAt < steadyFrom) continue;
    endToEnd.add(latencyMs);
    measured.add(1);
  }
  sleep(1);
}

export function handleSummary(data) {
  const value = (metric, stat) => {
    const v = data.metrics[metric]?.values?.[stat];
    return v === undefined ? '-' : Math.round(v * 10) / 10;
  };
  const lines = [
    `events posted ${value('events_posted', 'count')}, rejected ${value('events_rejected', 'count')}, ` +
      `dropped iterations ${value('dropped_iterations', 'count')}`,
    `collector request p50 ${value('http_req_duration', 'med')} ms, p99 ${value('http_req_duration', 'p(99)')} ms`,
    `end-to-end p50 ${value('e2e_latency', 'med')} ms, p99 ${value('e2e_latency', 'p(99)')} ms ` +
      `(${value('recommendations_measured', 'count')} recommendations)`,
  ];
  const failed = Object.entries(data.metrics)
    .flatMap(([name, metric]) =>
      Object.entries(metric.thresholds ?? {}).map(([rule, result]) => ({ name, rule, ok: result.ok })),
    )
    .filter((t) => !t.ok)
    .map((t) => `threshold failed: ${t.name} ${t.rule}`);
  const out = { stdout: `${[...lines, ...failed].join('\n')}\n` };
  if (__ENV.SUMMARY_FILE) out[__ENV.SUMMARY_FILE] = JSON.stringify(data, null, 2);
  return out;
}
