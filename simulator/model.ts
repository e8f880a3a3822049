/**
 * The listening simulator: one seeded model of a catalog, its listeners and their sessions, shared by
 * training (datasets), the tests, the demo and load generation. Pure: no `node:` imports and no clock, so
 * it can be bundled for other runtimes; the same options always give the same songs, profiles and events.
 *
 *   const { songs, profiles, events } = simulate({ seed: 7, users: 1000, songs: 5000, start, days: 28 });
 *   for (const event of events) ...   // lazily generated, non-decreasing timestamps, re-iterable
 *
 * For live traffic (demo, load), iterate `events` and pace the iteration (simulator/kafka.ts does).
 */
import type { ListeningEvent, Song, UserProfile } from '../schemas/types.generated.ts';
import { makeCatalog } from './catalog.ts';
import { DAY, type Listener, listenerEvents, makeListener, profileOf } from './listeners.ts';
import { mixSeed, Random } from './random.ts';

export { DAY, SESSION_GAP_MS } from './listeners.ts';

export interface SimulationOptions {
  seed: number;
  users: number;
  songs: number;
  /** Start of the simulated period, ms since the epoch. */
  start: number;
  days: number;
  /** Share of listeners whose accounts are created during the period (cold-start users); default 0.1. */
  newUserShare?: number;
  /** Share of songs added to the catalog during the period (cold-start songs); default 0.1. */
  newSongShare?: number;
}

export interface Simulation {
  songs: Song[];
  /** Profiles of the listeners whose profile the job receives (about 97%). */
  profiles: UserProfile[];
  /** Every listener's events merged in timestamp order; each iteration starts afresh, identically. */
  events: Iterable<ListeningEvent>;
}

/** Seeds of the independent random streams: the catalog's, each listener's traits, each listener's events. */
const CATALOG_STREAM = -1;
const EVENTS_SALT = 0x5eed;

export function simulate(options: SimulationOptions): Simulation {
  const end = options.start + options.days * DAY;
  const catalog = makeCatalog(new Random(mixSeed(options.seed, CATALOG_STREAM)), {
    songs: options.songs,
    start: options.start,
    days: options.days,
    newShare: options.newSongShare ?? 0.1,
  });
  const listeners = Array.from({ length: options.users }, (_, index) =>
    makeListener(new Random(mixSeed(options.seed, index)), index, catalog, {
      start: options.start,
      days: options.days,
      newUserShare: options.newUserShare ?? 0.1,
    }),
  );
  const eventsOf = (listener: Listener) =>
    listenerEvents(
      listener,
      catalog,
      new Random(mixSeed(options.seed ^ EVENTS_SALT, listener.index)),
      options.start,
      end,
    );
  return {
    songs: catalog.songs,
    profiles: listeners.filter((l) => l.hasProfile).map(profileOf),
    events: { [Symbol.iterator]: () => mergeByTime(listeners.map(eventsOf)) },
  };
}

interface Head {
  event: ListeningEvent;
  source: number;
}

/** K-way merge of time-ordered iterators with a binary heap; ties go to the lower source index. */
export function* mergeByTime(sources: Iterator<ListeningEvent>[]): Generator<ListeningEvent> {
  const heap: Head[] = [];
  const before = (a: Head, b: Head) =>
    a.event.timestamp < b.event.timestamp || (a.event.timestamp === b.event.timestamp && a.source < b.source);
  const push = (head: Head) => {
    heap.push(head);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  };
  const siftDown = () => {
    let i = 0;
    while (true) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && before(heap[left]!, heap[smallest]!)) smallest = left;
      if (right < heap.length && before(heap[right]!, heap[smallest]!)) smallest = right;
      if (smallest === i) return;
      [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
      i = smallest;
    }
  };
  sources.forEach((iterator, source) => {
    const first = iterator.next();
    if (!first.done) push({ event: first.value, source });
  });
  while (heap.length > 0) {
    const top = heap[0]!;
    yield top.event;
    const next = sources[top.source]!.next();
    if (next.done) {
      const last = heap.pop()!;
      if (heap.length > 0) {
        heap[0] = last;
        siftDown();
      }
    } else {
      heap[0] = { event: next.value, source: top.source };
      siftDown();
    }
  }
}
