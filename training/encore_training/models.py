"""The two models. Both read the same inputs, what the session tracker logs at every listening event:
raw numeric features, categorical indices (the spec's order), the session's last plays, and (optionally)
the user's index. So one feature computation in the stream serves both."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .dataset import Catalog, Points
from .layers import Normaliser, SessionEncoder, SongContent
from .spec import CONTEXT_FEATURES, FeatureSpec

SEQUENCE_INPUTS = ("seq_song", "seq_skipped", "seq_dwell", "seq_gap")


def input_names(use_user_id: bool) -> list[str]:
    return ["numeric", "categorical", *SEQUENCE_INPUTS, *(["user"] if use_user_id else [])]


def batch_tensors(points: Points, index: np.ndarray, spec: FeatureSpec, use_user_id: bool) -> list[torch.Tensor]:
    """The model inputs for rows `index`, in `input_names` order."""
    tensors = [
        torch.from_numpy(points.numeric[index]),
        torch.from_numpy(np.stack([points.categorical[name][index] for name in spec.categorical], axis=1)),
        torch.from_numpy(points.seq_song[index]),
        torch.from_numpy(points.seq_skipped[index]),
        torch.from_numpy(points.seq_dwell[index]),
        torch.from_numpy(points.seq_gap[index]),
    ]
    if use_user_id:
        tensors.append(torch.from_numpy(points.user[index]))
    return tensors


@dataclass(frozen=True)
class ModelConfig:
    dim: int = 32
    layers: int = 2
    heads: int = 4
    dropout: float = 0.1
    use_user_id: bool = False


class DisengagementModel(nn.Module):
    """Transformer over the session's plays, concatenated with the normalised features (the profile's
    among them), the categoricals, the current song's metadata and optionally a user-id embedding; an MLP
    and a sigmoid: the probability the listener disengages within the label horizon."""

    def __init__(self, spec: FeatureSpec, catalog: Catalog, seen_songs: np.ndarray, train: Points,
                 users: int, config: ModelConfig):
        super().__init__()
        self.config = config
        self.normaliser = Normaliser(train.numeric)
        songs = SongContent(catalog, seen_songs, config.dim)
        self.session = SessionEncoder(songs, config.dim, spec.sequence_length, config.layers, config.heads,
                                      config.dropout)
        self.categoricals = nn.ModuleList(nn.Embedding(len(values), 4) for values in spec.categorical.values())
        self.users = nn.Embedding(users, config.dim) if config.use_user_id else None
        width = len(spec.numeric) + 4 * len(spec.categorical) + 3 * config.dim
        width += config.dim if config.use_user_id else 0
        self.head = nn.Sequential(
            nn.Linear(width, 64), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(64, 1)
        )

    def logits(self, numeric: torch.Tensor, categorical: torch.Tensor, seq_song: torch.Tensor,
               seq_skipped: torch.Tensor, seq_dwell: torch.Tensor, seq_gap: torch.Tensor,
               user: torch.Tensor | None = None) -> torch.Tensor:
        current, mean = self.session(seq_song, seq_skipped, seq_dwell, seq_gap)
        parts = [
            self.normaliser(numeric),
            *(embedding(categorical[:, i]) for i, embedding in enumerate(self.categoricals)),
            current,
            mean,
            self.session.songs(seq_song[:, -1]),
        ]
        if self.users is not None and user is not None:
            parts.append(self.users(user))
        return self.head(torch.cat(parts, dim=-1)).squeeze(-1)

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor, seq_song: torch.Tensor,
                seq_skipped: torch.Tensor, seq_dwell: torch.Tensor, seq_gap: torch.Tensor,
                user: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sigmoid(self.logits(numeric, categorical, seq_song, seq_skipped, seq_dwell, seq_gap, user))


class UserTower(nn.Module):
    """Context (time of day, weekend, device) and the session's plays (optionally the user's id) -> a unit
    vector; the next song is the catalog's nearest song vectors."""

    def __init__(self, spec: FeatureSpec, catalog: Catalog, seen_songs: np.ndarray, users: int,
                 config: ModelConfig, out_dim: int):
        super().__init__()
        self.register_buffer("context_columns", torch.tensor([spec.index(n) for n in CONTEXT_FEATURES]))
        self.device_column = list(spec.categorical).index("device")
        songs = SongContent(catalog, seen_songs, config.dim)
        self.session = SessionEncoder(songs, config.dim, spec.sequence_length, config.layers, config.heads,
                                      config.dropout)
        self.devices = nn.Embedding(len(spec.categorical["device"]), 8)
        self.users = nn.Embedding(users, config.dim) if config.use_user_id else None
        width = len(CONTEXT_FEATURES) + 8 + 2 * config.dim + (config.dim if config.use_user_id else 0)
        self.mlp = nn.Sequential(nn.Linear(width, 128), nn.GELU(), nn.Linear(128, out_dim))

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor, seq_song: torch.Tensor,
                seq_skipped: torch.Tensor, seq_dwell: torch.Tensor, seq_gap: torch.Tensor,
                user: torch.Tensor | None = None) -> torch.Tensor:
        current, mean = self.session(seq_song, seq_skipped, seq_dwell, seq_gap)
        parts = [numeric[:, self.context_columns], self.devices(categorical[:, self.device_column]), current, mean]
        if self.users is not None and user is not None:
            parts.append(self.users(user))
        return F.normalize(self.mlp(torch.cat(parts, dim=-1)), dim=-1)


class SongTower(nn.Module):
    """A song's id (when seen in training), audio features, genre, artist and popularity -> a unit vector."""

    def __init__(self, catalog: Catalog, seen_songs: np.ndarray, config: ModelConfig, out_dim: int):
        super().__init__()
        self.songs = SongContent(catalog, seen_songs, config.dim, with_artist=True)
        self.mlp = nn.Sequential(nn.Linear(config.dim, 128), nn.GELU(), nn.Linear(128, out_dim))

    def forward(self, songs: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp(self.songs(songs)), dim=-1)


class TwoTower(nn.Module):
    def __init__(self, spec: FeatureSpec, catalog: Catalog, seen_songs: np.ndarray, users: int,
                 config: ModelConfig, out_dim: int = 64, temperature: float = 0.05):
        super().__init__()
        self.user_tower = UserTower(spec, catalog, seen_songs, users, config, out_dim)
        self.song_tower = SongTower(catalog, seen_songs, config, out_dim)
        self.temperature = temperature

    def in_batch_loss(self, inputs: list[torch.Tensor], targets: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
        """Softmax over the batch's targets; subtracting log Q (each song's chance to be a target in a
        batch) keeps popular songs, which are everyone's negatives, from being pushed down too far."""
        users = self.user_tower(*inputs)
        songs = self.song_tower(targets)
        logits = users @ songs.T / self.temperature - log_q[targets]
        # The same song twice in a batch is not a negative for itself.
        duplicate = (targets[None, :] == targets[:, None]) & ~torch.eye(len(targets), dtype=torch.bool,
                                                                         device=targets.device)
        logits = logits.masked_fill(duplicate, float("-inf"))
        return F.cross_entropy(logits, torch.arange(len(targets), device=targets.device))
