/**
 * The HTTP collector against the real Kafka and schema registry: valid events end up in the events topic
 * as Avro, exactly as sent; every rejected one is answered with its reason and kept in the dead-letter
 * topic with the JSON it came as; bodies that are not JSON, too large or empty are refused whole.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Config } from '../../core/config.ts';
import { type CollectorHandle, startCollector } from '../../ingest/collector.ts';
import { SchemaRegistry } from '../../schemas/registry.ts';
import { topicSerde, topics } from '../../schemas/topics.ts';
import type { ListeningEvent } from '../../schemas/types.generated.ts';
import { up } from '../../stack/stack.ts';
import { provision } from '../../topology/job.ts';
import { isolatedConfig } from '../helpers/env.ts';
import { listeningEvent } from '../helpers/events.ts';
import { readTopic } from '../helpers/kafka.ts';

const base = isolatedConfig('collector');
const config: Config = {
  ...base,
  collector: { ...base.collector, port: 0, maxEvents: 50, maxBodyBytes: 64 * 1024 },
};
const t = topics(config);
let collector: CollectorHandle;
let schemas: SchemaRegistry;

async function post(body: string) {
  const response = await fetch(`http://127.0.0.1:${collector.port}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('the HTTP event collector', () => {
  before(async () => {
    await up(config);
    await provision(config);
    schemas = new SchemaRegistry(config);
    collector = await startCollector(config);
  });
  after(async () => {
    await collector?.close();
    schemas?.close();
  });

  const now = Date.now();
  const valid = Array.from({ length: 5 }, (_, i) =>
    listeningEvent({
      eventId: `c-${i}`,
      userId: `user-${i % 2}`,
      timestamp: now - i * 1000,
      songId: `song-${i}`,
    }),
  );

  it('takes valid events into Kafka as Avro, keyed by user, and dead-letters each rejected one with its reason', async () => {
    const negative = {
      ...listeningEvent({ eventId: 'bad-position', userId: 'user-9', timestamp: now }),
      positionMs: -5,
    };
    const wrongShape = { eventId: 'bad-shape', userId: 'user-9', type: 'PLAY', timestamp: 'yesterday' };
    const future = listeningEvent({
      eventId: 'bad-future',
      userId: 'user-9',
      timestamp: now + 3 * 86_400_000,
    });
    const answer = await post(JSON.stringify({ events: [...valid, negative, wrongShape, future] }));
    assert.equal(answer.status, 207);
    assert.equal(answer.body.accepted, valid.length);
    assert.deepEqual(
      (answer.body.rejected as { index: number; eventId: string; reason: string }[]).map((r) => [
        r.index,
        r.eventId,
        r.reason,
      ]),
      [
        [5, 'bad-position', 'INVALID_VALUE'],
        [6, 'bad-shape', 'SCHEMA_MISMATCH'],
        [7, 'bad-future', 'INVALID_VALUE'],
      ],
    );

    const serde = topicSerde(schemas, t.listeningEvents);
    const records = await readTopic(config, t.listeningEvents.name, valid.length);
    const stored = await Promise.all(
      // As plain data: decoded records are avsc's record classes.
      records.map(async (r) => ({
        key: r.key?.toString(),
        event: JSON.parse(JSON.stringify(await serde.deserialize(r.value))) as ListeningEvent,
      })),
    );
    assert.deepEqual(
      stored.sort((a, b) => a.event.eventId.localeCompare(b.event.eventId)),
      valid.map((event) => ({ key: event.userId, event })),
    );

    const letters = await readTopic(config, t.deadLetter.name, 3);
    const letterSerde = topicSerde(schemas, t.deadLetter);
    const decoded = await Promise.all(letters.map((r) => letterSerde.deserialize(r.value)));
    assert.deepEqual(
      decoded.map((d) => [JSON.parse(d.value!.toString()).eventId, d.reason, d.stage, d.sourceTopic]).sort(),
      [
        ['bad-future', 'INVALID_VALUE', 'collector', 'http:/v1/events'],
        ['bad-position', 'INVALID_VALUE', 'collector', 'http:/v1/events'],
        ['bad-shape', 'SCHEMA_MISMATCH', 'collector', 'http:/v1/events'],
      ],
    );
    assert.ok(decoded.every((d) => d.errorMessage.length > 0));
  });

  it('refuses a body that is not JSON, is empty, or is over the limits, with the reason', async () => {
    const notJson = await post('{"eventId": ');
    assert.equal(notJson.status, 400);
    assert.match(String(notJson.body.error), /not JSON/);
    assert.equal((await post('[]')).status, 400);
    const tooMany = await post(JSON.stringify(Array.from({ length: 51 }, () => valid[0])));
    assert.equal(tooMany.status, 413);
    assert.match(String(tooMany.body.error), /collector\.maxEvents/);
    const tooLarge = await post(JSON.stringify({ events: [valid[0]], padding: 'x'.repeat(70 * 1024) }));
    assert.equal(tooLarge.status, 413);
    const allBad = await post(JSON.stringify([{ eventId: 'x' }]));
    assert.equal(allBad.status, 400);
    assert.equal(allBad.body.accepted, 0);
    // The body that was not JSON is kept too, whole; the refused-whole ones are the client's to resend.
    const letters = await readTopic(config, t.deadLetter.name, 5);
    const letterSerde = topicSerde(schemas, t.deadLetter);
    const reasons = await Promise.all(
      letters.map(async (r) => (await letterSerde.deserialize(r.value)).reason),
    );
    assert.deepEqual(reasons.filter((r) => r === 'MALFORMED_JSON').length, 1);
    assert.equal(reasons.length, 5, 'three rejected events, the malformed body, the all-bad event');
  });

  it('answers health checks and names its routes on others', async () => {
    assert.equal((await fetch(`http://127.0.0.1:${collector.port}/health`)).status, 200);
    const other = await fetch(`http://127.0.0.1:${collector.port}/v2/events`, { method: 'POST', body: '[]' });
    assert.equal(other.status, 404);
    assert.match(((await other.json()) as { error: string }).error, /POST \/v1\/events/);
  });
});
