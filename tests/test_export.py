"""``churnguard export``: a store's tables to a Parquet lake (what the Spark engine reads).

Real DuckDB files, the real CLI in a subprocess, Parquet read back with pyarrow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import churnguard
from churnguard.engines.lake import MANIFEST, export_lake
from churnguard.errors import ConfigError
from churnguard.store import TABLES


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "churnguard", *args], capture_output=True, text=True, check=False, timeout=120
    )


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    path = tmp_path / "small.duckdb"
    with churnguard.connect(path) as s:
        s.execute("INSERT INTO branches VALUES ('HQ', 'Head office', NULL, 0), ('P1', 'Province', 'HQ', 1)")
        s.execute(
            "INSERT INTO customers (customer_id, branch_id, signup_date, plan) VALUES "
            "('A', 'P1', DATE '2024-01-02', 'basic'), ('B', 'P1', DATE '2024-02-03', NULL)"
        )
        s.execute(
            "INSERT INTO events VALUES ('A', TIMESTAMP '2024-03-01 12:34:56.123456', 'login', 1.5), "
            "('B', TIMESTAMP '2024-03-02 00:00:00', 'call', NULL)"
        )
        s.set_meta("dataset_as_of", "2024-06-30")
        s.set_meta("churn_definition", "non_contractual")
    return path


def _read(folder: Path) -> pa.Table:
    return pq.read_table(folder)


def test_export_writes_every_table_with_microsecond_timestamps_and_meta(small_store: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with churnguard.connect(small_store) as s:
        result = export_lake(s, lake)
    written = {t.table: t.rows for t in result.tables}
    # every canonical table is there, empty ones too, so that queries on the lake find them
    assert {t.name for t in TABLES} <= set(written)
    assert written["customers"] == 2 and written["events"] == 2 and written["subscriptions"] == 0
    assert "customer_value" not in written  # empty derived tables are left out
    events = _read(lake / "events")
    assert events.schema.field("ts").type == pa.timestamp("us")  # Spark refuses nanoseconds
    assert sorted(events.column("ts").to_pylist())[0].microsecond == 123456
    assert _read(lake / "subscriptions").num_rows == 0
    assert _read(lake / "subscriptions").schema.names == [
        "customer_id",
        "plan",
        "start_date",
        "end_date",
        "recurring_revenue",
    ]
    meta = dict(zip(*_read(lake / "churnguard_meta").to_pydict().values(), strict=True))
    assert meta["dataset_as_of"] == "2024-06-30" and meta["churn_definition"] == "non_contractual"
    manifest = json.loads((lake / MANIFEST).read_text())
    assert manifest["rows"] == sum(written.values()) and manifest["source"].endswith("small.duckdb")


def test_export_refuses_a_non_empty_folder_unless_overwrite(small_store: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    (lake / "notes.txt").write_text("keep me")
    with churnguard.connect(small_store) as s:
        with pytest.raises(ConfigError, match="not empty"):
            export_lake(s, lake)
        export_lake(s, lake, overwrite=True)
        s.execute("DELETE FROM events WHERE customer_id = 'B'")
        export_lake(s, lake, overwrite=True)  # a second export replaces the tables' folders
    assert _read(lake / "events").num_rows == 1
    assert (lake / "notes.txt").read_text() == "keep me"


def test_export_cli_json_and_errors(small_store: Path, tmp_path: Path) -> None:
    lake = tmp_path / "cli-lake"
    done = _cli("--db", str(small_store), "export", "--to", str(lake), "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["format"] == "parquet"
    assert {t["table"]: t["rows"] for t in data["tables"]}["customers"] == 2
    again = _cli("--db", str(small_store), "export", "--to", str(lake), "--format", "json")
    assert again.returncode == 2 and "not empty" in again.stdout + again.stderr
    bad = _cli("--db", str(small_store), "export", "--to", str(tmp_path / "x"), "--file-format", "csv")
    assert bad.returncode == 2 and "parquet" in bad.stdout + bad.stderr
