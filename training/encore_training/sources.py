"""Where the rows come from: a dataset directory of JSONEachRow files (encore dataset) or ClickHouse tables
written by the sinks. Both give the same dicts (ClickHouse's column names, snake_case), so everything after
reading is one code path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

# What the trainer reads, and the ClickHouse tables the sinks write it to (sinks/migrations/).
TABLES = {"features": "session_features", "labels": "disengagement_labels", "songs": "songs"}
# Int64 columns come back as strings from ClickHouse's JSON output (and older servers' drivers).
INT64_COLUMNS = {"timestamp_ms", "outcome_after_ms", "horizon_ms", "added_at_ms", "duration_ms"}


class Source(Protocol):
    description: str

    def rows(self, table: str) -> Iterator[dict[str, Any]]: ...


def normalise(row: dict[str, Any]) -> dict[str, Any]:
    for column in INT64_COLUMNS & row.keys():
        if isinstance(row[column], str):
            row[column] = int(row[column])
    return row


@dataclass
class FileSource:
    directory: Path

    @property
    def description(self) -> str:
        return f"files in {self.directory}"

    def rows(self, table: str) -> Iterator[dict[str, Any]]:
        # The dataset builder's names (features.jsonl), or an export named after the table.
        path = self.directory / f"{table}.jsonl"
        if not path.exists() and (self.directory / f"{TABLES[table]}.jsonl").exists():
            path = self.directory / f"{TABLES[table]}.jsonl"
        with path.open() as lines:
            for line in lines:
                if line.strip():
                    yield normalise(json.loads(line))


@dataclass
class ClickHouseSource:
    url: str
    database: str
    username: str = "default"
    password: str = ""

    @property
    def description(self) -> str:
        return f"ClickHouse {self.url}, database {self.database}"

    def client(self) -> Any:
        import clickhouse_connect  # imported here: file-based runs need no server library loaded

        return clickhouse_connect.get_client(
            dsn=self.url, database=self.database, username=self.username, password=self.password
        )

    def rows(self, table: str) -> Iterator[dict[str, Any]]:
        # ReplacingMergeTree folds replays only when merged: FINAL gives each key once regardless.
        result = self.client().query(f"SELECT * FROM {TABLES[table]} FINAL")
        names = result.column_names
        for values in result.result_rows:
            yield normalise(dict(zip(names, values, strict=True)))
