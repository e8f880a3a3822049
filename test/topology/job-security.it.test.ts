/**
 * The job with security on, as a deployment runs it: `encore run` in a child process, configured through
 * ENCORE_* variables to reach Kafka over SASL_SSL (SCRAM, the stack's CA) and ClickHouse as the stack's job
 * user, each password read from its file. It creates its topics, consumes, produces and writes ClickHouse
 * end to end; a wrong password stops it with AUTHENTICATION_FAILED; and nothing it prints, at debug level,
 * contains a password.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ChildSettings, exited, settingsEnv, spawnEncore } from '../../cli/child.ts';
import { ClickHouse } from '../../clients/clickhouse.ts';
import { Admin } from '../../clients/kafka.ts';
import { loadConfig } from '../../core/config.ts';
import { SchemaRegistry } from '../../schemas/registry.ts';
import { AvroSerde } from '../../schemas/serde.ts';
import { topics, valueSubject } from '../../schemas/topics.ts';
import { isolatedConfig } from '../helpers/env.ts';
import { listeningEvent } from '../helpers/events.ts';
import { produce, readTopic } from '../helpers/kafka.ts';
import { stackJobUser } from '../helpers/security.ts';

const plain = loadConfig();
const secure = stackJobUser(plain);
const config = isolatedConfig('job-security', { env: { ...process.env, ...settingsEnv(secure) } });
const t = topics(config);
const registry = new SchemaRegistry(config);
const eventSerde = new AvroSerde(registry, valueSubject(t.listeningEvents.name), t.listeningEvents.contract);
const WRONG_PASSWORD = 'wrong-password-4711';
/** Every secret the job was given; none may appear in anything it prints. */
const secrets = [config.kafka.security.password, config.clickhouse.password, WRONG_PASSWORD];
const NO_MODELS = mkdtempSync(path.join(tmpdir(), 'encore-no-models-'));

interface Job {
  child: ChildProcess;
  /** Everything the child printed so far, stdout and stderr together. */
  output(): string;
}

const jobs: Job[] = [];

/** `encore run` with the job user's settings (and `overrides`), logging at debug level, its output kept. */
function startJob(overrides: ChildSettings = {}): Job {
  const settings: ChildSettings = {
    ...secure,
    appId: config.appId,
    'clickhouse.database': config.clickhouse.database,
    'kafka.partitions': config.kafka.partitions,
    'metrics.port': 0,
    'streams.instanceId': 'job-security-test',
    'sinks.flushIntervalMs': 200,
    'log.level': 'debug',
    // The listening half alone: no models to load, nothing pushed.
    'serving.modelsDir': NO_MODELS,
    'serving.push': 'off',
    ...overrides,
  };
  const child = spawnEncore('run', settings, { output: 'pipe' });
  const chunks: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => chunks.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => chunks.push(chunk));
  const job = { child, output: () => Buffer.concat(chunks).toString('utf8') };
  jobs.push(job);
  return job;
}

/** Resolves with the job's exit code once it exits; rejects, with its output, if that takes over `timeoutMs`. */
async function exitCode(job: Job, timeoutMs: number): Promise<number | null> {
  // Unreferenced: a pending timer must not keep the test process alive once the job has exited.
  const timeout = sleep(timeoutMs, 'timeout' as const, { ref: false });
  if ((await Promise.race([exited(job.child), timeout])) === 'timeout') {
    assert.fail(`the job did not exit within ${timeoutMs} ms; its output:\n${job.output().slice(-3000)}`);
  }
  return job.child.exitCode;
}

async function waitFor(what: string, done: () => Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

async function topicExists(name: string): Promise<boolean> {
  const admin = new Admin(config);
  try {
    return (await admin.describeCluster()).topics.some((topic) => topic.name === name);
  } finally {
    await admin.close();
  }
}

describe('the job over SASL_SSL and with a ClickHouse password', () => {
  after(async () => {
    for (const job of jobs) job.child.kill('SIGKILL'); // left running by a failed test
    const db = new ClickHouse(plain, { database: null });
    await db.command(`DROP DATABASE IF EXISTS ${config.clickhouse.database}`);
    await db.close();
    registry.close();
    const admin = new Admin(plain);
    const cluster = await admin.describeCluster();
    await admin.deleteTopics(
      cluster.topics.map((topic) => topic.name).filter((n) => n.startsWith(config.appId)),
    );
    await admin.close();
  });

  it('creates its topics, consumes, produces and writes ClickHouse as the job user', async () => {
    assert.equal(config.kafka.security.protocol, 'SASL_SSL');
    const job = startJob();
    await waitFor('the job to create its topics', () => topicExists(t.listeningEvents.name));
    const start = Date.UTC(2026, 10, 23, 12, 0, 0);
    const events = Array.from({ length: 20 }, (_, i) =>
      listeningEvent({ eventId: `secure-${i}`, userId: `user-${i % 4}`, timestamp: start + i * 1000 }),
    );
    await produce(
      config,
      await Promise.all(
        events.map(async (event) => ({
          topic: t.listeningEvents.name,
          key: event.userId,
          value: await eventSerde.serialize(event),
        })),
      ),
    );
    // The topology's output, read back over SASL_SSL.
    const features = await readTopic(config, t.sessionFeatures.name, events.length, { settleMs: 0 });
    assert.ok(features.length >= events.length);
    const db = new ClickHouse(config);
    try {
      await waitFor('the events in ClickHouse', async () => {
        const [row] = await db.query<{ n: string }>('SELECT count() AS n FROM events');
        return Number(row?.n) === events.length;
      });
    } finally {
      await db.close();
    }
    job.child.kill('SIGTERM');
    assert.equal(await exitCode(job, 30_000), 0, job.output().slice(-3000));
    // Its effective config, logged at debug level, passwords included: redacted.
    assert.match(job.output(), /"msg":"config loaded"/);
    assert.match(job.output(), /"security":\{[^}]*"password":"\[redacted\]"/);
  });

  it('stops with AUTHENTICATION_FAILED on a wrong Kafka password', async () => {
    const job = startJob({ 'kafka.security.passwordFile': '', 'kafka.security.password': WRONG_PASSWORD });
    assert.equal(await exitCode(job, 20_000), 1);
    assert.match(
      job.output(),
      /\[ENCORE_AUTHENTICATION_FAILED\] Kafka at [\d.]+:\d+ refused the SCRAM-SHA-512 login of user encore/,
    );
  });

  it('stops with AUTHENTICATION_FAILED on a wrong ClickHouse password', async () => {
    const job = startJob({ 'clickhouse.passwordFile': '', 'clickhouse.password': WRONG_PASSWORD });
    assert.equal(await exitCode(job, 30_000), 1);
    assert.match(job.output(), /\[ENCORE_AUTHENTICATION_FAILED\] ClickHouse at \S+ refused user encore/);
  });

  it('prints no password, in any of the runs above', () => {
    assert.equal(jobs.length, 3);
    for (const job of jobs) {
      const output = job.output();
      assert.ok(output.length > 0);
      for (const secret of secrets) {
        assert.ok(secret.length >= 8, 'a secret long enough not to appear by chance');
        assert.ok(
          !output.includes(secret),
          `a password appears in the job's output:\n${output.slice(-3000)}`,
        );
      }
    }
  });
});
