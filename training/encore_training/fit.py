"""The training loop both models share: shuffled mini-batches from a seeded generator, Adam, a tqdm bar,
per-epoch validation, and the best epoch's weights kept."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm import tqdm


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    validation_metric: list[float] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True)


def fit(
    model: nn.Module,
    rows: int,
    batch_loss: Callable[[np.ndarray], torch.Tensor],
    validate: Callable[[], tuple[float, float]],
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    description: str,
    progress: bool = True,
) -> History:
    """`batch_loss(rows)` is the loss on training rows `rows`; `validate()` gives (loss, metric), higher
    metric better. Returns the history; the model ends with its best epoch's weights."""
    began = time.monotonic()
    generator = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=1e-2)
    history = History()
    best: dict[str, torch.Tensor] | None = None
    for epoch in range(epochs):
        model.train()
        order = generator.permutation(rows)
        total, batches = 0.0, 0
        bar = tqdm(range(0, rows, batch_size), desc=f"{description} epoch {epoch + 1}/{epochs}", unit=" batch",
                   disable=not progress, leave=False)
        for start in bar:
            loss = batch_loss(order[start : start + batch_size])
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            total += loss.item()
            batches += 1
            bar.set_postfix(loss=f"{total / batches:.4f}")
        model.eval()
        with torch.no_grad():
            validation_loss, metric = validate()
        history.train_loss.append(total / max(batches, 1))
        history.validation_loss.append(validation_loss)
        history.validation_metric.append(metric)
        if progress:
            tqdm.write(f"{description} epoch {epoch + 1}: train loss {history.train_loss[-1]:.4f}, "
                       f"validation loss {validation_loss:.4f}, metric {metric:.4f}")
        if best is None or metric > max(history.validation_metric[:-1], default=-np.inf):
            best = copy.deepcopy(model.state_dict())
            history.best_epoch = epoch
    assert best is not None
    model.load_state_dict(best)
    model.eval()
    history.seconds = time.monotonic() - began
    return history
