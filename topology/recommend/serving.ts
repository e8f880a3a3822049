/**
 * What the recommendation processors need from outside the stream: the models to run and the song catalog.
 * The job provides live ones (the model registry with hot reload, the catalog followed from the songs
 * topic); tests provide fixed ones. Both are read per micro-batch, so a model swap takes effect at the
 * next batch without a restart and without touching state.
 */
import { Counter, Histogram } from 'prom-client';
import { registry } from '../../core/metrics.ts';
import type { SongCatalog } from '../../udfs/catalog.ts';
import type { ServingModels } from '../../udfs/models.ts';

export interface Serving {
  /** A consistent snapshot of the served models: one batch uses one snapshot throughout. */
  models(): ServingModels;
  readonly catalog: SongCatalog;
}

export const disengagementTriggers = new Counter({
  name: 'encore_disengagement_triggers_total',
  help: 'Scoring points at or above the threshold, by what became of them: pushed, held back by the cooldown, or push-off (serving.push)',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const recommendationsMade = new Counter({
  name: 'encore_recommendations_total',
  help: 'Recommendations produced, by trigger and serving path',
  labelNames: ['trigger', 'path'] as const,
  registers: [registry],
});

export const recommendationBuildSeconds = new Histogram({
  name: 'encore_recommendation_build_seconds',
  help: 'Per micro-batch of recommendations: user-tower inference, retrieval, re-ranking and post-processing',
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
  registers: [registry],
});

export const postProcessingRemovals = new Counter({
  name: 'encore_post_processing_removed_total',
  help: 'Candidates post-processing removed, by rule (explicit, recent, artist-cap, genre-cap)',
  labelNames: ['rule'] as const,
  registers: [registry],
});
