/**
 * What a reliability run sends, fixed before it starts and the same on every iteration: the first `events`
 * valid events of a seeded simulation of recent listening, explicit recommendation requests among them,
 * malformed records spread through them (each one a probe the dead-letter topic must hold once, with the
 * reason it was rejected for), and, from a chosen event on, events written with version 2 of the event
 * schema. The expected outputs (expected.ts) and the live traffic (run.ts) both iterate it.
 */
import type avro from 'avsc';
import type { DeserializationReason } from '../core/errors.ts';
import { type Contract, Contracts, contractFromSchema } from '../schemas/contracts.ts';
import type { AvroSerde } from '../schemas/serde.ts';
import type { ListeningEvent, RecommendationRequest } from '../schemas/types.generated.ts';
import { MAX_CLOCK_SKEW_MS, MAX_POSITION_MS, validateListeningEvent } from '../schemas/validation.ts';
import { recentSimulation } from '../simulator/kafka.ts';
import type { Simulation } from '../simulator/model.ts';
import { mixSeed, Random } from '../simulator/random.ts';

const DAY = 86_400_000;

/** A listening event as version 2 of the schema writes it. */
export type ListeningEventV2 = ListeningEvent & { networkType: string | null };

/**
 * Version 2 of the listening-event contract, as a newer app release writes it: version 1 plus one optional
 * field. A backward-compatible change: the job, which reads with version 1, drops the field.
 */
export const LISTENING_EVENT_V2: Contract<ListeningEventV2> = contractFromSchema<ListeningEventV2>({
  ...(Contracts.listeningEvent.schema as avro.schema.RecordType),
  fields: [
    ...(Contracts.listeningEvent.schema as avro.schema.RecordType).fields,
    {
      name: 'networkType',
      type: ['null', 'string'],
      default: null,
      doc: 'The connection the app was on (wifi, cellular); added in version 2.',
    },
  ],
});

/** Ways a record can be unreadable or unbelievable, each with the dead-letter reason it must get. */
export const PROBE_KINDS = {
  garbage: 'BAD_MAGIC_BYTE',
  empty: 'EMPTY_PAYLOAD',
  'unknown-schema-id': 'UNKNOWN_SCHEMA_ID',
  'truncated-avro': 'MALFORMED_AVRO',
  'negative-position': 'INVALID_VALUE',
  'negative-seek': 'INVALID_VALUE',
  'position-past-a-day': 'INVALID_VALUE',
  'future-timestamp': 'INVALID_VALUE',
  'ancient-timestamp': 'INVALID_VALUE',
  'timezone-offset': 'INVALID_VALUE',
} as const satisfies Record<string, DeserializationReason>;

export type ProbeKind = keyof typeof PROBE_KINDS;

/** The header every probe carries (dead letters keep headers byte for byte): its number. */
export const PROBE_HEADER = 'encore-reliability-probe';

/** Schema ids far above any the registry hands out; a few distinct ones, as a misconfigured producer would. */
const UNKNOWN_SCHEMA_IDS = { first: 2_000_000_000, count: 16 };

/** A malformed record: where it goes (the key of the event it was made from) and how its value is made. */
export interface Probe {
  id: number;
  kind: ProbeKind;
  reason: DeserializationReason;
  key: string;
  /** The record's value; `serde` writes valid version-1 events (the registry knows its schema id). */
  value(serde: AvroSerde<ListeningEvent>): Promise<Buffer>;
}

export type PlannedInput =
  /** The `index`-th valid event, written with schema version 1 or 2. */
  | { kind: 'event'; index: number; event: ListeningEvent; writer: 1 | 2 }
  | { kind: 'request'; request: RecommendationRequest }
  | { kind: 'malformed'; probe: Probe };

export interface PlanOptions {
  seed: number;
  /** Valid listening events. */
  events: number;
  users: number;
  songs: number;
  /** One explicit recommendation request after every this many events; 0: none. */
  requestEvery: number;
  /** Malformed records spread evenly through the events. */
  malformed: number;
  /** From this valid event on, events are written with schema version 2; unset: never. */
  v2From?: number;
}

export class Plan {
  readonly options: PlanOptions;
  readonly simulation: Simulation;
  /** The time the plan was made: future timestamps are far ahead of it. */
  readonly now: number;

  constructor(options: PlanOptions, now = Date.now()) {
    this.options = options;
    this.now = now;
    this.simulation = recentSimulation(
      { seed: options.seed, users: options.users, songs: options.songs },
      now,
    );
  }

  /** The valid simulated events, at most `events` of them (fewer if the simulation runs out). */
  *validEvents(): Generator<ListeningEvent> {
    let taken = 0;
    for (const event of this.simulation.events) {
      if (taken === this.options.events) return;
      try {
        validateListeningEvent(event, this.now);
      } catch {
        continue; // the simulator's own rare slips are not part of the plan
      }
      taken += 1;
      yield event;
    }
  }

  /** Everything the run sends, in order. */
  *inputs(): Generator<PlannedInput> {
    const { events, malformed, requestEvery, v2From } = this.options;
    const random = new Random(mixSeed(this.options.seed, 0x9e1));
    let index = 0;
    let probes = 0;
    for (const event of this.validEvents()) {
      // Evenly spread: by the end of event i, malformed × (i + 1) / events probes have been sent.
      const due = Math.floor((malformed * (index + 1)) / events);
      for (; probes < due; probes += 1)
        yield { kind: 'malformed', probe: probe(probes, event, random, this.now) };
      yield { kind: 'event', index, event, writer: v2From !== undefined && index >= v2From ? 2 : 1 };
      index += 1;
      if (requestEvery > 0 && index % requestEvery === 0) {
        yield {
          kind: 'request',
          request: {
            requestId: `request-${index / requestEvery}`,
            userId: event.userId,
            count: null,
            requestedAt: event.timestamp,
          },
        };
      }
    }
  }
}

/** The version-2 value of an event: the new field filled in as a newer app would. */
export function asVersion2(event: ListeningEvent, index: number): ListeningEventV2 {
  return { ...event, networkType: index % 3 === 0 ? 'cellular' : 'wifi' };
}

function probe(id: number, template: ListeningEvent, random: Random, now: number): Probe {
  const kinds = Object.keys(PROBE_KINDS) as ProbeKind[];
  const kind = kinds[id % kinds.length]!;
  const base = { ...template, eventId: `probe-${id}` };
  const absurd = (event: ListeningEvent) => (serde: AvroSerde<ListeningEvent>) => serde.serialize(event);
  // Drawn here, not when the value is made, so every iteration of the plan makes the same bytes.
  const cut = random.float();
  const bytes = Array.from({ length: random.int(1, 64) }, () => random.int(0, 255));
  const shift = random.int(0, 3650);
  const value: Record<ProbeKind, Probe['value']> = {
    // Anything but the Confluent wire format's magic byte 0 first.
    garbage: async () => Buffer.from([1 + (bytes[0]! % 255), ...bytes.slice(1)]),
    empty: async () => Buffer.alloc(0),
    'unknown-schema-id': async (serde) => {
      const valid = await serde.serialize(base);
      valid.writeInt32BE(UNKNOWN_SCHEMA_IDS.first + (id % UNKNOWN_SCHEMA_IDS.count), 1);
      return valid;
    },
    // The 5-byte header stays whole; the body loses at least its last byte.
    'truncated-avro': async (serde) => {
      const valid = await serde.serialize(base);
      return valid.subarray(0, 5 + Math.floor(cut * (valid.length - 5)));
    },
    'negative-position': absurd({ ...base, positionMs: -1 - shift }),
    'negative-seek': absurd({ ...base, type: 'SEEK', positionMs: 1_000, seekToMs: -1 - shift }),
    'position-past-a-day': absurd({ ...base, positionMs: MAX_POSITION_MS + 1 + shift * 1000 }),
    'future-timestamp': absurd({ ...base, timestamp: now + MAX_CLOCK_SKEW_MS + (30 + shift) * DAY }),
    'ancient-timestamp': absurd({ ...base, timestamp: -shift * DAY }),
    'timezone-offset': absurd({
      ...base,
      context: { ...base.context, timezoneOffsetMinutes: 15 * 60 + shift },
    }),
  };
  return { id, kind, reason: PROBE_KINDS[kind], key: template.userId, value: value[kind] };
}
