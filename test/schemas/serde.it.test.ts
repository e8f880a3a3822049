/**
 * Schema evolution through the real schema registry (the local stack's Apicurio, Confluent API).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import type avro from 'avsc';
import { ErrorCodes, isEncoreError } from '../../core/errors.ts';
import { Contracts, contractFromSchema } from '../../schemas/contracts.ts';
import { SchemaRegistry } from '../../schemas/registry.ts';
import { AvroSerde } from '../../schemas/serde.ts';
import type { ListeningEvent } from '../../schemas/types.generated.ts';
import { isolatedConfig } from '../helpers/env.ts';
import { listeningEvent } from '../helpers/events.ts';

const config = isolatedConfig('serde');
const registry = new SchemaRegistry(config);
after(() => registry.close());

type RecordSchema = { type: 'record'; name: string; namespace: string; fields: Record<string, unknown>[] };
const v1Schema = Contracts.listeningEvent.schema as unknown as RecordSchema;

/** v2 of the event: one new optional field, and a new enum symbol a v1 reader has never seen. */
const v2Schema: RecordSchema = {
  ...v1Schema,
  fields: [
    ...v1Schema.fields.map((field) =>
      field.name === 'type'
        ? {
            ...field,
            type: {
              ...(field.type as Record<string, unknown>),
              symbols: [...((field.type as { symbols: string[] }).symbols ?? []), 'LIKE'],
            },
          }
        : field,
    ),
    { name: 'volumePercent', type: ['null', 'int'], default: null },
  ],
};
type ListeningEventV2 = ListeningEvent & { volumePercent: number | null };

/** avsc decodes records into instances of generated classes; compare their data only. */
const plain = (value: unknown) => structuredClone(value);

function subject() {
  return `${config.appId}-${randomUUID().slice(0, 8)}-value`;
}

function expectDeserializationError(reason: string) {
  return (error: unknown) => {
    assert.ok(isEncoreError(error, ErrorCodes.DESERIALIZATION_FAILED), String(error));
    assert.equal((error as { reason?: string }).reason, reason, (error as Error).message);
    return true;
  };
}

describe('Avro contracts through the schema registry', () => {
  it('writes the Confluent wire format: magic byte 0, then the registered schema id', async () => {
    const serde = new AvroSerde(registry, subject(), Contracts.listeningEvent);
    const bytes = await serde.serialize(listeningEvent({ eventId: 'e1' }));
    assert.equal(bytes.readUInt8(0), 0);
    assert.equal(bytes.readInt32BE(1), await serde.register());
    assert.deepEqual(plain(await serde.deserialize(bytes)), listeningEvent({ eventId: 'e1' }));
  });

  it('puts new subjects in BACKWARD compatibility', async () => {
    const name = subject();
    await new AvroSerde(registry, name, Contracts.listeningEvent).register();
    assert.equal(await registry.compatibility(name), 'BACKWARD');
  });

  it('reads a v2 event (new optional field, new enum symbol) with the v1 reader', async () => {
    const name = subject();
    const v1 = new AvroSerde(registry, name, Contracts.listeningEvent);
    const v2 = new AvroSerde<ListeningEventV2>(registry, name, contractFromSchema(v2Schema as avro.Schema));
    await v1.register();
    const written: ListeningEventV2 = { ...listeningEvent({ eventId: 'v2-event' }), volumePercent: 80 };
    const read = await v1.deserialize(await v2.serialize(written));
    assert.deepEqual(plain(read), listeningEvent({ eventId: 'v2-event' }), 'the unknown field is dropped');
    const liked = await v1.deserialize(
      await v2.serialize({ ...written, type: 'LIKE' as ListeningEvent['type'] }),
    );
    assert.equal(liked.type, 'UNKNOWN', 'an unknown symbol falls back to the enum default');
  });

  it('reads a v1 event with the v2 reader, filling the new field with its default', async () => {
    const name = subject();
    const v1 = new AvroSerde(registry, name, Contracts.listeningEvent);
    const v2 = new AvroSerde<ListeningEventV2>(registry, name, contractFromSchema(v2Schema as avro.Schema));
    const bytes = await v1.serialize(listeningEvent({ eventId: 'v1-event' }));
    await v2.register();
    assert.deepEqual(plain(await v2.deserialize(bytes)), {
      ...listeningEvent({ eventId: 'v1-event' }),
      volumePercent: null,
    });
  });

  it('has the registry refuse an incompatible change', async () => {
    const name = subject();
    await new AvroSerde(registry, name, Contracts.listeningEvent).register();
    const required = { ...v1Schema, fields: [...v1Schema.fields, { name: 'mood', type: 'string' }] };
    const retyped = {
      ...v1Schema,
      fields: v1Schema.fields.map((f) => (f.name === 'userId' ? { ...f, type: 'long' } : f)),
    };
    for (const schema of [required, retyped]) {
      await assert.rejects(
        new AvroSerde(registry, name, contractFromSchema(schema as avro.Schema)).register(),
        (error: unknown) => {
          assert.ok(isEncoreError(error, ErrorCodes.SCHEMA_INCOMPATIBLE), String(error));
          assert.match((error as Error).message, new RegExp(name));
          return true;
        },
      );
    }
  });

  it('says why malformed bytes cannot be read', async () => {
    const serde = new AvroSerde(registry, subject(), Contracts.listeningEvent);
    const good = await serde.serialize(listeningEvent({ eventId: 'good' }));
    const unknownId = Buffer.from(good);
    unknownId.writeInt32BE(2_000_000_000, 1);
    const wrongMagic = Buffer.from(good);
    wrongMagic.writeUInt8(1, 0);

    await assert.rejects(serde.deserialize(Buffer.alloc(0)), expectDeserializationError('EMPTY_PAYLOAD'));
    await assert.rejects(serde.deserialize(null), expectDeserializationError('EMPTY_PAYLOAD'));
    await assert.rejects(serde.deserialize(wrongMagic), expectDeserializationError('BAD_MAGIC_BYTE'));
    await assert.rejects(
      serde.deserialize(Buffer.from('{"json":true}')),
      expectDeserializationError('BAD_MAGIC_BYTE'),
    );
    await assert.rejects(serde.deserialize(unknownId), expectDeserializationError('UNKNOWN_SCHEMA_ID'));
    await assert.rejects(
      serde.deserialize(good.subarray(0, good.length - 3)),
      expectDeserializationError('MALFORMED_AVRO'),
    );
    await assert.rejects(
      serde.deserialize(Buffer.concat([good, Buffer.from([7])])),
      expectDeserializationError('MALFORMED_AVRO'),
    );
  });

  it('reports a writer schema that cannot be read as the contract', async () => {
    const name = subject();
    const song = new AvroSerde(registry, `${name}-song`, Contracts.song);
    const bytes = await song.serialize({
      songId: 's',
      title: 't',
      artistId: 'a',
      artistName: 'A',
      albumId: null,
      genre: 'pop',
      language: null,
      popularity: 0.5,
      explicit: false,
      releaseDate: 19000,
      addedAt: 1_700_000_000_000,
      durationMs: 180_000,
      audioFeatures: [0.1],
    });
    const events = new AvroSerde(registry, name, Contracts.listeningEvent);
    await assert.rejects(events.deserialize(bytes), expectDeserializationError('SCHEMA_MISMATCH'));
  });

  it('refuses to write a value that does not match the schema, naming the field', async () => {
    const serde = new AvroSerde(registry, subject(), Contracts.listeningEvent);
    const bad = { ...listeningEvent({}), positionMs: 'ten' } as unknown as ListeningEvent;
    await assert.rejects(serde.serialize(bad), (error: unknown) => {
      assert.ok(isEncoreError(error, ErrorCodes.SERIALIZATION_FAILED));
      assert.match((error as Error).message, /positionMs/);
      return true;
    });
  });
});
