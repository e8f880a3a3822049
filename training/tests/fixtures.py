"""A small dataset in the shape the dataset builder writes (features, labels, songs as ClickHouse
JSONEachRow, plus the feature spec), with signal planted so that models can learn from it. Tests only:
real features come from the streaming session tracker, never from Python."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from encore_training.spec import FeatureSpec, find_spec

DAY_MS = 86_400_000
START_MS = 1_788_220_800_000  # 2026-09-01
GENRES = ("pop", "rock", "jazz", "metal")


def write_dataset(directory: Path, seed: int = 3, users: int = 40, songs: int = 120, days: int = 10,
                  points_per_user_day: int = 12) -> Path:
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    spec_path = find_spec(None)
    shutil.copy(spec_path, directory / "feature-spec.json")
    spec = FeatureSpec.load(spec_path)
    genre_of = rng.integers(0, len(GENRES), songs)
    song_rows = [
        {
            "song_id": f"song-{i:06d}",
            "title": f"Song {i}",
            "artist_id": f"artist-{i % 30:05d}",
            "artist_name": f"Artist {i % 30}",
            "album_id": None,
            "genre": GENRES[genre_of[i]],
            "language": "en",
            "popularity": round(float(rng.random()), 3),
            "explicit": 0,
            "release_date": "2020-01-01",
            "added_at_ms": str(START_MS - DAY_MS),
            "duration_ms": "200000",
            "audio_features": [round(float(x), 3) for x in rng.random(8) * 0.2 + genre_of[i] * 0.2],
        }
        for i in range(songs)
    ]
    favourite = rng.integers(0, len(GENRES), users)
    features, labels = [], []
    for user in range(users):
        for day in range(days):
            for k in range(points_per_user_day):
                t = START_MS + day * DAY_MS + int(rng.integers(0, DAY_MS))
                length = int(rng.integers(1, spec.sequence_length + 1))
                # Sessions drifting away from the listener's genre skip more and end sooner.
                off_taste = rng.random() < 0.4
                genres = np.where(off_taste, rng.integers(0, len(GENRES), length), favourite[user])
                seq = [int(rng.choice(np.flatnonzero(genre_of == g))) for g in genres]
                mismatch = float(np.mean(genres != favourite[user]))
                skipped = (rng.random(length) < 0.15 + 0.6 * mismatch).astype(int)
                skipped[-1] = 0
                values = rng.random(len(spec.numeric)) * 3
                values[spec.index("skips")] = skipped.sum()
                values[spec.index("skip_rate")] = skipped.mean()
                label = int(rng.random() < 1 / (1 + np.exp(-(4 * mismatch - 1.5))))
                next_genre = favourite[user] if rng.random() < 0.8 else genres[-1]
                next_song = int(rng.choice(np.flatnonzero(genre_of == next_genre)))
                event_id = f"e-{user}-{day}-{k}"
                user_id = f"user-{user:06d}"
                features.append({
                    "event_id": event_id,
                    "user_id": user_id,
                    "session_id": f"{user_id}/{t}",
                    "timestamp_ms": str(t),
                    "event_date": "2026-09-01",
                    "event_type": "SKIP" if rng.random() < mismatch * 0.5 else "PLAY",
                    "song_id": f"song-{seq[-1]:06d}",
                    "device": str(rng.choice(["MOBILE", "DESKTOP", "CAR"])),
                    "subscription": "PREMIUM",
                    "feature_spec": spec.version,
                    "features": [float(x) for x in values],
                    "seq_song_ids": [f"song-{s:06d}" for s in seq],
                    "seq_skipped": [int(x) for x in skipped],
                    "seq_dwell_s": [float(x) for x in np.where(skipped, 8.0, 200.0)],
                    "seq_gap_s": [0.0] + [200.0] * (length - 1),
                })
                labels.append({
                    "event_id": event_id,
                    "user_id": user_id,
                    "session_id": f"{user_id}/{t}",
                    "timestamp_ms": str(t),
                    "label": label,
                    "reason": "EXIT" if label else "CONTINUED",
                    "outcome_after_ms": "60000" if label else None,
                    "next_song_id": f"song-{next_song:06d}" if rng.random() < 0.9 else None,
                    "horizon_ms": "1800000",
                })
    for name, rows in (("songs", song_rows), ("features", features), ("labels", labels)):
        with (directory / f"{name}.jsonl").open("w") as out:
            out.writelines(json.dumps(row) + "\n" for row in rows)
    return directory
