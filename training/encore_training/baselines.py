"""What the models must beat. Disengagement: "the last event was a skip", and logistic regression on the
stream's handcrafted session features. Next song: popularity, and item co-occurrence (what followed the
session's last song in training)."""

from __future__ import annotations

import numpy as np
import torch
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder

from .dataset import PAD, Points
from .layers import Normaliser
from .spec import FeatureSpec

LOGREG_MAX_ROWS = 200_000


def last_event_was_skip(points: Points, spec: FeatureSpec) -> np.ndarray:
    skip = spec.categorical["event_type"].index("SKIP")
    return (points.categorical["event_type"] == skip).astype(np.float64)


class HandcraftedLogReg:
    """Class-balanced logistic regression on the normalised numeric features and one-hot categoricals."""

    def __init__(self, train: Points, spec: FeatureSpec, seed: int):
        self.spec = spec
        self.normaliser = Normaliser(train.numeric)
        self.onehot = OneHotEncoder(
            categories=[list(range(len(v))) for v in spec.categorical.values()], handle_unknown="ignore"
        )
        rows = np.random.default_rng(seed).permutation(len(train))[:LOGREG_MAX_ROWS]
        x = self._design(train, rows, fit=True)
        self.model = LogisticRegression(max_iter=500, class_weight="balanced", C=1.0)
        self.model.fit(x, train.label[rows])

    def _design(self, points: Points, rows: np.ndarray, fit: bool = False) -> np.ndarray:
        with torch.no_grad():
            numeric = self.normaliser(torch.from_numpy(points.numeric[rows])).numpy()
        categorical = np.stack([points.categorical[n][rows] for n in self.spec.categorical], axis=1)
        onehot = self.onehot.fit_transform(categorical) if fit else self.onehot.transform(categorical)
        return np.hstack([numeric, onehot.toarray()])

    def scores(self, points: Points) -> np.ndarray:
        return self.model.predict_proba(self._design(points, np.arange(len(points))))[:, 1]


class Popularity:
    def __init__(self, train: Points, catalog_size: int):
        targets = train.next_song[train.next_song != PAD]
        self.counts = np.bincount(targets, minlength=catalog_size).astype(np.float64)

    def scores(self, rows: int) -> np.ndarray:
        return np.broadcast_to(self.counts, (rows, len(self.counts)))


class CoOccurrence:
    """Next-song counts per last song in training; popularity breaks ties and fills unseen songs."""

    def __init__(self, train: Points, catalog_size: int):
        has = train.next_song != PAD
        last = train.seq_song[has, -1]
        target = train.next_song[has]
        ones = np.ones(len(target))
        self.matrix = sparse.csr_matrix((ones, (last, target)), shape=(catalog_size, catalog_size))
        self.popularity = Popularity(train, catalog_size).counts

    def scores(self, last_songs: np.ndarray) -> np.ndarray:
        scale = self.popularity.max() + 1
        return self.matrix[last_songs].toarray() * scale + self.popularity[None, :]
