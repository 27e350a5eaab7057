"""Ingestion into a PostgreSQL store: the same rows, problems and guarantees as into a DuckDB store.

Every load here runs twice, on a real PostgreSQL server (``pg_url``) and on a real DuckDB file
(``store``), and the two must agree: the same results, the same tables (rows and columns), and
for a bad file the same :class:`ValidationError` text, with the PostgreSQL store left exactly as
it was (no staging table behind).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from conftest import AS_OF, BRANCHES_CSV, CUSTOMERS_CSV, snapshot, table_rows

import churnguard
from churnguard import LoadSpec
from churnguard.errors import ValidationError
from churnguard.ingest import validate_tables
from churnguard.store import TABLES, Store

CANONICAL = [t.name for t in TABLES]


@pytest.fixture
def pg(pg_url: str) -> Iterator[Store]:
    s = churnguard.connect(pg_url)
    try:
        yield s
    finally:
        s.close()


def tables_of(store: Store) -> dict[str, Any]:
    return {name: (store.columns(name), table_rows(store, name)) for name in CANONICAL}


def staging_tables(store: Store) -> list[Any]:
    return store.execute("SELECT table_name FROM information_schema.tables WHERE table_name LIKE '\\_cg%'").fetchall()


def _outcome(store: Store, run: Any) -> Any:
    try:
        results = run(store)
    except ValidationError as exc:
        return ("error", str(exc))
    return [{k: v for k, v in r.to_dict().items() if k not in ("seconds", "load_id")} for r in results]


class Twin:
    """A PostgreSQL store and a DuckDB store that receive the same loads."""

    def __init__(self, pg: Store, duck: Store) -> None:
        self.pg, self.duck = pg, duck

    def load(self, loads: list[LoadSpec] | LoadSpec, *, fails: str | None = None, **options: Any) -> Any:
        """Run ``ingest_tables`` on both; assert the same outcome and tables; return the outcome."""
        loads = [loads] if isinstance(loads, LoadSpec) else loads
        options.setdefault("as_of", AS_OF)
        call = options.pop("call", churnguard.ingest_tables)
        before = snapshot(self.pg)
        got = _outcome(self.pg, lambda s: call(s, loads, **options))
        want = _outcome(self.duck, lambda s: call(s, loads, **options))
        assert got == want
        if fails is not None:
            assert got[0] == "error" and fails in got[1], got
            assert snapshot(self.pg) == before, "a failed load changed the PostgreSQL store"
        else:
            assert got[0] != "error", got
        assert staging_tables(self.pg) == []
        assert tables_of(self.pg) == tables_of(self.duck)
        return got


@pytest.fixture
def twin(pg: Store, store: Store) -> Twin:
    return Twin(pg, store)


def test_a_sequence_of_loads_gives_the_same_tables_as_on_duckdb(twin, write_csv, write_file):
    branches = write_csv("branches.csv", BRANCHES_CSV)
    customers = write_csv("customers.csv", CUSTOMERS_CSV)
    twin.load(LoadSpec("branches", branches))
    twin.load(LoadSpec("customers", customers))
    # An append re-run adds nothing.
    (again,) = twin.load(LoadSpec("customers", customers))
    assert (again["rows_added"], again["rows_skipped"]) == (0, 3)

    events = write_csv(
        "events.csv",
        "customer_id,ts,event_type,value\nA,2024-03-01 10:00,login,1\nA,2024-03-01 10:00,login,1\n"
        "B,2024-03-02T08:30:00+08:00,call,4.25\nC,2024-03-03,data_mb,\n",
    )
    (first,) = twin.load(LoadSpec("events", events))
    assert first["rows_added"] == 4  # the genuine repeat is kept
    (rerun,) = twin.load(LoadSpec("events", events))
    assert rerun["rows_added"] == 0
    more = write_csv("more.csv", "customer_id,ts,event_type,value\nA,2024-03-01 10:00,login,1\nC,2024-04-01,sms,2\n")
    (added,) = twin.load(LoadSpec("events", more))
    assert added["rows_added"] == 1

    twin.load(
        LoadSpec(
            "subscriptions",
            write_csv(
                "subs.csv",
                "customer_id,plan,start_date,end_date,recurring_revenue\n"
                "A,basic,2024-01-02,2024-03-31,9.9\nA,pro,2024-04-01,,19.9\nB,pro,2024-01-03,,19.9\n",
            ),
        )
    )
    twin.load(
        LoadSpec(
            "churn_events",
            write_csv(
                "churn.csv",
                "customer_id,churn_date,voluntary,reason_code,destination\nA,2024-05-01,yes,price,Rival\n"
                "B,2024-05-02,0,,\n",
            ),
        )
    )
    twin.load(
        LoadSpec(
            "surveys",
            write_csv(
                "surveys.csv",
                'customer_id,ts,kind,score,comment\nA,2024-02-01,NPS,3,"too, slow"\nB,2024-02-02,CSAT,5,\n',
            ),
        )
    )

    # Upsert replaces the stored row with the same key and adds the new one.
    upsert = write_csv(
        "upsert.csv", "customer_id,branch_id,signup_date,plan\nA,C2,2024-01-02,gold\nD,C1,2024-03-01,basic\n"
    )
    (up,) = twin.load(LoadSpec("customers", upsert), mode="upsert")
    assert (up["rows_added"], up["rows_replaced"]) == (2, 1)
    assert table_rows(twin.pg, "customers")[0] == ("A", "C2", dt.date(2024, 1, 2), "gold", None, None, None)

    # Extra columns: added (typed from the file), then dropped by a replace whose file lacks them.
    mapping = write_file("keep.yaml", "keep_extra: true\n")
    extra = write_csv(
        "extra.csv",
        "customer_id,branch_id,signup_date,plan,Colour,Visits,Spend\nA,C2,2024-01-02,gold,red,3,1.5\n"
        "D,C1,2024-03-01,basic,,012,2\n",
    )
    (ex,) = twin.load(LoadSpec("customers", extra, mapping), mode="upsert")
    assert ex["extra_columns"] == ["colour", "visits", "spend"]
    assert dict(twin.pg.columns("customers"))["spend"] == "DOUBLE"
    assert dict(twin.pg.columns("customers"))["visits"] == "VARCHAR"  # "012" is a code, not a number
    twin.load(LoadSpec("events", events), mode="replace")
    twin.load(LoadSpec("customers", upsert), mode="replace", fails="no row for")  # B's events would be orphans
    plain = write_csv("plain.csv", CUSTOMERS_CSV + "D,C1,2024-03-01,basic\n")
    twin.load(LoadSpec("customers", plain), mode="replace")
    assert "colour" not in dict(twin.pg.columns("customers"))

    # The ingest log has the same rows (ids and times aside).
    log = "SELECT table_name, source, mode, rows_read, rows_added, rows_replaced, rows_skipped FROM ingest_log"
    names = lambda rows: sorted((r[0], Path(r[1]).name, *r[2:]) for r in rows)  # noqa: E731
    assert names(twin.pg.execute(log).fetchall()) == names(twin.duck.execute(log).fetchall())


def test_bad_files_give_the_same_problems_and_leave_postgresql_unchanged(twin, write_csv):
    twin.load(
        [
            LoadSpec("branches", write_csv("b.csv", BRANCHES_CSV)),
            LoadSpec("customers", write_csv("c.csv", CUSTOMERS_CSV)),
        ]
    )
    bad_types = write_csv(
        "bad.csv",
        "customer_id,branch_id,signup_date,plan\nD,C1,2024-03-01,basic\nE,C9,2024-13-01,pro\nF,C1,01/02/2024,x\n",
    )
    twin.load(
        LoadSpec("customers", bad_types), fails="bad.csv line 3, column signup_date: expected a date like 2024-01-31"
    )
    twin.load(LoadSpec("customers", bad_types), fails='unknown branch "C9"')
    # A keyed append of a stored key with other values; a duplicate key in the file.
    twin.load(
        LoadSpec(
            "customers", write_csv("conflict.csv", "customer_id,branch_id,signup_date,plan\nA,C1,2024-01-02,gold\n")
        ),
        fails='customer_id="A" already stored with other values',
    )
    twin.load(
        LoadSpec(
            "customers", write_csv("dupe.csv", "customer_id,branch_id,signup_date\nX,C1,2024-01-02\nX,C2,2024-01-03\n")
        ),
        fails="each customer_id once per file",
    )
    # Branch tree: a second head office; a cycle.
    twin.load(
        LoadSpec("branches", write_csv("roots.csv", "branch_id,name,parent_id\nH2,Other head office,\n")),
        fails="exactly one head office",
    )
    twin.load(
        LoadSpec("branches", write_csv("cycle.csv", "branch_id,name,parent_id\nHQ,Head office,\nX,X,Y\nY,Y,X\n")),
        mode="upsert",
        fails="a cycle",
    )
    # Several tables in one transaction: the last one's problem undoes the first ones, clear_all too.
    good = write_csv("good.csv", "customer_id,branch_id,signup_date\nG,C1,2024-03-01\n")
    late = write_csv("late.csv", "customer_id,ts,event_type\nG,2024-03-01,login\nG,2031-01-01,login\n")
    twin.load([LoadSpec("customers", good), LoadSpec("events", late)], fails="late.csv line 3, column ts")
    twin.load(
        [LoadSpec("customers", good), LoadSpec("events", late)],
        mode="replace",
        clear_all=True,
        fails='unknown branch "C1"',
    )
    # Many problems: the first 20 are listed, all are counted, in the same order.
    many = "customer_id,ts,event_type,value\n" + "".join(
        f"Q{i},2024-03-0{1 + i % 9},x,{'bad' if i % 2 else -1}\n" for i in range(30)
    )
    (_, text) = twin.load(LoadSpec("events", write_csv("many.csv", many)), fails="problems found")
    assert text.startswith("45 problems found")  # 15 values that are not numbers, 30 unknown customers


def test_dry_run_and_in_memory_sources(twin):
    branches = pa.table(
        {
            "branch_id": ["HQ", "P1"],
            "name": ["Head office", "Province"],
            "parent_id": ["", "HQ"],
            "level": pa.array([0, None], pa.int32()),
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": ["A", "B"],
            "branch_id": ["P1", "P1"],
            "signup_date": pd.to_datetime(["2024-01-02", "2024-01-03"]),
            "flag": [1, None],
        }
    )
    loads = [LoadSpec("branches", branches), LoadSpec("customers", customers, {"keep_extra": True}, name="crm export")]
    dry = twin.load(loads, call=validate_tables)
    assert [r["rows_added"] for r in dry] == [2, 2] and twin.pg.execute("SELECT count(*) FROM branches").fetchone()[
        0
    ] == 0
    twin.load(loads)
    assert table_rows(twin.pg, "branches") == [("HQ", "Head office", None, 0), ("P1", "Province", "HQ", 1)]
    assert twin.pg.columns("customers")[-1] == ("flag", "DOUBLE")
    # The load's larger work_mem (from memory_limit) ended with its transaction.
    assert twin.pg.execute("SELECT current_setting('work_mem')").fetchone()[0] == "4MB"


def test_cli_ingest_on_postgresql(pg_url, write_csv):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNGUARD_")}

    def cg(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "churnguard", "--db", pg_url, *args]
        return subprocess.run(cmd, capture_output=True, text=True, env={**env, "COLUMNS": "200"}, timeout=120)

    with churnguard.connect(pg_url) as s:
        churnguard.ingest_table(s, "branches", write_csv("branches.csv", BRANCHES_CSV), as_of=AS_OF)
        churnguard.ingest_table(s, "customers", write_csv("customers.csv", CUSTOMERS_CSV), as_of=AS_OF)
    bad = write_csv("bad.csv", "customer_id,branch_id,signup_date\nD,C1,2024-03-01\nE,C1,soon\n")
    out = cg("ingest", "customers", str(bad), "--as-of", AS_OF.isoformat())
    assert out.returncode == ValidationError.exit_code
    assert "bad.csv line 3, column signup_date: expected a date like 2024-01-31" in out.stdout + out.stderr
    with churnguard.connect(pg_url) as s:
        assert s.execute("SELECT count(*) FROM customers").fetchone()[0] == 3
        assert staging_tables(s) == []


def test_a_bundled_dataset_and_the_demo_load_on_postgresql(pg_url, store, pg):
    from churnguard.datasets.real import load_dataset
    from churnguard.demo import DemoContext, _load, _simulate

    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNGUARD_")}
    cmd = [sys.executable, "-m", "churnguard", "--db", pg_url, "datasets", "load", "cdnow-sample", "--format", "json"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    load_dataset(store, "cdnow-sample")
    assert tables_of(pg) == tables_of(store)
    assert pg.get_meta("dataset") == "cdnow-sample"

    # The demo's load step (replace + clear_all of simulated Arrow tables) over the data set.
    results = {}
    for s in (pg, store):
        ctx = DemoContext(s, 300, 7)
        _simulate(ctx)
        results[s.backend] = [(r.table, r.rows_read, r.rows_added, r.rows_replaced) for r in _load(ctx)]
    assert results["postgresql"] == results["duckdb"]
    assert tables_of(pg) == tables_of(store)
