"""Spotify's personal data export (Account privacy → "Download your data"): StreamingHistory*.json, a list
of {endTime: "YYYY-MM-DD HH:MM" (UTC), artistName, trackName, msPlayed}, one file per year or so.

Each stream becomes a PLAY at endTime - msPlayed; a stream shorter than 30 s (where Spotify itself stops
counting a play) is then a SKIP at its playhead. Longer streams end naturally: the next PLAY follows. A gap
of 30 minutes ends the session without an event (the export has no exits). An export is one listener: the
files of one folder are one user, whose id is derived from the folder's name."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from .common import SKIP_BELOW_MS, ImportedEvents, SongInfo, Written, stable_id, write


def parse_end_time(value: str) -> int:
    return int(datetime.strptime(value, "%Y-%m-%d %H:%M").replace(tzinfo=UTC).timestamp() * 1000)


def import_spotify(paths: list[Path], out: Path) -> Written:
    """Files in one folder are one listener's export; several folders, several listeners."""
    imported = ImportedEvents("spotify")
    by_folder: dict[Path, list[Path]] = {}
    for path in sorted(paths):
        by_folder.setdefault(path.resolve().parent, []).append(path)
    for folder, files in sorted(by_folder.items()):
        streams = [stream for path in files for stream in json.loads(path.read_text(encoding="utf-8"))]
        import_listener(imported, stable_id("spotify-user", folder.name), streams)
    return write(imported, out)


def import_listener(imported: ImportedEvents, user_id: str, streams: list[dict]) -> None:
    # endTime has minute precision: order by it, and never let a play start before the previous event.
    streams.sort(key=lambda s: (parse_end_time(s["endTime"]), s["artistName"], s["trackName"]))
    previous_event = 0
    for index, stream in enumerate(streams):
        played = int(stream["msPlayed"])
        end = parse_end_time(stream["endTime"])
        start = max(end - played, previous_event)
        song_id = stable_id("track", stream["artistName"].lower(), stream["trackName"].lower())
        song = imported.songs.setdefault(song_id, SongInfo(song_id, stream["trackName"], stream["artistName"]))
        if played >= SKIP_BELOW_MS:
            song.duration_ms = max(song.duration_ms or 0, played)
        imported.event(user_id, "PLAY", start, song_id, (index,), position_ms=0)
        previous_event = start
        if played < SKIP_BELOW_MS:
            skip_at = start + played
            imported.event(user_id, "SKIP", skip_at, song_id, (index,), position_ms=played)
            previous_event = skip_at
