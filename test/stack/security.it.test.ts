/**
 * The local stack's security set-up: the job user's secrets (made once, mode 600), its SCRAM login on Kafka's
 * SASL_SSL listener and its ClickHouse password, and what a wrong password or an untrusted certificate
 * gives: AUTHENTICATION_FAILED, within seconds rather than at a connect timeout.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { settingsEnv } from '../../cli/child.ts';
import { ClickHouse } from '../../clients/clickhouse.ts';
import { Admin, Consumer, Producer } from '../../clients/kafka.ts';
import { type Config, endpoints, loadConfig } from '../../core/config.ts';
import { ErrorCodes, isEncoreError } from '../../core/errors.ts';
import { clickhouseSecrets, kafkaSecrets } from '../../stack/secrets.ts';
import { stackContext, up } from '../../stack/stack.ts';
import { isolatedConfig } from '../helpers/env.ts';
import { readTopic } from '../helpers/kafka.ts';
import { stackJobUser } from '../helpers/security.ts';

const plain = loadConfig();
const config = isolatedConfig('security', { env: { ...process.env, ...settingsEnv(stackJobUser(plain)) } });
const { dataDir } = stackContext(plain);
const topic = `${config.appId}-secure`;

/** `config` with one security setting changed. */
function withKafka(security: Partial<Config['kafka']['security']>): Config {
  return { ...config, kafka: { ...config.kafka, security: { ...config.kafka.security, ...security } } };
}

function failsWith(code: string, pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(isEncoreError(error, code as never), String(error));
    assert.match(error.message, pattern);
    return true;
  };
}

/** Runs `action` and resolves with how long it took, or rejects with its error. */
async function timed(action: () => Promise<unknown>): Promise<number> {
  const began = Date.now();
  await action();
  return Date.now() - began;
}

describe('the local stack, secured', () => {
  after(async () => {
    const admin = new Admin(plain);
    await admin.deleteTopics([topic]);
    await admin.close();
  });

  it('keeps the job user secrets in files of mode 600, in a folder of mode 700, the same after another up', async () => {
    const kafka = kafkaSecrets(dataDir);
    const clickhouse = clickhouseSecrets(dataDir);
    const before = readFileSync(kafka.jobPasswordFile, 'utf8');
    await up(plain);
    assert.equal(readFileSync(kafka.jobPasswordFile, 'utf8'), before);
    for (const file of [
      kafka.jobPasswordFile,
      kafka.keystore,
      kafka.keystorePasswordFile,
      clickhouse.jobPasswordFile,
    ]) {
      assert.equal(statSync(file).mode & 0o777, 0o600, file);
    }
    for (const dir of [kafka.dir, clickhouse.dir]) assert.equal(statSync(dir).mode & 0o777, 0o700, dir);
    assert.match(readFileSync(kafka.caFile, 'utf8'), /^-----BEGIN CERTIFICATE-----/);
  });

  it('lets the job user create a topic, produce and consume over SASL_SSL on kafka.securePort', async () => {
    assert.equal(config.kafka.security.protocol, 'SASL_SSL');
    assert.equal(endpoints(config).kafkaBootstrap, `${config.kafka.host}:${config.kafka.securePort}`);
    const admin = new Admin(config);
    try {
      await admin.ensureTopics([{ name: topic, partitions: 1, replicationFactor: 1 }]);
      const cluster = await admin.describeCluster();
      assert.deepEqual(
        cluster.brokers.map((b) => b.port),
        [config.kafka.securePort],
        'the broker advertises its secure listener to secure clients',
      );
    } finally {
      await admin.close();
    }
    const producer = new Producer(config, 'secure-producer');
    await producer.connect();
    try {
      await producer.send([{ topic, key: 'user-1', value: Buffer.from('over TLS') }]);
    } finally {
      await producer.disconnect();
    }
    const [record] = await readTopic(config, topic, 1, { settleMs: 0 });
    assert.equal(record?.value?.toString(), 'over TLS');
  });

  it('lets the job user query ClickHouse with its password, and keeps the default user working', async () => {
    for (const user of [config, plain]) {
      const db = new ClickHouse(user, { database: null });
      try {
        assert.deepEqual(await db.query('SELECT 1 AS one'), [{ one: 1 }]);
      } finally {
        await db.close();
      }
    }
  });

  it('fails a wrong Kafka password as AUTHENTICATION_FAILED within seconds, for producers and the admin', async () => {
    const wrong = withKafka({ password: 'not-the-password' });
    const producer = new Producer(wrong, 'wrong-password');
    const elapsed = await timed(() =>
      assert.rejects(
        producer.connect(),
        failsWith(ErrorCodes.AUTHENTICATION_FAILED, /refused the SCRAM-SHA-512 login of user encore/),
      ),
    );
    assert.ok(elapsed < 5_000, `failed after ${elapsed} ms`);
    const admin = new Admin(wrong);
    try {
      await assert.rejects(
        admin.ensureTopics([{ name: topic, partitions: 1, replicationFactor: 1 }]),
        failsWith(ErrorCodes.AUTHENTICATION_FAILED, /kafka\.security\.password/),
      );
    } finally {
      await admin.close();
    }
  });

  it('fails a consumer with a wrong Kafka password as AUTHENTICATION_FAILED after one connect attempt', async () => {
    const consumer = new Consumer(withKafka({ password: 'not-the-password' }), 'wrong-password', {
      groupId: `${config.appId}-wrong`,
      topics: [topic],
    });
    const elapsed = await timed(() =>
      assert.rejects(consumer.connect(), failsWith(ErrorCodes.AUTHENTICATION_FAILED, /login of user encore/)),
    );
    assert.ok(elapsed < 10_000, `failed after ${elapsed} ms`);
  });

  it('fails a broker certificate the client does not trust as AUTHENTICATION_FAILED', async () => {
    // Without the stack's CA the client trusts the system's CAs, none of which signed the broker's certificate.
    const producer = new Producer(withKafka({ caFile: '' }), 'untrusted');
    await assert.rejects(
      producer.connect(),
      failsWith(ErrorCodes.AUTHENTICATION_FAILED, /TLS handshake failed .*kafka\.security\.caFile/),
    );
  });

  it('fails a wrong ClickHouse password as AUTHENTICATION_FAILED', async () => {
    const db = new ClickHouse({
      ...config,
      clickhouse: { ...config.clickhouse, password: 'not-the-password' },
    });
    try {
      await assert.rejects(
        db.query('SELECT 1'),
        failsWith(ErrorCodes.AUTHENTICATION_FAILED, /refused user encore: .*clickhouse\.passwordFile/),
      );
    } finally {
      await db.close();
    }
  });
});
