"""Simulated listening (the simulator's events.jsonl, songs.jsonl, profiles.jsonl) written out in each public
format, so the importers can be run end to end at more than fixture scale on known data:

    python -m encore_training.importers.samples SIMULATION_DIR OUT_DIR [--users N]

OUT_DIR/spotify/<user>/StreamingHistory0.json, OUT_DIR/lastfm/scrobbles.csv, OUT_DIR/mssd/log.csv and
OUT_DIR/mssd/tracks.csv. What each format cannot say is lost on the way, as with real exports: Spotify keeps
minutes and play lengths, Last.fm only songs listened to (half the song or 4 minutes), MSSD skip levels,
pauses and seeks per track but no user across sessions."""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SESSION_GAP_MS = 30 * 60_000
MSSD_AUDIO = ("danceability", "energy", "valence", "acousticness", "instrumentalness", "speechiness", "liveness")
MSSD_CONTEXT = {"PLAYLIST": "editorial_playlist", "LIBRARY": "user_collection", "ALBUM": "catalog",
                "ARTIST": "catalog", "RADIO": "radio", "SEARCH": "catalog"}


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plays_by_user(events: list[dict[str, Any]], users: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Per user, each play with its start, listened time, how it ended and its session index."""
    plays: dict[str, list[dict[str, Any]]] = defaultdict(list)
    current: dict[str, dict[str, Any]] = {}
    last_event: dict[str, int] = {}
    session: dict[str, int] = defaultdict(int)
    for e in events:
        user = e["userId"]
        if user not in users:
            continue
        if user in last_event and e["timestamp"] - last_event[user] >= SESSION_GAP_MS:
            session[user] += 1
        last_event[user] = e["timestamp"]
        open_play = current.get(user)
        if open_play and e["type"] in ("PLAY", "SKIP", "SEARCH", "EXIT") and open_play["end"] is None:
            open_play["end"] = e["timestamp"]
            open_play["ended_by"] = e["type"]
        if e["type"] == "PLAY":
            play = {"song": e["songId"], "start": e["timestamp"], "end": None, "ended_by": None,
                    "session": session[user], "source": e["context"]["source"], "shuffle": e["context"]["shuffle"],
                    "seeks_forward": 0, "seeks_back": 0, "paused": False}
            plays[user].append(play)
            current[user] = play
        elif e["type"] == "SEEK" and open_play:
            key = "seeks_forward" if e["seekToMs"] > e["positionMs"] else "seeks_back"
            open_play[key] += 1
        elif e["type"] == "PAUSE" and open_play:
            open_play["paused"] = True
    return plays


def write_samples(simulation: Path, out: Path, users: int) -> None:
    events = read_lines(simulation / "events.jsonl")
    songs = {s["songId"]: s for s in read_lines(simulation / "songs.jsonl")}
    profiles = {p["userId"]: p for p in read_lines(simulation / "profiles.jsonl")}
    chosen = sorted({e["userId"] for e in events})[:users]
    plays = plays_by_user(events, set(chosen))

    def listened(play: dict[str, Any]) -> int:
        duration = songs[play["song"]]["durationMs"]
        return duration if play["end"] is None else min(duration, play["end"] - play["start"])

    for user in chosen:
        folder = out / "spotify" / user
        folder.mkdir(parents=True, exist_ok=True)
        streams = [{"endTime": datetime.fromtimestamp((p["start"] + listened(p)) / 1000, UTC).strftime("%Y-%m-%d %H:%M"),
                    "artistName": songs[p["song"]]["artistName"], "trackName": songs[p["song"]]["title"],
                    "msPlayed": listened(p)} for p in plays[user]]
        (folder / "StreamingHistory0.json").write_text(json.dumps(streams, indent=1))

    (out / "lastfm").mkdir(parents=True, exist_ok=True)
    with (out / "lastfm" / "scrobbles.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["user", "timestamp", "artist", "track"])
        for user in chosen:
            for p in plays[user]:
                # Last.fm scrobbles a song played for half its length or four minutes.
                if listened(p) >= min(songs[p["song"]]["durationMs"] / 2, 240_000):
                    writer.writerow([user, p["start"] // 1000, songs[p["song"]]["artistName"], songs[p["song"]]["title"]])

    (out / "mssd").mkdir(parents=True, exist_ok=True)
    with (out / "mssd" / "log.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["session_id", "session_position", "session_length", "track_id_clean", "skip_1", "skip_2",
                         "skip_3", "not_skipped", "context_switch", "no_pause_before_play", "short_pause_before_play",
                         "long_pause_before_play", "hist_user_behavior_n_seekfwd", "hist_user_behavior_n_seekback",
                         "hist_user_behavior_is_shuffle", "hour_of_day", "date", "premium", "context_type",
                         "hist_user_behavior_reason_start", "hist_user_behavior_reason_end"])
        for user in chosen:
            sessions: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for p in plays[user]:
                sessions[p["session"]].append(p)
            premium = profiles.get(user, {}).get("subscription", "FREE") != "FREE"
            for index, rows in sessions.items():
                for position, p in enumerate(rows, start=1):
                    fraction = listened(p) / songs[p["song"]]["durationMs"]
                    skipped = p["ended_by"] in ("SKIP", "SEARCH", "EXIT") and fraction < 0.95
                    levels = [skipped and fraction < 0.1, skipped and fraction < 0.4, skipped and fraction < 0.9]
                    start = datetime.fromtimestamp(rows[0]["start"] / 1000, UTC)
                    last = position == len(rows)
                    reason_end = ("logout" if p["ended_by"] == "EXIT" else "endplay") if last else (
                        "fwdbtn" if skipped else "trackdone")
                    writer.writerow([f"{user}-{index}", position, len(rows), p["song"], *[str(x).lower() for x in levels],
                                     str(not skipped).lower(), 0, 1, 0, 0, p["seeks_forward"], p["seeks_back"],
                                     str(p["shuffle"]).lower(), start.hour, start.strftime("%Y-%m-%d"),
                                     str(premium).lower(), MSSD_CONTEXT.get(p["source"], "catalog"),
                                     "trackdone", reason_end])
    with (out / "mssd" / "tracks.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["track_id", "duration", "release_year", "us_popularity_estimate", *MSSD_AUDIO, "tempo"])
        for song in songs.values():
            year = datetime.fromtimestamp(song["releaseDate"] * 86_400, UTC).year
            writer.writerow([song["songId"], song["durationMs"] / 1000, year, 90 + 10 * song["popularity"],
                             *song["audioFeatures"][:7], song["audioFeatures"][7] * 250])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("simulation", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--users", type=int, default=200)
    args = parser.parse_args()
    write_samples(args.simulation, args.out, args.users)
