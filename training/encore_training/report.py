"""The run's report: report.md with metric tables, metrics.json, and PNG plots (ROC, PR, loss curves,
Recall@K)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402

from .fit import History  # noqa: E402

DISENGAGEMENT_COLUMNS = ("auc", "pr_auc", "precision_at_100", "precision_at_1000", "threshold",
                         "trigger_precision", "trigger_recall", "false_positive_rate")
RANKING_COLUMNS = ("recall_at_10", "recall_at_50", "recall_at_100", "ndcg_at_10", "ndcg_at_100", "mrr")


def table(rows: dict[str, dict[str, float]], columns: tuple[str, ...]) -> str:
    lines = ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, values in rows.items():
        cells = [f"{values[c]:.4f}" if c in values else "–" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_curves(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    figure, (roc, pr) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, (labels, scores) in curves.items():
        fpr, tpr, _ = roc_curve(labels, scores)
        roc.plot(fpr, tpr, label=name)
        precision, recall, _ = precision_recall_curve(labels, scores)
        pr.plot(recall, precision, label=name)
    roc.plot([0, 1], [0, 1], "k:", linewidth=0.8)
    roc.set(title="ROC (held-out days)", xlabel="false positive rate", ylabel="true positive rate")
    pr.set(title="Precision-recall (held-out days)", xlabel="recall", ylabel="precision")
    roc.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_losses(path: Path, histories: dict[str, History]) -> None:
    figure, axes = plt.subplots(1, len(histories), figsize=(4 * len(histories), 3.5), squeeze=False)
    for axis, (name, history) in zip(axes[0], histories.items(), strict=True):
        epochs = np.arange(1, len(history.train_loss) + 1)
        axis.plot(epochs, history.train_loss, marker="o", label="train")
        axis.plot(epochs, history.validation_loss, marker="o", label="validation")
        axis.set(title=name, xlabel="epoch", ylabel="loss")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_recall(path: Path, ranks: dict[str, np.ndarray]) -> None:
    figure, axis = plt.subplots(figsize=(6, 4.5))
    ks = np.unique(np.geomspace(1, 500, 40).astype(int))
    for name, rank in ranks.items():
        axis.plot(ks, [(rank < k).mean() for k in ks], label=name)
    axis.set(title="Next song: Recall@K (held-out days)", xlabel="K", ylabel="recall", xscale="log")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(directory: Path, version: str, common: dict[str, Any], evaluation: dict[str, Any],
          curves: dict[str, tuple[np.ndarray, np.ndarray]], histories: dict[str, History],
          ranks: dict[str, np.ndarray], chosen: tuple[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    plot_curves(directory / "roc-pr.png", curves)
    plot_losses(directory / "loss.png", histories)
    plot_recall(directory / "recall-at-k.png", ranks)
    (directory / "metrics.json").write_text(json.dumps(common | {"metrics": evaluation}, indent=2) + "\n")
    source = common["created_from"]
    disengagement = evaluation["disengagement"]
    best_baseline = max(v["auc"] for k, v in disengagement.items() if not k.startswith("transformer"))
    popularity = evaluation["two_tower"]["popularity"]["recall_at_100"]
    lines = [
        f"# Training report {version}",
        "",
        f"Data: {source['source']}, {source['data_range']['from']} to {source['data_range']['to']}; "
        f"trained on points before {source['train_until']} ({source['train_points']} points), thresholds and "
        f"epochs chosen on the days until {source['validation_until']}, evaluated on the "
        f"{source['test_points']} points from {source['test_from']} (held out by time). Seed {common['seed']}.",
        "",
        "## Disengagement (label: exit, search, skip burst or silence within the horizon)",
        "",
        table(disengagement, DISENGAGEMENT_COLUMNS),
        "",
        f"Exported: **{chosen[0]}**. Best baseline AUC {best_baseline:.4f}; the threshold maximises "
        "TPR - FPR on the validation days; trigger precision, recall and false-positive rate are at that threshold.",
        "",
        "![ROC and PR](roc-pr.png)",
        "",
        "## Next song (two-tower retrieval over the whole catalog)",
        "",
        table(evaluation["two_tower"], RANKING_COLUMNS),
        "",
        f"Exported: **{chosen[1]}**. Recall@100 vs popularity: "
        f"{evaluation['two_tower'][chosen[1]]['recall_at_100'] / max(popularity, 1e-12):.2f}×.",
        "",
        "![Recall@K](recall-at-k.png)",
        "",
        "## Training",
        "",
        "| model | best epoch | seconds |",
        "|---|---|---|",
        *(f"| {name} | {h.best_epoch + 1} of {len(h.train_loss)} | {h.seconds:.0f} |" for name, h in histories.items()),
        "",
        "![Loss curves](loss.png)",
        "",
    ]
    (directory / "report.md").write_text("\n".join(lines))
