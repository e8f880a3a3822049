/**
 * Serving end to end on the real stack (Kafka, schema registry, ClickHouse) with real models (tiny ones the
 * trainer exports, two versions): a scripted listener who starts skipping in bursts gets a recommendation on
 * the output topic without asking, read under read_committed; its songs pass every post-processing rule;
 * the feedback on it reaches ClickHouse; a new model version dropped into the models folder mid-run, then a
 * pin and a challenger announced on the control topic, change the versions on later scores and
 * recommendations without a restart, and every event still arrives once.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { announceModel } from '../../cli/serving.ts';
import { ClickHouse } from '../../clients/clickhouse.ts';
import { Consumer, type OutgoingRecord } from '../../clients/kafka.ts';
import type { Config } from '../../core/config.ts';
import { SchemaRegistry } from '../../schemas/registry.ts';
import { topicSerde, topics } from '../../schemas/topics.ts';
import type {
  ListeningEvent,
  ModelAnnouncement,
  Recommendation,
  RecommendationRequest,
  Song,
  UserProfile,
} from '../../schemas/types.generated.ts';
import { up } from '../../stack/stack.ts';
import { provision, runJob } from '../../topology/job.ts';
import { isolatedConfig } from '../helpers/env.ts';
import { listeningEvent } from '../helpers/events.ts';
import { produce } from '../helpers/kafka.ts';
import { type FixtureModels, fixtureModels } from '../helpers/models.ts';

const SECOND = 1000;
const BURST_USER = 'user-burst';
const OTHER_USER = 'user-other';

let models: FixtureModels;
let modelsDir: string;
let config: Config;
let t: ReturnType<typeof topics>;
const registry = () => new SchemaRegistry(config);
let schemas: SchemaRegistry;
let db: ClickHouse;
const stopJob = new AbortController();
let job: Promise<void>;
let recommendations: Consumer;
const received: { recommendation: Recommendation; at: number }[] = [];
const produced = new Map<string, number>();
let catalog: Map<string, Song>;
let sequence = 0;

/** The fixture catalog as Song records; every third song explicit, so the filter has something to do. */
function songs(): Song[] {
  return models.songs.map((row, i) => ({
    songId: row.song_id,
    title: row.title,
    artistId: row.artist_id,
    artistName: row.artist_name,
    albumId: null,
    genre: row.genre,
    language: row.language,
    popularity: row.popularity,
    explicit: i % 3 === 0,
    releaseDate: 18_262,
    addedAt: Date.UTC(2025, 0, 1),
    durationMs: 200_000,
    audioFeatures: row.audio_features,
  }));
}

async function send(user: string, type: ListeningEvent['type'], at: number, songId: string | null) {
  sequence += 1;
  const event = listeningEvent({
    eventId: `serving-${sequence}`,
    userId: user,
    type,
    timestamp: at,
    songId: type === 'SEARCH' || type === 'EXIT' ? null : songId,
    searchQuery: type === 'SEARCH' ? 'anything' : null,
  });
  const serde = topicSerde(schemas, t.listeningEvents);
  produced.set(event.eventId, Date.now());
  await produce(config, [{ topic: t.listeningEvents.name, key: user, value: await serde.serialize(event) }]);
  return event.eventId;
}

async function request(user: string, requestId: string) {
  const value: RecommendationRequest = { requestId, userId: user, count: 5, requestedAt: Date.now() };
  const serde = topicSerde(schemas, t.recommendationRequests);
  await produce(config, [
    { topic: t.recommendationRequests.name, key: user, value: await serde.serialize(value) },
  ]);
}

function announce(announcement: Omit<ModelAnnouncement, 'announcedAt'>) {
  return announceModel(config, { ...announcement, announcedAt: Date.now() });
}

/** Reads the recommendations topic (read_committed) in the background, noting when each arrived. */
async function readRecommendations(signal: AbortSignal) {
  const serde = topicSerde(schemas, t.recommendations);
  while (!signal.aborted) {
    for (const record of await recommendations.poll(100, 50)) {
      received.push({ recommendation: await serde.deserialize(record.value), at: Date.now() });
    }
  }
}

async function waitFor<T>(
  what: string,
  find: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('serving end to end', { timeout: 600_000 }, () => {
  const stopReading = new AbortController();
  let reading: Promise<void>;

  before(async () => {
    models = await fixtureModels();
    modelsDir = await mkdtemp(path.join(tmpdir(), 'encore-serving-models-'));
    // Version 1 of both models only: version 2 is dropped in mid-run.
    for (const name of ['disengagement', 'user-tower'])
      await cp(
        path.join(models.dir, name, models.versions[0]),
        path.join(modelsDir, name, models.versions[0]),
        {
          recursive: true,
        },
      );
    const base = isolatedConfig('serving');
    config = {
      ...base,
      sinks: { ...base.sinks, flushIntervalMs: 200 },
      streams: { ...base.streams, commitIntervalMs: 20, instanceId: 'serving-test' },
      serving: {
        ...base.serving,
        modelsDir,
        modelPollMs: 300,
        cooldownMs: 0,
        // Any score triggers for the burst listener (the tiny model's scores mean little); the other
        // listener never triggers, so their lists are the answers to their requests.
        userThresholds: { [BURST_USER]: 0, [OTHER_USER]: 1 },
        count: 6,
        maxPerArtist: 1,
        maxPerGenre: 2,
      },
    };
    t = topics(config);
    await up(config);
    await provision(config);
    schemas = registry();
    db = new ClickHouse(config);
    catalog = new Map(songs().map((s) => [s.songId, s]));
    const songSerde = topicSerde(schemas, t.songs);
    const profileSerde = topicSerde(schemas, t.userProfiles);
    const records: OutgoingRecord[] = [];
    for (const song of catalog.values())
      records.push({ topic: t.songs.name, key: song.songId, value: await songSerde.serialize(song) });
    for (const user of [BURST_USER, OTHER_USER]) {
      const profile: UserProfile = {
        userId: user,
        createdAt: Date.now() - 400 * 86_400_000,
        country: 'SE',
        preferredLanguage: 'en',
        birthYear: 1990,
        subscription: 'PREMIUM',
        allowExplicit: false,
        favouriteGenres: [],
        updatedAt: Date.now(),
      };
      records.push({ topic: t.userProfiles.name, key: user, value: await profileSerde.serialize(profile) });
    }
    await produce(config, records);
    recommendations = new Consumer(config, 'serving-test-reader', {
      groupId: `${config.appId}-reader`,
      topics: [t.recommendations.name],
      isolation: 'read_committed',
    });
    await recommendations.connect();
    reading = readRecommendations(stopReading.signal);
    job = runJob(config, stopJob.signal);
  });

  after(async () => {
    stopJob.abort();
    stopReading.abort();
    await Promise.allSettled([job, reading]);
    await recommendations?.disconnect();
    schemas?.close();
    await db?.close();
    if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
  });

  let pushed: Recommendation;
  let sessionSongs: string[];

  it('pushes a recommendation to a listener who starts skipping in bursts, with no request', async () => {
    const now = Date.now();
    const ids = models.songs.map((s) => s.song_id);
    sessionSongs = ids.slice(0, 6);
    // Two songs listened through, then three skipped within seconds: a burst.
    await send(BURST_USER, 'PLAY', now - 200 * SECOND, sessionSongs[0]!);
    await send(BURST_USER, 'PLAY', now - 100 * SECOND, sessionSongs[1]!);
    const skips: string[] = [];
    for (const [i, song] of sessionSongs.slice(2, 5).entries()) {
      await send(BURST_USER, 'PLAY', now - 10 * SECOND + i * 3 * SECOND, song);
      skips.push(await send(BURST_USER, 'SKIP', now - 9 * SECOND + i * 3 * SECOND, song));
    }
    const found = await waitFor('a recommendation triggered by the burst', () =>
      received.find((r) => r.recommendation.triggerEventId === skips[2]),
    );
    pushed = found.recommendation;
    const appendToCommitted = found.at - produced.get(skips[2]!)!;
    console.log(`# burst skip appended → recommendation read (read_committed): ${appendToCommitted} ms`);
    assert.equal(pushed.userId, BURST_USER);
    assert.equal(pushed.trigger, 'DISENGAGEMENT');
    assert.equal(pushed.requestId, null);
    assert.deepEqual(
      [pushed.path, pushed.pathReason],
      ['MODEL', null],
      'served by the models, within budget',
    );
    assert.deepEqual(
      [pushed.modelVersions.disengagement, pushed.modelVersions.userTower],
      [models.versions[0], models.versions[0]],
    );
    assert.ok(pushed.score !== null && pushed.score >= pushed.threshold!);
    assert.ok(
      appendToCommitted < 10_000,
      `${appendToCommitted} ms from the skip to the committed recommendation`,
    );
  });

  it('recommends songs that pass every post-processing rule', () => {
    const songs = pushed.items.map((i) => catalog.get(i.songId));
    assert.equal(songs.length, config.serving.count);
    assert.ok(
      songs.every((s) => s !== undefined),
      'every song is in the catalog',
    );
    assert.ok(
      songs.every((s) => !s!.explicit),
      'no explicit song (the profile disallows them)',
    );
    assert.ok(
      songs.every((s) => !sessionSongs.slice(0, 5).includes(s!.songId)),
      'no song played in the session',
    );
    const most = (key: (s: Song) => string) =>
      Math.max(...Array.from(Map.groupBy(songs as Song[], key).values(), (group) => group.length));
    assert.ok(most((s) => s.artistId) <= config.serving.maxPerArtist, 'artist cap');
    assert.ok(most((s) => s.genre) <= config.serving.maxPerGenre, 'genre cap');
  });

  it('brings the listener’s feedback on it to ClickHouse', async () => {
    const chosen = pushed.items[0]!.songId;
    const at = pushed.eventTime + 2 * SECOND;
    await send(BURST_USER, 'PLAY', at, chosen);
    await send(BURST_USER, 'PLAY', at + 45 * SECOND, sessionSongs[5]!);
    const row = await waitFor('the LISTENED feedback row', async () => {
      const rows = await db.query<{ song_id: string; outcome: string; rank: number }>(
        `SELECT song_id, outcome, rank FROM recommendation_feedback FINAL WHERE recommendation_id = '${pushed.recommendationId}'`,
      );
      return rows[0];
    });
    assert.deepEqual(row, { song_id: chosen, outcome: 'LISTENED', rank: 1 });
    const [stored] = await db.query<{ path: string; user_tower_model: string }>(
      `SELECT path, user_tower_model FROM recommendations FINAL WHERE recommendation_id = '${pushed.recommendationId}'`,
    );
    assert.deepEqual(stored, { path: 'MODEL', user_tower_model: models.versions[0] });
  });

  it('swaps in a new model version mid-run, and follows pins and challengers from the control topic', async () => {
    const [v1, v2] = models.versions;
    for (const name of ['disengagement', 'user-tower'])
      await cp(path.join(models.dir, name, v2), path.join(modelsDir, name, v2), { recursive: true });
    // Requests keep coming while the new version loads; each answer names the versions that served it.
    const answered = async (requestId: string) => {
      await request(OTHER_USER, requestId);
      return waitFor(
        `the answer to ${requestId}`,
        () => received.find((r) => r.recommendation.requestId === requestId)?.recommendation,
      );
    };
    await send(OTHER_USER, 'PLAY', Date.now(), sessionSongs[0]!);
    let swapped: Recommendation | undefined;
    for (let i = 0; i < 100 && !swapped; i++) {
      const answer = await answered(`swap-${i}`);
      assert.equal(answer.path, 'MODEL', 'no answer falls back while a version loads');
      if (answer.modelVersions.userTower === v2) swapped = answer;
      else assert.equal(answer.modelVersions.userTower, v1);
    }
    assert.ok(swapped, `the user tower ${v2} was never served`);
    const playedAfterSwap = await send(OTHER_USER, 'PLAY', Date.now(), sessionSongs[1]!);

    await announce({ model: 'disengagement', version: v1, role: 'CHAMPION' });
    await announce({ model: 'disengagement', version: v2, role: 'CHALLENGER' });
    await announce({ model: 'user-tower', version: v1, role: 'CHAMPION' });
    await waitFor('the user tower pinned back to the first version', async () => {
      const answer = await answered(`pinned-${Date.now()}`);
      return answer.modelVersions.userTower === v1 ? answer : undefined;
    });
    const shadowed = await send(OTHER_USER, 'PLAY', Date.now(), sessionSongs[2]!);

    const scores = async (eventId: string) =>
      db.query<{ model_version: string; role: string }>(
        `SELECT model_version, role FROM model_scores FINAL WHERE event_id = '${eventId}' ORDER BY role`,
      );
    assert.deepEqual(
      await waitFor('the score after the swap', async () =>
        (await scores(playedAfterSwap)).length ? scores(playedAfterSwap) : undefined,
      ),
      [{ model_version: v2, role: 'champion' }],
    );
    assert.deepEqual(
      await waitFor('champion and challenger scores', async () => {
        const rows = await scores(shadowed);
        return rows.length === 2 ? rows : undefined;
      }),
      [
        { model_version: v2, role: 'challenger' },
        { model_version: v1, role: 'champion' },
      ],
    );
  });

  it('lost no event, and scored every scoring point once, through the swaps', async () => {
    const ids = [...produced.keys()];
    const counted = await waitFor('every event in ClickHouse', async () => {
      const [row] = await db.query<{ n: string }>('SELECT count() AS n FROM events FINAL');
      return Number(row?.n) === ids.length ? Number(row?.n) : undefined;
    });
    assert.equal(counted, ids.length);
    const [scored] = await db.query<{ points: string; champion: string }>(
      `SELECT uniqExact(event_id) AS points, countIf(role = 'champion') AS champion FROM model_scores FINAL`,
    );
    assert.equal(Number(scored!.points), ids.length, 'every event (none is an exit) is a scored point');
    assert.equal(Number(scored!.champion), ids.length, 'one champion score each');
  });
});
