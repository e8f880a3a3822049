"""One training run: split by time, train and evaluate both models against their baselines (with the
user-id ablation), export ONNX with metadata and song embeddings, and write the report."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch.nn import functional as F

from . import baselines, export, metrics, report
from .dataset import PAD, UNKNOWN, Dataset, Points, Split, split_by_time
from .fit import History, fit, seed_everything
from .models import DisengagementModel, ModelConfig, TwoTower, batch_tensors, input_names
from .spec import FeatureSpec


@dataclass
class TrainOptions:
    out: Path
    seed: int = 7
    device: str = "cpu"
    test_days: float = 7
    validation_days: float = 3
    epochs: int = 4
    tower_epochs: int = 5
    batch_size: int = 512
    learning_rate: float = 2e-3
    max_train_points: int = 150_000
    max_validation_points: int = 50_000
    eval_points: int = 20_000
    dim: int = 32
    layers: int = 2
    progress: bool = True


@dataclass
class RunResult:
    version: str
    disengagement_dir: Path
    user_tower_dir: Path
    report_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    # What was exported, for parity checks: directory -> (PyTorch module, input names).
    exported: dict[Path, tuple[torch.nn.Module, list[str]]] = field(default_factory=dict)


def subsample(points: Points, limit: int, seed: int) -> Points:
    if len(points) <= limit:
        return points
    return points.take(np.sort(np.random.default_rng(seed).choice(len(points), limit, replace=False)))


def predict(model: DisengagementModel, points: Points, spec: FeatureSpec, device: str, batch: int = 4096) -> np.ndarray:
    out = []
    with torch.no_grad():
        for start in range(0, len(points), batch):
            index = np.arange(start, min(start + batch, len(points)))
            inputs = [t.to(device) for t in batch_tensors(points, index, spec, model.config.use_user_id)]
            out.append(model(*inputs).cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def train_disengagement(data: Dataset, split: Split, train: Points, seen: np.ndarray, options: TrainOptions,
                        use_user_id: bool) -> tuple[DisengagementModel, History, np.ndarray, np.ndarray]:
    seed_everything(options.seed)
    config = ModelConfig(dim=options.dim, layers=options.layers, use_user_id=use_user_id)
    model = DisengagementModel(data.spec, data.catalog, seen, train, len(split.user_vocab) + 2, config)
    model.to(options.device)
    positives = float(train.label.sum())
    # Class balancing: positives weigh as much in total as negatives.
    pos_weight = torch.tensor((len(train) - positives) / max(positives, 1.0), device=options.device)

    def batch_loss(rows: np.ndarray) -> torch.Tensor:
        inputs = [t.to(options.device) for t in batch_tensors(train, rows, data.spec, use_user_id)]
        labels = torch.from_numpy(train.label[rows]).to(options.device)
        return F.binary_cross_entropy_with_logits(model.logits(*inputs), labels, pos_weight=pos_weight)

    def validate() -> tuple[float, float]:
        scores = predict(model, split.validation, data.spec, options.device)
        loss = F.binary_cross_entropy(torch.from_numpy(scores.clip(1e-7, 1 - 1e-7)),
                                      torch.from_numpy(split.validation.label.astype(np.float64)))
        return float(loss), float(roc_auc_score(split.validation.label, scores))

    name = "disengagement" + (" +user id" if use_user_id else "")
    history = fit(model, len(train), batch_loss, validate, epochs=options.epochs, batch_size=options.batch_size,
                  learning_rate=options.learning_rate, seed=options.seed, description=name,
                  progress=options.progress)
    return model, history, predict(model, split.validation, data.spec, options.device), \
        predict(model, split.test, data.spec, options.device)


def with_targets(points: Points) -> Points:
    return points.take(np.flatnonzero(points.next_song != PAD))


def train_two_tower(data: Dataset, split: Split, train: Points, seen: np.ndarray, options: TrainOptions,
                    use_user_id: bool) -> tuple[TwoTower, History]:
    seed_everything(options.seed)
    config = ModelConfig(dim=options.dim, layers=options.layers, use_user_id=use_user_id)
    model = TwoTower(data.spec, data.catalog, seen, len(split.user_vocab) + 2, config).to(options.device)
    targets = with_targets(train)
    counts = np.bincount(targets.next_song, minlength=data.catalog.size).astype(np.float64) + 1.0
    log_q = torch.from_numpy(np.log(counts / counts.sum()).astype(np.float32)).to(options.device)
    validation = subsample(with_targets(split.validation), 3_000, options.seed)
    candidates = candidate_mask(data)

    def loss_on(points: Points, rows: np.ndarray) -> torch.Tensor:
        inputs = [t.to(options.device) for t in batch_tensors(points, rows, data.spec, use_user_id)]
        return model.in_batch_loss(inputs, torch.from_numpy(points.next_song[rows]).to(options.device), log_q)

    def validate() -> tuple[float, float]:
        losses = [float(loss_on(validation, np.arange(s, min(s + 1024, len(validation)))))
                  for s in range(0, len(validation), 1024)]
        rank = tower_ranks(model, data, validation, candidates, options.device)
        return float(np.mean(losses)), metrics.ranking(rank)["recall_at_100"]

    name = "two-tower" + (" +user id" if use_user_id else "")
    history = fit(model, len(targets), lambda rows: loss_on(targets, rows), validate, epochs=options.tower_epochs,
                  batch_size=max(options.batch_size, 1024), learning_rate=options.learning_rate, seed=options.seed,
                  description=name, progress=options.progress)
    return model, history


def candidate_mask(data: Dataset) -> np.ndarray:
    mask = np.ones(data.catalog.size, bool)
    mask[[PAD, UNKNOWN]] = False
    return mask


def song_embeddings(model: TwoTower, data: Dataset, device: str) -> np.ndarray:
    with torch.no_grad():
        return model.song_tower(torch.arange(data.catalog.size, device=device)).cpu().numpy()


def tower_ranks(model: TwoTower, data: Dataset, points: Points, candidates: np.ndarray, device: str) -> np.ndarray:
    songs = song_embeddings(model, data, device)
    use_user_id = model.user_tower.users is not None

    def scores(rows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            inputs = [t.to(device) for t in batch_tensors(points, rows, data.spec, use_user_id)]
            return model.user_tower(*inputs).cpu().numpy() @ songs.T

    return metrics.ranks(scores, points.next_song, candidates)


def model_version(data: Dataset, options: TrainOptions) -> str:
    first, last = data.time_range
    identity = json.dumps([data.spec.version, first, last, len(data.points), options.seed, asdict(options) | {
        "out": None, "device": None, "progress": None}], default=str)
    day = datetime.fromtimestamp(last / 1000, UTC).strftime("%Y%m%d")
    return f"{day}-{hashlib.sha256(identity.encode()).hexdigest()[:8]}"


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def run(data: Dataset, options: TrainOptions, clickhouse: Any = None) -> RunResult:
    split = split_by_time(data.points, options.test_days, options.validation_days)
    train = subsample(split.train, options.max_train_points, options.seed)
    # Validation picks epochs and thresholds: a sample does that as well as every row, at a fraction of the time.
    split.validation = subsample(split.validation, options.max_validation_points, options.seed)
    seen = np.zeros(data.catalog.size, bool)
    seen[np.unique(np.concatenate([train.seq_song.ravel(), train.next_song]))] = True
    seen[[PAD, UNKNOWN]] = False
    version = model_version(data, options)
    evaluation: dict[str, Any] = {"disengagement": {}, "two_tower": {}}
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    histories: dict[str, History] = {}

    # Disengagement: the model with and without a user-id embedding, and the baselines.
    models: dict[bool, DisengagementModel] = {}
    for use_user_id in (False, True):
        model, history, validation_scores, test_scores = train_disengagement(data, split, train, seen, options,
                                                                             use_user_id)
        name = "transformer + user id" if use_user_id else "transformer"
        threshold = metrics.choose_threshold(split.validation.label, validation_scores)
        evaluation["disengagement"][name] = metrics.classification(split.test.label, test_scores, threshold) | {
            "validation_auc": max(history.validation_metric), "train_seconds": history.seconds}
        curves[name] = (split.test.label, test_scores)
        histories[f"disengagement: {name}"] = history
        models[use_user_id] = model
    logreg = baselines.HandcraftedLogReg(train, data.spec, options.seed)
    for name, validation_scores, test_scores in (
        ("last event was a skip", baselines.last_event_was_skip(split.validation, data.spec),
         baselines.last_event_was_skip(split.test, data.spec)),
        ("logistic regression (session features)", logreg.scores(split.validation), logreg.scores(split.test)),
    ):
        threshold = metrics.choose_threshold(split.validation.label, validation_scores)
        evaluation["disengagement"][name] = metrics.classification(split.test.label, test_scores, threshold)
        curves[name] = (split.test.label, test_scores)
    chosen_user_id = (evaluation["disengagement"]["transformer + user id"]["validation_auc"]
                      > evaluation["disengagement"]["transformer"]["validation_auc"])
    disengagement = models[chosen_user_id]
    chosen_name = "transformer + user id" if chosen_user_id else "transformer"

    # Two-tower: with and without the user id, against popularity and co-occurrence.
    test_targets = subsample(with_targets(split.test), options.eval_points, options.seed)
    candidates = candidate_mask(data)
    ranks: dict[str, np.ndarray] = {}
    towers: dict[bool, TwoTower] = {}
    for use_user_id in (False, True):
        tower, history = train_two_tower(data, split, train, seen, options, use_user_id)
        name = "two-tower + user id" if use_user_id else "two-tower"
        ranks[name] = tower_ranks(tower, data, test_targets, candidates, options.device)
        histories[name] = history
        towers[use_user_id] = tower
        evaluation["two_tower"][name] = {"validation_recall_at_100": max(history.validation_metric),
                                         "train_seconds": history.seconds}
    popularity = baselines.Popularity(train, data.catalog.size)
    ranks["popularity"] = metrics.ranks(lambda rows: popularity.scores(len(rows)), test_targets.next_song, candidates)
    cooccurrence = baselines.CoOccurrence(train, data.catalog.size)
    ranks["co-occurrence (last song)"] = metrics.ranks(
        lambda rows: cooccurrence.scores(test_targets.seq_song[rows, -1]), test_targets.next_song, candidates)
    for name, rank in ranks.items():
        evaluation["two_tower"][name] = evaluation["two_tower"].get(name, {}) | metrics.ranking(rank)
    chosen_tower_user_id = (evaluation["two_tower"]["two-tower + user id"]["validation_recall_at_100"]
                            > evaluation["two_tower"]["two-tower"]["validation_recall_at_100"])
    tower = towers[chosen_tower_user_id]
    tower_name = "two-tower + user id" if chosen_tower_user_id else "two-tower"

    # Export.
    first, last = data.time_range
    common = {
        "version": version,
        "created_from": {
            "source": data.source,
            "data_range": {"from": iso(first), "to": iso(last)},
            "train_until": iso(split.validation_from_ms),
            "validation_until": iso(split.cutoff_ms),
            "test_from": iso(split.cutoff_ms),
            "train_points": len(train),
            "test_points": len(split.test),
        },
        "seed": options.seed,
        "options": {k: v for k, v in asdict(options).items() if k not in ("out", "progress")},
    }
    example = np.arange(min(16, len(split.test)))
    user_ids = sorted(split.user_vocab, key=split.user_vocab.__getitem__)
    results = RunResult(version, options.out / "disengagement" / version, options.out / "user-tower" / version,
                        options.out / "reports" / version)

    names = input_names(chosen_user_id)
    inputs = batch_tensors(split.test, example, data.spec, chosen_user_id)
    export.export_onnx(disengagement, inputs, names, "probability", results.disengagement_dir / "model.onnx")
    results.exported[results.disengagement_dir] = (disengagement, names)
    chosen = evaluation["disengagement"][chosen_name]
    export.write_metadata(results.disengagement_dir / "metadata.json", common | {
        "name": "disengagement",
        "variant": chosen_name,
        "threshold": chosen["threshold"],
        "metrics": evaluation["disengagement"],
        "feature_spec": export.feature_spec_description(
            data.spec, disengagement.normaliser.describe(data.spec.numeric), data.catalog.song_ids,
            user_ids if chosen_user_id else None),
        "inputs": [export.tensor_description(n, t) for n, t in zip(names, inputs, strict=True)],
        "outputs": [{"name": "probability", "dtype": "float32", "shape": ["batch"]}],
    })

    names = input_names(chosen_tower_user_id)
    inputs = batch_tensors(split.test, example, data.spec, chosen_tower_user_id)
    export.export_onnx(tower.user_tower, inputs, names, "user_embedding", results.user_tower_dir / "model.onnx")
    results.exported[results.user_tower_dir] = (tower.user_tower, names)
    embeddings = song_embeddings(tower, data, "cpu")[2:]
    export.write_song_embeddings(results.user_tower_dir / "song-embeddings.jsonl", version, data.catalog.song_ids,
                                 embeddings)
    if clickhouse is not None:
        export.insert_song_embeddings(clickhouse, version, data.catalog.song_ids, embeddings)
    export.write_metadata(results.user_tower_dir / "metadata.json", common | {
        "name": "user-tower",
        "variant": tower_name,
        "metrics": evaluation["two_tower"],
        "feature_spec": export.feature_spec_description(
            data.spec, [{"name": n, "transform": "identity"} for n in data.spec.numeric], data.catalog.song_ids,
            user_ids if chosen_tower_user_id else None),
        "inputs": [export.tensor_description(n, t) for n, t in zip(names, inputs, strict=True)],
        "outputs": [{"name": "user_embedding", "dtype": "float32", "shape": ["batch", embeddings.shape[1]]}],
        "song_embeddings": {"file": "song-embeddings.jsonl", "table": export.SONG_EMBEDDINGS_TABLE,
                            "similarity": "dot product of unit vectors"},
    })

    results.metrics = evaluation
    report.write(results.report_dir, version, common, evaluation, curves, histories, ranks,
                 chosen=(chosen_name, tower_name))
    return results
