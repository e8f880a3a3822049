"""Writes what test/training/parity.test.ts checks: a tiny deterministic training run's exported models and,
for each, inputs and PyTorch's outputs on them.

    python -m tests.parity_fixture OUT_DIR     (from training/)

OUT_DIR/parity.json: [{"model": "<dir>/model.onnx", "metadata": "<dir>/metadata.json",
"inputs": {name: {"dtype", "dims", "data"}}, "expected": [...], "dims": [...], "rows": [...]}]; "rows" are
the scored points' dataset rows (features.jsonl), from which serving computes the same inputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from encore_training.dataset import Points, load, split_by_time
from encore_training.models import batch_tensors
from encore_training.sources import FileSource
from encore_training.spec import FeatureSpec, find_spec
from encore_training.train import RunResult, TrainOptions, run
from tests.fixtures import write_dataset


def train(data_dir: Path, out: Path, seed: int) -> tuple[RunResult, Points, FeatureSpec]:
    """The tiny deterministic run: its result, the held-out points and the spec."""
    spec = FeatureSpec.load(find_spec(data_dir))
    data = load(FileSource(data_dir), spec, progress=False)
    options = TrainOptions(out=out, seed=seed, test_days=2, validation_days=1, epochs=1, tower_epochs=1,
                           dim=16, layers=1, progress=False)
    result = run(data, options)
    test = split_by_time(data.points, options.test_days, options.validation_days).test
    return result, test, spec


def scored_cases(result: RunResult, test: Points, spec: FeatureSpec, rows: np.ndarray,
                 data_dir: Path) -> list[dict[str, Any]]:
    """For each exported model: the tensors PyTorch is fed for `rows` of the test points, its outputs, and
    those points' rows as the dataset stores them."""
    wanted = {test.event_ids[i] for i in rows}
    with (data_dir / "features.jsonl").open() as lines:
        by_event = {row["event_id"]: row for row in map(json.loads, lines) if row["event_id"] in wanted}
    cases = []
    for directory, (module, names) in result.exported.items():
        tensors = batch_tensors(test, rows, spec, "user" in names)
        with torch.no_grad():
            expected = module(*tensors).numpy()
        cases.append({
            "model": str(directory / "model.onnx"),
            "metadata": str(directory / "metadata.json"),
            "inputs": {
                name: {"dtype": str(t.dtype).removeprefix("torch."), "dims": list(t.shape),
                       "data": t.flatten().tolist()}
                for name, t in zip(names, tensors, strict=True)
            },
            "expected": expected.flatten().tolist(),
            "dims": list(expected.shape),
            "rows": [by_event[test.event_ids[i]] for i in rows],
        })
    return cases


def main(out: Path) -> None:
    data_dir = write_dataset(out / "data")
    result, test, spec = train(data_dir, out / "models", seed=5)
    # Rows the export never saw, in a batch size it was not traced with.
    cases = scored_cases(result, test, spec, np.arange(5, 12), data_dir)
    (out / "parity.json").write_text(json.dumps(cases))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
