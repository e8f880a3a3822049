/**
 * The ClickHouse connector against the real servers: while ClickHouse is down its buffer stays bounded and
 * consumption pauses (backpressure) instead of reading the topic into memory; once ClickHouse is back,
 * every row arrives, once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClickHouse } from '../../clients/clickhouse.ts';
import { Admin } from '../../clients/kafka.ts';
import type { Config } from '../../core/config.ts';
import { registry as metrics } from '../../core/metrics.ts';
import { SchemaRegistry } from '../../schemas/registry.ts';
import { AvroSerde } from '../../schemas/serde.ts';
import { topics, valueSubject } from '../../schemas/topics.ts';
import { ClickHouseConnector } from '../../sinks/connector.ts';
import { migrate } from '../../sinks/migrate.ts';
import { COMPONENTS, down, up } from '../../stack/stack.ts';
import { provision } from '../../topology/job.ts';
import { isolatedConfig } from '../helpers/env.ts';
import { listeningEvent } from '../helpers/events.ts';
import { produce } from '../helpers/kafka.ts';

const clickhouse = COMPONENTS.find((c) => c.name === 'clickhouse')!;
const base = isolatedConfig('connector');
const config: Config = {
  ...base,
  sinks: { ...base.sinks, batchRows: 50, maxBufferedRows: 200, flushIntervalMs: 100 },
};
const t = topics(config);
const registry = new SchemaRegistry(config);
const db = new ClickHouse(config);
const EVENTS = 2_000;

async function gauge(name: string): Promise<number> {
  const metric = (await metrics.getMetricsAsJSON()).find((m) => m.name === name);
  return Number(metric?.values[0]?.value ?? 0);
}

describe('ClickHouse connector (real Kafka and ClickHouse)', () => {
  before(async () => {
    await provision(config);
    await migrate(config);
  });

  after(async () => {
    await up(config, [clickhouse]);
    await db.command(`DROP DATABASE IF EXISTS ${config.clickhouse.database}`);
    await db.close();
    registry.close();
    const admin = new Admin(config);
    await admin.deleteTopics(Object.values(t).map((topic) => topic.name));
    await admin.close();
  });

  it('pauses with a bounded buffer while ClickHouse is down, then writes every row once', async () => {
    const serde = new AvroSerde(registry, valueSubject(t.listeningEvents.name), t.listeningEvents.contract);
    const start = Date.UTC(2026, 10, 20, 8);
    const events = async (from: number, to: number) => {
      const records = [];
      for (let i = from; i < to; i += 1) {
        const event = listeningEvent({
          eventId: `c-${i}`,
          userId: `u-${i % 50}`,
          timestamp: start + i * 1000,
        });
        records.push({
          topic: t.listeningEvents.name,
          key: event.userId,
          value: await serde.serialize(event),
        });
      }
      await produce(config, records);
    };
    const inClickHouse = async () =>
      Number((await db.query<{ n: string }>('SELECT count() AS n FROM events FINAL'))[0]!.n);
    const waitForRows = async (n: number) => {
      const deadline = Date.now() + 60_000;
      while ((await inClickHouse().catch(() => 0)) < n) {
        if (Date.now() > deadline) throw new Error(`fewer than ${n} rows in ClickHouse after 60 s`);
        await sleep(200);
      }
    };

    const stop = new AbortController();
    const connector = new ClickHouseConnector(config, registry).run(stop.signal);
    await events(0, 10);
    await waitForRows(10); // running

    await down(config, [clickhouse]);
    let maxBuffered = 0;
    let paused = false;
    try {
      await events(10, EVENTS);
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && !paused) {
        paused = (await gauge('encore_sink_paused')) === 1;
        maxBuffered = Math.max(maxBuffered, await gauge('encore_sink_buffered_rows'));
        await sleep(20);
      }
      await sleep(1_000); // paused: the buffer does not grow
      maxBuffered = Math.max(maxBuffered, await gauge('encore_sink_buffered_rows'));
    } finally {
      await up(config, [clickhouse]);
    }
    assert.ok(paused, 'consumption paused while ClickHouse was down');
    assert.ok(
      maxBuffered <= config.sinks.maxBufferedRows + config.sinks.batchRows,
      `at most the buffer limit plus one poll was held (${maxBuffered})`,
    );
    await waitForRows(EVENTS);
    stop.abort();
    await connector;
    assert.equal(await inClickHouse(), EVENTS);
    assert.equal(await gauge('encore_sink_paused'), 0, 'resumed');
  });
});
