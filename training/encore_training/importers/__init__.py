"""Importers of public listening formats into Encore's event files (events.jsonl, songs.jsonl,
profiles.jsonl: the simulator's layout), which `encore dataset --input DIR` turns into training data."""

from collections.abc import Callable
from pathlib import Path

from .common import Written
from .lastfm import import_lastfm
from .mssd import import_mssd
from .spotify import import_spotify

IMPORTERS: dict[str, Callable[[list[Path], Path], Written]] = {
    "spotify": import_spotify,
    "mssd": import_mssd,
    "lastfm": import_lastfm,
}
