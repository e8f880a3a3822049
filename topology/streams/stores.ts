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
