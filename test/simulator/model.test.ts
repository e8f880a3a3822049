import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Contracts } from '../../schemas/contracts.ts';
import type { ListeningEvent } from '../../schemas/types.generated.ts';
import { validateListeningEvent } from '../../schemas/validation.ts';
import { DAY, SESSION_GAP_MS, type SimulationOptions, simulate } from '../../simulator/model.ts';

const START = Date.UTC(2026, 8, 1);
const small: SimulationOptions = { seed: 11, users: 120, songs: 1_500, start: START, days: 7 };
const events = (options: SimulationOptions) => [...simulate(options).events];
const shared = events(small);
const { songs, profiles } = simulate(small);

/** Per user, their events split into sessions by the session tracker's inactivity gap. */
function sessions(all: ListeningEvent[]): ListeningEvent[][] {
  const open = new Map<string, ListeningEvent[]>();
  const closed: ListeningEvent[][] = [];
  for (const event of all) {
    const current = open.get(event.userId);
    if (current && event.timestamp - current.at(-1)!.timestamp < SESSION_GAP_MS) current.push(event);
    else {
      if (current) closed.push(current);
      open.set(event.userId, [event]);
    }
  }
  return [...closed, ...open.values()];
}

describe('simulate', () => {
  it('gives the same catalog, profiles and events for the same seed, and others for another seed', () => {
    const again = simulate(small);
    assert.deepEqual(again.songs, songs);
    assert.deepEqual(again.profiles, profiles);
    assert.deepEqual([...again.events], shared);
    const other = events({ ...small, seed: 12 });
    assert.notDeepEqual(other.slice(0, 50), shared.slice(0, 50));
  });

  it('emits events in non-decreasing time, with unique ids and well-formed ids', () => {
    assert.ok(shared.length > 5_000, `only ${shared.length} events`);
    for (let i = 1; i < shared.length; i++) assert.ok(shared[i]!.timestamp >= shared[i - 1]!.timestamp);
    assert.equal(new Set(shared.map((e) => e.eventId)).size, shared.length);
    for (const e of shared.slice(0, 500)) {
      assert.match(e.eventId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.match(e.userId, /^user-\d{6}$/);
      assert.equal(e.context.recommendationId, null);
    }
    assert.ok(shared.every((e) => e.songId === null || /^song-\d{6}$/.test(e.songId)));
  });

  it('writes values the Avro contracts and the job’s validation accept', () => {
    for (const event of shared) {
      assert.ok(Contracts.listeningEvent.type.isValid(event), JSON.stringify(event));
      validateListeningEvent(event, START + 30 * DAY);
    }
    assert.ok(songs.every((song) => Contracts.song.type.isValid(song)));
    assert.ok(profiles.every((profile) => Contracts.userProfile.type.isValid(profile)));
  });

  it('follows the event semantics the session tracker relies on', () => {
    for (const session of sessions(shared)) {
      let playing: string | null = null;
      let paused = false;
      for (const [i, e] of session.entries()) {
        if (i === 0) assert.equal(e.type, 'PLAY', 'a session starts with a PLAY');
        switch (e.type) {
          case 'PLAY':
            assert.equal(e.positionMs, 0);
            assert.ok(e.songId);
            assert.equal(paused, false);
            playing = e.songId;
            break;
          case 'SKIP':
            assert.equal(e.songId, playing, 'a SKIP names the song playing');
            assert.ok(e.positionMs! > 0);
            assert.equal(session[i + 1]?.type ?? 'PLAY', 'PLAY', 'a SKIP is followed by the next PLAY');
            playing = null;
            break;
          case 'PAUSE':
            assert.equal(e.songId, playing);
            paused = true;
            break;
          case 'RESUME':
            assert.equal(paused, true, 'RESUME follows PAUSE');
            paused = false;
            break;
          case 'SEEK':
            assert.equal(e.songId, playing);
            assert.ok(e.seekToMs! > e.positionMs!);
            break;
          case 'SEARCH':
            assert.equal(e.songId, null);
            assert.ok(e.searchQuery);
            assert.equal(session[i + 1]?.type ?? 'PLAY', 'PLAY');
            break;
          case 'EXIT':
            assert.equal(i, session.length - 1, 'EXIT ends the session');
            break;
          default:
            assert.fail(`unexpected ${e.type}`);
        }
      }
    }
  });

  it('has catalog and profiles in the contracts’ shape, with cold-start songs and users', () => {
    assert.equal(songs.length, small.songs);
    for (const song of songs) {
      assert.equal(song.audioFeatures.length, 8);
      assert.ok(song.audioFeatures.every((x) => x >= 0 && x <= 1));
      assert.ok(song.popularity >= 0 && song.popularity <= 1);
    }
    const end = START + small.days * DAY;
    assert.ok(
      songs.some((s) => s.addedAt > START && s.addedAt < end),
      'new songs appear during the period',
    );
    assert.ok(
      profiles.some((p) => p.createdAt > START && p.createdAt < end),
      'new users appear',
    );
    const firstEvent = new Map<string, number>();
    for (const e of shared) if (!firstEvent.has(e.userId)) firstEvent.set(e.userId, e.timestamp);
    for (const p of profiles)
      assert.ok((firstEvent.get(p.userId) ?? Number.POSITIVE_INFINITY) >= p.createdAt);
    const added = new Map(songs.map((s) => [s.songId, s.addedAt]));
    assert.ok(
      shared.every((e) => e.songId === null || added.get(e.songId)! <= e.timestamp),
      'no song before it exists',
    );
  });
});

describe('listening dynamics', () => {
  const genreOf = new Map(songs.map((s) => [s.songId, s.genre]));
  const favourites = new Map(profiles.map((p) => [p.userId, new Set(p.favouriteGenres)]));

  it('skips songs outside the listener’s favourite genres far more often', () => {
    const plays = { favourite: 0, other: 0 };
    const skips = { favourite: 0, other: 0 };
    for (const e of shared) {
      const liked = favourites.get(e.userId);
      if (!liked || !e.songId) continue;
      const kind = liked.has(genreOf.get(e.songId)!) ? 'favourite' : 'other';
      if (e.type === 'PLAY') plays[kind]++;
      if (e.type === 'SKIP') skips[kind]++;
    }
    const favouriteRate = skips.favourite / plays.favourite;
    const otherRate = skips.other / plays.other;
    assert.ok(otherRate > 2 * favouriteRate, `skip rate ${otherRate} outside vs ${favouriteRate} inside`);
  });

  it('has skip bursts, searches and exits, and bursts precede disengagement', () => {
    let bursts = 0;
    let burstsThenEnd = 0;
    let calmEndings = 0;
    let calmPoints = 0;
    for (const session of sessions(shared)) {
      const skipTimes = session.filter((e) => e.type === 'SKIP').map((e) => e.timestamp);
      const hasBurst = skipTimes.some((t, i) => i >= 2 && t - skipTimes[i - 2]! <= 2 * 60_000);
      const ends = session.some((e) => e.type === 'SEARCH' || e.type === 'EXIT');
      if (hasBurst) {
        bursts++;
        if (ends) burstsThenEnd++;
      } else {
        calmPoints++;
        if (ends) calmEndings++;
      }
    }
    assert.ok(bursts > 50, `${bursts} sessions with a burst`);
    assert.ok(
      burstsThenEnd / bursts > calmEndings / calmPoints,
      'bursty sessions end in search/exit more often',
    );
  });

  it('makes sessions longer on desktops than in cars', () => {
    const minutes: Record<string, number[]> = {};
    for (const session of sessions(shared)) {
      const device = session[0]!.device;
      const list = minutes[device] ?? [];
      list.push((session.at(-1)!.timestamp - session[0]!.timestamp) / 60_000);
      minutes[device] = list;
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]!;
    assert.ok(median(minutes.DESKTOP!) > 1.5 * median(minutes.CAR!));
  });

  it('returns to songs from months ago (nostalgia)', () => {
    const monthsAgo = new Set(songs.filter((s) => s.addedAt < START - 180 * DAY).map((s) => s.songId));
    const throwbacks = shared.filter((e) => e.type === 'PLAY' && e.context.sourceId === 'throwbacks');
    assert.ok(throwbacks.length > 100, `${throwbacks.length} throwback plays`);
    const old = throwbacks.filter((e) => monthsAgo.has(e.songId!)).length;
    assert.ok(old > 0.7 * throwbacks.length, `${old} of ${throwbacks.length} throwbacks are months old`);
  });
});
