/**
 * Seeded synthetic listening traffic for the demo: listeners who play songs, skip some (more as their
 * patience runs out), pause, seek, search and leave. The same seed gives the same stream.
 *
 * Deliberately small: the listening simulator of the training pipeline, with taste vectors, fatigue and
 * cold start, is what the demo, the tests and the load scripts will share once it exists.
 */
import prand from 'pure-rand';
import type { Device, ListeningEvent } from '../schemas/types.generated.ts';

const DEVICES: Device[] = ['MOBILE', 'MOBILE', 'MOBILE', 'DESKTOP', 'WEB', 'SPEAKER', 'CAR'];

interface Listener {
  userId: string;
  device: Device;
  timezoneOffsetMinutes: number;
  /** Local clock of this listener's session. */
  clock: number;
  /** Falls with every skip; at zero the listener searches or leaves. */
  patience: number;
  songId: string | null;
}

export class SyntheticListeners {
  private rng: prand.RandomGenerator;
  private readonly listeners: Listener[];
  private sequence = 0;
  private readonly songs: number;

  constructor(options: { seed: number; users: number; songs: number; start: number }) {
    this.rng = prand.xoroshiro128plus(options.seed);
    this.songs = options.songs;
    this.listeners = Array.from({ length: options.users }, (_, i) => ({
      userId: `user-${String(i).padStart(5, '0')}`,
      device: DEVICES[this.int(0, DEVICES.length - 1)]!,
      timezoneOffsetMinutes: this.int(-5, 9) * 60,
      clock: options.start + this.int(0, 60_000),
      patience: this.int(2, 8),
      songId: null,
    }));
  }

  private int(min: number, max: number): number {
    const [value, next] = prand.uniformIntDistribution(min, max, this.rng);
    this.rng = next;
    return value;
  }

  private chance(p: number): boolean {
    return this.int(0, 9_999) < p * 10_000;
  }

  /** The next event of a random listener. */
  next(): ListeningEvent {
    const listener = this.listeners[this.int(0, this.listeners.length - 1)]!;
    const base = {
      eventId: `syn-${listener.userId}-${this.sequence++}`,
      userId: listener.userId,
      positionMs: null as number | null,
      seekToMs: null as number | null,
      searchQuery: null as string | null,
      device: listener.device,
      context: {
        appVersion: '9.1.0',
        os: listener.device === 'MOBILE' ? 'android' : null,
        country: 'SE',
        source: 'PLAYLIST' as const,
        sourceId: 'daily-mix',
        recommendationId: null,
        shuffle: false,
        timezoneOffsetMinutes: listener.timezoneOffsetMinutes,
      },
    };
    if (listener.songId === null || listener.patience <= 0) {
      if (listener.patience <= 0) {
        // Out of patience: a search (and a fresh start) or the end of the session.
        listener.patience = this.int(2, 8);
        listener.songId = null;
        listener.clock += this.int(2_000, 20_000);
        return this.chance(0.5)
          ? {
              ...base,
              type: 'SEARCH',
              timestamp: listener.clock,
              songId: null,
              searchQuery: 'something else',
            }
          : { ...base, type: 'EXIT', timestamp: listener.clock, songId: null };
      }
      listener.songId = `song-${this.int(0, this.songs - 1)}`;
      listener.clock += this.int(500, 3_000);
      return { ...base, type: 'PLAY', timestamp: listener.clock, songId: listener.songId, positionMs: 0 };
    }
    const songId = listener.songId;
    const roll = this.int(0, 99);
    if (roll < 35) {
      listener.patience -= 1;
      listener.songId = null;
      listener.clock += this.int(3_000, 40_000);
      return {
        ...base,
        type: 'SKIP',
        timestamp: listener.clock,
        songId,
        positionMs: this.int(3_000, 40_000),
      };
    }
    if (roll < 45) {
      listener.clock += this.int(10_000, 60_000);
      const from = this.int(10_000, 60_000);
      return {
        ...base,
        type: 'SEEK',
        timestamp: listener.clock,
        songId,
        positionMs: from,
        seekToMs: from + 30_000,
      };
    }
    if (roll < 55) {
      listener.clock += this.int(5_000, 90_000);
      return {
        ...base,
        type: 'PAUSE',
        timestamp: listener.clock,
        songId,
        positionMs: this.int(5_000, 90_000),
      };
    }
    // Listened through: the next song starts.
    listener.patience = Math.min(listener.patience + 1, 10);
    listener.clock += this.int(120_000, 240_000);
    listener.songId = `song-${this.int(0, this.songs - 1)}`;
    return { ...base, type: 'PLAY', timestamp: listener.clock, songId: listener.songId, positionMs: 0 };
  }
}
