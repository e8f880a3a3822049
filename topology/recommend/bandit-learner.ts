/**
 * The contextual bandit learns from the feedback stream: a recommended song listened to is a reward of 1
 * for the ranking features it was chosen with; a skip, or a list that ended in a search, an exit or nothing
 * played, is 0. Its statistics live in the bandit store, changelogged: they survive restarts and move with
 * the partition, so each task's bandit keeps learning from its own users' feedback.
 */
import type { RecommendationFeedback } from '../../schemas/types.generated.ts';
import { type BanditState, banditUpdate, newBandit } from '../../udfs/bandit.ts';
import { RANKING_FEATURES } from '../../udfs/ranking.ts';
import type { ProcessorSupplier } from '../streams/api.ts';
import type { KeyValueStore } from '../streams/stores.ts';
import { BANDIT_KEY, BANDIT_STORE, DECISIONS_STORE, type RankingDecision } from './recommender.ts';

const LIST_OUTCOMES = new Set(['SEARCHED', 'EXITED', 'IGNORED']);

export function banditLearner(): ProcessorSupplier<string, RecommendationFeedback, string, never> {
  return () => {
    let bandits: KeyValueStore<BanditState>;
    let decisions: KeyValueStore<RankingDecision>;
    return {
      init(context) {
        bandits = context.getStateStore(BANDIT_STORE);
        decisions = context.getStateStore(DECISIONS_STORE);
      },
      process({ value: feedback }) {
        const decision = decisions.get(feedback.recommendationId);
        if (!decision) return; // its window passed, or it was made before this bandit existed
        const bandit = bandits.get(BANDIT_KEY) ?? newBandit(RANKING_FEATURES.length);
        if (LIST_OUTCOMES.has(feedback.outcome)) {
          for (const item of decision.items) banditUpdate(bandit, item.features, 0);
          decisions.delete(feedback.recommendationId);
        } else {
          const item = decision.items.find((i) => i.songId === feedback.songId);
          if (!item) return;
          banditUpdate(bandit, item.features, feedback.outcome === 'LISTENED' ? 1 : 0);
          const rest = decision.items.filter((i) => i !== item);
          if (rest.length > 0) decisions.put(feedback.recommendationId, { ...decision, items: rest });
          else decisions.delete(feedback.recommendationId);
        }
        bandits.put(BANDIT_KEY, bandit);
      },
    };
  };
}
