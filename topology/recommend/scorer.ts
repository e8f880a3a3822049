/**
 * The disengagement UDF in the stream: every scoring point is scored by the champion model (and by a
 * challenger when one is announced: shadow scoring, logged, deciding nothing), micro-batched across the
 * users of a poll, and compared with the user's threshold.
 *
 * Without a usable disengagement model (none trained yet, or one whose feature spec the job does not
 * compute) the skip-burst rule decides instead: a point triggers when the session has a burst of skips in
 * progress (the labeler's own definition), so listeners are still served before the first training.
 */
import type { Config } from '../../core/config.ts';
import { logger } from '../../core/log.ts';
import type { ModelScore, SessionFeatures } from '../../schemas/types.generated.ts';
import type { DisengagementModel } from '../../udfs/onnx.ts';
import { FEATURE_SPEC } from '../listening/features.ts';
import type { ProcessorContext, ProcessorSupplier, StreamRecord } from '../streams/api.ts';
import type { Serving } from './serving.ts';

const log = logger('scorer');

export interface ScoredPoint {
  features: SessionFeatures;
  /** The champion's probability; null when the skip-burst rule decided (no usable model). */
  score: number | null;
  /** The threshold in force for this user; null under the skip-burst rule. */
  threshold: number | null;
  triggered: boolean;
  modelVersion: string | null;
  challenger: { version: string; score: number } | null;
  /** This point's share of its micro-batch's inference time. */
  latencyMicros: number;
}

export interface ScoringRules {
  serving: Pick<Config['serving'], 'threshold' | 'userThresholds'>;
  burstSkips: number;
}

const SKIPS_IN_BURST_WINDOW = FEATURE_SPEC.numeric.findIndex((f) => f.name === 'skips_last_2min');

/** The threshold for a user: their override, else the configured one, else the model's own. */
export function thresholdFor(user: string, rules: ScoringRules, model: DisengagementModel): number {
  const { threshold, userThresholds } = rules.serving;
  return userThresholds[user] ?? (threshold >= 0 ? threshold : model.threshold);
}

interface Scored {
  scores: Float32Array;
  micros: number;
}

/** Runs a model over the batch; a failure is logged (once per model version and message) and yields undefined. */
async function scoreBatch(
  model: DisengagementModel | undefined,
  points: SessionFeatures[],
  reported: Set<string>,
): Promise<Scored | undefined> {
  if (!model) return undefined;
  const began = performance.now();
  try {
    const scores = await model.score(points);
    return { scores, micros: ((performance.now() - began) * 1000) / points.length };
  } catch (error) {
    const key = `${model.version}: ${(error as Error).message}`;
    if (!reported.has(key)) {
      reported.add(key);
      log.error(
        { model: model.name, version: model.version, err: (error as Error).message },
        'scoring failed',
      );
    }
    return undefined;
  }
}

export function disengagementScorer(
  serving: Serving,
  rules: ScoringRules,
): ProcessorSupplier<string, SessionFeatures, string, ScoredPoint> {
  return () => {
    let context: ProcessorContext<string, ScoredPoint>;
    let batch: StreamRecord<string, SessionFeatures>[] = [];
    const reported = new Set<string>();
    return {
      init(ctx) {
        context = ctx;
      },
      process(record) {
        batch.push(record);
      },
      async flush() {
        if (batch.length === 0) return;
        const records = batch;
        batch = [];
        const points = records.map((r) => r.value);
        const { disengagement: champion, disengagementChallenger: challenger } = serving.models();
        const championScores = await scoreBatch(champion, points, reported);
        const challengerScores = await scoreBatch(challenger, points, reported);
        records.forEach((record, i) => {
          const features = record.value;
          let point: ScoredPoint;
          if (champion && championScores) {
            const score = championScores.scores[i]!;
            const threshold = thresholdFor(record.key, rules, champion);
            point = {
              features,
              score,
              threshold,
              triggered: score >= threshold,
              modelVersion: champion.version,
              challenger: null,
              latencyMicros: Math.round(championScores.micros),
            };
          } else {
            point = {
              features,
              score: null,
              threshold: null,
              triggered: features.features[SKIPS_IN_BURST_WINDOW]! >= rules.burstSkips,
              modelVersion: null,
              challenger: null,
              latencyMicros: 0,
            };
          }
          if (challenger && challengerScores)
            point.challenger = { version: challenger.version, score: challengerScores.scores[i]! };
          context.forward({ ...record, value: point });
        });
      },
    };
  };
}

/** The model_scores rows of a scored point: the champion's, and the challenger's beside it. */
export function modelScores(point: ScoredPoint): ModelScore[] {
  const { features } = point;
  const row = (version: string, role: string, score: number, triggered: boolean): ModelScore => ({
    eventId: features.eventId,
    userId: features.userId,
    model: 'disengagement',
    modelVersion: version,
    role,
    score,
    threshold: point.threshold,
    triggered,
    latencyMicros: point.latencyMicros,
    timestamp: features.timestamp,
    scoredAt: Date.now(),
  });
  const rows: ModelScore[] = [];
  if (point.modelVersion !== null && point.score !== null)
    rows.push(row(point.modelVersion, 'champion', point.score, point.triggered));
  if (point.challenger) {
    const { version, score } = point.challenger;
    rows.push(row(version, 'challenger', score, point.threshold !== null && score >= point.threshold));
  }
  return rows;
}
