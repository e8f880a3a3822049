/**
 * A scripted listening history for end-to-end tests: listeners who listen through, skip in bursts, pause,
 * search and leave, recommendations with each kind of outcome, then "clock" events on every partition that
 * move stream time far enough for every session to close, every label to be decided and every feedback
 * window to pass. No event is late, so the outcome does not depend on how users share partitions.
 */
import type { Config } from '../../core/config.ts';
import { topics } from '../../schemas/topics.ts';
import type {
  DisengagementLabel,
  ListeningEvent,
  ListeningSession,
  Recommendation,
  RecommendationFeedback,
  SessionFeatures,
} from '../../schemas/types.generated.ts';
import { listeningTopology } from '../../topology/listening.ts';
import { TopologyTestDriver } from '../../topology/streams/test-driver.ts';
import { listeningEvent, recommendation } from './events.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;

export type ScriptItem =
  | { kind: 'event'; event: ListeningEvent }
  | { kind: 'recommendation'; recommendation: Recommendation }
  /** Moves stream time on one partition. */
  | { kind: 'clock'; partition: number; event: ListeningEvent };

export function listeningScript(start: number, partitions: number): ScriptItem[] {
  const items: ScriptItem[] = [];
  let sequence = 0;
  const event = (
    userId: string,
    type: ListeningEvent['type'],
    at: number,
    songId: string | null,
    recommendationId: string | null = null,
  ) => {
    sequence += 1;
    const e = listeningEvent({
      eventId: `${userId}-e${String(sequence).padStart(4, '0')}`,
      userId,
      type,
      timestamp: at,
      songId: type === 'SEARCH' ? null : songId,
      positionMs: type === 'SEARCH' ? null : 0,
      searchQuery: type === 'SEARCH' ? 'something else' : null,
      device: userId.endsWith('1') ? 'DESKTOP' : 'MOBILE',
      context: { recommendationId },
    });
    items.push({ kind: 'event', event: e });
    return e;
  };
  const recommend = (id: string, trigger: ListeningEvent, songs: string[]) =>
    items.push({
      kind: 'recommendation',
      recommendation: recommendation(id, trigger.userId, trigger.timestamp, songs, trigger.eventId),
    });

  for (let u = 0; u < 6; u += 1) {
    const user = `listener-${u}`;
    let t = start + u * 7 * SECOND;
    // Three songs listened through, one with a pause in it.
    for (let s = 0; s < 3; s += 1) {
      event(user, 'PLAY', t, `song-${u}-${s}`);
      if (s === 1) {
        event(user, 'PAUSE', t + MINUTE, `song-${u}-${s}`);
        event(user, 'RESUME', t + 2 * MINUTE, `song-${u}-${s}`);
      }
      t += 3 * MINUTE + u * SECOND;
    }
    // Then a skip burst: four songs skipped within a minute.
    let lastSkip = event(user, 'PLAY', t, `song-${u}-3`);
    for (let s = 3; s < 7; s += 1) {
      if (s > 3) event(user, 'PLAY', t, `song-${u}-${s}`);
      t += 12 * SECOND;
      lastSkip = event(user, 'SKIP', t, `song-${u}-${s}`);
    }
    if (u % 3 === 0) {
      const trigger = event(user, 'PLAY', t, `song-${u}-7`);
      recommend(`rec-${u}`, trigger, [`song-r${u}-a`, `song-r${u}-b`, `song-r${u}-c`]);
      t += 20 * SECOND;
      event(user, 'PLAY', t, `song-r${u}-a`, `rec-${u}`); // recommended, listened 2 min
      t += 2 * MINUTE;
      event(user, 'PLAY', t, `song-r${u}-b`, `rec-${u}`); // recommended, skipped after 8 s
      t += 8 * SECOND;
      event(user, 'SKIP', t, `song-r${u}-b`);
      event(user, 'PLAY', t, `song-${u}-8`);
    } else if (u % 3 === 1) {
      recommend(`rec-${u}`, lastSkip, [`song-r${u}-a`]);
      t += 30 * SECOND;
      event(user, 'SEARCH', t, null); // searched instead
      event(user, 'PLAY', t + 10 * SECOND, `song-${u}-9`);
      t += 4 * MINUTE;
      event(user, 'EXIT', t, `song-${u}-9`);
    } else {
      recommend(`rec-${u}`, lastSkip, [`song-r${u}-a`]); // ignored: listens on to other songs
      event(user, 'PLAY', t + SECOND, `song-${u}-10`);
      t += 40 * MINUTE; // a new session after the gap
      event(user, 'PLAY', t, `song-${u}-11`);
      t += 3 * MINUTE;
      event(user, 'EXIT', t, `song-${u}-11`);
    }
  }
  // The listeners' actions interleaved in time order, as they would reach Kafka (the sort is stable: a
  // recommendation stays after its trigger event).
  const at = (i: ScriptItem) =>
    i.kind === 'recommendation' ? i.recommendation.eventTime : i.event.timestamp;
  items.sort((a, b) => at(a) - at(b));
  // Stream time well past every session's close, label horizon and feedback window, on every partition.
  const last = at(items.at(-1)!);
  for (let p = 0; p < partitions; p += 1) {
    const clock = listeningEvent({
      eventId: `clock-${p}`,
      userId: `clock-${p}`,
      type: 'PLAY',
      timestamp: last + 2 * 60 * MINUTE,
      songId: 'clock-song',
    });
    items.push({ kind: 'clock', partition: p, event: clock });
  }
  return items;
}

/** What the listening topology produces from a script (the listeners', not the clocks'), in the test driver. */
export function topologyOutputs(config: Config, script: readonly ScriptItem[]) {
  const t = topics(config);
  const driver = new TopologyTestDriver(
    listeningTopology(config, () => undefined),
    { applicationId: config.appId },
  );
  const events = driver.createInputTopic(t.listeningEvents.name);
  const recommendations = driver.createInputTopic(t.recommendations.name);
  for (const item of script) {
    if (item.kind === 'recommendation')
      recommendations.pipe(item.recommendation.userId, item.recommendation, item.recommendation.eventTime);
    else events.pipe(item.event.userId, item.event, item.event.timestamp);
  }
  const listeners = <V extends { userId: string }>(topic: string) =>
    driver
      .createOutputTopic<V>(topic)
      .readValues()
      .filter((v) => !v.userId.startsWith('clock-'));
  return {
    sessions: listeners<ListeningSession>(t.sessions.name),
    features: listeners<SessionFeatures>(t.sessionFeatures.name),
    labels: listeners<DisengagementLabel>(t.disengagementLabels.name),
    feedback: listeners<RecommendationFeedback>(t.recommendationFeedback.name),
  };
}
