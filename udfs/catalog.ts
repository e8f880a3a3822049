/**
 * The song catalog every job instance holds whole, fed from the compacted songs topic: lookups by id for
 * the re-ranking features and the list rules, and popularity orders for the paths that have no user
 * embedding (cold start, inference failing): the most popular songs overall or of the listener's
 * favourite genres.
 */
import type { Song } from '../schemas/types.generated.ts';

/** By song id (code units, not locale): the tie-break that makes orders the same on every instance. */
export function compareSongIds(a: Song, b: Song): number {
  return a.songId < b.songId ? -1 : a.songId > b.songId ? 1 : 0;
}

/** Popularity descending, ties by song id. */
function byPopularity(a: Song, b: Song): number {
  return b.popularity - a.popularity || compareSongIds(a, b);
}

/** Popularity orders of one catalog version: the whole catalog and each genre. */
interface PopularityOrders {
  all: Song[];
  byGenre: Map<string, Song[]>;
}

export class SongCatalog {
  private readonly songs = new Map<string, Song>();
  /**
   * Rebuilt on the first query after a change, not per change: loading the topic at start puts every
   * song in a row, and one sort after it is far cheaper than keeping a sorted structure up to date.
   */
  private orders: PopularityOrders | undefined;

  put(song: Song): void {
    this.songs.set(song.songId, song);
    this.orders = undefined;
  }

  delete(songId: string): void {
    if (this.songs.delete(songId)) this.orders = undefined;
  }

  get(songId: string): Song | undefined {
    return this.songs.get(songId);
  }

  get size(): number {
    return this.songs.size;
  }

  /** The `k` most popular songs, by popularity descending (ties by song id), leaving out `exclude`d ones. */
  popular(k: number, exclude?: (songId: string) => boolean): Song[] {
    const found: Song[] = [];
    for (const song of this.popularityOrders().all) {
      if (found.length >= k) break;
      if (!exclude?.(song.songId)) found.push(song);
    }
    return found;
  }

  /**
   * The taste-cluster fallback: the most popular songs of `genres`, taken in turns, one per genre, in the
   * order given (favourite first), so every genre the listener likes is in the list even when one of them
   * is far more popular overall. A genre that runs out leaves its turns to the others.
   */
  popularIn(genres: readonly string[], k: number, exclude?: (songId: string) => boolean): Song[] {
    const orders = this.popularityOrders();
    const queues = [...new Set(genres)]
      .map((genre) => ({ songs: orders.byGenre.get(genre) ?? [], next: 0 }))
      .filter((queue) => queue.songs.length > 0);
    const found: Song[] = [];
    while (found.length < k && queues.length > 0) {
      for (let turn = 0; turn < queues.length && found.length < k; ) {
        const queue = queues[turn]!;
        let song = queue.songs[queue.next++];
        while (song && exclude?.(song.songId)) song = queue.songs[queue.next++];
        if (song) {
          found.push(song);
          turn++;
        } else queues.splice(turn, 1);
      }
    }
    return found;
  }

  private popularityOrders(): PopularityOrders {
    if (this.orders) return this.orders;
    const all = [...this.songs.values()].sort(byPopularity);
    const byGenre = new Map<string, Song[]>();
    // Filled from the sorted list, so each genre's list is sorted without a sort of its own.
    for (const song of all) {
      const list = byGenre.get(song.genre);
      if (list) list.push(song);
      else byGenre.set(song.genre, [song]);
    }
    this.orders = { all, byGenre };
    return this.orders;
  }
}
