"""Implicit churn (隐性流失): by hand on a tiny store, its early warning on the demo, and the CLI."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import build_demo_store
from test_metrics_cohorts import cg, cg_here, demo_file, load_people

import churnguard
from churnguard.errors import ConfigError
from churnguard.metrics import ActivityRules, rules_for
from churnguard.metrics.activity import spells_sql
from churnguard.metrics.implicit import implicit_churn

D = dt.date
AS_OF = D(2024, 6, 30)
RULES = ActivityRules(definition="contractual", grace_days=30, as_of=AS_OF)
# Recent window 2024-06-01 … 06-30 (30 days); baseline 2024-03-03 … 05-31 (90 days).
PEOPLE = [
    ("A", "GD", "basic", [("2023-01-01", None)]),  # 12 rows in the baseline, 1 recent: 4 → 1 per 30 days, −75 %
    ("B", "GD", "basic", [("2023-01-01", None)]),  # 6 → 1: 2 → 1 per 30 days, exactly −50 %: not more than 50 %
    ("C", "GD", "pro", [("2023-01-01", None)]),  # 6 → 0: −100 %
    ("Q", "GD", "basic", [("2023-01-01", None)]),  # no activity at all: not judged
    ("N", "GD", "basic", [("2024-04-15", None)]),  # began inside the baseline: not judged
    ("X", "GD", "basic", [("2023-01-01", "2024-04-30")]),  # gone (grace passed): not active
    ("Z", "ZJ", "pro", [("2023-01-01", None)]),  # 9 → 0: −100 %, in another branch
]
COUNTS = {"A": (12, 1), "B": (6, 1), "C": (6, 0), "N": (8, 0), "X": (9, 0), "Z": (9, 0)}


def activity_rows() -> pa.Table:
    ids, ts = [], []
    for cid, (baseline, recent) in COUNTS.items():
        ids += [cid] * (baseline + recent)
        ts += [dt.datetime(2024, 5, 31, 12) - dt.timedelta(days=i) for i in range(baseline)]
        ts += [dt.datetime(2024, 6, 30, 23) - dt.timedelta(days=i) for i in range(recent)]
    # A row outside both windows counts for nothing.
    ids.append("Q")
    ts.append(dt.datetime(2024, 3, 2, 23, 59))
    return pa.table({"customer_id": ids, "ts": ts, "event_type": ["call"] * len(ids)})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[churnguard.Store]:
    s = load_people(tmp_path / "i.duckdb", PEOPLE, activity_rows())
    yield s
    s.close()


def test_implicit_churn_by_hand(store) -> None:
    r = implicit_churn(store, rules=RULES)
    assert r.windows == {
        "baseline_from": "2024-03-03",
        "baseline_to": "2024-05-31",
        "recent_from": "2024-06-01",
        "recent_to": "2024-06-30",
    }
    assert (r.active_customers, r.judged_customers, r.implicit_churners) == (6, 4, 3)  # A, C, Z of A, B, C, Z
    assert r.share == 0.75
    # Largest falls first; equal falls: the larger baseline first.
    assert [(c["customer_id"], c["baseline_rate"], c["recent_rate"], c["change"]) for c in r.customers] == [
        ("Z", 3.0, 0.0, -1.0),
        ("C", 2.0, 0.0, -1.0),
        ("A", 4.0, 1.0, -0.75),
    ]
    assert r.customers[0]["branch_id"] == "ZJ" and r.customers[0]["plan"] == "pro"
    d = r.to_dict()
    for key in ("active_customers", "judged_customers", "implicit_churners", "share", "parameters", "customers"):
        assert key in d
    assert d["parameters"]["drop"] == 0.5 and json.dumps(d)


def test_thresholds_branch_limit_and_source(store) -> None:
    gd = implicit_churn(store, rules=RULES, branch="GD", limit=1)
    assert (gd.active_customers, gd.judged_customers, gd.implicit_churners) == (5, 3, 2)
    assert [c["customer_id"] for c in gd.customers] == ["C"]  # the limit cuts the list, not the counts
    assert implicit_churn(store, rules=RULES, drop=0.8).implicit_churners == 2  # C and Z
    assert implicit_churn(store, rules=RULES, min_baseline=2.5).judged_customers == 2  # A (4) and Z (3)
    # Other windows: recent 2024-06-11 … 06-30 (20 days), baseline 2024-05-12 … 06-10 (30 days).
    short = implicit_churn(store, rules=RULES, recent_days=20, baseline_days=30)
    a = next(c for c in short.customers if c["customer_id"] == "A")
    assert (a["baseline_rate"], a["recent_rate"], a["change"]) == (12.0, 1.5, -0.875)
    # Nothing in transactions: nobody is judged.
    assert implicit_churn(store, rules=RULES, source="transactions").judged_customers == 0
    # Judged as of an earlier day, customers are as they were then: X was still active on 2024-04-30.
    early = implicit_churn(store, as_of=D(2024, 4, 30), rules=RULES)
    assert early.as_of == D(2024, 4, 30) and early.active_customers == 7  # X still in its grace period


def test_bad_options_are_clear_errors(store) -> None:
    with pytest.raises(ConfigError, match="--drop"):
        implicit_churn(store, rules=RULES, drop=1.5)
    with pytest.raises(ConfigError, match="--recent-days"):
        implicit_churn(store, rules=RULES, recent_days=0)
    with pytest.raises(ConfigError, match="events or transactions"):
        implicit_churn(store, rules=RULES, source="tickets")
    with pytest.raises(ConfigError, match='branch "XX"'):
        implicit_churn(store, rules=RULES, branch="XX")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[churnguard.Store]:
    with churnguard.connect(demo_file(tmp_path_factory), read_only=True) as s:
        yield s


@pytest.fixture(scope="module")
def demo20k(tmp_path_factory: pytest.TempPathFactory) -> Iterator[churnguard.Store]:
    path, _ = build_demo_store(tmp_path_factory)
    with churnguard.connect(path, read_only=True) as s:
        yield s


def test_demo_implicit_churners_go_on_to_churn_more_often(demo20k) -> None:
    demo = demo20k
    # The simulator lowers data use in the ~60 days before a churn (docs/simulator.md).  Judged three
    # months before the end of the data on that measure, the implicit churners' open spells end by then
    # more often than the other active customers'.  (Only those who churn within ~2 months of the day
    # judged can show the fall, so the lift is modest: about 1.4 on this demo.)
    full = rules_for(demo)
    then = dataclasses.replace(full, as_of=D(2025, 9, 30))
    r = implicit_churn(
        demo, rules=then, limit=100_000, measure="value", event_type="data_mb", recent_days=60, baseline_days=120
    )
    assert r.implicit_churners == len(r.customers) and 0 < r.implicit_churners < r.judged_customers
    flagged = [c["customer_id"] for c in r.customers]
    then_sql, _ = spells_sql(then)  # its parameters are renamed below
    then_sql = then_sql.replace("$as_of", "$then").replace("$grace", "$then_grace")
    now_sql, now_params = spells_sql(full)
    rows = demo.execute(
        f"""
        SELECT list_contains($flagged, a.customer_id) AS flagged, avg(CAST(n.end_date IS NOT NULL AS DOUBLE)) AS churned
        FROM ({then_sql}) a JOIN ({now_sql}) n ON n.customer_id = a.customer_id AND n.start_date = a.start_date
        WHERE a.end_date IS NULL
        GROUP BY ALL
        """,
        {"then": then.as_of, "then_grace": then.grace_days, **now_params, "flagged": flagged},
    ).fetchall()
    churned = dict(rows)
    assert churned[True] > 1.2 * churned[False]


def test_cli_implicit_json_and_table(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    db = tmp_path / "demo.duckdb"
    shutil.copyfile(demo_file(tmp_path_factory), db)
    args = ("--db", str(db), "metrics", "implicit", "--as-of", "2025-09-30", "--limit", "5")
    r = cg(*args, "--drop", "0.6", "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["as_of"] == "2025-09-30" and data["parameters"]["drop"] == 0.6 and len(data["customers"]) == 5
    assert data["active_customers"] >= data["judged_customers"] >= data["implicit_churners"] > 0
    assert all(c["change"] < -0.6 for c in data["customers"])
    out = cg_here(*args, "--branch", "GD")
    assert "Implicit churn" in out and "GD-" in out and "Share of judged" in out
