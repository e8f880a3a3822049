/**
 * Apache Kafka 4.x, single node in KRaft combined mode (broker + controller), run from Maven Central jars
 * on the machine's Java 17+. No Kafka distribution tarball is needed: the jars are the distribution.
 * Two client listeners: PLAINTEXT on kafka.port (no login; the stack's own checks and the tests use it) and
 * SASL_SSL on kafka.securePort (SCRAM logins over TLS, with a certificate from the stack's own CA), where the
 * stack's job user logs in (docs/SECURITY.md).
 */
import { chmodSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Admin } from '../clients/kafka.ts';
import type { Config } from '../core/config.ts';
import { EncoreError, ErrorCodes, isEncoreError } from '../core/errors.ts';
import type { Component, StackContext } from './component.ts';
import { componentError, ensureCached, findJava, maven, portAccepts, run } from './install.ts';
import {
  ensureBrokerTls,
  ensurePassword,
  JOB_USER,
  type KafkaSecrets,
  kafkaSecrets,
  keystorePassword,
} from './secrets.ts';

export const KAFKA_VERSION = '4.3.1';
const pom = fileURLToPath(new URL('./java/kafka-pom.xml', import.meta.url));

function libsDir(ctx: StackContext) {
  return path.join(ctx.cacheDir, `kafka-${KAFKA_VERSION}`);
}

/** The broker's classpath: the jars are the distribution. */
function classpath(ctx: StackContext) {
  return `${libsDir(ctx)}/*`;
}

function log4jFile(ctx: StackContext) {
  return path.join(ctx.dataDir, 'kafka', 'log4j2.properties');
}

async function brokerJava(ctx: StackContext): Promise<string> {
  const { javaHome } = ctx.config.stack;
  const java = await findJava(17, javaHome);
  if (java) return java;
  throw new EncoreError(
    ErrorCodes.STACK_JAVA_MISSING,
    javaHome
      ? `kafka: config key stack.javaHome (${javaHome}) holds no Java 17+ runtime (bin/java missing or older)`
      : 'kafka: no Java 17+ runtime found (looked at JAVA_HOME, `java` on PATH and /usr/lib/jvm); install one ' +
          '(Debian: apt-get install openjdk-17-jre-headless) or set stack.javaHome',
  );
}

export const kafka: Component = {
  name: 'kafka',

  ports: (config) => [
    { key: 'kafka.port', host: config.kafka.host, port: config.kafka.port },
    { key: 'kafka.securePort', host: config.kafka.host, port: config.kafka.securePort },
    { key: 'kafka.controllerPort', host: config.kafka.host, port: config.kafka.controllerPort },
  ],

  async install(ctx) {
    await brokerJava(ctx);
    const fetched = await ensureCached(libsDir(ctx), (tmp) =>
      maven('kafka', [
        '-f',
        pom,
        `-Dkafka.version=${KAFKA_VERSION}`,
        'dependency:copy-dependencies',
        '-DincludeScope=runtime',
        `-DoutputDirectory=${tmp}`,
      ]),
    );
    if (fetched) ctx.log.info({ dir: libsDir(ctx) }, 'kafka jars resolved from Maven Central');
  },

  async prepare(ctx, home) {
    const { kafka: k } = ctx.config;
    const java = await brokerJava(ctx);
    const dataDir = path.join(home, 'data');
    const secrets = kafkaSecrets(ctx.dataDir);
    await ensureBrokerTls(secrets, k.host);
    // Made now so the job's config can name it; the broker learns it once running (see `ready`).
    ensurePassword(secrets.jobPasswordFile);
    const properties = path.join(home, 'server.properties');
    const scram = 'org.apache.kafka.common.security.scram.ScramLoginModule required;';
    writeFileSync(
      properties,
      [
        'process.roles=broker,controller',
        'node.id=1',
        `controller.quorum.voters=1@${k.host}:${k.controllerPort}`,
        `listeners=PLAINTEXT://${k.host}:${k.port},SASL_SSL://${k.host}:${k.securePort},CONTROLLER://${k.host}:${k.controllerPort}`,
        `advertised.listeners=PLAINTEXT://${k.host}:${k.port},SASL_SSL://${k.host}:${k.securePort}`,
        'controller.listener.names=CONTROLLER',
        'inter.broker.listener.name=PLAINTEXT',
        'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL',
        // Logins checked against SCRAM credentials kept in the cluster metadata.
        'listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512',
        `listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=${scram}`,
        'listener.name.sasl_ssl.ssl.keystore.type=PKCS12',
        `listener.name.sasl_ssl.ssl.keystore.location=${secrets.keystore}`,
        `listener.name.sasl_ssl.ssl.keystore.password=${keystorePassword(secrets)}`,
        `log.dirs=${dataDir}`,
        `num.partitions=${k.partitions}`,
        'offsets.topic.replication.factor=1',
        'offsets.topic.num.partitions=4',
        'transaction.state.log.replication.factor=1',
        'transaction.state.log.min.isr=1',
        'transaction.state.log.num.partitions=4',
        'share.coordinator.state.topic.replication.factor=1',
        'share.coordinator.state.topic.min.isr=1',
        // A single-member test group should not wait 3 s for others to join.
        'group.initial.rebalance.delay.ms=0',
        'auto.create.topics.enable=false',
        '',
      ].join('\n'),
    );
    chmodSync(properties, 0o600); // it holds the keystore's password
    const log4j = log4jFile(ctx);
    writeFileSync(
      log4j,
      [
        'status = warn',
        'appender.out.type = Console',
        'appender.out.name = OUT',
        'appender.out.layout.type = PatternLayout',
        'appender.out.layout.pattern = [%d] %p %m (%c)%n',
        'rootLogger.level = INFO',
        'rootLogger.appenderRef.out.ref = OUT',
        'logger.state.name = state.change.logger',
        'logger.state.level = WARN',
        '',
      ].join('\n'),
    );
    if (!existsSync(path.join(dataDir, 'meta.properties'))) {
      // KRaft needs its metadata log formatted once, with a cluster id.
      try {
        const clusterId = (
          await run(java, ['-cp', classpath(ctx), 'kafka.tools.StorageTool', 'random-uuid'])
        ).trim();
        await run(java, [
          `-Dlog4j2.configurationFile=${log4j}`,
          '-cp',
          classpath(ctx),
          'kafka.tools.StorageTool',
          'format',
          '-t',
          clusterId.split('\n').at(-1)!,
          '-c',
          properties,
        ]);
      } catch (error) {
        throw componentError('kafka', `formatting the KRaft storage in ${dataDir} failed`, error);
      }
    }
    return {
      command: java,
      args: [
        '-Xms256m',
        `-Xmx${ctx.config.stack.kafkaHeapMb}m`,
        '-XX:+UseG1GC',
        '-XX:MaxGCPauseMillis=20',
        '-Djava.awt.headless=true',
        `-Dlog4j2.configurationFile=${log4j}`,
        '-cp',
        classpath(ctx),
        'kafka.Kafka',
        properties,
      ],
      cwd: home,
    };
  },

  /**
   * The job's SCRAM user. SCRAM credentials live in the cluster metadata, so they are set through the running
   * broker (on the PLAINTEXT listener), which also serves a data folder formatted before they existed. A
   * login that already works (a restart, a second `up`) is left alone.
   */
  async ready(ctx) {
    const { host, securePort } = ctx.config.kafka;
    if (!(await portAccepts(host, securePort))) {
      // A broker started before it had a SASL_SSL listener: left running as it is, the job's PLAINTEXT works.
      ctx.log.warn(
        { server: 'kafka', port: securePort },
        'the running broker has no SASL_SSL listener (kafka.securePort): `stack down kafka`, `stack up kafka` add it',
      );
      return;
    }
    const secrets = kafkaSecrets(ctx.dataDir);
    const job = jobSecurity(ctx.config, secrets);
    if (await logsIn(job)) return;
    await addScramUser(ctx, secrets);
    // The controller has committed the credentials; the broker applies them a moment later.
    for (let attempt = 0; attempt < 40; attempt++) {
      if (await logsIn(job)) return;
      await sleep(250);
    }
    throw componentError(
      'kafka',
      `${JOB_USER} cannot log in on the SASL_SSL listener (port ${securePort}) after its SCRAM credentials were set`,
    );
  },

  async healthy(ctx) {
    const admin = new Admin(plaintext(ctx.config));
    try {
      const cluster = await admin.describeCluster(3000);
      return cluster.brokers.length > 0;
    } catch {
      return false;
    } finally {
      await admin.close();
    }
  },
};

/** The stack reaches its broker on the PLAINTEXT listener, whatever the job's config says: it sets up the logins. */
function plaintext(config: Config): Config {
  return {
    ...config,
    kafka: { ...config.kafka, security: { ...config.kafka.security, protocol: 'PLAINTEXT' } },
  };
}

/** `config` as the job's user of the local stack connects: SASL_SSL, SCRAM-SHA-512, the stack's CA. */
function jobSecurity(config: Config, secrets: KafkaSecrets): Config {
  const security: Config['kafka']['security'] = {
    protocol: 'SASL_SSL',
    saslMechanism: 'SCRAM-SHA-512',
    username: JOB_USER,
    password: ensurePassword(secrets.jobPasswordFile),
    passwordFile: secrets.jobPasswordFile,
    caFile: secrets.caFile,
  };
  return { ...config, kafka: { ...config.kafka, security } };
}

/** Whether `config`'s user logs in; false only when the broker refuses the login. */
async function logsIn(config: Config): Promise<boolean> {
  const admin = new Admin(config);
  try {
    await admin.describeCluster(5000);
    return true;
  } catch (error) {
    if (isEncoreError(error, ErrorCodes.AUTHENTICATION_FAILED)) return false;
    throw error;
  } finally {
    await admin.close();
  }
}

/** Sets the job user's SCRAM-SHA-512 credentials with Kafka's ConfigCommand. */
async function addScramUser(ctx: StackContext, secrets: KafkaSecrets): Promise<void> {
  const java = await brokerJava(ctx);
  const password = ensurePassword(secrets.jobPasswordFile);
  // The password goes in a file of mode 600, not on the command line, where `ps` shows it to every user.
  const credentials = path.join(secrets.dir, `.${JOB_USER}-scram.properties`);
  writeFileSync(credentials, `SCRAM-SHA-512=password=${password}\n`, { mode: 0o600 });
  const { host, port } = ctx.config.kafka;
  try {
    await run(java, [
      `-Dlog4j2.configurationFile=${log4jFile(ctx)}`,
      '-cp',
      classpath(ctx),
      'kafka.admin.ConfigCommand',
      '--bootstrap-server',
      `${host}:${port}`,
      '--alter',
      '--entity-type',
      'users',
      '--entity-name',
      JOB_USER,
      '--add-config-file',
      credentials,
    ]);
    ctx.log.info({ server: 'kafka', user: JOB_USER }, 'SCRAM credentials of the job user set');
  } catch (error) {
    const reason = (error as Error).message;
    throw componentError('kafka', `setting the SCRAM credentials of ${JOB_USER} failed: ${reason}`, error);
  } finally {
    rmSync(credentials, { force: true });
  }
}
