/**
 * A small in-memory serving world for topology unit tests: a catalog of 60 songs (6 genres, 12 artists,
 * every third song explicit) with 4-dimensional embeddings, and stand-in models with the served models'
 * interfaces. The real models are tested in test/udfs and end to end in test/topology/serving.it.test.ts.
 */
import type { SessionFeatures, Song } from '../../schemas/types.generated.ts';
import { FEATURE_SPEC } from '../../topology/listening/features.ts';
import type { Serving } from '../../topology/recommend/serving.ts';
import { ExactSongIndex } from '../../udfs/ann.ts';
import { SongCatalog } from '../../udfs/catalog.ts';
import type { ServingModels } from '../../udfs/models.ts';
import type { DisengagementModel, UserTowerModel } from '../../udfs/onnx.ts';

export const GENRES = ['pop', 'rock', 'jazz', 'hip-hop', 'classical', 'electronic'] as const;
const DIMENSIONS = 4;
const DAY = 86_400_000;

export function testSong(i: number): Song {
  return {
    songId: `song-${String(i).padStart(3, '0')}`,
    title: `Song ${i}`,
    artistId: `artist-${i % 12}`,
    artistName: `Artist ${i % 12}`,
    albumId: null,
    genre: GENRES[i % GENRES.length]!,
    language: 'en',
    popularity: ((i * 37) % 100) / 100,
    explicit: i % 3 === 0,
    releaseDate: Math.floor(Date.UTC(2025, 0, 1) / DAY),
    addedAt: Date.UTC(2025, 0, 1),
    durationMs: 200_000,
    audioFeatures: [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
  };
}

export const SONGS = Array.from({ length: 60 }, (_, i) => testSong(i));

/** Unit vectors that put songs of an artist near each other. */
function songVector(i: number): Float32Array {
  const angle = ((i % 12) / 12) * Math.PI * 2 + i * 0.01;
  const v = Float32Array.from([Math.cos(angle), Math.sin(angle), 0.3 * Math.cos(i), 0.3 * Math.sin(i)]);
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

const SKIPS_IN_BURST_WINDOW = FEATURE_SPEC.numeric.findIndex((f) => f.name === 'skips_last_2min');

/** Scores by skips in the last two minutes: 0.1 + 0.1 per skip, 0.9 from 3 (a burst) on. */
export function stubDisengagement(version: string, threshold = 0.5): DisengagementModel {
  return {
    name: 'disengagement',
    version,
    threshold,
    featureSpec: FEATURE_SPEC.version,
    score: async (points: SessionFeatures[]) =>
      Float32Array.from(points, (p) => {
        const skips = p.features[SKIPS_IN_BURST_WINDOW]!;
        return skips >= 3 ? 0.9 : 0.1 + 0.1 * skips;
      }),
    release: async () => undefined,
  } as DisengagementModel;
}

/** Embeds every user near artist 0's songs; `delayMs` makes inference slow (the latency budget). */
export function stubUserTower(version: string, delayMs = 0): UserTowerModel {
  const vectors = SONGS.map((_, i) => songVector(i));
  const all = new Float32Array(SONGS.length * DIMENSIONS);
  for (const [i, v] of vectors.entries()) all.set(v, i * DIMENSIONS);
  const byId = new Map(SONGS.map((s, i) => [s.songId, vectors[i]!]));
  return {
    version,
    featureSpec: FEATURE_SPEC.version,
    dimensions: DIMENSIONS,
    songs: new ExactSongIndex({ ids: SONGS.map((s) => s.songId), vectors: all }),
    songVector: (songId: string) => byId.get(songId),
    embed: async (points: SessionFeatures[]) => {
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      return points.map(() => songVector(0));
    },
    release: async () => undefined,
  } as unknown as UserTowerModel;
}

/** A Serving whose models a test swaps by assigning `models`. */
export function testServing(
  models: ServingModels,
): Serving & { models: () => ServingModels; use(next: ServingModels): void } {
  const catalog = new SongCatalog();
  for (const song of SONGS) catalog.put(song);
  let current = models;
  return { catalog, models: () => current, use: (next) => (current = next) };
}
