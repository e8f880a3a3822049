import assert from 'node:assert/strict';
import { it } from 'node:test';
import { SessionWindows, StreamsBuilder } from '../../../topology/streams/builder.ts';

it('describe() lists sub-topologies, their nodes, stores and topics as text and JSON', () => {
  const builder = new StreamsBuilder('encore');
  const profiles = builder.table<{ country: string }>('encore-user-profiles', {
    store: 'profiles',
    name: 'profiles',
  });
  builder
    .stream<string>('encore-listening-events', { name: 'events' })
    .leftJoin(profiles, (event, profile) => `${event}:${profile?.country}`, { name: 'join-profile' })
    .groupByKey()
    .windowedBy(SessionWindows.ofInactivityGap(30 * 60_000).grace(60_000))
    .count({ store: 'sessions', name: 'count-per-session' })
    .toStream()
    .to('encore-session-counts', { name: 'session-counts' });
  const { text, json } = builder.build().describe();

  assert.equal(json.subtopologies.length, 1, 'the shared profile store keeps the join in the same task');
  assert.deepEqual(json.topics, {
    sources: ['encore-user-profiles', 'encore-listening-events'],
    sinks: ['encore-session-counts'],
    repartition: [],
    changelogs: ['encore-user-profiles', 'encore-sessions-changelog'],
  });
  assert.deepEqual(
    json.stores.map((s) => [s.name, s.kind, s.changelog.sourceTopic]),
    [
      ['profiles', 'key-value', true],
      ['sessions', 'session', false],
    ],
  );
  const join = json.subtopologies[0]!.nodes.find((n) => n.name === 'join-profile')!;
  assert.deepEqual(join.predecessors, ['events']);
  assert.deepEqual(join.successors, ['count-per-session']);
  assert.deepEqual(join.stores, ['profiles']);
  assert.match(text, /Sub-topology: 0/);
  assert.match(text, /Source: events \(topics: \[encore-listening-events\]\)\n {6}--> join-profile/);
  assert.match(text, /Processor: count-per-session \(stores: \[sessions\]\)/);
  assert.match(
    text,
    /Sink: session-counts \(topic: encore-session-counts\)\n {6}--> none\n {6}<-- count-per-session/,
  );
  assert.match(text, /sessions \(session, changelog: encore-sessions-changelog\)/);
});

it('refuses two nodes or two stores with the same name', () => {
  const builder = new StreamsBuilder('app');
  builder.stream('a', { name: 'dup' });
  assert.throws(() => builder.stream('b', { name: 'dup' }), /already has a node named dup/);
  builder.stream<number>('c').groupByKey().count({ store: 's' });
  assert.throws(
    () => builder.stream<number>('d').groupByKey().count({ store: 's' }),
    /already has a state store named s/,
  );
});
