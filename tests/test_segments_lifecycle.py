"""Lifecycle stages on a tiny store computed by hand (docs/segments.md, "Lifecycle stage")."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

import churnguard
from churnguard.errors import ConfigError
from churnguard.ingest import LoadSpec
from churnguard.metrics import rules_for
from churnguard.segments import lifecycle_stages
from churnguard.segments.lifecycle import lifecycle_sql

D = dt.date
AS_OF = D(2025, 6, 30)
# Windows: recent (2025-03-30, 2025-06-30], prior (2024-12-30, 2025-03-30] — three monthly bills each.
BRANCHES = pa.table({"branch_id": ["HQ"], "name": ["Head office"], "parent_id": [None]})
MONTHS = [D(2024, 10, 1), D(2024, 11, 1), D(2024, 12, 1), D(2025, 1, 1), D(2025, 2, 1), D(2025, 3, 1)]
RECENT = [D(2025, 4, 1), D(2025, 5, 1), D(2025, 6, 1)]


def bills(cid: str, prior: float, recent: float) -> list[tuple[str, D, float]]:
    return [(cid, d, prior) for d in MONTHS] + [(cid, d, recent) for d in RECENT]


TX = [
    ("L1", D(2025, 5, 15), 30.0),  # new: first bill 46 days ago
    ("L1", D(2025, 6, 15), 30.0),
    *bills("L2", 10.0, 20.0),  # spend +100 %: growth
    *bills("L3", 10.0, 10.0),  # stable: maturity
    *bills("L4", 10.0, 5.0),  # spend −50 %: decline
    *bills("L5", 10.0, 10.0),  # same spend, but far fewer active days (events): decline
    *bills("L7", 10.0, 8.0),  # spend −20 % exactly: not more than θ, maturity
    ("L6", D(2024, 12, 1), 10.0),  # no activity since: spell ended 2025-03-01, churned
]
# L5 uses the app on 10 days of the prior window and on 2 days of the recent one.
EVENTS = [("L5", D(2025, 1, d)) for d in range(10, 20)] + [("L5", D(2025, 5, 10)), ("L5", D(2025, 5, 11))]
EXPECTED = {
    "L1": "new",
    "L2": "growth",
    "L3": "maturity",
    "L4": "decline",
    "L5": "decline",
    "L6": "churned",
    "L7": "maturity",
}


@pytest.fixture
def store(tmp_path: Path) -> churnguard.Store:
    ids = sorted({t[0] for t in TX})
    customers = pa.table(
        {"customer_id": ids, "branch_id": ["HQ"] * len(ids), "signup_date": [D(2024, 1, 1)] * len(ids)}
    )
    transactions = pa.table(
        {
            "customer_id": [t[0] for t in TX],
            "ts": [dt.datetime(t[1].year, t[1].month, t[1].day, 8) for t in TX],
            "amount": [t[2] for t in TX],
        }
    )
    events = pa.table(
        {
            "customer_id": [e[0] for e in EVENTS],
            "ts": [dt.datetime(e[1].year, e[1].month, e[1].day, 20) for e in EVENTS],
            "event_type": ["app_login"] * len(EVENTS),
        }
    )
    s = churnguard.connect(tmp_path / "lc.duckdb")
    churnguard.ingest_tables(
        s,
        [
            LoadSpec("branches", BRANCHES),
            LoadSpec("customers", customers),
            LoadSpec("transactions", transactions),
            LoadSpec("events", events),
        ],
        as_of=AS_OF,
    )
    s.set_meta("dataset_as_of", AS_OF.isoformat())
    s.set_meta("churn_definition", "non_contractual")
    yield s
    s.close()


def stages(store: churnguard.Store, **options: object) -> dict[str, tuple]:
    sql, params = lifecycle_sql(store, rules_for(store), **options)  # type: ignore[arg-type]
    rows = store.execute(
        f"SELECT customer_id, lifecycle_stage, spend_prior, spend_recent, days_prior, days_recent FROM ({sql})",
        params,
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_stages_by_hand(store: churnguard.Store) -> None:
    got = stages(store)
    assert {k: v[0] for k, v in got.items()} == EXPECTED
    assert got["L2"][1:] == (30.0, 60.0, 3, 3)
    assert got["L5"][1:] == (30.0, 30.0, 13, 5)  # 3 bill days + 10 event days, 3 + 2


def test_threshold_moves_the_line(store: churnguard.Store) -> None:
    # θ = 0.1: L7's −20 % is now a decline; θ = 0.6: L4's −50 % is stable, L2's +100 % still growth
    assert stages(store, threshold=0.1)["L7"][0] == "decline"
    got = stages(store, threshold=0.6)
    assert (got["L4"][0], got["L2"][0]) == ("maturity", "growth")
    # new_months = 1: L1 started 46 days ago, so it is judged on its trend (nothing before: growth)
    assert stages(store, new_months=1)["L1"][0] == "growth"


def test_report_counts(store: churnguard.Store) -> None:
    report = lifecycle_stages(store)
    assert report.customers == 7
    assert [(r["stage"], r["customers"]) for r in report.rows] == [
        ("new", 1),
        ("growth", 1),
        ("maturity", 2),
        ("decline", 2),
        ("churned", 1),
    ]
    assert report.rows[3]["share"] == pytest.approx(2 / 7, abs=1e-6)


def test_bad_threshold(store: churnguard.Store) -> None:
    with pytest.raises(ConfigError, match="threshold"):
        lifecycle_stages(store, threshold=1.5)
