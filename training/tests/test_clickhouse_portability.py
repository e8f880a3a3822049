"""Encore's ClickHouse SQL on a current ClickHouse release.

The local stack runs Debian's ClickHouse 18.16, where the integration tests run every migration and every
query of docs/ANALYTICS.md; deployments run current releases. chDB embeds a current ClickHouse engine, so
the same statements run here against it: a statement one of the two versions refuses fails one suite or
the other. (Here, under training/, because it is the Python side that can embed ClickHouse; the trainer
reads these tables too.)
"""

import re
from pathlib import Path

import pytest
from chdb import session as chdb_session

ROOT = Path(__file__).resolve().parents[2]


def statements(sql_file: Path) -> list[str]:
    """The statements of a migration, as sinks/migrate.ts splits them (comment lines out, split on ';')."""
    text = "\n".join(line for line in sql_file.read_text().splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory):
    session = chdb_session.Session(str(tmp_path_factory.mktemp("chdb")))
    for migration in sorted((ROOT / "sinks" / "migrations").glob("*.sql")):
        for statement in statements(migration):
            session.query(statement)
    yield session
    session.close()


def test_a_current_clickhouse_runs_every_migration(clickhouse):
    version = clickhouse.query("SELECT version()", "CSV").bytes().decode().strip().strip('"')
    assert int(version.split(".")[0]) >= 24, version
    tables = clickhouse.query("SELECT name FROM system.tables WHERE database = currentDatabase()", "CSV")
    names = set(tables.bytes().decode().replace('"', "").split())
    for table in ("events", "session_features", "disengagement_labels", "sessions", "recommendations",
                  "recommendation_feedback", "model_scores", "songs", "operator_metrics", "daily_engagement",
                  "trigger_precision", "recommendation_acceptance", "score_distribution", "model_latency"):
        assert table in names


def test_a_current_clickhouse_runs_every_analytics_query(clickhouse):
    queries = re.findall(r"```sql\n(.*?)```", (ROOT / "docs" / "ANALYTICS.md").read_text(), re.S)
    assert len(queries) >= 12
    for query in queries:
        clickhouse.query(query)  # raises on anything this ClickHouse refuses
