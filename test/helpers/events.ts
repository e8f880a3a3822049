/** Fixture builder: a valid listening event, with whatever fields a test cares about overridden. */
import type { AppContext, ListeningEvent, Recommendation } from '../../schemas/types.generated.ts';

export function listeningEvent(
  overrides: Partial<Omit<ListeningEvent, 'context'>> & { context?: Partial<AppContext> },
): ListeningEvent {
  const { context, ...fields } = overrides;
  return {
    eventId: 'event-1',
    userId: 'user-1',
    type: 'PLAY',
    timestamp: Date.UTC(2026, 10, 23, 12, 0, 0),
    songId: 'song-1',
    positionMs: 0,
    seekToMs: null,
    searchQuery: null,
    device: 'MOBILE',
    ...fields,
    context: {
      appVersion: '8.9.1',
      os: 'android',
      country: 'SE',
      source: 'PLAYLIST',
      sourceId: 'playlist-1',
      recommendationId: null,
      shuffle: false,
      timezoneOffsetMinutes: 60,
      ...context,
    },
  };
}

/** Fixture builder: a recommendation of `songs` (ranked in order), triggered at `at`, generated 80 ms later. */
export function recommendation(
  id: string,
  userId: string,
  at: number,
  songs: readonly string[],
  triggerEventId: string | null = null,
): Recommendation {
  return {
    recommendationId: id,
    userId,
    trigger: 'DISENGAGEMENT',
    triggerEventId,
    requestId: null,
    score: 0.8,
    threshold: 0.6,
    path: 'MODEL',
    pathReason: null,
    modelVersions: { disengagement: 'test', userTower: 'test', ranker: null },
    items: songs.map((songId, i) => ({
      songId,
      rank: i + 1,
      score: 1 - i / 10,
      reasons: ['similar-to-recent'],
    })),
    eventTime: at,
    generatedAt: at + 80,
  };
}
