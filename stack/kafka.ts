/**
 * Apache Kafka 4.x, single node in KRaft combined mode (broker + controller), run from Maven Central jars
 * on the machine's Java 17+. No Kafka distribution tarball is needed: the jars are the distribution.
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Admin } from '../clients/kafka.ts';
import { EncoreError, ErrorCodes } from '../core/errors.ts';
import type { Component, StackContext } from './component.ts';
import { componentError, ensureCached, findJava, maven, run } from './install.ts';

export const KAFKA_VERSION = '4.3.1';
const pom = fileURLToPath(new URL('./java/kafka-pom.xml', import.meta.url));

function libsDir(ctx: StackContext) {
  return path.join(ctx.cacheDir, `kafka-${KAFKA_VERSION}`);
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
    const properties = path.join(home, 'server.properties');
    writeFileSync(
      properties,
      [
        'process.roles=broker,controller',
        'node.id=1',
        `controller.quorum.voters=1@${k.host}:${k.controllerPort}`,
        `listeners=PLAINTEXT://${k.host}:${k.port},CONTROLLER://${k.host}:${k.controllerPort}`,
        `advertised.listeners=PLAINTEXT://${k.host}:${k.port}`,
        'controller.listener.names=CONTROLLER',
        'inter.broker.listener.name=PLAINTEXT',
        'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
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
    const log4j = path.join(home, 'log4j2.properties');
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
    const classpath = `${libsDir(ctx)}/*`;
    if (!existsSync(path.join(dataDir, 'meta.properties'))) {
      // KRaft needs its metadata log formatted once, with a cluster id.
      try {
        const clusterId = (
          await run(java, ['-cp', classpath, 'kafka.tools.StorageTool', 'random-uuid'])
        ).trim();
        await run(java, [
          `-Dlog4j2.configurationFile=${log4j}`,
          '-cp',
          classpath,
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
        classpath,
        'kafka.Kafka',
        properties,
      ],
      cwd: home,
    };
  },

  async healthy(ctx) {
    const admin = new Admin(ctx.config);
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
