/**
 * `encore dataset`: training data from listening history without a running stack. The events (simulated,
 * or files from an importer: events.jsonl, songs.jsonl, profiles.jsonl) go through the listening topology
 * itself, in the in-memory test driver, and what it produces is written in the sink tables' shape
 * (JSONEachRow, the columns of sinks/migrations): so training reads exactly the features and labels the
 * running job computes and writes to ClickHouse.
 *
 *   <out>/session_features.jsonl  disengagement_labels.jsonl  sessions.jsonl  songs.jsonl  events.jsonl
 *   <out>/feature-spec.json
 */
import { createReadStream } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Config } from '../core/config.ts';
import { DeserializationError } from '../core/errors.ts';
import { topics } from '../schemas/topics.ts';
import type { ListeningEvent, Song, UserProfile } from '../schemas/types.generated.ts';
import { validateListeningEvent } from '../schemas/validation.ts';
import { JsonLinesWriter, SIMULATION_FILES, writeJsonLines } from '../simulator/files.ts';
import type { Simulation } from '../simulator/model.ts';
import { eventRow, labelRow, type Row, sessionFeaturesRow, sessionRow, songRow } from '../sinks/tables.ts';
import { featureSpecFile } from '../topology/listening/features.ts';
import { listeningTopology } from '../topology/listening.ts';
import { TopologyTestDriver } from '../topology/streams/test-driver.ts';

export interface DatasetReport {
  events: number;
  invalidEvents: number;
  features: number;
  labels: number;
  sessions: number;
  songs: number;
}

/** Far enough after the last event for every session to close and every label to be decided. */
const END_OF_STREAM = 'end-of-stream';

async function* jsonLines<T>(file: string): AsyncGenerator<T> {
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    if (line.trim()) yield JSON.parse(line) as T;
  }
}

async function readAll<T>(file: string): Promise<T[]> {
  const rows: T[] = [];
  for await (const row of jsonLines<T>(file)) rows.push(row);
  return rows;
}

/** Reads a directory of importer or simulator files. */
export async function readSimulation(
  dir: string,
): Promise<Omit<Simulation, 'events'> & { events: AsyncIterable<ListeningEvent> }> {
  return {
    songs: await readAll<Song>(path.join(dir, SIMULATION_FILES.songs)),
    profiles: await readAll<UserProfile>(path.join(dir, SIMULATION_FILES.profiles)),
    events: jsonLines<ListeningEvent>(path.join(dir, SIMULATION_FILES.events)),
  };
}

export async function buildDataset(
  config: Config,
  source: Omit<Simulation, 'events'> & { events: Iterable<ListeningEvent> | AsyncIterable<ListeningEvent> },
  out: string,
  onEvents?: (events: number) => void,
): Promise<DatasetReport> {
  await mkdir(out, { recursive: true });
  const t = topics(config);
  const driver = new TopologyTestDriver(
    listeningTopology(config, () => undefined),
    {
      applicationId: config.appId,
      changelogs: false,
    },
  );
  const file = (name: string) => new JsonLinesWriter(path.join(out, `${name}.jsonl`));
  const tables = [
    {
      writer: file('session_features'),
      topic: driver.createOutputTopic(t.sessionFeatures.name),
      toRow: sessionFeaturesRow,
    },
    {
      writer: file('disengagement_labels'),
      topic: driver.createOutputTopic(t.disengagementLabels.name),
      toRow: labelRow,
    },
    { writer: file('sessions'), topic: driver.createOutputTopic(t.sessions.name), toRow: sessionRow },
  ] as { writer: JsonLinesWriter; topic: { readValues(): { userId: string }[] }; toRow: (v: never) => Row }[];
  const eventsFile = file('events');
  /** Moves what the topology produced so far to the files (memory stays bounded). */
  const collect = async () => {
    for (const { writer, topic, toRow } of tables) {
      const values = topic.readValues().filter((v) => v.userId !== END_OF_STREAM);
      await writer.write(values.map((v) => toRow(v as never)));
    }
  };

  const profiles = driver.createInputTopic<UserProfile>(t.userProfiles.name);
  const events = driver.createInputTopic<ListeningEvent>(t.listeningEvents.name);
  let count = 0;
  let invalid = 0;
  let last = 0;
  let batch: Row[] = [];
  for await (const event of source.events) {
    if (count === 0 && invalid === 0) {
      // The table first, stamped no later than the first event: a later stamp would move stream time ahead.
      for (const profile of source.profiles) profiles.pipe(profile.userId, profile, event.timestamp);
    }
    try {
      validateListeningEvent(event, Number.POSITIVE_INFINITY);
    } catch (error) {
      if (!(error instanceof DeserializationError)) throw error;
      invalid += 1;
      continue;
    }
    events.pipe(event.userId, event, event.timestamp);
    batch.push(eventRow(event, { partition: 0, offset: count }));
    count += 1;
    last = Math.max(last, event.timestamp);
    if (batch.length === 10_000) {
      await eventsFile.write(batch);
      batch = [];
      await collect();
      onEvents?.(count);
    }
  }
  await eventsFile.write(batch);
  const { sessionGapMs, graceMs, labelHorizonMs, feedbackWindowMs } = config.listening;
  const end = last + Math.max(sessionGapMs, labelHorizonMs, feedbackWindowMs) + graceMs + 2 * 60_000;
  events.pipe(END_OF_STREAM, endOfStream(end), end);
  await collect();
  onEvents?.(count);

  const [features, labels, sessions] = await Promise.all(tables.map((table) => table.writer.close()));
  await eventsFile.close();
  await writeJsonLines(
    path.join(out, 'songs.jsonl'),
    source.songs.map((song, offset) => songRow(song, { partition: 0, offset })),
  );
  await copyFile(featureSpecFile, path.join(out, 'feature-spec.json'));
  return {
    events: count,
    invalidEvents: invalid,
    features: features!,
    labels: labels!,
    sessions: sessions!,
    songs: source.songs.length,
  };
}

function endOfStream(at: number): ListeningEvent {
  return {
    eventId: END_OF_STREAM,
    userId: END_OF_STREAM,
    type: 'PLAY',
    timestamp: at,
    songId: END_OF_STREAM,
    positionMs: 0,
    seekToMs: null,
    searchQuery: null,
    device: 'UNKNOWN',
    context: {
      appVersion: 'encore-dataset',
      os: null,
      country: null,
      source: 'UNKNOWN',
      sourceId: null,
      recommendationId: null,
      shuffle: false,
      timezoneOffsetMinutes: 0,
    },
  };
}
