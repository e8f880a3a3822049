"""A tiny end-to-end run: both models, baselines, ablation, ONNX export checked with onnxruntime, metadata,
song embeddings, report; and the same seed gives the same models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from encore_training.dataset import load
from encore_training.sources import FileSource
from encore_training.spec import FeatureSpec, find_spec
from encore_training.train import RunResult, TrainOptions, run


def tiny_run(dataset_dir: Path, out: Path) -> RunResult:
    spec = FeatureSpec.load(find_spec(dataset_dir))
    data = load(FileSource(dataset_dir), spec, progress=False)
    options = TrainOptions(out=out, seed=5, test_days=2, validation_days=1, epochs=2, tower_epochs=2, dim=16,
                           layers=1, progress=False)
    return run(data, options)


@pytest.fixture(scope="module")
def result(dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return tiny_run(dataset_dir, tmp_path_factory.mktemp("models"))


def test_writes_models_metadata_embeddings_and_report(result: RunResult) -> None:
    for directory in (result.disengagement_dir, result.user_tower_dir):
        assert (directory / "model.onnx").stat().st_size > 0
    report = result.report_dir
    for name in ("report.md", "metrics.json", "roc-pr.png", "loss.png", "recall-at-k.png"):
        assert (report / name).stat().st_size > 0, name
    text = (report / "report.md").read_text()
    assert "| transformer |" in text and "| popularity |" in text and "logistic regression" in text
    embeddings = [json.loads(line) for line in (result.user_tower_dir / "song-embeddings.jsonl").open()]
    assert {row["model_version"] for row in embeddings} == {result.version}
    assert len({len(row["embedding"]) for row in embeddings}) == 1


def test_metadata_embeds_the_feature_spec(result: RunResult, dataset_dir: Path) -> None:
    spec = json.loads((dataset_dir / "feature-spec.json").read_text())
    metadata = json.loads((result.disengagement_dir / "metadata.json").read_text())
    embedded = metadata["feature_spec"]
    assert embedded["version"] == spec["version"]
    assert [f["name"] for f in embedded["numeric"]] == [f["name"] for f in spec["numeric"]]
    assert all(f["std"] > 0 for f in embedded["numeric"])
    assert embedded["categorical"] == [{"name": c["name"], "values": c["values"]} for c in spec["categorical"]]
    assert embedded["sequence"]["length"] == spec["sequence"]["length"]
    assert embedded["vocabularies"]["songs"]["ids"][0] == "song-000000"
    assert metadata["version"] == result.version and 0 < metadata["threshold"] < 1
    assert {"auc", "pr_auc", "false_positive_rate"} <= set(metadata["metrics"]["transformer"])
    assert [i["name"] for i in metadata["inputs"]][:6] == ["numeric", "categorical", "seq_song", "seq_skipped",
                                                           "seq_dwell", "seq_gap"]


def test_onnx_runs_in_onnxruntime_as_metadata_describes(result: RunResult) -> None:
    for directory in (result.disengagement_dir, result.user_tower_dir):
        metadata = json.loads((directory / "metadata.json").read_text())
        session = onnxruntime.InferenceSession(str(directory / "model.onnx"), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == [i["name"] for i in metadata["inputs"]]
        feeds = {}
        for spec in metadata["inputs"]:
            shape = [3, *spec["shape"][1:]]
            feeds[spec["name"]] = np.ones(shape, dtype=np.float32 if spec["dtype"] == "float32" else np.int64)
        output = session.run(None, feeds)[0]
        assert output.shape[0] == 3 and np.all(np.isfinite(output))


def without_timings(value: object) -> object:
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k != "train_seconds"}
    return value


def test_same_seed_same_model(result: RunResult, dataset_dir: Path, tmp_path: Path) -> None:
    again = tiny_run(dataset_dir, tmp_path)
    assert again.version == result.version
    assert without_timings(again.metrics) == without_timings(result.metrics)
    assert (again.disengagement_dir / "model.onnx").read_bytes() == (result.disengagement_dir / "model.onnx").read_bytes()
