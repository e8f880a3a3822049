"""Writes what the serving tests read (test/helpers/models.ts): two tiny deterministic training runs over
one fixture dataset (seeds 5 and 6), exported into one models folder, so that it holds two versions of each
model; for each version, test points as the dataset stores them with the tensors PyTorch was fed and its
outputs (see parity_fixture.scored_cases).

    python -m tests.serving_fixture OUT_DIR     (from training/)

OUT_DIR/models/<name>/<version>/, OUT_DIR/data/ (songs.jsonl: the catalog), OUT_DIR/serving.json:
{"runs": [{"seed": 5, "version": "...", "cases": [...]}, ...]}."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from tests.fixtures import write_dataset
from tests.parity_fixture import scored_cases, train

SEEDS = (5, 6)
# Enough held-out points for sequences of every length class, in a batch size the export was not traced with.
SCORED_POINTS = 40


def main(out: Path) -> None:
    data_dir = write_dataset(out / "data")
    runs = []
    for seed in SEEDS:
        result, test, spec = train(data_dir, out / "models", seed)
        cases = scored_cases(result, test, spec, np.arange(SCORED_POINTS), data_dir)
        runs.append({"seed": seed, "version": result.version, "cases": cases})
    (out / "serving.json").write_text(json.dumps({"runs": runs}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
