"""Each importer on a small fixture of its format, written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from encore_training.importers import IMPORTERS

EVENT_KEYS = {"eventId", "userId", "type", "timestamp", "songId", "positionMs", "seekToMs", "searchQuery",
              "device", "context"}
SONG_KEYS = {"songId", "title", "artistId", "artistName", "albumId", "genre", "language", "popularity",
             "explicit", "releaseDate", "addedAt", "durationMs", "audioFeatures"}


def read(out: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()]


def check_contract(out: Path) -> tuple[list[dict], list[dict], list[dict]]:
    events, songs, profiles = read(out, "events"), read(out, "songs"), read(out, "profiles")
    assert all(set(e) == EVENT_KEYS for e in events)
    assert all(set(s) == SONG_KEYS and len(s["audioFeatures"]) == 8 for s in songs)
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    assert len({e["eventId"] for e in events}) == len(events)
    assert {e["songId"] for e in events if e["songId"]} <= {s["songId"] for s in songs}
    assert {p["userId"] for p in profiles} == {e["userId"] for e in events}
    return events, songs, profiles


def test_spotify_export(tmp_path: Path) -> None:
    export = tmp_path / "alice"
    export.mkdir()
    (export / "StreamingHistory0.json").write_text(json.dumps([
        {"endTime": "2024-03-01 08:04", "artistName": "Robyn", "trackName": "Dancing On My Own", "msPlayed": 240000},
        {"endTime": "2024-03-01 08:05", "artistName": "ABBA", "trackName": "Waterloo", "msPlayed": 9000},
        {"endTime": "2024-03-01 08:08", "artistName": "Robyn", "trackName": "Hang With Me", "msPlayed": 185000},
    ]))
    (export / "StreamingHistory1.json").write_text(json.dumps([
        {"endTime": "2024-03-02 21:00", "artistName": "Robyn", "trackName": "Dancing On My Own", "msPlayed": 5000},
    ]))
    out = tmp_path / "out"
    written = IMPORTERS["spotify"](sorted(export.glob("StreamingHistory*.json")), out)
    events, songs, profiles = check_contract(out)
    assert [e["type"] for e in events] == ["PLAY", "PLAY", "SKIP", "PLAY", "PLAY", "SKIP"]
    skip = events[2]
    assert skip["songId"] == events[1]["songId"] and skip["positionMs"] == 9000
    assert events[0]["timestamp"] == 1709280240000 - 240000  # started msPlayed before endTime
    assert len(songs) == 3 and len(profiles) == 1 and written.events == 6
    robyn = next(s for s in songs if s["title"] == "Dancing On My Own")
    assert robyn["durationMs"] == 240000  # the longest complete-looking play
    assert robyn["audioFeatures"] == [0.5] * 8 and robyn["genre"] == "unknown"
    # Re-importing gives the same ids: the sinks deduplicate on them.
    IMPORTERS["spotify"](sorted(export.glob("StreamingHistory*.json")), tmp_path / "again")
    assert read(tmp_path / "again", "events") == events


MSSD_LOG = """session_id,session_position,session_length,track_id_clean,skip_1,skip_2,skip_3,not_skipped,context_switch,no_pause_before_play,short_pause_before_play,long_pause_before_play,hist_user_behavior_n_seekfwd,hist_user_behavior_n_seekback,hist_user_behavior_is_shuffle,hour_of_day,date,premium,context_type,hist_user_behavior_reason_start,hist_user_behavior_reason_end
s_a,1,3,t_1,false,false,false,true,0,0,0,0,0,0,false,16,2018-07-15,true,editorial_playlist,trackdone,trackdone
s_a,2,3,t_2,true,true,true,false,0,1,0,0,0,0,false,16,2018-07-15,true,editorial_playlist,trackdone,fwdbtn
s_a,3,3,t_3,false,false,true,false,0,0,0,1,1,1,false,16,2018-07-15,true,editorial_playlist,fwdbtn,logout
s_b,1,2,t_2,false,false,false,true,0,0,0,0,0,0,true,23,2018-07-16,false,radio,clickrow,trackdone
s_b,2,2,t_1,false,true,true,false,0,1,0,0,0,0,true,23,2018-07-16,false,radio,trackdone,fwdbtn
"""
MSSD_TRACKS = """track_id,duration,release_year,us_popularity_estimate,acousticness,beat_strength,bounciness,danceability,dyn_range_mean,energy,flatness,instrumentalness,key,liveness,loudness,mechanism,mode,organism,speechiness,tempo,time_signature,valence
t_1,180.0,2016,99.5,0.1,0.5,0.5,0.8,7.0,0.7,1.0,0.0,1,0.1,-6.0,0.5,major,0.2,0.05,120.0,4,0.6
t_2,240.0,2010,97.0,0.8,0.3,0.2,0.3,5.0,0.2,1.0,0.9,5,0.2,-15.0,0.2,minor,0.8,0.03,80.0,4,0.2
t_3,200.0,2018,99.9,0.2,0.6,0.6,0.7,8.0,0.9,1.0,0.1,3,0.3,-4.0,0.7,major,0.1,0.3,150.0,4,0.5
"""


def test_mssd_sessions_and_track_features(tmp_path: Path) -> None:
    (tmp_path / "log_mini.csv").write_text(MSSD_LOG)
    (tmp_path / "tf_mini.csv").write_text(MSSD_TRACKS)
    out = tmp_path / "out"
    IMPORTERS["mssd"]([tmp_path / "log_mini.csv", tmp_path / "tf_mini.csv"], out)
    events, songs, profiles = check_contract(out)
    a = [e for e in events if e["userId"] == "mssd-s_a"]
    assert [e["type"] for e in a] == ["PLAY", "PLAY", "SKIP", "PLAY", "SEEK", "SEEK", "SKIP", "EXIT"]
    skip_1 = a[2]
    assert skip_1["positionMs"] == int(240_000 * 0.05)  # skip_1: very briefly played
    assert a[6]["positionMs"] == int(200_000 * 0.7)  # skip_3 only: most of the track
    assert a[4]["seekToMs"] > a[4]["positionMs"] and a[5]["seekToMs"] < a[5]["positionMs"]  # forward, back
    b = [e for e in events if e["userId"] == "mssd-s_b"]
    assert [e["type"] for e in b] == ["PLAY", "PLAY", "SKIP"]  # no exit: the session just stops
    assert b[0]["context"]["source"] == "RADIO" and b[0]["context"]["shuffle"] is True
    assert {p["userId"]: p["subscription"] for p in profiles} == {"mssd-s_a": "PREMIUM", "mssd-s_b": "FREE"}
    t2 = next(s for s in songs if s["songId"] == "t_2")
    assert t2["durationMs"] == 240_000 and t2["audioFeatures"][-1] == pytest.approx(80 / 250)
    assert t2["popularity"] == pytest.approx(0.7)
    # The hour of day is kept: session a starts between 16:00 and 17:00 UTC.
    assert 16 * 3_600_000 <= a[0]["timestamp"] % 86_400_000 < 17 * 3_600_000


def test_mssd_needs_track_features(tmp_path: Path) -> None:
    (tmp_path / "log.csv").write_text(MSSD_LOG)
    with pytest.raises(ValueError, match="track features"):
        IMPORTERS["mssd"]([tmp_path / "log.csv"], tmp_path / "out")


def test_lastfm_scrobbles(tmp_path: Path) -> None:
    (tmp_path / "scrobbles.csv").write_text(
        "user,timestamp,artist,track,album\n"
        "rj,1700000000,Radiohead,Airbag,OK Computer\n"
        "rj,1700000290,Radiohead,Paranoid Android,OK Computer\n"
        "rj,2023-11-15T10:00:00Z,Björk,Hyperballad,Post\n"
        "ana,\"14 Nov 2023, 22:13\",Radiohead,Airbag,OK Computer\n"
    )
    out = tmp_path / "out"
    IMPORTERS["lastfm"]([tmp_path / "scrobbles.csv"], out)
    events, songs, profiles = check_contract(out)
    assert all(e["type"] == "PLAY" and e["positionMs"] == 0 for e in events)
    assert len(songs) == 3 and len(profiles) == 2
    assert events[0]["timestamp"] == 1_699_999_980_000  # ana, 14 Nov 2023 22:13 UTC
    assert events[1]["timestamp"] == 1_700_000_000_000  # unix seconds
    assert any(s["artistName"] == "Björk" for s in songs)


def test_lastfm_names_a_missing_column(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("user,artist,track\nrj,Radiohead,Airbag\n")
    with pytest.raises(ValueError, match="timestamp"):
        IMPORTERS["lastfm"]([tmp_path / "bad.csv"], tmp_path / "out")
