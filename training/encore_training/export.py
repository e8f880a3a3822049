"""ONNX export, checked against onnxruntime; metadata.json (the feature spec as serving must apply it);
the catalog's song embeddings as a file and a ClickHouse table."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch
from torch import nn

from .dataset import PAD, UNKNOWN
from .spec import FeatureSpec

OPSET = 18
PARITY_TOLERANCE = 1e-4
SONG_EMBEDDINGS_TABLE = "song_embeddings"


def export_onnx(model: nn.Module, inputs: list[torch.Tensor], names: list[str], output: str, path: Path) -> None:
    """Exports through torch.export with a dynamic batch dimension and checks that onnxruntime agrees with
    PyTorch on `inputs` (and on a batch of another size)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    inputs = [t.cpu() for t in inputs]
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(
        model, tuple(inputs), dynamic_shapes={name: {0: batch} for name in names}, strict=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch's own pytree deprecation, not ours
        torch.onnx.export(
            program, f=str(path), input_names=names, output_names=[output], opset_version=OPSET,
            external_data=False, verbose=False,
        )
    for rows in (slice(None), slice(0, 1)):
        part = [t[rows] for t in inputs]
        expected = run_torch(model, part)
        actual = run_onnx(path, dict(zip(names, part, strict=True)))
        difference = float(np.max(np.abs(expected - actual)))
        if difference > PARITY_TOLERANCE:
            raise AssertionError(f"{path}: onnxruntime differs from PyTorch by {difference}")


def run_torch(model: nn.Module, inputs: list[torch.Tensor]) -> np.ndarray:
    with torch.no_grad():
        return model(*inputs).numpy()


def run_onnx(path: Path, feeds: dict[str, torch.Tensor]) -> np.ndarray:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    return session.run(None, {k: v.numpy() for k, v in feeds.items() if k in wanted})[0]


def tensor_description(name: str, tensor: torch.Tensor) -> dict[str, Any]:
    return {"name": name, "dtype": str(tensor.dtype).removeprefix("torch."), "shape": ["batch", *tensor.shape[1:]]}


def vocabulary_description(ids: list[str]) -> dict[str, Any]:
    return {"pad_index": PAD, "unknown_index": UNKNOWN, "first_index": 2, "ids": ids}


def feature_spec_description(spec: FeatureSpec, normalisation: list[dict[str, object]], song_ids: list[str],
                             user_ids: list[str] | None) -> dict[str, Any]:
    """The spec as the stream generated it (names, order, vocabularies of the categoricals), with what
    training adds: the normalisation (applied inside the model: serving passes raw values) and the song and
    user vocabularies that turn ids into the model's indices."""
    return {
        "version": spec.version,
        "numeric": normalisation,
        "normalisation": "inside the model: pass the raw values in this order",
        "categorical": [{"name": n, "values": list(v)} for n, v in spec.categorical.items()],
        "categorical_encoding": "index of the value in its list, in this order; unknown values -> 0",
        "sequence": {
            **spec.raw["sequence"],
            "padding": "left: the current play in the last position; padded songs are index 0, other fields 0",
        },
        "vocabularies": {
            "songs": vocabulary_description(song_ids),
            "users": vocabulary_description(user_ids) if user_ids is not None else None,
        },
    }


def write_metadata(path: Path, metadata: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metadata, indent=2) + "\n")


def write_song_embeddings(path: Path, version: str, song_ids: list[str], embeddings: np.ndarray) -> None:
    """JSONEachRow in the song_embeddings table's shape, so the file loads into ClickHouse as it is."""
    with path.open("w") as out:
        for song_id, vector in zip(song_ids, embeddings, strict=True):
            row = {"model_version": version, "song_id": song_id, "embedding": [round(float(x), 6) for x in vector]}
            out.write(json.dumps(row) + "\n")


# Portable to ClickHouse 18.16 (no DateTime64, no LowCardinality) and current releases.
CREATE_SONG_EMBEDDINGS = f"""
CREATE TABLE IF NOT EXISTS {SONG_EMBEDDINGS_TABLE} (
  model_version String,
  song_id String,
  embedding Array(Float32),
  created_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(created_at)
ORDER BY (model_version, song_id)
"""


def insert_song_embeddings(client: Any, version: str, song_ids: list[str], embeddings: np.ndarray) -> None:
    client.command(CREATE_SONG_EMBEDDINGS)
    client.insert(SONG_EMBEDDINGS_TABLE, (
        {"model_version": version, "song_id": song_id, "embedding": [float(x) for x in vector]}
        for song_id, vector in zip(song_ids, embeddings, strict=True)
    ))
