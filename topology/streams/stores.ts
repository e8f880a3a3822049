/**
 * State stores: per task, in memory, with every change sent to a changelog (a compacted topic in the
 * runtime, a list in the test driver) so a task moved to another instance restores exactly what it had.
 * Keys are strings: Encore keys everything by user or song id, and windowed stores derive string keys.
 */
import type { StateStore } from './api.ts';

/** Receives every write: `null` is a deletion (a tombstone on the changelog topic). */
export type ChangeLogger<V> = (key: string, value: V | null) => void;

export interface KeyValueStore<V> extends StateStore {
  get(key: string): V | undefined;
  put(key: string, value: V): void;
  delete(key: string): void;
  entries(): IterableIterator<[string, V]>;
  readonly size: number;
}

export class InMemoryKeyValueStore<V> implements KeyValueStore<V> {
  readonly name: string;
  private readonly data = new Map<string, V>();
  private readonly log: ChangeLogger<V>;

  constructor(name: string, log: ChangeLogger<V>) {
    this.name = name;
    this.log = log;
  }

  get(key: string): V | undefined {
    return this.data.get(key);
  }

  put(key: string, value: V): void {
    this.data.set(key, value);
    this.log(key, value);
  }

  delete(key: string): void {
    if (this.data.delete(key)) this.log(key, null);
  }

  entries(): IterableIterator<[string, V]> {
    return this.data.entries();
  }

  get size(): number {
    return this.data.size;
  }

  /** Applies a changelog record without logging it again. */
  restore(key: string, value: V | null): void {
    if (value === null) this.data.delete(key);
    else this.data.set(key, value);
  }
}

export interface Session<V> {
  key: string;
  /** Timestamp of the session's first record. */
  start: number;
  /** Timestamp of the session's last record. */
  end: number;
  value: V;
}

/**
 * Sessions per key, kept sorted by start. Stored in a key-value store under `<key>` (all sessions of one
 * key together), so a key's merge decisions read one entry and the changelog compacts per key.
 */
export class SessionStore<V> implements StateStore {
  readonly name: string;
  private readonly inner: InMemoryKeyValueStore<Session<V>[]>;

  constructor(name: string, log: ChangeLogger<Session<V>[]>) {
    this.name = name;
    this.inner = new InMemoryKeyValueStore(name, log);
  }

  /** Sessions of `key` that overlap [from, to], oldest first. */
  findSessions(key: string, from: number, to: number): Session<V>[] {
    return (this.inner.get(key) ?? []).filter((s) => s.end >= from && s.start <= to);
  }

  sessions(key: string): readonly Session<V>[] {
    return this.inner.get(key) ?? [];
  }

  /** Replaces `removed` sessions of the key by `added` ones (a merge, an update or an expiry). */
  replace(key: string, removed: readonly Session<V>[], added: readonly Session<V>[]): void {
    const kept = (this.inner.get(key) ?? []).filter((s) => !removed.includes(s));
    const next = [...kept, ...added].sort((a, b) => a.start - b.start);
    if (next.length === 0) this.inner.delete(key);
    else this.inner.put(key, next);
  }

  keys(): string[] {
    return Array.from(this.inner.entries(), ([key]) => key);
  }

  restore(key: string, sessions: Session<V>[] | null): void {
    this.inner.restore(key, sessions);
  }

  get size(): number {
    return this.inner.size;
  }
}

/** A list store's element as its changelog holds it: its place in the list and its value. */
export interface ListElement<V> {
  seq: number;
  value: V;
}

/**
 * Lists per key whose elements have ids (unique within their key). The changelog holds one record per
 * element, under `<length of key>:<key>:<id>`, not the whole list: adding to a long list writes one small
 * record instead of rewriting the list, and removing one writes a tombstone. For state that grows and
 * shrinks an element at a time, such as a listener's recent events. Elements keep the order they were first
 * added in, restored included (their place is stored with them). Values are never mutated in place: the
 * changelog may not have serialized them yet.
 */
export class ListStore<V> implements StateStore {
  readonly name: string;
  private readonly data = new Map<string, Map<string, ListElement<V>>>();
  /**
   * Per key, the place the next new element takes. Written elements go to the end of their key's map (or
   * keep their place), so a map is in order; only a restore (compaction reorders a changelog) can break that.
   */
  private readonly nextSeq = new Map<string, number>();
  /** Keys a restore left out of order: sorted on their next read. */
  private readonly unordered = new Set<string>();
  private readonly log: ChangeLogger<ListElement<V>>;

  constructor(name: string, log: ChangeLogger<ListElement<V>>) {
    this.name = name;
    this.log = log;
  }

  /** The key's elements in the order they were first added (empty when it has none), in a new array. */
  get(key: string): V[] {
    const elements = this.data.get(key);
    if (!elements) return [];
    if (this.unordered.delete(key)) {
      const sorted = [...elements].sort(([, a], [, b]) => a.seq - b.seq);
      elements.clear();
      for (const [id, element] of sorted) elements.set(id, element);
    }
    return Array.from(elements.values(), (element) => element.value);
  }

  has(key: string, id: string): boolean {
    return this.data.get(key)?.has(id) ?? false;
  }

  /** How many elements the key has. */
  count(key: string): number {
    return this.data.get(key)?.size ?? 0;
  }

  /** Adds an element at the end, or replaces the element with the same id in its place. */
  put(key: string, id: string, value: V): void {
    const elements = this.elementsOf(key);
    const seq = elements.get(id)?.seq ?? this.takeSeq(key);
    const element = { seq, value };
    elements.set(id, element);
    this.log(elementKey(key, id), element);
  }

  /** Removes one element. */
  remove(key: string, id: string): void {
    const elements = this.data.get(key);
    if (!elements?.delete(id)) return;
    this.log(elementKey(key, id), null);
    if (elements.size === 0) this.forget(key);
  }

  /** Removes the key's elements that `drop` selects. */
  removeWhere(key: string, drop: (value: V, id: string) => boolean): void {
    const elements = this.data.get(key);
    if (!elements) return;
    for (const [id, element] of [...elements]) if (drop(element.value, id)) this.remove(key, id);
  }

  /** Removes every element of the key. */
  delete(key: string): void {
    this.removeWhere(key, () => true);
  }

  /** Keys with at least one element. */
  keys(): string[] {
    return [...this.data.keys()];
  }

  /** How many keys have elements. */
  get size(): number {
    return this.data.size;
  }

  /** Applies a changelog record without logging it again. */
  restore(compositeKey: string, element: ListElement<V> | null): void {
    const colon = compositeKey.indexOf(':');
    const keyEnd = colon + 1 + Number(compositeKey.slice(0, colon));
    if (colon < 1 || !(keyEnd < compositeKey.length) || compositeKey[keyEnd] !== ':')
      throw new Error(`list store ${this.name}: not a list element's changelog key: ${compositeKey}`);
    const key = compositeKey.slice(colon + 1, keyEnd);
    const id = compositeKey.slice(keyEnd + 1);
    if (element === null) {
      const elements = this.data.get(key);
      elements?.delete(id);
      if (elements?.size === 0) this.forget(key);
      return;
    }
    const elements = this.elementsOf(key);
    const next = this.nextSeq.get(key) ?? 0;
    if (!elements.has(id) && element.seq < next) this.unordered.add(key);
    elements.set(id, element);
    this.nextSeq.set(key, Math.max(next, element.seq + 1));
  }

  private elementsOf(key: string): Map<string, ListElement<V>> {
    let elements = this.data.get(key);
    if (!elements) {
      elements = new Map();
      this.data.set(key, elements);
    }
    return elements;
  }

  private takeSeq(key: string): number {
    const seq = this.nextSeq.get(key) ?? 0;
    this.nextSeq.set(key, seq + 1);
    return seq;
  }

  private forget(key: string) {
    this.data.delete(key);
    this.nextSeq.delete(key);
    this.unordered.delete(key);
  }
}

/**
 * An element's changelog key. Length-prefixed, so keys and ids may hold any character; not NUL-separated:
 * librdkafka cuts a string key at its first NUL.
 */
const elementKey = (key: string, id: string) => `${key.length}:${key}:${id}`;
