"""Last.fm scrobbles as CSV with a header: user, timestamp, artist, track (other columns are ignored;
common spellings such as username, uts, date, artist_name, track_name, title are accepted). Timestamps are
unix seconds or milliseconds, ISO 8601, or Last.fm's "31 Jan 2021, 14:03".

A scrobble is a song listened to (Last.fm records one after half the song or four minutes), so each is a
PLAY with no skip; a 30-minute gap ends the session without an event, as in the export's own data. The
format knows nothing of skips, pauses or searches: disengagement labels from it are silences only."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

from .common import ImportedEvents, SongInfo, Written, stable_id, write

COLUMNS = {
    "user": ("user", "username", "user_id", "userid"),
    "timestamp": ("timestamp", "uts", "time", "date", "datetime", "played_at"),
    "artist": ("artist", "artist_name", "artistname"),
    "track": ("track", "track_name", "trackname", "title", "song"),
}


def parse_timestamp(value: str) -> int:
    value = value.strip()
    if value.isdigit():
        number = int(value)
        return number if number > 10**11 else number * 1000
    for pattern in ("%d %b %Y, %H:%M", "%d %b %Y %H:%M"):
        try:
            return int(datetime.strptime(value, pattern).replace(tzinfo=UTC).timestamp() * 1000)
        except ValueError:
            pass
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def column_map(header: list[str]) -> dict[str, str]:
    lowered = {h.strip().lower(): h for h in header}
    found = {}
    for name, spellings in COLUMNS.items():
        match = next((lowered[s] for s in spellings if s in lowered), None)
        if match is None:
            raise ValueError(f"Last.fm CSV has no {name} column (tried {', '.join(spellings)}); header: {header}")
        found[name] = match
    return found


def import_lastfm(paths: list[Path], out: Path) -> Written:
    imported = ImportedEvents("lastfm")
    for path in sorted(paths):
        with path.open(newline="", encoding="utf-8") as lines:
            reader = csv.DictReader(lines)
            columns = column_map(reader.fieldnames or [])
            for index, row in enumerate(reader):
                user_id = stable_id("lastfm-user", row[columns["user"]])
                artist, track = row[columns["artist"]], row[columns["track"]]
                song_id = stable_id("track", artist.lower(), track.lower())
                imported.songs.setdefault(song_id, SongInfo(song_id, track, artist))
                timestamp = parse_timestamp(row[columns["timestamp"]])
                imported.event(user_id, "PLAY", timestamp, song_id, (path.name, index), position_ms=0)
    return write(imported, out)
