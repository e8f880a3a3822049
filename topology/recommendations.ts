/**
 * Encore's recommendation topology, on the listening topology's streams. Read top to bottom:
 *
 *   scoring points → disengagement UDF (micro-batched ONNX; a challenger shadow-scored) → model-scores
 *     └─ with recommendation-requests → recommender (store: listener-context, bandit, ranking-decisions)
 *          threshold (per user) and cooldown → user tower → ANN top-K → ranking UDF + bandit
 *          → post-processing (explicit filter, no recent songs, artist / genre caps, MMR) → recommendations
 *   recommendation feedback → bandit learner (stores: bandit, ranking-decisions)
 *
 * Models and the song catalog come from `Serving` (hot-swapped by the model registry); what each list
 * went through is in its `path`, `pathReason` and `modelVersions`.
 */
import type { Config } from '../core/config.ts';
import { topics } from '../schemas/topics.ts';
import type { RecommendationRequest } from '../schemas/types.generated.ts';
import { addListening, type ListeningStreams, type SerdeFactory } from './listening.ts';
import { banditLearner } from './recommend/bandit-learner.ts';
import {
  BANDIT_STORE,
  CONTEXT_STORE,
  DECISIONS_STORE,
  type RecommenderInput,
  recommender,
} from './recommend/recommender.ts';
import { disengagementScorer, modelScores } from './recommend/scorer.ts';
import type { Serving } from './recommend/serving.ts';
import { StreamsBuilder } from './streams/builder.ts';
import type { Topology } from './streams/topology.ts';

const DAY = 86_400_000;

/** The whole job: listening, then recommendations. */
export function encoreTopology(config: Config, serde: SerdeFactory, serving: Serving): Topology {
  const builder = new StreamsBuilder(config.appId);
  addRecommendations(builder, addListening(builder, config, serde), config, serde, serving);
  return builder.build();
}

export function addRecommendations(
  builder: StreamsBuilder,
  listening: ListeningStreams,
  config: Config,
  serde: SerdeFactory,
  serving: Serving,
): void {
  const t = topics(config);
  const { listening: rules } = config;
  const requests = builder.stream<RecommendationRequest>(t.recommendationRequests.name, {
    serde: serde(t.recommendationRequests),
    timestampExtractor: (request) => request.requestedAt,
  });

  const scored = listening.scoringPoints.process(
    disengagementScorer(serving, { serving: config.serving, burstSkips: rules.burstSkips }),
  );
  scored.flatMapValues(modelScores).to(t.modelScores.name, { serde: serde(t.modelScores) });

  scored
    .mapValues((point): RecommenderInput => ({ kind: 'point', point }))
    .merge(requests.mapValues((request): RecommenderInput => ({ kind: 'request', request })))
    .process(
      recommender(
        serving,
        {
          serving: config.serving,
          listenedMs: rules.listenedMs,
          decisionTtlMs: rules.feedbackWindowMs + rules.graceMs,
          contextTtlMs: DAY,
        },
        listening.profiles.store,
      ),
      {
        stores: [
          { name: CONTEXT_STORE, kind: 'key-value' },
          { name: BANDIT_STORE, kind: 'key-value' },
          { name: DECISIONS_STORE, kind: 'key-value' },
          listening.profiles,
        ],
      },
    )
    .to(t.recommendations.name, { serde: serde(t.recommendations) });

  listening.feedback.process(banditLearner(), { stores: [BANDIT_STORE, DECISIONS_STORE] });
}
