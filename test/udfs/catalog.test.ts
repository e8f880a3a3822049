import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Song } from '../../schemas/types.generated.ts';
import { makeCatalog } from '../../simulator/catalog.ts';
import { Random } from '../../simulator/random.ts';
import { SongCatalog } from '../../udfs/catalog.ts';

const START = Date.UTC(2026, 0, 1);
const simulated = (songs: number, seed: number) =>
  makeCatalog(new Random(seed), { songs, start: START, days: 28, newShare: 0.05 }).songs;

const [template] = simulated(1, 1) as [Song];
const song = (songId: string, popularity: number, genre = 'pop'): Song => ({
  ...template,
  songId,
  popularity,
  genre,
});

function catalogOf(songs: readonly Song[]): SongCatalog {
  const catalog = new SongCatalog();
  for (const entry of songs) catalog.put(entry);
  return catalog;
}

const ids = (songs: readonly Song[]) => songs.map((s) => s.songId);

/** The reference order, the slow way: every song compared. */
const byPopularityThenId = (a: Song, b: Song) =>
  b.popularity - a.popularity || (a.songId < b.songId ? -1 : a.songId > b.songId ? 1 : 0);

describe('song catalog', () => {
  it('puts, replaces, gets and deletes by song id', () => {
    const catalog = catalogOf([song('a', 0.5), song('b', 0.2)]);
    assert.equal(catalog.size, 2);
    assert.equal(catalog.get('a')?.popularity, 0.5);
    catalog.put(song('a', 0.9));
    assert.equal(catalog.size, 2);
    assert.equal(catalog.get('a')?.popularity, 0.9);
    catalog.delete('a');
    catalog.delete('never-there');
    assert.equal(catalog.get('a'), undefined);
    assert.equal(catalog.size, 1);
  });

  it('lists the most popular songs, ties by song id, leaving out excluded ones', () => {
    const catalog = catalogOf([song('c', 0.5), song('a', 0.5), song('d', 0.9), song('b', 0.1)]);
    assert.deepEqual(ids(catalog.popular(3)), ['d', 'a', 'c']);
    assert.deepEqual(ids(catalog.popular(3, (id) => id === 'a')), ['d', 'c', 'b']);
    assert.deepEqual(ids(catalog.popular(10)), ['d', 'a', 'c', 'b']);
    assert.deepEqual(catalog.popular(0), []);
  });

  it('follows changes: a re-put song moves, a deleted one is gone', () => {
    const catalog = catalogOf([song('a', 0.5), song('b', 0.4), song('c', 0.3)]);
    assert.deepEqual(ids(catalog.popular(3)), ['a', 'b', 'c']);
    catalog.put(song('c', 0.99));
    catalog.delete('a');
    assert.deepEqual(ids(catalog.popular(3)), ['c', 'b']);
    assert.deepEqual(ids(catalog.popularIn(['pop'], 3)), ['c', 'b']);
    catalog.put(song('b', 0.4, 'jazz'));
    assert.deepEqual(ids(catalog.popularIn(['pop'], 3)), ['c']);
  });

  it('interleaves favourite genres, favourite first, so a less popular genre is still represented', () => {
    const catalog = catalogOf([
      song('pop-1', 0.99, 'pop'),
      song('pop-2', 0.98, 'pop'),
      song('pop-3', 0.97, 'pop'),
      song('jazz-1', 0.2, 'jazz'),
      song('jazz-2', 0.1, 'jazz'),
      song('metal-1', 0.5, 'metal'),
    ]);
    assert.deepEqual(ids(catalog.popularIn(['jazz', 'pop'], 4)), ['jazz-1', 'pop-1', 'jazz-2', 'pop-2']);
    // An exhausted genre leaves its turns to the others; unknown and repeated genres change nothing.
    assert.deepEqual(ids(catalog.popularIn(['metal', 'folk', 'pop', 'metal'], 4)), [
      'metal-1',
      'pop-1',
      'pop-2',
      'pop-3',
    ]);
    assert.deepEqual(ids(catalog.popularIn(['jazz', 'pop'], 3, (id) => id === 'pop-1')), [
      'jazz-1',
      'pop-2',
      'jazz-2',
    ]);
    assert.deepEqual(catalog.popularIn([], 3), []);
  });

  it('agrees with a brute-force reference on a random catalog, with exclusions', () => {
    const songs = simulated(3_000, 2);
    const catalog = catalogOf(songs);
    const random = new Random(3);
    const genres = [...new Set(songs.map((s) => s.genre))];
    for (let trial = 0; trial < 50; trial++) {
      const excluded = new Set(songs.filter(() => random.chance(0.3)).map((s) => s.songId));
      const exclude = (id: string) => excluded.has(id);
      const k = random.int(1, 60);
      const allowed = songs.filter((s) => !excluded.has(s.songId)).sort(byPopularityThenId);
      assert.deepEqual(ids(catalog.popular(k, exclude)), ids(allowed.slice(0, k)));

      const favourites = genres.filter(() => random.chance(0.3));
      const found = catalog.popularIn(favourites, k, exclude);
      const available = allowed.filter((s) => favourites.includes(s.genre));
      assert.equal(found.length, Math.min(k, available.length));
      assert.equal(new Set(ids(found)).size, found.length);
      // Each genre contributes its own most popular allowed songs, in order…
      for (const genre of favourites) {
        const ofGenre = found.filter((s) => s.genre === genre);
        assert.deepEqual(
          ids(ofGenre),
          ids(available.filter((s) => s.genre === genre).slice(0, ofGenre.length)),
        );
      }
      // …and the genres take turns: no genre is two songs ahead of another that still has songs left.
      const taken = new Map(
        favourites.map((genre) => [genre, found.filter((s) => s.genre === genre).length]),
      );
      const most = Math.max(0, ...taken.values());
      for (const genre of favourites) {
        const left = available.filter((s) => s.genre === genre).length;
        if (left > taken.get(genre)!) assert.ok(most - taken.get(genre)! <= 1, `${genre} fell behind`);
      }
    }
  });

  it('holds 100k songs', () => {
    const random = new Random(4);
    const genres = ['pop', 'rock', 'jazz', 'folk', 'metal'];
    const songs = Array.from({ length: 100_000 }, (_, i) =>
      song(`song-${i}`, Math.round(random.float() * 1000) / 1000, random.pick(genres)),
    );
    const catalog = catalogOf(songs);
    assert.equal(catalog.size, 100_000);
    const top = songs.toSorted(byPopularityThenId).slice(0, 20);
    assert.deepEqual(ids(catalog.popular(20)), ids(top));
    assert.deepEqual(
      catalog.popularIn([top[0]!.genre], 5).map((s) => s.genre),
      new Array(5).fill(top[0]!.genre),
    );
  });
});
