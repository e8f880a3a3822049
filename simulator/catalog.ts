/**
 * The simulated catalog: genres with characteristic audio-feature centroids, artists drawn around them,
 * songs drawn around their artist, a popularity percentile, and a share of songs that only enter the
 * catalog during the simulated days (cold start).
 */
import type { Song } from '../schemas/types.generated.ts';
import { clamp, type Random } from './random.ts';

export interface Genre {
  name: string;
  /** Share of artists (and listeners' first love) in this genre. */
  share: number;
  /** Audio-feature centroid, in the Song type's order: danceability, energy, valence, acousticness,
   * instrumentalness, speechiness, liveness, tempo / 250. */
  centroid: readonly number[];
  /** Languages its artists sing in; null = instrumental. */
  languages: readonly (string | null)[];
  explicitShare: number;
}

export const GENRES: readonly Genre[] = [
  {
    name: 'pop',
    share: 0.2,
    centroid: [0.7, 0.7, 0.6, 0.2, 0.02, 0.06, 0.15, 0.48],
    languages: ['en', 'en', 'en', 'sv', 'ko', 'fr'],
    explicitShare: 0.15,
  },
  {
    name: 'hip-hop',
    share: 0.16,
    centroid: [0.8, 0.65, 0.5, 0.15, 0.01, 0.32, 0.15, 0.4],
    languages: ['en', 'en', 'fr', 'de'],
    explicitShare: 0.7,
  },
  {
    name: 'rock',
    share: 0.12,
    centroid: [0.48, 0.86, 0.48, 0.08, 0.06, 0.05, 0.22, 0.52],
    languages: ['en', 'en', 'de'],
    explicitShare: 0.1,
  },
  {
    name: 'electronic',
    share: 0.1,
    centroid: [0.72, 0.86, 0.42, 0.05, 0.62, 0.06, 0.14, 0.51],
    languages: [null, null, 'en'],
    explicitShare: 0.05,
  },
  {
    name: 'latin',
    share: 0.08,
    centroid: [0.8, 0.76, 0.76, 0.2, 0.01, 0.09, 0.16, 0.46],
    languages: ['es', 'es', 'pt'],
    explicitShare: 0.25,
  },
  {
    name: 'r&b',
    share: 0.07,
    centroid: [0.7, 0.52, 0.5, 0.28, 0.02, 0.1, 0.12, 0.42],
    languages: ['en'],
    explicitShare: 0.3,
  },
  {
    name: 'country',
    share: 0.06,
    centroid: [0.6, 0.6, 0.66, 0.38, 0.01, 0.04, 0.18, 0.47],
    languages: ['en'],
    explicitShare: 0.03,
  },
  {
    name: 'metal',
    share: 0.05,
    centroid: [0.38, 0.96, 0.28, 0.02, 0.16, 0.08, 0.2, 0.56],
    languages: ['en', 'en', 'sv', 'de'],
    explicitShare: 0.2,
  },
  {
    name: 'folk',
    share: 0.05,
    centroid: [0.5, 0.34, 0.46, 0.82, 0.1, 0.04, 0.16, 0.45],
    languages: ['en', 'sv', 'fr'],
    explicitShare: 0.02,
  },
  {
    name: 'jazz',
    share: 0.04,
    centroid: [0.55, 0.36, 0.52, 0.72, 0.52, 0.05, 0.24, 0.45],
    languages: [null, 'en'],
    explicitShare: 0,
  },
  {
    name: 'classical',
    share: 0.04,
    centroid: [0.28, 0.14, 0.3, 0.95, 0.9, 0.04, 0.12, 0.4],
    languages: [null],
    explicitShare: 0,
  },
  {
    name: 'ambient',
    share: 0.03,
    centroid: [0.3, 0.2, 0.32, 0.8, 0.9, 0.03, 0.1, 0.35],
    languages: [null, null, 'en'],
    explicitShare: 0,
  },
];

const WORDS = [
  'neon',
  'harbor',
  'velvet',
  'echo',
  'midnight',
  'golden',
  'river',
  'static',
  'paper',
  'summer',
  'ghost',
  'wild',
  'silver',
  'heart',
  'city',
  'ocean',
  'fire',
  'glass',
  'northern',
  'lights',
  'dust',
  'satellite',
  'honey',
  'thunder',
  'garden',
  'electric',
  'shadow',
  'morning',
  'atlas',
  'blue',
  'crimson',
  'wolves',
];

export interface Catalog {
  songs: Song[];
  /** Song indices per genre (index into GENRES), each list sorted by the time the song was added. */
  byGenre: number[][];
  /** Song indices per artist id. */
  byArtist: Map<string, number[]>;
  /** Per song: its genre's index. */
  genreOf: Int32Array;
  /** Per song: how much more often it is picked (from its popularity). */
  weight: Float64Array;
  /** Song indices sorted by addedAt, for "fresh releases". */
  byAddedAt: number[];
  /** Per genre: running sums of `weight` along `byGenre`, for picking by popularity in O(log n). */
  cumulativeWeight: Float64Array[];
}

const DAY = 86_400_000;

const titleCase = (words: string[]) => words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join(' ');

/**
 * `newShare` of the songs are added uniformly over [start, start + days); the rest existed before, with
 * release dates spread over decades (recent ones more likely).
 */
export function makeCatalog(
  random: Random,
  options: { songs: number; start: number; days: number; newShare: number },
): Catalog {
  const artistCount = Math.max(GENRES.length, Math.round(options.songs / 10));
  const artists = Array.from({ length: artistCount }, (_, i) => {
    // Every genre has at least one artist; the rest follow the genres' shares.
    const genre = i < GENRES.length ? i : random.weighted(GENRES.map((g) => g.share));
    const spec = GENRES[genre]!;
    return {
      id: `artist-${String(i).padStart(5, '0')}`,
      name: titleCase([random.pick(WORDS), random.pick(WORDS)]),
      genre,
      language: random.pick(spec.languages),
      explicit: random.chance(spec.explicitShare * 1.5),
      offset: spec.centroid.map(() => random.normal(0, 0.07)),
      // A few artists have most of the songs.
      productivity: random.logNormal(1, 0.8),
    };
  });
  const productivity = artists.map((a) => a.productivity);
  // Popularity is a percentile: rank songs by a heavy-tailed latent appeal.
  const appeal = Array.from({ length: options.songs }, () => random.logNormal(1, 1.2));
  const order = appeal.map((_, i) => i).sort((a, b) => appeal[a]! - appeal[b]! || a - b);
  const percentile = new Float64Array(options.songs);
  order.forEach((song, rank) => {
    percentile[song] = options.songs > 1 ? rank / (options.songs - 1) : 0.5;
  });

  const songs: Song[] = [];
  const genreOf = new Int32Array(options.songs);
  const byArtist = new Map<string, number[]>();
  for (let i = 0; i < options.songs; i++) {
    const artistIndex = i < artists.length ? i : random.weighted(productivity);
    const artist = artists[artistIndex]!;
    const isNew = random.chance(options.newShare);
    const addedAt = isNew
      ? options.start + Math.floor(random.float() * options.days * DAY)
      : options.start - Math.floor(random.between(1, 3650) * DAY);
    const releaseDay = isNew
      ? Math.floor(addedAt / DAY)
      : Math.floor(addedAt / DAY) - Math.floor(random.logNormal(200, 1.5));
    const centroid = GENRES[artist.genre]!.centroid;
    songs.push({
      songId: `song-${String(i).padStart(6, '0')}`,
      title: titleCase([random.pick(WORDS), random.pick(WORDS)]),
      artistId: artist.id,
      artistName: artist.name,
      albumId: random.chance(0.85) ? `${artist.id}-album-${random.int(1, 4)}` : null,
      genre: GENRES[artist.genre]!.name,
      language: artist.language,
      popularity: Math.round(percentile[i]! * 1000) / 1000,
      explicit: artist.explicit && random.chance(0.7),
      releaseDate: releaseDay,
      addedAt,
      durationMs: Math.round(clamp(random.logNormal(210_000, 0.25), 90_000, 600_000)),
      audioFeatures: centroid.map((c, k) =>
        round3(clamp(c + artist.offset[k]! + random.normal(0, 0.06), 0, 1)),
      ),
    });
    genreOf[i] = artist.genre;
    const list = byArtist.get(artist.id) ?? [];
    list.push(i);
    byArtist.set(artist.id, list);
  }
  const byAddedAt = songs.map((_, i) => i).sort((a, b) => songs[a]!.addedAt - songs[b]!.addedAt || a - b);
  const byGenre = GENRES.map(() => [] as number[]);
  for (const i of byAddedAt) byGenre[genreOf[i]!]!.push(i);
  // Listens concentrate on popular songs: the top percentile is picked ~50× as often as the bottom.
  const weight = Float64Array.from(songs, (s) => Math.exp(4 * s.popularity));
  const cumulativeWeight = byGenre.map((list) => {
    const sums = new Float64Array(list.length);
    let total = 0;
    list.forEach((song, k) => {
      total += weight[song]!;
      sums[k] = total;
    });
    return sums;
  });
  return { songs, byGenre, byArtist, genreOf, weight, byAddedAt, cumulativeWeight };
}

/** The number of leading entries of `sortedIndices` (sorted by addedAt) already added at `time`. */
export function availableCount(catalog: Catalog, sortedIndices: readonly number[], time: number): number {
  let low = 0;
  let high = sortedIndices.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (catalog.songs[sortedIndices[mid]!]!.addedAt <= time) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** A song of the genre, by popularity, among those in the catalog at `time`; null if none is yet. */
export function pickFromGenre(catalog: Catalog, random: Random, genre: number, time: number): number | null {
  const list = catalog.byGenre[genre]!;
  const sums = catalog.cumulativeWeight[genre]!;
  const available = availableCount(catalog, list, time);
  if (available === 0) return null;
  const target = random.float() * sums[available - 1]!;
  let low = 0;
  let high = available - 1;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sums[mid]! <= target) low = mid + 1;
    else high = mid;
  }
  return list[low]!;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;
