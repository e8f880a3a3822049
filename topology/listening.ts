/**
 * Encore's listening topology: what every listener is doing now, what it meant, and what recommendations
 * led to. Read top to bottom:
 *
 *   listening-events ⋈ user-profiles → 30-minute session windows (store: sessions)
 *     ├─ closed sessions                              → sessions
 *     ├─ features at every event (scoring points)     → session-features
 *     └─ labeler, decided after the horizon            → disengagement-labels   (stores: label-points, label-timeline)
 *   listening-events + recommendations → feedback    → recommendation-feedback (stores: feedback-recommendations, feedback-events)
 *
 * Malformed events go to the dead-letter topic (the runtime's deserialization handler). The ClickHouse
 * connector (sinks/connector.ts) writes all these topics into tables for analysts and training.
 */
import type { Config } from '../core/config.ts';
import type { TopicDefinition } from '../schemas/topics.ts';
import { topics } from '../schemas/topics.ts';
import type {
  ListeningEvent,
  Recommendation,
  RecommendationFeedback,
  SessionFeatures,
  UserProfile,
} from '../schemas/types.generated.ts';
import { validateListeningEvent } from '../schemas/validation.ts';
import { closedSession, scoringPoint } from './listening/features.ts';
import {
  FEEDBACK_EVENTS_STORE,
  FEEDBACK_RECOMMENDATIONS_STORE,
  type FeedbackInput,
  feedbackCollector,
} from './listening/feedback.ts';
import { LABEL_POINTS_STORE, LABEL_TIMELINE_STORE, labeler } from './listening/labeler.ts';
import {
  addEvent,
  emptySession,
  mergeSessions,
  type SessionState,
  withProfile,
} from './listening/session.ts';
import { type KStream, type KTable, SessionWindows, StreamsBuilder } from './streams/builder.ts';
import type { SessionUpdate } from './streams/operators.ts';
import type { Topology, ValueSerde } from './streams/topology.ts';

/** The value serde of a topic: Avro through the registry in the runtime, none in the test driver. */
export type SerdeFactory = <T>(
  topic: TopicDefinition<T>,
  validate?: (value: T) => T,
) => ValueSerde<T> | undefined;

const eventOf = (update: SessionUpdate<SessionState>) => update.value!.events[update.value!.latest!.index]!;

/** The listening topology alone (what the dataset builder runs offline). */
export function listeningTopology(config: Config, serde: SerdeFactory): Topology {
  const builder = new StreamsBuilder(config.appId);
  addListening(builder, config, serde);
  return builder.build();
}

/** The streams the recommendation half builds on. */
export interface ListeningStreams {
  profiles: KTable<UserProfile>;
  /** The session's features at every event but an exit: the scoring points. */
  scoringPoints: KStream<SessionFeatures>;
  feedback: KStream<RecommendationFeedback>;
}

export function addListening(builder: StreamsBuilder, config: Config, serde: SerdeFactory): ListeningStreams {
  const t = topics(config);
  const rules = config.listening;

  const profiles = builder.table<UserProfile>(t.userProfiles.name, {
    store: 'user-profiles',
    serde: serde(t.userProfiles) as ValueSerde<UserProfile | null>,
  });
  const events = builder.stream<ListeningEvent>(t.listeningEvents.name, {
    serde: serde(t.listeningEvents, validateListeningEvent),
    timestampExtractor: (event) => event.timestamp,
  });
  const recommendations = builder.stream<Recommendation>(t.recommendations.name, {
    serde: serde(t.recommendations),
    timestampExtractor: (recommendation) => recommendation.eventTime,
  });

  const windows = SessionWindows.ofInactivityGap(rules.sessionGapMs).grace(rules.graceMs).emitOnClose();
  const [closed, updated] = events
    .leftJoin(profiles, withProfile)
    .groupByKey()
    .windowedBy(windows)
    .aggregate(emptySession, addEvent, mergeSessions, { store: 'sessions' })
    .toStream()
    .branch(
      (update) => update.closed,
      (update) => update.value !== null,
    );

  closed
    .mapValues((s, user) => closedSession(user, s.start, s.end, s.value!, rules))
    .to(t.sessions.name, { serde: serde(t.sessions) });

  const scoringPoints = updated
    .filter((update) => eventOf(update).type !== 'EXIT')
    .mapValues((update, user) => scoringPoint(user, update.start, update.value!, rules));
  scoringPoints.to(t.sessionFeatures.name, { serde: serde(t.sessionFeatures) });

  updated
    .process(labeler({ ...rules, horizonMs: rules.labelHorizonMs }), {
      stores: [
        { name: LABEL_POINTS_STORE, kind: 'list' },
        { name: LABEL_TIMELINE_STORE, kind: 'list' },
      ],
    })
    .to(t.disengagementLabels.name, { serde: serde(t.disengagementLabels) });

  const feedback = events
    .mapValues((event): FeedbackInput => ({ kind: 'event', event }))
    .merge(
      recommendations.mapValues(
        (recommendation): FeedbackInput => ({ kind: 'recommendation', recommendation }),
      ),
    )
    .process(feedbackCollector({ listenedMs: rules.listenedMs, windowMs: rules.feedbackWindowMs }), {
      stores: [
        { name: FEEDBACK_RECOMMENDATIONS_STORE, kind: 'list' },
        { name: FEEDBACK_EVENTS_STORE, kind: 'list' },
      ],
    });
  feedback.to(t.recommendationFeedback.name, { serde: serde(t.recommendationFeedback) });

  return { profiles, scoringPoints, feedback };
}
