"""What every importer shares: deterministic ids, events, songs and profiles in the TypeScript contracts'
shape (camelCase, enums as strings), and the writer of events.jsonl, songs.jsonl, profiles.jsonl, the
layout the simulator writes and `encore dataset --input` reads.

Formats rarely carry Encore's catalog metadata. Missing fields get neutral defaults, the same for every
importer: genre "unknown", language null, audio features 0.5 each, explicit false, album null, release
date 0 (1970-01-01), duration the longest play seen when one looks complete, else 210 s. Popularity is the
song's percentile by plays within the import (what the field means), and addedAt the first time it is
heard (so songs first heard late are the import's cold-start songs)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NEUTRAL_AUDIO = [0.5] * 8
DEFAULT_DURATION_MS = 210_000
SESSION_GAP_MS = 30 * 60_000
# Plays shorter than this count as skips (Spotify counts a stream at 30 s).
SKIP_BELOW_MS = 30_000
_NAMESPACE = uuid.UUID("5f0e6a52-9a43-4c59-9f5e-2f4b6f6d2e11")


def stable_id(prefix: str, *parts: object) -> str:
    digest = hashlib.sha1("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:12]
    return f"{prefix}-{digest}"


def event_id(*parts: object) -> str:
    """A UUID derived from the record, so importing the same file twice gives the same ids (sinks dedupe)."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(str(p) for p in parts)))


@dataclass
class SongInfo:
    song_id: str
    title: str
    artist_name: str
    genre: str = "unknown"
    language: str | None = None
    audio_features: list[float] = field(default_factory=lambda: list(NEUTRAL_AUDIO))
    duration_ms: int | None = None
    release_date_days: int = 0
    explicit: bool = False
    popularity: float | None = None  # when the format has one; else plays percentile


@dataclass
class ImportedEvents:
    """Events as they are built, with what the catalog and profiles need."""

    source: str
    events: list[dict[str, Any]] = field(default_factory=list)
    songs: dict[str, SongInfo] = field(default_factory=dict)
    subscriptions: dict[str, str] = field(default_factory=dict)

    def event(self, user_id: str, kind: str, timestamp: int, song_id: str | None, key: tuple[object, ...], *,
              position_ms: int | None = None, seek_to_ms: int | None = None, search_query: str | None = None,
              playback_source: str = "UNKNOWN", shuffle: bool = False, device: str = "UNKNOWN") -> None:
        self.events.append({
            "eventId": event_id(self.source, user_id, kind, timestamp, *key),
            "userId": user_id,
            "type": kind,
            "timestamp": int(timestamp),
            "songId": song_id,
            "positionMs": position_ms,
            "seekToMs": seek_to_ms,
            "searchQuery": search_query,
            "device": device,
            "context": {
                "appVersion": f"import-{self.source}",
                "os": None,
                "country": None,
                "source": playback_source,
                "sourceId": None,
                "recommendationId": None,
                "shuffle": shuffle,
                "timezoneOffsetMinutes": 0,
            },
        })


@dataclass
class Written:
    events: int
    songs: int
    profiles: int


def _percentiles(counts: Counter[str]) -> dict[str, float]:
    ordered = sorted(counts, key=lambda s: (counts[s], s))
    n = len(ordered)
    return {song: (i / (n - 1) if n > 1 else 0.5) for i, song in enumerate(ordered)}


def _write_lines(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    with path.open("w") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def write(imported: ImportedEvents, out: Path) -> Written:
    """Sorts events by time (stable: a record's own events keep their order) and writes the three files."""
    out.mkdir(parents=True, exist_ok=True)
    events = sorted(imported.events, key=lambda e: e["timestamp"])
    plays = Counter(e["songId"] for e in events if e["type"] == "PLAY")
    first_heard: dict[str, int] = {}
    for e in events:
        if e["songId"] is not None:
            first_heard.setdefault(e["songId"], e["timestamp"])
    percentile = _percentiles(plays)
    songs = []
    for song_id in sorted(imported.songs):
        info = imported.songs[song_id]
        songs.append({
            "songId": song_id,
            "title": info.title,
            "artistId": stable_id("artist", info.artist_name.lower()),
            "artistName": info.artist_name,
            "albumId": None,
            "genre": info.genre,
            "language": info.language,
            "popularity": round(info.popularity if info.popularity is not None else percentile.get(song_id, 0.0), 4),
            "explicit": info.explicit,
            "releaseDate": info.release_date_days,
            "addedAt": first_heard.get(song_id, 0),
            "durationMs": int(info.duration_ms or DEFAULT_DURATION_MS),
            "audioFeatures": [round(float(x), 4) for x in info.audio_features],
        })
    first_event: dict[str, int] = {}
    for e in events:
        first_event.setdefault(e["userId"], e["timestamp"])
    profiles = [
        {
            "userId": user,
            "createdAt": created,
            "country": None,
            "preferredLanguage": None,
            "birthYear": None,
            "subscription": imported.subscriptions.get(user, "UNKNOWN"),
            "allowExplicit": True,
            "favouriteGenres": [],
            "updatedAt": created,
        }
        for user, created in sorted(first_event.items())
    ]
    return Written(
        events=_write_lines(out / "events.jsonl", events),
        songs=_write_lines(out / "songs.jsonl", songs),
        profiles=_write_lines(out / "profiles.jsonl", profiles),
    )
