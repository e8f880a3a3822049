from __future__ import annotations

import numpy as np
import pytest

from encore_training import metrics


def test_ranks_break_ties_by_song_index() -> None:
    scores = np.array([[0.0, 0.0, 0.5, 0.5, 0.1]])
    candidates = np.array([False, False, True, True, True])
    for target, expected in ((2, 0), (3, 1), (4, 2)):
        rank = metrics.ranks(lambda rows: scores[rows], np.array([target]), candidates)
        assert rank.tolist() == [expected]


def test_ranking_metrics() -> None:
    result = metrics.ranking(np.array([0, 1, 9, 150]))
    assert result["recall_at_10"] == pytest.approx(0.75)
    assert result["recall_at_100"] == pytest.approx(0.75)
    assert result["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 10 + 1 / 151) / 4)
    assert result["ndcg_at_10"] == pytest.approx((1 + 1 / np.log2(3) + 1 / np.log2(11)) / 4)


def test_classification_at_threshold() -> None:
    labels = np.array([1, 1, 0, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.05])
    threshold = metrics.choose_threshold(labels, scores)
    result = metrics.classification(labels, scores, threshold)
    assert result["auc"] == pytest.approx(7 / 9)
    assert threshold == pytest.approx(0.8)
    assert result["trigger_precision"] == 1.0 and result["false_positive_rate"] == 0.0
    assert result["trigger_recall"] == pytest.approx(2 / 3)
