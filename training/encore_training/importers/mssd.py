"""Spotify's Music Streaming Sessions Dataset (MSSD, the Sequential Skip Prediction Challenge): a session
log CSV (session_id, session_position, session_length, track_id_clean, skip_1, skip_2, skip_3,
not_skipped, context_switch, no_pause_before_play, short_pause_before_play, long_pause_before_play,
hist_user_behavior_n_seekfwd, hist_user_behavior_n_seekback, hist_user_behavior_is_shuffle, hour_of_day,
date, premium, context_type, hist_user_behavior_reason_start, hist_user_behavior_reason_end) and a track
features CSV (track_id, duration, release_year, us_popularity_estimate, acousticness, danceability,
energy, instrumentalness, liveness, speechiness, tempo, valence, ...).

Mapping. Sessions are anonymous, so each session is its own listener (user = session). A session starts at
its date and hour_of_day (minutes within the hour derived from the session id, so re-imports agree) and
its tracks play in session_position order. Each track is a PLAY; a skipped one then a SKIP at a playhead
that follows the dataset's skip levels (skip_1: very briefly played, 5% of the track; skip_2: briefly, 20%;
skip_3: most of it, 70%); not_skipped tracks play through. Seeks forward and back become SEEK events within
the play; a short or long pause before a play becomes that much silence (20 s, 5 min). A session whose last
track ended with reason logout or endplay ends with an EXIT; otherwise it just stops. context_type maps to
the playback source, premium to the profile's subscription, the track features to the song's audio
features (tempo / 250, as in the Song contract), us_popularity_estimate (a percentile 90..100) to 0..1."""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from .common import ImportedEvents, SongInfo, Written, write

SKIP_FRACTION = (("skip_1", 0.05), ("skip_2", 0.2), ("skip_3", 0.7))
PAUSE_MS = {"short_pause_before_play": 20_000, "long_pause_before_play": 300_000}
CONTEXT_SOURCE = {
    "editorial_playlist": "PLAYLIST",
    "user_collection": "LIBRARY",
    "catalog": "ALBUM",
    "radio": "RADIO",
    "charts": "PLAYLIST",
    "personalized_playlist": "PLAYLIST",
}
EXIT_REASONS = {"logout", "endplay"}
AUDIO = ("danceability", "energy", "valence", "acousticness", "instrumentalness", "speechiness", "liveness")


def flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "t", "yes")


def read_tracks(path: Path) -> dict[str, SongInfo]:
    songs = {}
    with path.open(newline="") as lines:
        for row in csv.DictReader(lines):
            track = row["track_id"]
            audio = [float(row[name]) for name in AUDIO] + [min(float(row["tempo"]) / 250, 1.0)]
            popularity = float(row.get("us_popularity_estimate") or 0)
            songs[track] = SongInfo(
                song_id=track,
                title=track,
                artist_name="unknown",
                audio_features=[min(max(x, 0.0), 1.0) for x in audio],
                duration_ms=int(float(row["duration"]) * 1000),
                release_date_days=int(datetime(int(row["release_year"]), 1, 1, tzinfo=UTC).timestamp() // 86_400)
                if row.get("release_year")
                else 0,
                # MSSD's estimate is a US percentile in 90..100 for every listed track.
                popularity=min(max((popularity - 90) / 10, 0.0), 1.0),
            )
    return songs


def import_mssd(paths: list[Path], out: Path) -> Written:
    """`paths`: the session log CSV(s) and the track features CSV (recognised by their track_id column)."""
    imported = ImportedEvents("mssd")
    logs, features = [], []
    for path in sorted(paths):
        with path.open(newline="") as lines:
            header = next(csv.reader(lines))
        (features if "track_id" in header else logs).append(path)
    if not features:
        raise ValueError("MSSD import needs the track features CSV (with a track_id column) as well")
    catalog: dict[str, SongInfo] = {}
    for path in features:
        catalog.update(read_tracks(path))
    sessions: dict[str, list[dict[str, str]]] = defaultdict(list)
    for path in logs:
        with path.open(newline="") as lines:
            for row in csv.DictReader(lines):
                sessions[row["session_id"]].append(row)
    for session_id, rows in sorted(sessions.items()):
        rows.sort(key=lambda r: int(r["session_position"]))
        first = rows[0]
        user_id = f"mssd-{session_id}"
        imported.subscriptions[user_id] = "PREMIUM" if flag(first["premium"]) else "FREE"
        day = datetime.strptime(first["date"], "%Y-%m-%d").replace(tzinfo=UTC)
        minute = int(hashlib.sha1(session_id.encode()).hexdigest(), 16) % 60
        time = int(day.timestamp() * 1000) + (int(first["hour_of_day"]) * 60 + minute) * 60_000
        for row in rows:
            track = row["track_id_clean"]
            song = catalog.get(track) or SongInfo(track, track, "unknown")
            imported.songs.setdefault(track, song)
            duration = song.duration_ms or 210_000
            for pause, ms in PAUSE_MS.items():
                if flag(row.get(pause, "0")):
                    time += ms
            context = {"playback_source": CONTEXT_SOURCE.get(row.get("context_type", ""), "UNKNOWN"),
                       "shuffle": flag(row.get("hist_user_behavior_is_shuffle", "0"))}
            position = int(row["session_position"])
            imported.event(user_id, "PLAY", time, track, (position,), position_ms=0, **context)
            skipped_at = next((f for name, f in SKIP_FRACTION if flag(row[name])), None)
            played = int(duration * (skipped_at if skipped_at is not None else 1.0))
            seeks = [(1, k) for k in range(int(row.get("hist_user_behavior_n_seekfwd") or 0))]
            seeks += [(-1, k) for k in range(int(row.get("hist_user_behavior_n_seekback") or 0))]
            for n, (direction, k) in enumerate(seeks):
                at = played * (n + 1) // (len(seeks) + 1)
                target = max(0, min(duration - 1_000, at + direction * 15_000))
                imported.event(user_id, "SEEK", time + at, track, (position, "seek", direction, k), position_ms=at,
                               seek_to_ms=target, **context)
            time += max(played, 1)
            if skipped_at is not None:
                imported.event(user_id, "SKIP", time, track, (position,), position_ms=played, **context)
        if rows[-1].get("hist_user_behavior_reason_end", "") in EXIT_REASONS:
            imported.event(user_id, "EXIT", time + 1_000, None, ("exit",), **context)
    return write(imported, out)
