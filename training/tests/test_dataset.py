from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from encore_training.dataset import PAD, UNKNOWN, load, split_by_time
from encore_training.sources import ClickHouseSource, FileSource
from encore_training.spec import FeatureSpec, find_spec


def test_spec_comes_from_the_generated_file(dataset_dir: Path) -> None:
    spec = FeatureSpec.load(find_spec(dataset_dir))
    raw = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "feature-spec.json").read_text())
    assert spec.numeric == tuple(f["name"] for f in raw["numeric"])
    assert spec.version == raw["version"]
    assert set(spec.categorical) == {c["name"] for c in raw["categorical"]}


def test_load_joins_labels_and_left_pads_sequences(dataset_dir: Path) -> None:
    spec = FeatureSpec.load(find_spec(dataset_dir))
    data = load(FileSource(dataset_dir), spec, progress=False)
    points = data.points
    assert np.all(np.diff(points.timestamp) >= 0)
    assert points.timestamp.dtype == np.int64  # Int64 columns arrived as strings
    assert points.numeric.shape == (len(points), len(spec.numeric))
    first = json.loads((dataset_dir / "features.jsonl").read_text().splitlines()[0])
    row = points.event_ids.index(first["event_id"])
    k = len(first["seq_song_ids"])
    assert list(points.seq_song[row, : spec.sequence_length - k]) == [PAD] * (spec.sequence_length - k)
    assert points.seq_song[row, -1] == data.catalog.vocab[first["seq_song_ids"][-1]]
    assert set(np.unique(points.label)) <= {0.0, 1.0}


def test_split_is_by_time_and_later_users_are_unknown(dataset_dir: Path) -> None:
    spec = FeatureSpec.load(find_spec(dataset_dir))
    data = load(FileSource(dataset_dir), spec, progress=False)
    split = split_by_time(data.points, test_days=2, validation_days=1)
    assert split.train.timestamp.max() < split.validation.timestamp.min()
    assert split.validation.timestamp.max() < split.test.timestamp.min() or len(split.validation) == 0
    assert set(split.train.user) - {UNKNOWN} == set(split.user_vocab.values())
    with pytest.raises(ValueError, match="too short"):
        split_by_time(data.points, test_days=30, validation_days=1)


def test_rows_of_another_feature_spec_are_refused(tmp_path: Path, dataset_dir: Path) -> None:
    for name in ("songs", "labels"):
        (tmp_path / f"{name}.jsonl").write_text((dataset_dir / f"{name}.jsonl").read_text())
    rows = [json.loads(line) for line in (dataset_dir / "features.jsonl").read_text().splitlines()[:5]]
    rows[0]["feature_spec"] = "session-000000000000"
    (tmp_path / "features.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = FeatureSpec.load(find_spec(dataset_dir))
    with pytest.raises(ValueError, match="session-000000000000"):
        load(FileSource(tmp_path), spec, progress=False)


class FakeClient:
    def __init__(self) -> None:
        self.queries: list[str] = []

    def rows(self, sql: str) -> list[dict[str, object]]:
        self.queries.append(sql)
        return [
            {"event_id": "e1", "timestamp_ms": "1788220800000", "outcome_after_ms": None},
            {"event_id": "e2", "timestamp_ms": "1788220800001", "outcome_after_ms": "5"},
        ]


def test_clickhouse_reads_final_and_converts_int64_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeClient()
    source = ClickHouseSource("http://127.0.0.1:8123", "encore")
    monkeypatch.setattr(source, "client", lambda: client)
    rows = list(source.rows("labels"))
    assert client.queries == ["SELECT * FROM disengagement_labels FINAL"]
    assert rows == [
        {"event_id": "e1", "timestamp_ms": 1788220800000, "outcome_after_ms": None},
        {"event_id": "e2", "timestamp_ms": 1788220800001, "outcome_after_ms": 5},
    ]
