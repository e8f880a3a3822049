import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Processor, ProcessorContext } from '../../../topology/streams/api.ts';
import { SessionWindows, StreamsBuilder } from '../../../topology/streams/builder.ts';
import type { SessionUpdate } from '../../../topology/streams/operators.ts';
import type { KeyValueStore } from '../../../topology/streams/stores.ts';
import { TopologyTestDriver } from '../../../topology/streams/test-driver.ts';

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);

describe('stateless operators', () => {
  it('filter, filterNot, mapValues, peek', () => {
    const builder = new StreamsBuilder('app');
    const seen: string[] = [];
    const numbers = builder.stream<number>('in');
    numbers
      .filter((v) => v % 2 === 0)
      .mapValues((v, k) => `${k}:${v * 10}`)
      .peek((v) => seen.push(v))
      .to('even');
    numbers.filterNot((v) => v % 2 === 0).to('odd');
    const driver = new TopologyTestDriver(builder.build());
    const input = driver.createInputTopic<number>('in');
    for (const n of [1, 2, 3, 4]) input.pipe(`k${n}`, n, T0 + n);
    assert.deepEqual(driver.createOutputTopic<string>('even').readValues(), ['k2:20', 'k4:40']);
    assert.deepEqual(driver.createOutputTopic<number>('odd').readValues(), [1, 3]);
    assert.deepEqual(seen, ['k2:20', 'k4:40']);
  });

  it('map, selectKey, flatMap and flatMapValues keep the record timestamp', () => {
    const builder = new StreamsBuilder('app');
    const words = builder.stream<string>('in');
    words.selectKey((v) => v.toUpperCase()).to('by-word');
    words.map((k, v) => ({ key: v, value: k.length })).to('mapped');
    words.flatMap((k, v) => v.split(' ').map((w) => ({ key: w, value: k }))).to('split');
    words.flatMapValues((v) => v.split(' ')).to('words');
    const driver = new TopologyTestDriver(builder.build());
    driver.createInputTopic<string>('in').pipe('user', 'a b', T0);
    assert.deepEqual(
      driver
        .createOutputTopic('by-word')
        .readRecords()
        .map((r) => [r.key, r.value, r.timestamp]),
      [['A B', 'a b', T0]],
    );
    assert.deepEqual(
      driver
        .createOutputTopic('mapped')
        .readRecords()
        .map((r) => [r.key, r.value]),
      [['a b', 4]],
    );
    assert.deepEqual(
      driver
        .createOutputTopic('split')
        .readRecords()
        .map((r) => [r.key, r.value, r.timestamp]),
      [
        ['a', 'user', T0],
        ['b', 'user', T0],
      ],
    );
    assert.deepEqual(driver.createOutputTopic('words').readValues(), ['a', 'b']);
  });

  it('branch sends each record to the first matching branch only', () => {
    const builder = new StreamsBuilder('app');
    const [small, medium] = builder.stream<number>('in').branch(
      (v) => v < 10,
      (v) => v < 100,
    );
    small!.to('small');
    medium!.to('medium');
    const driver = new TopologyTestDriver(builder.build());
    const input = driver.createInputTopic<number>('in');
    for (const n of [5, 50, 500, 7]) input.pipe('k', n, T0);
    assert.deepEqual(driver.createOutputTopic('small').readValues(), [5, 7]);
    assert.deepEqual(driver.createOutputTopic('medium').readValues(), [50]);
  });
});

describe('stream-table join', () => {
  function joined() {
    const builder = new StreamsBuilder('app');
    const profiles = builder.table<{ country: string }>('profiles', { store: 'profiles' });
    const events = builder.stream<string>('events');
    events.join(profiles, (event, profile) => `${event}@${profile.country}`).to('inner');
    events.leftJoin(profiles, (event, profile) => `${event}@${profile?.country ?? 'none'}`).to('left');
    const driver = new TopologyTestDriver(builder.build());
    return {
      driver,
      profiles: driver.createInputTopic<{ country: string } | null>('profiles'),
      events: driver.createInputTopic<string>('events'),
    };
  }

  it('joins with the table value current when the stream record arrives', () => {
    const { driver, profiles, events } = joined();
    events.pipe('u1', 'before', T0); // table not yet updated
    profiles.pipe('u1', { country: 'SE' }, T0 + 1);
    events.pipe('u1', 'after', T0 + 2);
    profiles.pipe('u1', { country: 'NO' }, T0 + 3); // a later update does not re-emit earlier joins
    events.pipe('u1', 'later', T0 + 4);
    assert.deepEqual(driver.createOutputTopic('inner').readValues(), ['after@SE', 'later@NO']);
    assert.deepEqual(driver.createOutputTopic('left').readValues(), ['before@none', 'after@SE', 'later@NO']);
  });

  it('forgets a key on a tombstone', () => {
    const { driver, profiles, events } = joined();
    profiles.pipe('u1', { country: 'SE' }, T0);
    profiles.pipe('u1', null, T0 + 1);
    events.pipe('u1', 'gone', T0 + 2);
    assert.deepEqual(driver.createOutputTopic('inner').readValues(), []);
    assert.deepEqual(driver.createOutputTopic('left').readValues(), ['gone@none']);
    assert.equal(driver.getKeyValueStore('profiles').get('u1'), undefined);
    assert.deepEqual(
      driver.changelog('profiles'),
      [],
      'a table restores from its source topic: no changelog',
    );
  });
});

describe('keyed aggregation', () => {
  it('aggregates per key, logs every change to the changelog, and repartitions after a key change', () => {
    const builder = new StreamsBuilder('app');
    builder
      .stream<{ artist: string }>('plays')
      .selectKey((v) => v.artist)
      .groupByKey({ name: 'by-artist' })
      .count({ store: 'plays-per-artist' })
      .toStream()
      .to('counts');
    const topology = builder.build();
    assert.deepEqual(topology.describe().json.topics.repartition, ['app-by-artist-repartition']);
    assert.equal(topology.subtopologies.length, 2, 'the repartition topic splits the topology');

    const driver = new TopologyTestDriver(topology, { partitions: 3 });
    const plays = driver.createInputTopic<{ artist: string }>('plays');
    plays.pipe('u1', { artist: 'abba' }, T0);
    plays.pipe('u2', { artist: 'abba' }, T0 + 1);
    plays.pipe('u3', { artist: 'queen' }, T0 + 2);
    assert.deepEqual(
      driver
        .createOutputTopic('counts')
        .readRecords()
        .map((r) => [r.key, r.value]),
      [
        ['abba', 1],
        ['abba', 2],
        ['queen', 1],
      ],
    );
    assert.equal(driver.getKeyValueStore<number>('plays-per-artist', 'abba').get('abba'), 2);
    assert.deepEqual(driver.changelog('plays-per-artist'), [
      { key: 'abba', value: 1 },
      { key: 'abba', value: 2 },
      { key: 'queen', value: 1 },
    ]);
  });

  it('reduce keeps the first value as the starting aggregate', () => {
    const builder = new StreamsBuilder('app');
    builder
      .stream<number>('in')
      .groupByKey()
      .reduce((a, b) => Math.max(a, b), { store: 'max' })
      .toStream()
      .to('out');
    const driver = new TopologyTestDriver(builder.build());
    const input = driver.createInputTopic<number>('in');
    for (const n of [3, 1, 7, 2]) input.pipe('k', n, T0);
    assert.deepEqual(driver.createOutputTopic('out').readValues(), [3, 3, 7, 7]);
  });
});

describe('session windows', () => {
  function sessions(graceMs: number) {
    const builder = new StreamsBuilder('app');
    builder
      .stream<string>('events')
      .groupByKey()
      .windowedBy(SessionWindows.ofInactivityGap(30 * MINUTE).grace(graceMs))
      .aggregate<string[]>(
        () => [],
        (_key, value, list) => [...list, value],
        (_key, a, b) => [...a, ...b],
        { store: 'sessions' },
      )
      .toStream()
      .to('updates');
    const driver = new TopologyTestDriver(builder.build());
    return {
      builder,
      driver,
      events: driver.createInputTopic<string>('events'),
      updates: () =>
        driver
          .createOutputTopic<SessionUpdate<string[]>>('updates')
          .readValues()
          .map((u) => [(u.start - T0) / MINUTE, (u.end - T0) / MINUTE, u.value]),
    };
  }

  it('a user with one event has one session of zero length', () => {
    const { events, updates } = sessions(0);
    events.pipe('u1', 'a', T0);
    assert.deepEqual(updates(), [[0, 0, ['a']]]);
  });

  it('extends a session within the gap; an event exactly 30 minutes later still joins it', () => {
    const { events, updates, driver } = sessions(0);
    events.pipe('u1', 'a', T0);
    events.pipe('u1', 'b', T0 + 10 * MINUTE);
    events.pipe('u1', 'c', T0 + 40 * MINUTE); // exactly the gap after b
    events.pipe('u1', 'd', T0 + 70 * MINUTE + 1); // just past the gap: a new session
    assert.deepEqual(updates(), [
      [0, 0, ['a']],
      [0, 0, null],
      [0, 10, ['a', 'b']],
      [0, 10, null],
      [0, 40, ['a', 'b', 'c']],
      [(70 * MINUTE + 1) / MINUTE, (70 * MINUTE + 1) / MINUTE, ['d']],
    ]);
    // Stream time +70 closes the first session (ended at +40, gap 30, no grace): only the new one is kept.
    assert.deepEqual(
      driver
        .getSessionStore<string[]>('sessions')
        .sessions('u1')
        .map((s) => s.value),
      [['d']],
    );
  });

  it('merges two sessions when a late event inside grace bridges them', () => {
    const { events, updates } = sessions(60 * MINUTE);
    events.pipe('u1', 'a', T0);
    events.pipe('u1', 'c', T0 + 50 * MINUTE);
    events.pipe('u1', 'b', T0 + 25 * MINUTE); // late, within the gap of both: one session now
    assert.deepEqual(updates(), [
      [0, 0, ['a']],
      [50, 50, ['c']],
      [0, 0, null],
      [50, 50, null],
      [0, 50, ['a', 'c', 'b']],
    ]);
  });

  it('drops and counts a late event past the grace period; accepts one just inside it', () => {
    const { events, updates, builder } = sessions(5 * MINUTE);
    events.pipe('u1', 'a', T0);
    events.pipe('u2', 'x', T0 + 100 * MINUTE); // stream time moves to +100: close time is +65
    events.pipe('u1', 'late', T0 + 64 * MINUTE); // its session would end at +64 < +65: dropped
    events.pipe('u1', 'in-grace', T0 + 65 * MINUTE); // ends at +65, not before the close time: kept
    assert.deepEqual(updates(), [
      [0, 0, ['a']],
      [100, 100, ['x']],
      [65, 65, ['in-grace']],
    ]);
    assert.equal(builder.dropped.get('sessions')?.lateRecordsDropped, 1);
  });

  it('removes sessions that can no longer change, logging the removal to the changelog', () => {
    const { events, driver } = sessions(0);
    events.pipe('u1', 'a', T0);
    events.pipe('u2', 'b', T0 + 31 * MINUTE);
    events.pipe('u2', 'c', T0 + 90 * MINUTE); // stream time +90: u1's session (ended at 0) is closed
    const store = driver.getSessionStore<string[]>('sessions');
    assert.deepEqual(store.sessions('u1'), []);
    assert.ok(
      driver.changelog('sessions').some((c) => c.key === 'u1' && c.value === null),
      'a tombstone for u1',
    );
  });
});

describe('process() and punctuation', () => {
  class Counter implements Processor<string, string, string, string> {
    private context!: ProcessorContext<string, string>;
    private store!: KeyValueStore<number>;
    init(context: ProcessorContext<string, string>) {
      this.context = context;
      this.store = context.getStateStore<KeyValueStore<number>>('counts');
      context.schedule(10 * MINUTE, 'stream-time', (time) => this.emitAll(`stream@${(time - T0) / MINUTE}`));
      context.schedule(MINUTE, 'wall-clock', (time) => this.emitAll(`wall@${time}`));
    }
    process(record: { key: string; value: string; timestamp: number; headers: Record<string, string> }) {
      this.store.put(record.key, (this.store.get(record.key) ?? 0) + 1);
    }
    private emitAll(reason: string) {
      for (const [key, count] of this.store.entries()) {
        this.context.forward({
          key,
          value: `${reason}:${count}`,
          timestamp: this.context.streamTime(),
          headers: {},
        });
      }
    }
  }

  it('gives custom processors their stores and fires stream-time and wall-clock punctuators', () => {
    const builder = new StreamsBuilder('app');
    builder
      .stream<string>('in')
      .process(() => new Counter(), { stores: [{ name: 'counts', kind: 'key-value' }] })
      .to('out');
    const topology = builder.build();
    assert.deepEqual(topology.describe().json.topics.changelogs, ['app-counts-changelog']);
    const driver = new TopologyTestDriver(topology, { wallClockMs: 0 });
    const input = driver.createInputTopic<string>('in');
    const out = driver.createOutputTopic<string>('out');
    input.pipe('a', 'x', T0); // first record: the stream-time schedule starts at T0, fires at T0 + 10
    input.pipe('a', 'x', T0 + 5 * MINUTE);
    assert.deepEqual(out.readValues(), []);
    input.pipe('b', 'x', T0 + 25 * MINUTE); // jumps past two intervals: fires once
    assert.deepEqual(out.readValues(), ['stream@25:2', 'stream@25:1']);
    input.pipe('b', 'x', T0 + 26 * MINUTE); // next is T0 + 30
    assert.deepEqual(out.readValues(), []);
    driver.advanceWallClockTime(30_000);
    assert.deepEqual(out.readValues(), []);
    driver.advanceWallClockTime(30_000);
    assert.deepEqual(out.readValues(), ['wall@60000:2', 'wall@60000:2']);
  });

  it("flushes every task at once (their model calls can share a batch), and reports a failure after the others' flushes end", async () => {
    const steps: string[] = [];
    const buffering = (fail: (key: string) => boolean) => () => {
      let context: ProcessorContext<string, string>;
      let buffered: { key: string; value: string; timestamp: number; headers: Record<string, string> }[] = [];
      return {
        init(ctx: ProcessorContext<string, string>) {
          context = ctx;
        },
        process(record: (typeof buffered)[number]) {
          buffered.push(record);
        },
        async flush() {
          const records = buffered;
          buffered = [];
          if (records.length === 0) return;
          steps.push(`start ${records[0]!.key}`);
          await new Promise((resolve) => setImmediate(resolve));
          if (records.some((r) => fail(r.key))) throw new Error(`flush of ${records[0]!.key} failed`);
          steps.push(`end ${records[0]!.key}`);
          for (const record of records) context.forward({ ...record, value: `${record.value}!` });
        },
      };
    };
    const run = async (fail: (key: string) => boolean) => {
      steps.length = 0;
      const builder = new StreamsBuilder('app');
      builder.stream<string>('in').process(buffering(fail)).to('out');
      const driver = new TopologyTestDriver(builder.build(), { partitions: 2 });
      const input = driver.createInputTopic<string>('in');
      // 'a' and 'b' land on different partitions of the driver, hence in different tasks.
      input.pipe('a', 'x', T0);
      input.pipe('b', 'y', T0);
      return { driver, out: driver.createOutputTopic<string>('out') };
    };

    const { driver, out } = await run(() => false);
    await driver.flush();
    assert.deepEqual(
      steps.slice(0, 2).sort(),
      ['start a', 'start b'],
      'both flushes began before either ended',
    );
    assert.deepEqual(out.readValues().sort(), ['x!', 'y!']);

    const failing = await run((key) => key === 'a');
    await assert.rejects(failing.driver.flush(), /flush of a failed/);
    assert.ok(
      steps.includes('end b'),
      "the other task's flush ran to its end before the failure was reported",
    );
    assert.deepEqual(failing.out.readValues(), ['y!']);
  });

  it('refuses a store the processor was not connected to', () => {
    const builder = new StreamsBuilder('app');
    builder.stream<string>('in').process(() => ({
      init(context: ProcessorContext<string, string>) {
        context.getStateStore('missing');
      },
      process() {},
    }));
    assert.throws(
      () => new TopologyTestDriver(builder.build()).createInputTopic('in').pipe('k', 'v', T0),
      /not connected to state store "missing"/,
    );
  });
});

describe('event time and node statistics', () => {
  it('a timestamp extractor makes event time come from the value, for windows and stream time', () => {
    const builder = new StreamsBuilder('app');
    builder
      .stream<{ at: number }>('in', { timestampExtractor: (value) => value.at })
      .groupByKey()
      .windowedBy(SessionWindows.ofInactivityGap(30 * MINUTE))
      .count({ store: 'sessions' })
      .toStream()
      .to('out');
    const driver = new TopologyTestDriver(builder.build());
    const input = driver.createInputTopic<{ at: number }>('in');
    // The record timestamps (arrival) are all equal; only the values say the second event came 40 min later.
    input.pipe('u1', { at: T0 }, T0 + 90 * MINUTE);
    input.pipe('u1', { at: T0 + 40 * MINUTE }, T0 + 90 * MINUTE);
    const out = driver.createOutputTopic<SessionUpdate<number>>('out').readRecords();
    assert.deepEqual(
      out.map((r) => [r.value.start, r.value.end, r.value.value, r.timestamp]),
      [
        [T0, T0, 1, T0],
        [T0 + 40 * MINUTE, T0 + 40 * MINUTE, 1, T0 + 40 * MINUTE],
      ],
    );
  });

  it('counts records in and out of every node and the time spent in each', () => {
    const builder = new StreamsBuilder('app');
    builder
      .stream<number>('in', { name: 'numbers' })
      .filter((v) => v > 1, { name: 'big' })
      .flatMapValues((v) => [v, v], { name: 'twice' })
      .to('out', { name: 'sink' });
    const driver = new TopologyTestDriver(builder.build());
    const input = driver.createInputTopic<number>('in');
    for (const n of [1, 2, 3]) input.pipe('k', n, T0);
    const stats = driver.nodeStats();
    const counts = (node: string) => [stats.get(node)?.recordsIn, stats.get(node)?.recordsOut];
    assert.deepEqual(counts('numbers'), [3, 3]);
    assert.deepEqual(counts('big'), [3, 2]);
    assert.deepEqual(counts('twice'), [2, 4]);
    assert.deepEqual(counts('sink'), [4, 0]);
    for (const node of ['big', 'twice']) assert.ok(stats.get(node)!.seconds > 0, `${node} was timed`);
  });
});
