"""Building blocks shared by both models. Normalisation happens inside the graph, so the exported ONNX
takes the raw feature values the stream computes: serving cannot normalise differently from training."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .dataset import PAD, UNKNOWN, Catalog


class Normaliser(nn.Module):
    """x -> (log1p(x) if heavy-tailed else x - mean) / std, per feature; statistics from training rows."""

    def __init__(self, raw: np.ndarray):
        super().__init__()
        # Non-negative features reaching past 2 are counts or durations: log1p tames their long tails.
        log = (raw.min(axis=0) >= 0) & (raw.max(axis=0) > 2)
        transformed = np.where(log, np.log1p(np.maximum(raw, 0)), raw)
        std = transformed.std(axis=0)
        self.register_buffer("log", torch.from_numpy(log))
        self.register_buffer("mean", torch.from_numpy(transformed.mean(axis=0).astype(np.float32)))
        self.register_buffer("std", torch.from_numpy(np.where(std > 1e-6, std, 1.0).astype(np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.where(self.log, torch.log1p(torch.clamp(x, min=0.0)), x)
        return (x - self.mean) / self.std

    def describe(self, names: tuple[str, ...]) -> list[dict[str, object]]:
        return [
            {
                "name": name,
                "transform": "log1p" if bool(self.log[i]) else "identity",
                "mean": float(self.mean[i]),
                "std": float(self.std[i]),
            }
            for i, name in enumerate(names)
        ]


class SongContent(nn.Module):
    """A song index -> a vector from its id (when training saw it), audio features, genre and popularity.
    The catalog's metadata is a buffer, so the ONNX graph holds it and serving passes only indices."""

    def __init__(self, catalog: Catalog, seen: np.ndarray, dim: int, with_artist: bool = False):
        super().__init__()
        # Songs training never saw share the UNKNOWN id embedding; their content still tells them apart.
        id_of_song = np.where(seen, np.arange(catalog.size), UNKNOWN)
        id_of_song[PAD] = PAD
        self.register_buffer("id_of_song", torch.from_numpy(id_of_song.astype(np.int64)))
        self.register_buffer("audio", torch.from_numpy(catalog.audio))
        self.register_buffer("genre", torch.from_numpy(catalog.genre))
        self.register_buffer("popularity", torch.from_numpy(catalog.popularity).unsqueeze(-1))
        self.ids = nn.Embedding(catalog.size, dim, padding_idx=PAD)
        self.genres = nn.Embedding(len(catalog.genres) + 1, dim)
        self.content = nn.Linear(catalog.audio.shape[1] + 1, dim)
        self.artists: nn.Embedding | None = None
        if with_artist:
            self.register_buffer("artist", torch.from_numpy(catalog.artist))
            self.artists = nn.Embedding(len(catalog.artists) + 1, dim)

    def forward(self, songs: torch.Tensor) -> torch.Tensor:
        content = torch.cat([self.audio[songs], self.popularity[songs]], dim=-1)
        out = self.ids(self.id_of_song[songs]) + self.genres(self.genre[songs]) + self.content(content)
        if self.artists is not None:
            out = out + self.artists(self.artist[songs])
        return out


class EncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer with a padding mask, written out so it exports to plain ONNX
    operators (nn.TransformerEncoderLayer's fused inference path does not)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        length, dim = x.shape[1], x.shape[2]
        head_dim = dim // self.heads
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(-1, length, self.heads, head_dim).transpose(1, 2)

        scores = heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(head_dim)
        scores = scores.masked_fill(padding[:, None, None, :], -1e9)
        attended = (torch.softmax(scores, dim=-1) @ heads(v)).transpose(1, 2).reshape(-1, length, dim)
        x = x + self.dropout(self.out(attended))
        return x + self.dropout(self.ff(self.norm2(x)))


class SessionEncoder(nn.Module):
    """The session's last plays (song, skipped, dwell, gap; left-padded, current last) -> the current
    play's contextual vector and the mean over the plays."""

    def __init__(self, songs: SongContent, dim: int, length: int, layers: int, heads: int, dropout: float):
        super().__init__()
        self.songs = songs
        self.play = nn.Linear(3, dim)
        self.position = nn.Parameter(torch.zeros(length, dim))
        self.layers = nn.ModuleList(EncoderLayer(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(
        self, song: torch.Tensor, skipped: torch.Tensor, dwell: torch.Tensor, gap: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        padding = song == PAD
        play = torch.stack([skipped, torch.log1p(dwell.clamp(min=0)), torch.log1p(gap.clamp(min=0))], dim=-1)
        x = self.songs(song) + self.play(play) + self.position
        for layer in self.layers:
            x = layer(x, padding)
        x = self.norm(x)
        kept = (~padding).unsqueeze(-1).to(x.dtype)
        mean = (x * kept).sum(dim=1) / kept.sum(dim=1).clamp(min=1.0)
        return x[:, -1], mean
