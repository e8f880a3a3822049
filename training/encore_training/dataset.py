"""The training tables as arrays: scoring points (features joined with their labels on event_id) and the
catalog, with vocabularies for songs, users and categoricals, split by time."""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from .sources import Source
from .spec import FeatureSpec

DAY_MS = 86_400_000
# Index 0 pads sequences, 1 stands for ids the vocabulary has never seen (new songs, new users).
PAD, UNKNOWN = 0, 1
AUDIO_FEATURES = 8


def vocabulary(values: list[str]) -> dict[str, int]:
    """Ids to indices from 2 up, in sorted order (deterministic whatever the row order)."""
    return {value: i + 2 for i, value in enumerate(sorted(set(values)))}


@dataclass
class Catalog:
    song_ids: list[str]
    vocab: dict[str, int]
    audio: np.ndarray  # (vocab size, 8) float32, rows 0 and 1 zero
    genre: np.ndarray  # (vocab size,) int64 into genres, 0 = unknown
    artist: np.ndarray  # (vocab size,) int64 into artists, 0 = unknown
    popularity: np.ndarray  # (vocab size,) float32
    genres: list[str]
    artists: list[str]

    @property
    def size(self) -> int:
        return len(self.song_ids) + 2

    @staticmethod
    def from_rows(rows: list[dict[str, Any]]) -> Catalog:
        rows = sorted(rows, key=lambda r: r["song_id"])
        vocab = {r["song_id"]: i + 2 for i, r in enumerate(rows)}
        genres = sorted({r["genre"] for r in rows})
        artists = sorted({r["artist_id"] for r in rows})
        genre_index = {g: i + 1 for i, g in enumerate(genres)}
        artist_index = {a: i + 1 for i, a in enumerate(artists)}
        size = len(rows) + 2
        audio = np.zeros((size, AUDIO_FEATURES), np.float32)
        genre = np.zeros(size, np.int64)
        artist = np.zeros(size, np.int64)
        popularity = np.zeros(size, np.float32)
        for row in rows:
            i = vocab[row["song_id"]]
            audio[i] = np.asarray(row["audio_features"], np.float32)[:AUDIO_FEATURES]
            genre[i] = genre_index[row["genre"]]
            artist[i] = artist_index[row["artist_id"]]
            popularity[i] = float(row["popularity"])
        return Catalog([r["song_id"] for r in rows], vocab, audio, genre, artist, popularity, genres, artists)


@dataclass
class Points:
    """Scoring points with labels, in time order."""

    event_ids: list[str]
    timestamp: np.ndarray  # int64 ms
    user_ids: list[str]
    user: np.ndarray  # int64 index into the training users' vocabulary (UNKNOWN: not seen in training)
    numeric: np.ndarray  # (n, features) float32, raw
    categorical: dict[str, np.ndarray]  # name -> int64 index into the spec's values
    seq_song: np.ndarray  # (n, L) int64, left-padded with PAD, current play last
    seq_skipped: np.ndarray  # (n, L) float32
    seq_dwell: np.ndarray  # (n, L) float32 seconds
    seq_gap: np.ndarray  # (n, L) float32 seconds
    label: np.ndarray  # (n,) float32 0/1
    reason: list[str]
    next_song: np.ndarray  # (n,) int64, PAD when none

    def __len__(self) -> int:
        return len(self.event_ids)

    def take(self, index: np.ndarray) -> Points:
        return Points(
            event_ids=[self.event_ids[i] for i in index],
            timestamp=self.timestamp[index],
            user_ids=[self.user_ids[i] for i in index],
            user=self.user[index],
            numeric=self.numeric[index],
            categorical={k: v[index] for k, v in self.categorical.items()},
            seq_song=self.seq_song[index],
            seq_skipped=self.seq_skipped[index],
            seq_dwell=self.seq_dwell[index],
            seq_gap=self.seq_gap[index],
            label=self.label[index],
            reason=[self.reason[i] for i in index],
            next_song=self.next_song[index],
        )


@dataclass
class Dataset:
    spec: FeatureSpec
    catalog: Catalog
    points: Points
    source: str

    @property
    def time_range(self) -> tuple[int, int]:
        return int(self.points.timestamp.min()), int(self.points.timestamp.max())


class PointsBuilder:
    """Scoring points encoded row by row into compact columns as they are read: a million rows kept as
    parsed JSON would take over ten gigabytes."""

    def __init__(self, spec: FeatureSpec, catalog: Catalog):
        self.spec, self.catalog = spec, catalog
        self.length = spec.sequence_length
        self.lookups = {name: {v: i for i, v in enumerate(values)} for name, values in spec.categorical.items()}
        self.event_ids: list[str] = []
        self.user_ids: list[str] = []
        self.reasons: list[str] = []
        self.columns: dict[str, array[Any]] = {
            "timestamp": array("q"), "numeric": array("f"), "categorical": array("q"), "seq_song": array("q"),
            "seq_skipped": array("f"), "seq_dwell": array("f"), "seq_gap": array("f"), "label": array("f"),
            "next_song": array("q"),
        }

    def add(self, row: dict[str, Any], label: tuple[int, str, str | None]) -> None:
        c, length = self.columns, self.length
        self.event_ids.append(row["event_id"])
        self.user_ids.append(row["user_id"])
        c["timestamp"].append(row["timestamp_ms"])
        c["numeric"].extend(row["features"])
        # Unknown categorical values map to the spec's first value (UNKNOWN in every enum).
        c["categorical"].extend(lookup.get(row[name], 0) for name, lookup in self.lookups.items())
        songs = row["seq_song_ids"][-length:]
        k = len(songs)
        pad = [0] * (length - k)
        # Left-padded: the current play always sits in the last position.
        c["seq_song"].extend(pad + [self.catalog.vocab.get(s, UNKNOWN) for s in songs])
        c["seq_skipped"].extend(pad + list(row["seq_skipped"][-k:] if k else []))
        c["seq_dwell"].extend(pad + list(row["seq_dwell_s"][-k:] if k else []))
        c["seq_gap"].extend(pad + list(row["seq_gap_s"][-k:] if k else []))
        value, reason, next_song = label
        c["label"].append(float(value))
        self.reasons.append(reason)
        c["next_song"].append(self.catalog.vocab.get(next_song or "", PAD))

    def build(self) -> Points:
        n, c = len(self.event_ids), self.columns

        def column(name: str, dtype: Any, width: int = 0) -> np.ndarray:
            values = np.frombuffer(c[name], dtype=c[name].typecode).astype(dtype)
            return values.reshape(n, width) if width else values

        categorical = column("categorical", np.int64, len(self.lookups))
        points = Points(
            event_ids=self.event_ids,
            timestamp=column("timestamp", np.int64),
            user_ids=self.user_ids,
            user=np.full(n, UNKNOWN, np.int64),
            numeric=column("numeric", np.float32, len(self.spec.numeric)),
            categorical={name: categorical[:, i].copy() for i, name in enumerate(self.lookups)},
            seq_song=column("seq_song", np.int64, self.length),
            seq_skipped=column("seq_skipped", np.float32, self.length),
            seq_dwell=column("seq_dwell", np.float32, self.length),
            seq_gap=column("seq_gap", np.float32, self.length),
            label=column("label", np.float32),
            reason=self.reasons,
            next_song=column("next_song", np.int64),
        )
        # Time order (event id breaks ties), whatever order the source gave.
        return points.take(np.lexsort((np.array(self.event_ids), points.timestamp)))


def load(source: Source, spec: FeatureSpec, progress: bool = True) -> Dataset:
    catalog = Catalog.from_rows(list(source.rows("songs")))
    labels = {
        row["event_id"]: (int(row["label"]), row["reason"], row["next_song_id"])
        for row in tqdm(source.rows("labels"), desc="labels", unit=" rows", disable=not progress)
    }
    builder = PointsBuilder(spec, catalog)
    for row in tqdm(source.rows("features"), desc="features", unit=" rows", disable=not progress):
        label = labels.get(row["event_id"])
        if label is None:
            continue  # the horizon had not passed when the data was exported
        if row["feature_spec"] != spec.version:
            raise ValueError(
                f"feature row {row['event_id']} follows spec {row['feature_spec']}, this trainer reads {spec.version}"
            )
        builder.add(row, label)
    if not builder.event_ids:
        raise ValueError(f"no labelled scoring points in {source.description}")
    return Dataset(spec, catalog, builder.build(), source.description)


@dataclass
class Split:
    train: Points
    validation: Points
    test: Points
    cutoff_ms: int
    validation_from_ms: int
    user_vocab: dict[str, int]


def split_by_time(points: Points, test_days: float, validation_days: float) -> Split:
    """Held out: the last `test_days`; validation (thresholds, early stopping): the days just before."""
    end = int(points.timestamp.max())
    cutoff = end - int(test_days * DAY_MS)
    validation_from = cutoff - int(validation_days * DAY_MS)
    t = points.timestamp
    train = np.flatnonzero(t < validation_from)
    validation = np.flatnonzero((t >= validation_from) & (t < cutoff))
    test = np.flatnonzero(t >= cutoff)
    if min(len(train), len(validation), len(test)) == 0:
        raise ValueError(
            f"the data spans {(end - int(t.min())) / DAY_MS:.1f} days: too short for "
            f"{validation_days} validation and {test_days} test days"
        )
    parts = [points.take(train), points.take(validation), points.take(test)]
    # Only users seen in training get an id embedding; later ones are UNKNOWN, as they will be when serving.
    user_vocab = vocabulary(parts[0].user_ids)
    for part in parts:
        part.user = np.array([user_vocab.get(u, UNKNOWN) for u in part.user_ids], np.int64)
    return Split(*parts, cutoff, validation_from, user_vocab)
