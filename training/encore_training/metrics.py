"""Evaluation: classification metrics for disengagement, ranking metrics for next-song retrieval."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

PRECISION_AT = (100, 1000)
RANK_CUTOFFS = (10, 50, 100)


def choose_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The score maximising Youden's J (true-positive rate minus false-positive rate) on the validation
    days: the trigger the job will use. F1 would trigger on nearly everyone when most points are positive."""
    fpr, tpr, thresholds = roc_curve(labels, scores)
    best = int(np.argmax(tpr - fpr))
    return float(min(thresholds[best], 1.0))


def classification(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    order = np.argsort(-scores, kind="stable")
    triggered = scores >= threshold
    positives, negatives = labels == 1, labels == 0
    result = {
        "auc": float(roc_auc_score(labels, scores)),
        "pr_auc": float(average_precision_score(labels, scores)),
        "threshold": threshold,
        "trigger_precision": float(labels[triggered].mean()) if triggered.any() else 0.0,
        "trigger_recall": float(triggered[positives].mean()) if positives.any() else 0.0,
        "false_positive_rate": float(triggered[negatives].mean()) if negatives.any() else 0.0,
        "trigger_rate": float(triggered.mean()),
        "positive_rate": float(labels.mean()),
    }
    for k in PRECISION_AT:
        if len(labels) >= k:
            result[f"precision_at_{k}"] = float(labels[order[:k]].mean())
    return result


def ranks(score_batch: Callable[[np.ndarray], np.ndarray], targets: np.ndarray, candidates: np.ndarray,
          batch: int = 1024) -> np.ndarray:
    """Each target's 0-based rank among `candidates` (a mask over song indices) by the scores
    `score_batch(rows)` gives; ties are broken by song index, so ranks are deterministic."""
    out = np.empty(len(targets), np.int64)
    index = np.arange(len(candidates))
    for start in range(0, len(targets), batch):
        rows = np.arange(start, min(start + batch, len(targets)))
        scores = np.where(candidates[None, :], score_batch(rows), -np.inf)
        target = targets[rows]
        own = scores[np.arange(len(rows)), target][:, None]
        better = (scores > own) | ((scores == own) & (index[None, :] < target[:, None]))
        out[rows] = better.sum(axis=1)
    return out


def ranking(rank: np.ndarray) -> dict[str, float]:
    result = {"mrr": float(np.mean(1.0 / (rank + 1))), "examples": float(len(rank))}
    for k in RANK_CUTOFFS:
        hit = rank < k
        result[f"recall_at_{k}"] = float(hit.mean())
        result[f"ndcg_at_{k}"] = float(np.mean(np.where(hit, 1.0 / np.log2(rank + 2), 0.0)))
    return result
