/**
 * Simulated listeners and their sessions. Each listener has a taste (an audio-feature vector near their
 * favourite genres, favourite artists, languages), habits (when and on what device they listen, how long,
 * how quickly they skip) and, within a session, a state that drives what they do next:
 *
 * - what plays comes from a stream (a genre playlist, an artist, their library, throwbacks from months ago,
 *   or a drifting radio that often strays from their taste), with fresh releases mixed in;
 * - a song far from their taste is likely skipped, quickly when they are bored;
 * - boredom grows with mismatched and repetitive songs, fatigue with the session's length relative to what
 *   their device, the time of day and the weekday make usual; both raise the skip rate, so skips come in
 *   bursts, and pressure from consecutive skips ends in a search (a new stream) or an exit;
 * - a session ends once fatigue wins, with an EXIT or in silence (the app was simply closed).
 *
 * So whether a listener is about to disengage depends on which songs are playing for whom, not only on
 * counts of what happened: a radio drifting away from the listener's taste is visible in the song sequence
 * before the skips pile up.
 */
import type {
  Device,
  ListeningEvent,
  PlaybackSource,
  Subscription,
  UserProfile,
} from '../schemas/types.generated.ts';
import { availableCount, type Catalog, GENRES, pickFromGenre } from './catalog.ts';
import { clamp, type Random, sigmoid } from './random.ts';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;
/** Sessions are separated by at least this much inactivity (the session tracker's gap). */
export const SESSION_GAP_MS = 30 * MINUTE;

export interface Listener {
  index: number;
  userId: string;
  createdAt: number;
  /** Some listeners' profiles never reach the job (a lagging profile service): has_profile is 0 for them. */
  hasProfile: boolean;
  timezoneOffsetMinutes: number;
  country: string;
  languages: string[];
  subscription: Subscription;
  allowExplicit: boolean;
  birthYear: number | null;
  /** Per genre (GENRES' order), 0..1. */
  genreAffinity: number[];
  /** Genre indices, most loved first. */
  favouriteGenres: number[];
  taste: number[];
  favouriteArtists: string[];
  /** Songs they loved months before the simulation starts: the nostalgia pool. */
  oldFavourites: number[];
  primaryDevice: Device;
  os: string | null;
  hasCar: boolean;
  worksAtDesk: boolean;
  hasSpeaker: boolean;
  sessionsPerDay: number;
  /** Hours their day is shifted by (night owls > 0). */
  chronoShift: number;
  /** Added to the skip logit: some people skip more. */
  skippiness: number;
  /** Multiplies usual session lengths. */
  stamina: number;
  /** Songs of one genre in a row they enjoy before wanting something else. */
  varietyTolerance: number;
}

const COUNTRIES = ['SE', 'US', 'GB', 'DE', 'BR', 'MX', 'FR', 'KR', 'ES', 'IN'];
const LANGUAGE_OF: Record<string, string> = {
  SE: 'sv',
  US: 'en',
  GB: 'en',
  DE: 'de',
  BR: 'pt',
  MX: 'es',
  FR: 'fr',
  KR: 'ko',
  ES: 'es',
  IN: 'en',
};
const TIMEZONE_OF: Record<string, number> = {
  SE: 60,
  US: -300,
  GB: 0,
  DE: 60,
  BR: -180,
  MX: -360,
  FR: 60,
  KR: 540,
  ES: 60,
  IN: 330,
};
const SUBSCRIPTIONS: Subscription[] = ['FREE', 'PREMIUM', 'FAMILY', 'STUDENT'];
const SUBSCRIPTION_SHARES = [0.45, 0.35, 0.12, 0.08];

export function makeListener(
  random: Random,
  index: number,
  catalog: Catalog,
  options: { start: number; days: number; newUserShare: number },
): Listener {
  const isNew = random.chance(options.newUserShare);
  const createdAt = isNew
    ? options.start + Math.floor(random.float() * options.days * DAY)
    : options.start - Math.floor(random.between(14, 3000) * DAY);
  const country = random.pick(COUNTRIES);
  const first = random.weighted(GENRES.map((g) => g.share));
  const favouriteGenres = [first];
  const extra = random.int(0, 2);
  while (favouriteGenres.length < 1 + extra) {
    const g = random.weighted(GENRES.map((genre) => genre.share));
    if (!favouriteGenres.includes(g)) favouriteGenres.push(g);
  }
  const genreAffinity = GENRES.map((_, g) => {
    const rank = favouriteGenres.indexOf(g);
    if (rank >= 0) return clamp(1 - 0.12 * rank - random.float() * 0.1, 0, 1);
    // A genre or two they tolerate; the rest they mostly skip.
    return random.chance(0.2) ? random.between(0.25, 0.5) : random.between(0, 0.15);
  });
  const taste = GENRES[first]!.centroid.map((c, k) => {
    let value = c;
    for (const g of favouriteGenres.slice(1)) value += 0.3 * (GENRES[g]!.centroid[k]! - c);
    return clamp(value + random.normal(0, 0.05), 0, 1);
  });
  const birthYear = random.chance(0.8) ? random.int(1955, 2010) : null;
  const favouriteArtists = favouriteGenres.flatMap((g) => {
    const picks: string[] = [];
    for (let k = 0; k < 3; k++) {
      const song = pickFromGenre(catalog, random, g, options.start);
      if (song !== null) picks.push(catalog.songs[song]!.artistId);
    }
    return picks;
  });
  const primaryDevice: Device = random.pick(['MOBILE', 'MOBILE', 'MOBILE', 'MOBILE', 'DESKTOP', 'WEB']);
  const listener: Listener = {
    index,
    userId: `user-${String(index).padStart(6, '0')}`,
    createdAt,
    hasProfile: random.chance(0.97),
    timezoneOffsetMinutes: TIMEZONE_OF[country]!,
    country,
    languages: ['en', LANGUAGE_OF[country]!],
    subscription: SUBSCRIPTIONS[random.weighted(SUBSCRIPTION_SHARES)]!,
    allowExplicit: (birthYear === null || birthYear < 2008) && random.chance(0.9),
    birthYear,
    genreAffinity,
    favouriteGenres,
    taste,
    favouriteArtists: [...new Set(favouriteArtists)],
    oldFavourites: [],
    primaryDevice,
    os: primaryDevice === 'MOBILE' ? random.pick(['android', 'ios']) : null,
    hasCar: random.chance(0.4),
    worksAtDesk: random.chance(0.5),
    hasSpeaker: random.chance(0.35),
    sessionsPerDay: random.logNormal(1.4, 0.5),
    chronoShift: random.normal(0.5, 1.5),
    skippiness: random.normal(0, 0.35) + (isNew ? 0.3 : 0),
    stamina: random.logNormal(1, 0.4),
    varietyTolerance: random.logNormal(8, 0.3),
  };
  if (!isNew) listener.oldFavourites = pickOldFavourites(random, listener, catalog, options.start);
  return listener;
}

/** The best-matching of a sample of songs that existed half a year before the simulation. */
function pickOldFavourites(random: Random, listener: Listener, catalog: Catalog, start: number): number[] {
  const halfYearAgo = start - 180 * DAY;
  const candidates = new Set<number>();
  for (let k = 0; k < 120; k++) {
    const song = pickFromGenre(catalog, random, random.pick(listener.favouriteGenres), halfYearAgo);
    if (song !== null) candidates.add(song);
  }
  return [...candidates]
    .sort((a, b) => affinity(listener, catalog, b) - affinity(listener, catalog, a) || a - b)
    .slice(0, random.int(8, 25));
}

/** How much this listener likes the song, 0..1: audio taste, genre, favourite artist, language. */
export function affinity(listener: Listener, catalog: Catalog, songIndex: number): number {
  const song = catalog.songs[songIndex]!;
  let squared = 0;
  for (let k = 0; k < listener.taste.length; k++) {
    const d = listener.taste[k]! - song.audioFeatures[k]!;
    squared += d * d;
  }
  const audio = Math.exp(-squared / 0.25);
  const genre = listener.genreAffinity[catalog.genreOf[songIndex]!]!;
  const artist = listener.favouriteArtists.includes(song.artistId) ? 0.15 : 0;
  const language = song.language === null || listener.languages.includes(song.language) ? 0 : -0.15;
  return clamp(0.5 * audio + 0.45 * genre + artist + language, 0, 1);
}

export function profileOf(listener: Listener): UserProfile {
  return {
    userId: listener.userId,
    createdAt: listener.createdAt,
    country: listener.country,
    preferredLanguage: listener.languages[1] ?? null,
    birthYear: listener.birthYear,
    subscription: listener.subscription,
    allowExplicit: listener.allowExplicit,
    favouriteGenres: listener.favouriteGenres.map((g) => GENRES[g]!.name),
    updatedAt: listener.createdAt,
  };
}

type StreamKind = 'GENRE' | 'ARTIST' | 'LIBRARY' | 'THROWBACK' | 'RADIO';

/** Where the next songs come from: a playlist, an artist, the library, a radio. */
interface Stream {
  kind: StreamKind;
  source: PlaybackSource;
  sourceId: string | null;
  genre: number;
  artistId: string | null;
  shuffle: boolean;
}

/** Share of each local hour in when sessions start (commutes, lunch, evenings). */
const HOURLY_ACTIVITY = [
  0.3, 0.15, 0.08, 0.05, 0.04, 0.08, 0.35, 0.8, 0.9, 0.6, 0.5, 0.55, 0.7, 0.6, 0.5, 0.55, 0.7, 0.9, 1, 0.95,
  0.95, 0.9, 0.7, 0.5,
];
/** Median session length in minutes by device, before the listener's stamina and the time of day. */
const SESSION_MINUTES: Record<Device, number> = {
  UNKNOWN: 30,
  MOBILE: 45,
  DESKTOP: 100,
  WEB: 70,
  SPEAKER: 80,
  TV: 60,
  CAR: 30,
  WEARABLE: 50,
};
/** Added to the skip logit: skipping is easy on a phone, awkward while driving. */
const DEVICE_SKIP: Record<Device, number> = {
  UNKNOWN: 0,
  MOBILE: 0.2,
  DESKTOP: -0.2,
  WEB: 0,
  SPEAKER: -0.4,
  TV: -0.3,
  CAR: -0.6,
  WEARABLE: -0.1,
};
const APP_VERSION: Record<Device, string> = {
  UNKNOWN: '9.0.0',
  MOBILE: '9.1.2',
  DESKTOP: '1.2.40',
  WEB: 'web-2026.11',
  SPEAKER: '3.4.0',
  TV: '5.0.1',
  CAR: '2.2.0',
  WEARABLE: '1.8.3',
};

/** Radio seeds flatten the genres' shares: radios wander into niches. */
const RADIO_SHARES = GENRES.map((g) => Math.sqrt(g.share));

const localHour = (listener: Listener, time: number) =>
  ((((time + listener.timezoneOffsetMinutes * MINUTE) % DAY) + DAY) % DAY) / HOUR;
const isWeekend = (listener: Listener, time: number) => {
  const day = new Date(time + listener.timezoneOffsetMinutes * MINUTE).getUTCDay();
  return day === 0 || day === 6;
};

/**
 * One listener's events over [from, until), in time order. `random` must be this listener's own stream,
 * so listeners are independent of one another (and of how many there are).
 */
export function* listenerEvents(
  listener: Listener,
  catalog: Catalog,
  random: Random,
  from: number,
  until: number,
): Generator<ListeningEvent> {
  const simulation = new ListenerSessions(listener, catalog, random);
  const begin = Math.max(from, listener.createdAt);
  let lastEventAt = Number.NEGATIVE_INFINITY;
  const localMidnight = (day: number) => day * DAY - listener.timezoneOffsetMinutes * MINUTE;
  const shifted = HOURLY_ACTIVITY.map((_, h) => {
    const source = Math.round(h - listener.chronoShift + 24) % 24;
    return HOURLY_ACTIVITY[source]!;
  });
  for (let day = Math.floor(begin / DAY) - 1; localMidnight(day) < until; day++) {
    const midnight = localMidnight(day);
    const weekendFactor = isWeekend(listener, midnight + 12 * HOUR) ? 1.2 : 1;
    const starts = Array.from({ length: random.poisson(listener.sessionsPerDay * weekendFactor) }, () => {
      return midnight + (random.weighted(shifted) + random.float()) * HOUR;
    }).sort((a, b) => a - b);
    for (let start of starts) {
      start = Math.floor(start);
      if (start < begin) continue;
      // Two sessions closer than the gap would be one to the session tracker: the later one waits.
      if (start < lastEventAt + SESSION_GAP_MS)
        start = lastEventAt + SESSION_GAP_MS + random.int(MINUTE, 20 * MINUTE);
      if (start >= until) return;
      for (const event of simulation.session(start)) {
        lastEventAt = event.timestamp;
        yield event;
      }
    }
  }
}

/** Songs listened through, newest last, for the LIBRARY stream (and its nostalgia). */
const LIBRARY_SIZE = 300;

class ListenerSessions {
  private readonly listener: Listener;
  private readonly catalog: Catalog;
  private readonly random: Random;
  private readonly library: number[] = [];

  constructor(listener: Listener, catalog: Catalog, random: Random) {
    this.listener = listener;
    this.catalog = catalog;
    this.random = random;
  }

  *session(start: number): Generator<ListeningEvent> {
    const { listener, random, catalog } = this;
    const device = this.chooseDevice(start);
    const hour = localHour(listener, start);
    const lateNight = hour >= 23 || hour < 5;
    const targetMs =
      random.logNormal(
        SESSION_MINUTES[device] *
          listener.stamina *
          (isWeekend(listener, start) ? 1.25 : 1) *
          (lateNight ? 0.7 : 1),
        // Habits: a listener's sessions on a device at a time of day last about as long each time.
        0.15,
      ) * MINUTE;
    let stream = this.chooseStream();
    let boredom = random.between(0, 0.2);
    let consecutiveSkips = 0;
    let genreRun = 0;
    let runGenre = -1;
    let time = start;
    let song = this.nextSong(stream, time, null);
    let songReason: 'STREAM' | 'REPLAY' | 'SEARCH' = 'STREAM';
    const event = (
      type: ListeningEvent['type'],
      songIndex: number | null,
      fields: Partial<ListeningEvent> = {},
      source: PlaybackSource = stream.source,
    ) => this.event(type, time, device, stream, songIndex, fields, source);

    yield event('PLAY', song, { positionMs: 0 });
    while (true) {
      const current = catalog.songs[song]!;
      const match = affinity(listener, catalog, song);
      const fatigue = (time - start) / targetMs;
      const nostalgic = listener.oldFavourites.includes(song);
      const skipLogit =
        -0.6 +
        listener.skippiness +
        4.5 * (0.45 - match) +
        1.5 * boredom +
        1.5 * Math.max(0, fatigue - 0.9) +
        DEVICE_SKIP[device] +
        (lateNight ? 0.3 : 0) +
        (nostalgic ? -1.5 : 0) +
        (songReason === 'REPLAY' ? -1.2 : 0) +
        (songReason === 'SEARCH' ? -2 : 0);
      const skipped = random.chance(sigmoid(skipLogit));
      // Bored listeners scan: they skip within seconds.
      const quick = skipped && random.chance(sigmoid(2 * boredom + 6 * (0.35 - match)));
      const exitsMidSong = !skipped && random.chance(0.006);
      let listened = current.durationMs;
      if (skipped) {
        listened = quick
          ? random.between(1_500, 12_000)
          : random.between(15_000, Math.max(16_000, Math.min(0.75 * current.durationMs, 150_000)));
      } else if (exitsMidSong) listened = random.between(5_000, current.durationMs - 1_000);
      listened = Math.round(listened);

      // A pause and a seek may interrupt the play before its outcome; both move the clock or the playhead.
      let jump = 0;
      const interludes: { at: number; kind: 'PAUSE' | 'SEEK' }[] = [];
      if (listened > 20_000 && random.chance(device === 'MOBILE' ? 0.07 : 0.04))
        interludes.push({ at: Math.round(random.between(0.05, 0.95) * listened), kind: 'PAUSE' });
      if (listened > 20_000 && random.chance(0.04))
        interludes.push({ at: Math.round(random.between(0.1, 0.8) * listened), kind: 'SEEK' });
      interludes.sort((a, b) => a.at - b.at);
      const playStart = time;
      let paused = 0;
      for (const interlude of interludes) {
        time = playStart + interlude.at + paused;
        const position = interlude.at + jump;
        if (interlude.kind === 'PAUSE') {
          yield event('PAUSE', song, { positionMs: position });
          paused += Math.round(clamp(random.logNormal(40_000, 1.2), 3_000, 20 * MINUTE));
          time = playStart + interlude.at + paused;
          yield event('RESUME', song, { positionMs: position });
        } else {
          const remaining = current.durationMs - position - 2_000;
          const seekJump = Math.round(Math.min(remaining, random.between(10_000, 60_000)));
          if (seekJump <= 0) continue;
          yield event('SEEK', song, { positionMs: position, seekToMs: position + seekJump });
          jump += seekJump;
          // Seeking forward through a song that then ends naturally shortens the listening.
          if (!skipped && !exitsMidSong) listened = Math.max(interlude.at + 1_000, listened - seekJump);
        }
      }
      // A pause late in a play that was then shortened by a seek still happened before the outcome.
      time = Math.max(playStart + listened + paused, time + 500);
      const playhead = Math.min(current.durationMs, listened + jump);

      // The same genre song after song bores a listener once it outlasts their taste for variety.
      genreRun = catalog.genreOf[song] === runGenre ? genreRun + 1 : 1;
      runGenre = catalog.genreOf[song]!;
      const monotony = Math.max(0, genreRun - listener.varietyTolerance);
      boredom = clamp(
        0.9 * boredom + 0.35 * monotony + (skipped ? 0.1 : -0.04) + 0.5 * (0.45 - match),
        0,
        2.5,
      );

      if (exitsMidSong) {
        yield event('EXIT', song, { positionMs: playhead });
        return;
      }
      if (skipped) {
        consecutiveSkips++;
        const pressure = 0.6 * consecutiveSkips + 1.3 * boredom + 0.8 * Math.max(0, fatigue - 0.8);
        // Steep in the pressure: a skip or two changes little, a burst of skips on a mismatched stream does.
        // Bored but fresh listeners look for something else; tired ones leave.
        const exitChance = sigmoid(-7 + pressure + 3 * Math.max(0, fatigue - 0.8));
        const searchChance = sigmoid(-7 + 2 * pressure);
        const roll = random.float();
        if (roll < exitChance) {
          yield event('EXIT', song, { positionMs: playhead });
          return;
        }
        if (roll < exitChance + searchChance) {
          const searched = this.searchedStream(runGenre);
          yield event('SEARCH', null, { searchQuery: searched.query });
          stream = searched.stream;
          time += random.int(4_000, 30_000);
          song = this.nextSong(stream, time, song);
          songReason = 'SEARCH';
          boredom *= 0.4;
          consecutiveSkips = 0;
          yield event('PLAY', song, { positionMs: 0 }, 'SEARCH');
          continue;
        }
        yield event('SKIP', song, { positionMs: playhead });
        time += random.int(200, 1_500);
      } else {
        consecutiveSkips = 0;
        this.library.push(song);
        if (this.library.length > LIBRARY_SIZE) this.library.shift();
        const endChance = sigmoid(-2 + 15 * (fatigue - 1) + 0.8 * boredom);
        if (random.chance(endChance)) {
          // Most apps report the exit; some sessions just stop (the app was killed): silence.
          if (random.chance(0.95)) {
            time += random.int(1_000, 60_000);
            yield event('EXIT', null);
          }
          return;
        }
        time += random.int(0, 800);
      }
      if (random.chance(0.02)) stream = this.chooseStream();
      if (!skipped && match > 0.65 && random.chance(0.04)) {
        songReason = 'REPLAY';
      } else {
        song = this.nextSong(stream, time, song);
        songReason = 'STREAM';
      }
      yield event('PLAY', song, { positionMs: 0 });
    }
  }

  private chooseDevice(time: number): Device {
    const { listener, random } = this;
    const hour = localHour(listener, time);
    const weekday = !isWeekend(listener, time);
    const commute = (hour >= 7 && hour < 9.5) || (hour >= 16 && hour < 19);
    if (listener.hasCar && weekday && commute && random.chance(0.45)) return 'CAR';
    if (listener.worksAtDesk && weekday && hour >= 9 && hour < 17 && random.chance(0.6))
      return random.chance(0.7) ? 'DESKTOP' : 'WEB';
    if (listener.hasSpeaker && (hour >= 18 || !weekday) && random.chance(0.3)) return 'SPEAKER';
    if (hour >= 19 && random.chance(0.05)) return 'TV';
    if ((hour < 9 || hour >= 17) && random.chance(0.05)) return 'WEARABLE';
    return listener.primaryDevice;
  }

  private chooseStream(): Stream {
    const { listener, random, catalog } = this;
    const roll = random.float();
    const shuffle = random.chance(0.4);
    if (roll < 0.1 && listener.oldFavourites.length > 0)
      return {
        kind: 'THROWBACK',
        source: 'PLAYLIST',
        sourceId: 'throwbacks',
        genre: listener.favouriteGenres[0]!,
        artistId: null,
        shuffle,
      };
    if (roll < 0.25 && this.library.length > 20)
      return {
        kind: 'LIBRARY',
        source: 'LIBRARY',
        sourceId: 'liked-songs',
        genre: listener.favouriteGenres[0]!,
        artistId: null,
        shuffle,
      };
    if (roll < 0.35 && listener.favouriteArtists.length > 0) {
      const artistId = random.pick(listener.favouriteArtists);
      const genre = catalog.genreOf[catalog.byArtist.get(artistId)![0]!]!;
      return { kind: 'ARTIST', source: 'ARTIST', sourceId: artistId, genre, artistId, shuffle };
    }
    if (roll < 0.65) {
      // A radio seeded anywhere in the catalog: often far from this listener's taste, and it drifts.
      const genre = random.weighted(RADIO_SHARES);
      return {
        kind: 'RADIO',
        source: 'RADIO',
        sourceId: `radio-${GENRES[genre]!.name}`,
        genre,
        artistId: null,
        shuffle: false,
      };
    }
    const genre =
      listener.favouriteGenres[random.weighted(listener.favouriteGenres.map((_, k) => 1 / (k + 1)))]!;
    return {
      kind: 'GENRE',
      source: 'PLAYLIST',
      sourceId: `playlist-${GENRES[genre]!.name}-${random.int(1, 5)}`,
      genre,
      artistId: null,
      shuffle,
    };
  }

  /** A search for a favourite artist or genre other than the one playing, and the stream it starts. */
  private searchedStream(playing: number): { query: string; stream: Stream } {
    const { listener, random, catalog } = this;
    const elsewhere = <T>(items: T[], genreOf: (item: T) => number) => {
      const other = items.filter((item) => genreOf(item) !== playing);
      return random.pick(other.length > 0 ? other : items);
    };
    const artistGenre = (artistId: string) => catalog.genreOf[catalog.byArtist.get(artistId)![0]!]!;
    if (listener.favouriteArtists.length > 0 && random.chance(0.5)) {
      const artistId = elsewhere(listener.favouriteArtists, artistGenre);
      const songs = catalog.byArtist.get(artistId)!;
      const genre = catalog.genreOf[songs[0]!]!;
      return {
        query: catalog.songs[songs[0]!]!.artistName.toLowerCase(),
        stream: { kind: 'ARTIST', source: 'ARTIST', sourceId: artistId, genre, artistId, shuffle: false },
      };
    }
    const genre = elsewhere(listener.favouriteGenres, (g) => g);
    return {
      query: GENRES[genre]!.name,
      stream: {
        kind: 'GENRE',
        source: 'PLAYLIST',
        sourceId: `playlist-${GENRES[genre]!.name}-1`,
        genre,
        artistId: null,
        shuffle: false,
      },
    };
  }

  private nextSong(stream: Stream, time: number, previous: number | null): number {
    // One re-draw avoids playing the same song twice in a row by accident (replays are chosen on purpose).
    const first = this.drawSong(stream, time);
    return first === previous ? this.drawSong(stream, time) : first;
  }

  private drawSong(stream: Stream, time: number): number {
    const { listener, random, catalog } = this;
    if (random.chance(0.05)) {
      const fresh = this.freshRelease(stream.genre, time);
      if (fresh !== null) return fresh;
    }
    if (listener.oldFavourites.length > 0 && random.chance(stream.kind === 'THROWBACK' ? 0.85 : 0.02))
      return random.pick(listener.oldFavourites);
    if (stream.kind === 'LIBRARY' && this.library.length > 0) return random.pick(this.library);
    if (stream.kind === 'ARTIST' && stream.artistId !== null && random.chance(0.7)) {
      const songs = catalog.byArtist.get(stream.artistId)!.filter((s) => catalog.songs[s]!.addedAt <= time);
      if (songs.length > 0) return songs[random.weighted(songs.map((s) => catalog.weight[s]!))]!;
    }
    if (stream.kind === 'RADIO' && random.chance(0.15)) stream.genre = random.weighted(RADIO_SHARES);
    return (
      pickFromGenre(catalog, random, stream.genre, time) ??
      pickFromGenre(catalog, random, listener.favouriteGenres[0]!, time) ??
      catalog.byAddedAt[0]!
    );
  }

  /** A song added in the last two weeks, preferably of the genre: new songs need listeners (cold start). */
  private freshRelease(genre: number, time: number): number | null {
    const { catalog, random } = this;
    const list = catalog.byGenre[genre]!;
    const available = availableCount(catalog, list, time);
    const recent: number[] = [];
    for (let k = available - 1; k >= 0 && catalog.songs[list[k]!]!.addedAt > time - 14 * DAY; k--)
      recent.push(list[k]!);
    return recent.length > 0 ? random.pick(recent) : null;
  }

  private event(
    type: ListeningEvent['type'],
    time: number,
    device: Device,
    stream: Stream,
    songIndex: number | null,
    fields: Partial<ListeningEvent>,
    source: PlaybackSource,
  ): ListeningEvent {
    const { listener } = this;
    return {
      eventId: this.random.uuid(),
      userId: listener.userId,
      type,
      timestamp: Math.round(time),
      songId: songIndex === null ? null : this.catalog.songs[songIndex]!.songId,
      positionMs: null,
      seekToMs: null,
      searchQuery: null,
      device,
      context: {
        appVersion: APP_VERSION[device],
        os: device === 'MOBILE' ? listener.os : device === 'DESKTOP' ? 'macos' : null,
        country: listener.country,
        source,
        sourceId: stream.sourceId,
        recommendationId: null,
        shuffle: stream.shuffle,
        timezoneOffsetMinutes: listener.timezoneOffsetMinutes,
      },
      ...fields,
    };
  }
}
