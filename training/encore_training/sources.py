"""Where the rows come from: a dataset directory of JSONEachRow files (encore dataset) or ClickHouse tables
written by the sinks. Both give the same dicts (ClickHouse's column names, snake_case), so everything after
reading is one code path."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
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


class ClickHouseHttp:
    """ClickHouse over its HTTP interface, JSONEachRow both ways: what the trainer needs, with nothing a
    server version could lack (clickhouse-connect probes settings at connect that ClickHouse 18.16, the
    local stack's, does not have)."""

    def __init__(self, url: str, database: str, username: str, password: str) -> None:
        self.url = url.rstrip("/")
        self.database = database
        credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {credentials}"}

    def _post(self, sql: str, body: bytes = b"") -> Any:
        query = urllib.parse.urlencode({"database": self.database, "query": sql})
        request = urllib.request.Request(f"{self.url}/?{query}", data=body, headers=self.headers, method="POST")
        try:
            return urllib.request.urlopen(request, timeout=300)
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"ClickHouse refused {sql[:120]!r}: {error.read().decode()[:500]}") from error

    def command(self, sql: str) -> None:
        self._post(sql).read()

    def rows(self, sql: str) -> Iterator[dict[str, Any]]:
        """The query's rows as dicts, streamed line by line."""
        with self._post(f"{sql} FORMAT JSONEachRow") as response:
            for line in response:
                if line.strip():
                    yield json.loads(line)

    def insert(self, table: str, rows: Iterable[dict[str, Any]]) -> None:
        body = "".join(json.dumps(row) + "\n" for row in rows).encode()
        self._post(f"INSERT INTO {table} FORMAT JSONEachRow", body).read()


@dataclass
class ClickHouseSource:
    url: str
    database: str
    username: str = "default"
    password: str = ""

    @property
    def description(self) -> str:
        return f"ClickHouse {self.url}, database {self.database}"

    def client(self) -> ClickHouseHttp:
        return ClickHouseHttp(self.url, self.database, self.username, self.password)

    def rows(self, table: str) -> Iterator[dict[str, Any]]:
        # ReplacingMergeTree folds replays only when merged: FINAL gives each key once regardless.
        for row in self.client().rows(f"SELECT * FROM {TABLES[table]} FINAL"):
            yield normalise(row)
