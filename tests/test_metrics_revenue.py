"""Revenue retention: MRR movements, GRR and NRR, hand-computed, and the real CLI.

Every store is a real DuckDB file loaded through :func:`churnguard.ingest_tables`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import churnguard
from churnguard import LoadSpec
from churnguard.errors import ConfigError
from churnguard.metrics.revenue import revenue_retention
from churnguard.store import Store

D = dt.date
AS_OF = D(2024, 12, 31)
YEAR = {"start": D(2024, 1, 1), "end": D(2024, 12, 31)}
BRANCHES = {
    "branch_id": ["HQ", "P1", "P2"],
    "name": ["Head office", "Province 1", "Province 2"],
    "parent_id": [None, "HQ", "HQ"],
}


def load(store: Store, rows: list[tuple[str, str, dt.date, dt.date | None, float | None]]) -> Store:
    """Customers (in P1, or P2 when their id starts with "Z") and their subscriptions
    ``(customer_id, plan, start, end, recurring_revenue)``."""
    ids = sorted({r[0] for r in rows})
    tables = {
        "branches": BRANCHES,
        "customers": {
            "customer_id": ids,
            "branch_id": ["P2" if c.startswith("Z") else "P1" for c in ids],
            "signup_date": [D(2022, 1, 1)] * len(ids),
        },
        "subscriptions": {
            "customer_id": [r[0] for r in rows],
            "plan": [r[1] for r in rows],
            "start_date": [r[2] for r in rows],
            "end_date": pa.array([r[3] for r in rows], pa.date32()),
            "recurring_revenue": pa.array([r[4] for r in rows], pa.float64()),
        },
    }
    churnguard.ingest_tables(store, [LoadSpec(n, pa.table(t), name=n) for n, t in tables.items()], as_of=AS_OF)
    return store


#: One customer of each movement between 2024-01-01 and 2024-12-31.
MOVES = [
    ("A", "basic", D(2023, 1, 1), None, 100.0),  # stays at 100
    ("B", "basic", D(2023, 1, 1), D(2024, 5, 31), 50.0),  # expansion: 50 -> 80
    ("B", "pro", D(2024, 6, 1), None, 80.0),
    ("C", "pro", D(2023, 1, 1), D(2024, 5, 31), 60.0),  # contraction: 60 -> 20
    ("C", "mini", D(2024, 6, 1), None, 20.0),
    ("D", "basic", D(2023, 1, 1), D(2024, 7, 15), 40.0),  # churned: 40 -> 0
    ("E", "basic", D(2024, 3, 1), None, 70.0),  # new: 0 -> 70
    ("F", "basic", D(2022, 1, 1), D(2023, 5, 31), 25.0),  # reactivation: paid before, 0 -> 25
    ("F", "basic", D(2024, 6, 1), None, 25.0),
    ("G", "basic", D(2024, 2, 1), D(2024, 3, 31), 99.0),  # joined and left inside Q1: no movement
]


def identity(d: dict[str, Any]) -> float:
    return (
        d["start_mrr"]
        + d["new_mrr"]
        + d["reactivation_mrr"]
        + d["expansion_mrr"]
        - d["contraction_mrr"]
        - d["churned_mrr"]
        - d["end_mrr"]
    )


def test_movements_grr_nrr_by_hand(store: Store) -> None:
    load(store, MOVES)
    d = revenue_retention(store, **YEAR).to_dict()
    assert (d["start_mrr"], d["end_mrr"]) == (250, 295)  # 100+50+60+40, 100+80+20+70+25
    assert (d["new_mrr"], d["reactivation_mrr"], d["expansion_mrr"], d["contraction_mrr"], d["churned_mrr"]) == (
        70,
        25,
        30,
        40,
        40,
    )
    assert identity(d) == 0
    assert d["grr"] == pytest.approx((250 - 40 - 40) / 250)  # 0.68
    assert d["nrr"] == pytest.approx((250 + 30 - 40 - 40) / 250)  # 0.8
    assert d["quick_ratio"] == pytest.approx((70 + 30) / (40 + 40))
    counts = [
        d[f"{k}_customers"] for k in ("start", "end", "new", "reactivation", "expansion", "contraction", "churned")
    ]
    assert counts == [4, 5, 1, 1, 1, 1, 1]
    assert "rows" not in d


def test_chartmogul_worked_example(store: Store) -> None:
    # [CM2]: MRR0 = 100; churn −10, contraction −10, expansion +10: GRR 80 %, NRR 90 %.
    load(
        store,
        [
            ("W", "p", D(2023, 1, 1), None, 40.0),
            ("X", "p", D(2023, 1, 1), D(2024, 3, 1), 10.0),
            ("Y", "p", D(2023, 1, 1), D(2024, 3, 1), 20.0),
            ("Y", "q", D(2024, 3, 2), None, 10.0),
            ("Z", "p", D(2023, 1, 1), D(2024, 3, 1), 30.0),
            ("Z", "q", D(2024, 3, 2), None, 40.0),
        ],
    )
    d = revenue_retention(store, **YEAR).to_dict()
    assert (d["start_mrr"], d["grr"], d["nrr"]) == (100, 0.8, 0.9)


def test_the_days_themselves_count(store: Store) -> None:
    # A starts on the first day: new in the period.  B's last day is the period's last day: B churned
    # in the period (as in the churn counts, where a last day inside the period is a churn).
    load(store, [("A", "p", D(2024, 1, 1), None, 10.0), ("B", "p", D(2023, 1, 1), D(2024, 12, 31), 5.0)])
    d = revenue_retention(store, **YEAR).to_dict()
    assert (d["start_mrr"], d["end_mrr"], d["new_mrr"], d["churned_mrr"]) == (5, 10, 10, 5)
    # A day wider on both sides: the same movements.
    d = revenue_retention(store, start=D(2023, 12, 31), end=D(2025, 1, 1)).to_dict()
    assert (d["start_mrr"], d["end_mrr"], d["new_mrr"], d["churned_mrr"]) == (5, 10, 10, 5)
    # A day narrower on both sides: A is already there, B not yet gone.
    d = revenue_retention(store, start=D(2024, 1, 2), end=D(2024, 12, 30)).to_dict()
    assert (d["start_mrr"], d["end_mrr"], d["new_mrr"], d["churned_mrr"]) == (15, 15, 0, 0)


def test_periods_chain_and_each_balances(store: Store) -> None:
    load(store, MOVES)
    report = revenue_retention(store, **YEAR, period="quarter")
    rows = report.rows
    assert [r["period"] for r in rows] == ["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4"]
    assert [r["mrr_from_day"] for r in rows] == ["2023-12-31", "2024-03-31", "2024-06-30", "2024-09-30"]
    assert rows[0]["start_mrr"] == report.totals["start_mrr"]
    assert rows[-1]["end_mrr"] == report.totals["end_mrr"]
    for a, b in itertools.pairwise(rows):
        assert a["end_mrr"] == b["start_mrr"]
    for r in rows:
        assert identity(r) == 0
    q1, q2, q3 = rows[0], rows[1], rows[2]
    # E joins in Q1; G joins on Feb 1 and its last day is Mar 31: in and out inside Q1, no movement.
    assert (q1["new_mrr"], q1["end_mrr"]) == (70, 320)
    assert (q2["churned_mrr"], q2["expansion_mrr"], q2["contraction_mrr"], q2["reactivation_mrr"]) == (0, 30, 40, 25)
    assert (q2["end_mrr"], q3["churned_mrr"]) == (335, 40)  # D leaves in Q3
    assert report.to_dict()["rows"] == rows


def test_branch_scope(store: Store) -> None:
    load(store, [("A", "p", D(2023, 1, 1), None, 10.0), ("ZB", "p", D(2023, 1, 1), D(2024, 6, 30), 7.0)])
    assert revenue_retention(store, **YEAR, branch="P1").to_dict()["start_mrr"] == 10
    d = revenue_retention(store, **YEAR, branch="P2").to_dict()
    assert (d["start_mrr"], d["churned_mrr"], d["grr"]) == (7, 7, 0)


def test_unknown_revenue_is_counted_not_guessed(store: Store) -> None:
    load(store, [("A", "p", D(2023, 1, 1), None, None), ("B", "p", D(2023, 1, 1), None, 10.0)])
    d = revenue_retention(store, **YEAR).to_dict()
    assert (d["start_mrr"], d["subscriptions_without_revenue"]) == (10, 1)


def test_no_mrr_at_the_start_has_no_ratio(store: Store) -> None:
    load(store, [("A", "p", D(2024, 6, 1), None, 10.0)])
    d = revenue_retention(store, **YEAR).to_dict()
    assert (d["start_mrr"], d["new_mrr"], d["grr"], d["nrr"], d["quick_ratio"]) == (0, 10, None, None, None)


def test_identity_holds_on_seeded_random_histories(store: Store) -> None:
    rng = random.Random(20240101)
    rows = []
    for i in range(300):
        day = D(2022, 6, 1) + dt.timedelta(days=rng.randrange(700))
        for j in range(rng.randrange(1, 5)):
            length = rng.randrange(1, 400)
            end = day + dt.timedelta(days=length)
            last = j == 3 or rng.random() < 0.3
            if end > AS_OF or (last and rng.random() < 0.5):
                rows.append((f"C{i:03d}", f"p{j}", day, None, float(rng.choice([0, 9, 19, 29, 49]))))
                break
            rows.append((f"C{i:03d}", f"p{j}", day, end, float(rng.choice([0, 9, 19, 29, 49]))))
            day = end + dt.timedelta(days=rng.choice([1, 1, 1, 40, 120]))
            if day > AS_OF:
                break
    load(store, rows)
    report = revenue_retention(store, start=D(2023, 3, 15), end=D(2024, 11, 20), period="month")
    assert identity(report.totals) == pytest.approx(0, abs=1e-6)
    assert all(identity(r) == pytest.approx(0, abs=1e-6) for r in report.rows)
    assert len(report.rows) == 21
    assert report.totals["churned_mrr"] > 0 and report.totals["reactivation_mrr"] > 0
    assert 0 <= report.totals["grr"] <= 1


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"period": "week"}, '--period: expected one of month, quarter, year, got "week"'),
        ({"branch": "XX"}, 'branch "XX": expected a branch id'),
        ({"start": D(2025, 1, 1)}, "--to 2024-12-31 is before --from 2025-01-01"),
    ],
)
def test_bad_options_are_named(store: Store, kwargs: dict[str, Any], fragment: str) -> None:
    load(store, MOVES)
    with pytest.raises(ConfigError) as info:
        revenue_retention(store, **{**YEAR, **kwargs})
    assert fragment in str(info.value)


def test_cli_revenue(tmp_path: Path, store_templates: dict[str, Path]) -> None:
    path = tmp_path / "rev.duckdb"
    with churnguard.connect(path) as s:
        load(s, MOVES)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNGUARD_")}
    env["COLUMNS"] = "200"
    args = [sys.executable, "-m", "churnguard", "--db", str(path), "metrics", "revenue"]
    args += ["--from", "2024-01-01", "--to", "2024-12-31", "--period", "quarter"]
    r = subprocess.run([*args, "--format", "json"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert (d["start_mrr"], d["end_mrr"], d["grr"], d["nrr"]) == (250, 295, 0.68, 0.8)
    assert len(d["rows"]) == 4
    r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "68.00 %" in r.stdout and "2024-Q4" in r.stdout
