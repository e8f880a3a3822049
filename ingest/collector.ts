/**
 * The event collector: apps POST listening events as JSON, the collector checks them against the Avro
 * contract and the validation rules and produces them, Avro through the schema registry, to
 * `<app>-listening-events` (key: the user). It answers once Kafka has acknowledged them, so an accepted
 * event is durable. A rejected event is answered with its reason and also kept in the dead-letter topic,
 * with the bytes it came as: nothing is dropped silently.
 *
 *   POST /v1/events   body: an event, an array of events, or {"events": [...]}
 *     202 {"accepted": n}                                   every event is in Kafka
 *     207 {"accepted": n, "rejected": [{index, eventId, reason, message}]}   the others are dead-lettered
 *     400 {"error": ...}   the body is not JSON, or holds no events, or every event was rejected
 *     413 {"error": ...}   more than collector.maxBodyBytes or collector.maxEvents
 *   GET /health           200 once Kafka and the registry answered
 *
 * It is also what the load tests drive, with vegeta over HTTP (see load/README.md).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Counter, Histogram } from 'prom-client';
import { type ConsumedRecord, type OutgoingRecord, Producer } from '../clients/kafka.ts';
import type { Config } from '../core/config.ts';
import { EncoreError, ErrorCodes, isEncoreError } from '../core/errors.ts';
import { logger } from '../core/log.ts';
import { registry as metricsRegistry } from '../core/metrics.ts';
import { SchemaRegistry } from '../schemas/registry.ts';
import { topicSerde, topics } from '../schemas/topics.ts';
import type { ListeningEvent } from '../schemas/types.generated.ts';
import { validateListeningEvent } from '../schemas/validation.ts';
import { DeadLetters, type Rejection } from '../topology/dead-letter.ts';

const log = logger('collector');
const STAGE = 'collector';
/** Where a rejected event came from, in its dead letter (there is no source topic). */
const SOURCE = 'http:/v1/events';

const eventsReceived = new Counter({
  name: 'encore_collector_events_total',
  help: 'Events the collector received, by outcome (accepted, rejected)',
  labelNames: ['outcome'] as const,
  registers: [metricsRegistry],
});

const requestSeconds = new Histogram({
  name: 'encore_collector_request_seconds',
  help: 'Time to answer a POST /v1/events, Kafka acknowledgement included, by status',
  labelNames: ['status'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  registers: [metricsRegistry],
});

interface Rejected {
  index: number;
  eventId: string | null;
  reason: string;
  message: string;
}

class HttpError extends Error {
  readonly status: number;
  /** Set when the body itself is kept in the dead-letter topic (it could not even be read as events). */
  readonly deadLetterReason: string | undefined;

  constructor(status: number, message: string, deadLetterReason?: string) {
    super(message);
    this.status = status;
    this.deadLetterReason = deadLetterReason;
  }
}

function readBody(request: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // Past the limit the rest is read and dropped (not kept in memory), so the client gets its 413.
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    request.on('end', () =>
      size > limit
        ? reject(new HttpError(413, `the body is over collector.maxBodyBytes (${limit} bytes)`))
        : resolve(Buffer.concat(chunks)),
    );
    request.on('error', reject);
  });
}

/** The events of a body: one event, an array, or {"events": [...]}. */
function eventsOf(body: Buffer): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new HttpError(400, `the body is not JSON: ${(error as Error).message}`, 'MALFORMED_JSON');
  }
  const events = Array.isArray(parsed)
    ? parsed
    : typeof parsed === 'object' && parsed !== null && Array.isArray((parsed as { events?: unknown }).events)
      ? (parsed as { events: unknown[] }).events
      : [parsed];
  if (events.length === 0) throw new HttpError(400, 'the body holds no events');
  return events;
}

export interface CollectorHandle {
  server: Server;
  /** The port it listens on (the configured one, or the one the system chose for port 0). */
  port: number;
  close(): Promise<void>;
}

/** Starts the collector; it runs until `close()`. */
export async function startCollector(config: Config): Promise<CollectorHandle> {
  const { collector } = config;
  const t = topics(config);
  const schemas = new SchemaRegistry(config);
  const serde = topicSerde(schemas, t.listeningEvents);
  const deadLetters = new DeadLetters(schemas, t.deadLetter.name, STAGE);
  const producer = new Producer(config, 'collector');
  await producer.connect();
  await serde.register();

  /** Each event as a Kafka record, or why it cannot be one. */
  async function encode(raw: unknown, index: number): Promise<OutgoingRecord | Rejected> {
    const eventId =
      typeof raw === 'object' && raw !== null && typeof (raw as { eventId?: unknown }).eventId === 'string'
        ? (raw as { eventId: string }).eventId
        : null;
    try {
      // The contract first (the shape), then the meaning: validation reads fields the shape guarantees.
      const value = await serde.serialize(raw as ListeningEvent);
      const event = validateListeningEvent(raw as ListeningEvent);
      return { topic: t.listeningEvents.name, key: event.userId, value };
    } catch (error) {
      if (!isEncoreError(error)) throw error;
      // A shape the contract does not allow fails serialization; a shape it allows but a meaning that cannot
      // be true fails validation.
      const reason = error.code === ErrorCodes.SERIALIZATION_FAILED ? 'SCHEMA_MISMATCH' : 'INVALID_VALUE';
      return { index, eventId, reason, message: error.message };
    }
  }

  async function deadLetter(
    rejections: { raw: Buffer; key: string | null; reason: string; message: string }[],
  ) {
    const now = Date.now();
    const records: Rejection[] = rejections.map(({ raw, key, reason, message }) => ({
      record: {
        topic: SOURCE,
        partition: -1,
        offset: -1,
        timestamp: now,
        key: key === null ? null : Buffer.from(key),
        value: raw,
        headers: {},
      } satisfies ConsumedRecord,
      reason,
      message,
    }));
    await producer.send(await deadLetters.encode(records));
  }

  async function postEvents(request: IncomingMessage): Promise<{ status: number; body: object }> {
    const body = await readBody(request, collector.maxBodyBytes);
    let events: unknown[];
    try {
      events = eventsOf(body);
    } catch (error) {
      if (error instanceof HttpError && error.deadLetterReason)
        await deadLetter([{ raw: body, key: null, reason: error.deadLetterReason, message: error.message }]);
      throw error;
    }
    if (events.length > collector.maxEvents)
      throw new HttpError(
        413,
        `${events.length} events, more than collector.maxEvents (${collector.maxEvents})`,
      );
    const encoded = await Promise.all(events.map(encode));
    const accepted = encoded.filter((e): e is OutgoingRecord => 'topic' in e);
    const rejected = encoded.filter((e): e is Rejected => 'reason' in e);
    // The dead letters and the events are acknowledged before the answer: an accepted event is durable,
    // and so is the evidence of a rejected one.
    await Promise.all([
      accepted.length > 0 ? producer.send(accepted) : undefined,
      rejected.length > 0
        ? deadLetter(
            rejected.map((r) => {
              const raw = events[r.index];
              const user =
                typeof raw === 'object' && raw !== null ? (raw as { userId?: unknown }).userId : null;
              return {
                raw: Buffer.from(JSON.stringify(raw) ?? 'null'),
                key: typeof user === 'string' ? user : null,
                reason: r.reason,
                message: r.message,
              };
            }),
          )
        : undefined,
    ]);
    eventsReceived.inc({ outcome: 'accepted' }, accepted.length);
    eventsReceived.inc({ outcome: 'rejected' }, rejected.length);
    if (rejected.length === 0) return { status: 202, body: { accepted: accepted.length } };
    return { status: accepted.length > 0 ? 207 : 400, body: { accepted: accepted.length, rejected } };
  }

  async function handle(request: IncomingMessage, response: ServerResponse) {
    const timer = requestSeconds.startTimer();
    let status = 500;
    let body: object;
    try {
      if (request.method === 'POST' && request.url === '/v1/events')
        ({ status, body } = await postEvents(request));
      else if (request.method === 'GET' && request.url === '/health')
        ({ status, body } = { status: 200, body: { ok: true } });
      else throw new HttpError(404, `no ${request.method} ${request.url}: POST /v1/events or GET /health`);
    } catch (error) {
      status = error instanceof HttpError ? error.status : 503;
      body = { error: (error as Error).message };
      if (status >= 500) log.error({ err: (error as Error).message }, 'could not take events');
    }
    timer({ status: String(status) });
    response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }

  const server = createServer((request, response) => void handle(request, response));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) =>
      reject(
        new EncoreError(
          ErrorCodes.CONFIG_INVALID,
          `collector cannot listen on ${collector.host}:${collector.port}: ${error.message}`,
        ),
      ),
    );
    server.listen(collector.port, collector.host, resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : collector.port;
  log.info({ host: collector.host, port }, 'collector listening');
  return {
    server,
    port,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await producer.disconnect();
      schemas.close();
    },
  };
}
