"""The feature spec, read from the file the streaming session tracker generates (schemas/feature-spec.json,
copied into every dataset). Names and order come only from there: the trainer never lists them itself."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Sequence fields in the dataset rows, in the order the spec lists them.
SEQUENCE_FIELDS = ("seq_song_ids", "seq_skipped", "seq_dwell_s", "seq_gap_s")
# Context features the two-tower user tower reads (a subset of the numeric ones, by name).
CONTEXT_FEATURES = ("hour_sin", "hour_cos", "weekend")


@dataclass(frozen=True)
class FeatureSpec:
    version: str
    numeric: tuple[str, ...]
    categorical: dict[str, tuple[str, ...]]
    sequence_length: int
    raw: dict[str, Any]

    @staticmethod
    def load(path: Path) -> FeatureSpec:
        raw = json.loads(path.read_text())
        return FeatureSpec(
            version=raw["version"],
            numeric=tuple(f["name"] for f in raw["numeric"]),
            categorical={c["name"]: tuple(c["values"]) for c in raw["categorical"]},
            sequence_length=int(raw["sequence"]["length"]),
            raw=raw,
        )

    def index(self, name: str) -> int:
        return self.numeric.index(name)


def find_spec(data_dir: Path | None) -> Path:
    """The dataset's own copy when there is one, else the repository's generated file."""
    if data_dir is not None and (data_dir / "feature-spec.json").exists():
        return data_dir / "feature-spec.json"
    return Path(__file__).resolve().parents[2] / "schemas" / "feature-spec.json"
