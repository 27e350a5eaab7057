"""Churn loss and key-account churn: the worked check, hand-computed cases and the real CLI.

Every store is a real DuckDB file loaded through :func:`churnguard.ingest_tables`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import churnguard
from churnguard import LoadSpec
from churnguard.errors import ConfigError
from churnguard.metrics import ActivityRules, churn_report
from churnguard.metrics.loss import TruncatedWindowWarning, churn_loss, key_account_churn, revenue_condition
from churnguard.store import Store

D = dt.date
T = dt.datetime
# Most hand-made stores hold no transactions before their windows start; the warning has its own test.
pytestmark = pytest.mark.filterwarnings("ignore::churnguard.metrics.loss.TruncatedWindowWarning")
AS_OF = D(2024, 12, 31)
RULES = ActivityRules(definition="contractual", grace_days=30, as_of=AS_OF)
YEAR = {"start": D(2024, 1, 1), "end": D(2024, 12, 31)}

BRANCHES = {
    "branch_id": ["HQ", "P1", "C1", "C2", "P2"],
    "name": ["Head office", "Province 1", "City 1", "City 2", "Province 2"],
    "parent_id": [None, "HQ", "P1", "P1", "HQ"],
}


def load(store: Store, **tables: dict[str, list[Any]]) -> Store:
    """Load ``tables`` (column → values) into ``store``; branches default to HQ → P1 → (C1, C2), HQ → P2."""
    tables = {"branches": BRANCHES, **tables}
    specs = [LoadSpec(name, pa.table(cols), name=name) for name, cols in tables.items()]
    churnguard.ingest_tables(store, specs, as_of=AS_OF)
    return store


def customers(*rows: tuple[str, str], **extra: list[Any]) -> dict[str, list[Any]]:
    """Customers from ``(customer_id, branch_id)`` pairs, all signed up 2022-01-01."""
    return {
        "customer_id": [r[0] for r in rows],
        "branch_id": [r[1] for r in rows],
        "signup_date": [D(2022, 1, 1)] * len(rows),
        **extra,
    }


def subs(*rows: tuple[str, dt.date, dt.date | None, float | None]) -> dict[str, list[Any]]:
    """Subscriptions from ``(customer_id, start, end, recurring_revenue)``; plan ``p`` + the start year."""
    return {
        "customer_id": [r[0] for r in rows],
        "plan": [f"p{r[1].year}{r[1].month:02d}" for r in rows],
        "start_date": [r[1] for r in rows],
        "end_date": [r[2] for r in rows],
        "recurring_revenue": [r[3] for r in rows],
    }


def txs(*rows: tuple[Any, ...], kind: bool = True) -> dict[str, list[Any]]:
    """Transactions from ``(customer_id, ts, amount, margin, kind)``."""
    out = {
        "customer_id": [r[0] for r in rows],
        "ts": [r[1] if isinstance(r[1], dt.datetime) else T(r[1].year, r[1].month, r[1].day, 2) for r in rows],
        "amount": [float(r[2]) for r in rows],
        "margin": pa.array([r[3] for r in rows], pa.float64()),
    }
    if kind:
        out["kind"] = [r[4] for r in rows]
    return out


# -- the worked check ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def worked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 customers at the start of 2024, 500 new during it, 200 lost: 100 with 100,000 a year of
    revenue and 100 with 200,000.  Bills are quarterly, each with a payment of the same amount (cash,
    not revenue), a 5 % margin, and one older bill just outside each window."""
    path = tmp_path_factory.mktemp("worked") / "worked.duckdb"
    old = [f"K{i:04d}" for i in range(3000)]
    new = [f"N{i:03d}" for i in range(500)]
    lost = old[:200]
    churn = {c: D(2024, 1, 15) + dt.timedelta(days=i) for i, c in enumerate(lost)}
    sub_rows = [(c, D(2023, 1, 1), churn.get(c), 10.0) for c in old] + [(c, D(2024, 3, 1), None, 10.0) for c in new]
    tx_rows: list[tuple[Any, ...]] = []
    for i, c in enumerate(lost):
        d = churn[c]
        bill = 25_000.0 if i % 2 == 0 else 50_000.0  # four bills: 100,000 or 200,000 a year
        for back in (0, 3, 6, 9):
            y, m = divmod(d.month - 1 - back, 12)
            day = D(d.year + y, m + 1, min(d.day, 28))
            tx_rows.append((c, day, bill, bill * 0.05, "bill"))
            tx_rows.append((c, day, bill, None, "payment"))
        tx_rows.append((c, D(d.year - 1, d.month, min(d.day, 28)), 777.0, 7.0, "bill"))  # d − 12 months: outside
    tx_rows += [(c, D(2024, 6, 1), 1_000.0, 50.0, "bill") for c in old[200:]]
    store = churnguard.connect(path)
    with store:
        load(
            store,
            customers={
                "customer_id": old + new,
                "branch_id": ["C1" if i % 2 else "P2" for i in range(3500)],
                "signup_date": [D(2023, 1, 1)] * 3000 + [D(2024, 3, 1)] * 500,
            },
            subscriptions=subs(*sub_rows),
            transactions=txs(*tx_rows),
        )
    return path


def test_worked_check_churn_rates(worked: Path) -> None:
    with churnguard.connect(worked) as store:
        standard = churn_report(store, **YEAR, rules=RULES).totals
        end_count = churn_report(store, **YEAR, rules=RULES, definition="end_count").totals
    assert (standard["start_customers"], standard["new_customers"], standard["end_customers"]) == (3000, 500, 3300)
    assert standard["churned_customers"] == 200
    assert round(standard["churn_rate"], 4) == 0.0667
    assert round(end_count["churn_rate"], 4) == 0.0606


def test_worked_check_loss(worked: Path) -> None:
    with churnguard.connect(worked) as store:
        report = churn_loss(store, **YEAR, rules=RULES, margin=0.05)
        from_margins = churn_loss(store, **YEAR, rules=RULES)
    d = report.to_dict()
    assert d["churned_customers"] == 200
    assert d["lost_revenue"] == 30_000_000
    assert d["profit_loss"] == 1_500_000
    assert (d["margin"], d["margin_source"]) == (0.05, "option")
    assert d["revenue_sources"] == {"transactions": 200, "subscriptions": 0, "none": 0}
    assert d["average_lost_revenue"] == 150_000
    # The transactions' own margins (5 % of each bill) give the same profit.
    m = from_margins.to_dict()
    assert (m["profit_loss"], m["margin"], m["margin_source"]) == (1_500_000, 0.05, "transactions")
    assert m["lost_revenue_without_margin"] == 0
    assert [t["lost_revenue"] for t in d["top_customers"]] == [200_000] * 20
    assert len(d["top_customers"]) == 20


def test_worked_check_by_branch(worked: Path) -> None:
    with churnguard.connect(worked) as store:
        d = churn_loss(store, **YEAR, rules=RULES, margin=0.05, by="branch").to_dict()
    # Even positions (100,000 a year) are in P2, odd ones (200,000) under P1.
    assert d["rows"] == [
        {
            "branch": "P1",
            "churned_customers": 100,
            "lost_revenue": 20_000_000,
            "profit_loss": 1_000_000,
            "share_of_loss": pytest.approx(2 / 3, abs=1e-6),
            "share_of_churned": 0.5,
        },
        {
            "branch": "P2",
            "churned_customers": 100,
            "lost_revenue": 10_000_000,
            "profit_loss": 500_000,
            "share_of_loss": pytest.approx(1 / 3, abs=1e-6),
            "share_of_churned": 0.5,
        },
    ]


# -- hand-computed cases ---------------------------------------------------------------------------


def test_window_edges(store: Store) -> None:
    # Churn date 2024-06-30; the 12-month window is 2023-07-01 … 2024-06-30 (days of ts).
    load(
        store,
        customers=customers(("A", "C1"), ("B", "C1")),
        subscriptions=subs(("A", D(2022, 1, 1), D(2024, 6, 30), 5.0), ("B", D(2022, 1, 1), D(2025, 1, 31), 5.0)),
        transactions=txs(
            ("A", T(2023, 6, 30, 23, 59), 1, None, "bill"),  # d − 12 months: outside
            ("A", T(2023, 7, 1, 0, 0), 10, None, "bill"),
            ("A", D(2024, 5, 31), 100, None, "bill"),
            ("A", T(2024, 6, 30, 18, 0), 1000, None, "bill"),  # the churn day itself: inside
            ("A", D(2024, 7, 1), 10000, None, "bill"),  # after the churn: outside
            ("B", D(2024, 6, 1), 99999, None, "bill"),  # B has not churned (its end is past the as-of grace)
        ),
    )
    assert churn_loss(store, **YEAR, rules=RULES).lost_revenue == 1110
    assert churn_loss(store, **YEAR, rules=RULES, window_months=1).lost_revenue == 1100  # 2024-05-31 … 06-30
    # Only churns inside [from, to] count.
    assert churn_loss(store, start=D(2024, 7, 1), end=D(2024, 12, 31), rules=RULES).churned_customers == 0
    assert churn_loss(store, start=D(2024, 6, 30), end=D(2024, 6, 30), rules=RULES).churned_customers == 1


def test_kind_payment_refund_credit_are_not_revenue(store: Store) -> None:
    load(
        store,
        customers=customers(("A", "C1")),
        subscriptions=subs(("A", D(2022, 1, 1), D(2024, 6, 30), 5.0)),
        transactions=txs(
            ("A", D(2024, 1, 1), 100, None, "bill"),
            ("A", D(2024, 1, 2), 100, None, "payment"),
            ("A", D(2024, 1, 3), 100, None, " PAYMENT "),
            ("A", D(2024, 1, 4), 30, None, "refund"),
            ("A", D(2024, 1, 5), 20, None, "Credit"),
            ("A", D(2024, 1, 6), 50, None, "topup"),
            ("A", D(2024, 1, 7), 5, None, None),
        ),
    )
    assert churn_loss(store, **YEAR, rules=RULES).lost_revenue == 155
    assert "kind" in revenue_condition(store)


def test_without_a_kind_column_every_amount_is_revenue(store: Store) -> None:
    load(
        store,
        customers=customers(("A", "C1")),
        subscriptions=subs(("A", D(2022, 1, 1), D(2024, 6, 30), 5.0)),
        transactions=txs(("A", D(2024, 1, 1), 100, None), ("A", D(2024, 1, 2), 100, None), kind=False),
    )
    assert "kind" not in revenue_condition(store)
    assert churn_loss(store, **YEAR, rules=RULES).lost_revenue == 200


def test_margin_column_option_and_neither(store: Store) -> None:
    load(
        store,
        customers=customers(("A", "C1"), ("B", "C1")),
        subscriptions=subs(("A", D(2022, 1, 1), D(2024, 6, 30), 5.0), ("B", D(2022, 1, 1), D(2024, 8, 31), 5.0)),
        transactions=txs(
            ("A", D(2024, 1, 1), 100, 40, "bill"),
            ("A", D(2024, 2, 1), 100, 30, "bill"),
            ("B", D(2024, 3, 1), 200, None, "bill"),  # no margin recorded
        ),
    )
    d = churn_loss(store, **YEAR, rules=RULES).to_dict()
    assert (d["lost_revenue"], d["profit_loss"], d["margin_source"]) == (400, 70, "transactions")
    assert d["margin"] == pytest.approx(70 / 400)
    assert d["lost_revenue_without_margin"] == 200
    d = churn_loss(store, **YEAR, rules=RULES, margin=0.1).to_dict()
    assert (d["profit_loss"], d["margin"], d["margin_source"], d["lost_revenue_without_margin"]) == (
        40,
        0.1,
        "option",
        None,
    )
    store.execute("UPDATE transactions SET margin = NULL")
    d = churn_loss(store, **YEAR, rules=RULES).to_dict()
    assert (d["lost_revenue"], d["profit_loss"], d["margin"], d["margin_source"]) == (400, None, None, None)


def test_subscription_fallback(store: Store) -> None:
    # A: no transactions, 50 a month all year before the churn: 12 × 50.
    # B: 50 a month 2023-07-01 … 2023-12-31 (184 days), 80 from 2024-01-01 to the churn on 2024-06-30
    #    (182 days); the window has 366 days: (50·184 + 80·182) · 12 / 366.
    # C: has a transaction, so it is valued from transactions, not its subscription.
    load(
        store,
        customers=customers(("A", "C1"), ("B", "C1"), ("C", "C2")),
        subscriptions=subs(
            ("A", D(2022, 1, 1), D(2024, 6, 30), 50.0),
            ("B", D(2023, 7, 1), D(2023, 12, 31), 50.0),
            ("B", D(2024, 1, 1), D(2024, 6, 30), 80.0),
            ("C", D(2022, 1, 1), D(2024, 6, 30), 1000.0),
        ),
        transactions=txs(("C", D(2024, 1, 1), 7, 1, "bill")),
    )
    d = churn_loss(store, **YEAR, rules=RULES, by="plan").to_dict()
    expected_b = (50 * 184 + 80 * 182) * 12 / 366
    assert d["lost_revenue"] == pytest.approx(600 + expected_b + 7, abs=0.01)
    assert d["revenue_sources"] == {"transactions": 1, "subscriptions": 2, "none": 0}
    by_customer = {t["customer_id"]: t for t in d["top_customers"]}
    assert by_customer["A"]["lost_revenue"] == 600
    assert by_customer["B"]["lost_revenue"] == pytest.approx(expected_b, abs=0.01)
    assert by_customer["B"]["revenue_source"] == "subscriptions"
    # The transactions' margin covers only C; the rest is reported as without a margin.
    assert d["profit_loss"] == 1
    assert d["lost_revenue_without_margin"] == pytest.approx(600 + expected_b, abs=0.01)


def test_a_customer_who_churned_twice_is_not_charged_twice(store: Store) -> None:
    # Spell 1 ends 2024-03-31; the customer is back on 2024-06-01 (past the 30-day grace) and leaves
    # again on 2024-10-31.  Bills of 100 on each month's first day while subscribed.
    months = [D(2023, m, 1) for m in range(4, 13)] + [D(2024, m, 1) for m in (1, 2, 3, 6, 7, 8, 9, 10)]
    load(
        store,
        customers=customers(("A", "C1")),
        subscriptions=subs(("A", D(2023, 4, 1), D(2024, 3, 31), 100.0), ("A", D(2024, 6, 1), D(2024, 10, 31), 100.0)),
        transactions=txs(*[("A", m, 100, None, "bill") for m in months]),
    )
    report = churn_loss(store, **YEAR, rules=RULES)
    assert report.churned_customers == 2
    losses = sorted((t["churn_date"], t["lost_revenue"]) for t in report.top_customers)
    assert losses == [("2024-03-31", 1200), ("2024-10-31", 500)]  # not 1,200 + 1,200
    assert report.lost_revenue == 1700


def test_branch_scope_and_by_branch(store: Store) -> None:
    load(
        store,
        customers=customers(("A", "C1"), ("B", "C2"), ("C", "P2"), ("D", "P1")),
        subscriptions=subs(*[(c, D(2022, 1, 1), D(2024, 6, 30), 5.0) for c in "ABCD"]),
        transactions=txs(
            *[(c, D(2024, 1, 1), amount, None, "bill") for c, amount in zip("ABCD", (1, 10, 100, 1000), strict=True)]
        ),
    )
    assert churn_loss(store, **YEAR, rules=RULES).lost_revenue == 1111
    assert churn_loss(store, **YEAR, rules=RULES, branch="P1").lost_revenue == 1011
    assert churn_loss(store, **YEAR, rules=RULES, branch="C2").lost_revenue == 10
    rows = churn_loss(store, **YEAR, rules=RULES, branch="P1", by="branch").to_dict()["rows"]
    assert [(r["branch"], r["lost_revenue"], r["churned_customers"]) for r in rows] == [
        ("P1", 1000, 1),  # attached to P1 itself
        ("C2", 10, 1),
        ("C1", 1, 1),
    ]
    assert sum(r["share_of_loss"] for r in rows) == pytest.approx(1)


def test_by_reason_and_top_customers_carry_the_recorded_reason(store: Store) -> None:
    load(
        store,
        customers=customers(("A", "C1"), ("B", "C1"), ("C", "C1")),
        subscriptions=subs(*[(c, D(2022, 1, 1), D(2024, 6, 30), 5.0) for c in "ABC"]),
        transactions=txs(
            *[(c, D(2024, 1, 1), amount, None, "bill") for c, amount in zip("ABC", (300, 200, 100), strict=True)]
        ),
        churn_events={
            "customer_id": ["A", "B"],
            "churn_date": [D(2024, 6, 30), D(2024, 7, 2)],
            "reason_code": ["price", "price"],
        },
    )
    d = churn_loss(store, **YEAR, rules=RULES, by="reason").to_dict()
    assert [(r["reason"], r["lost_revenue"], r["churned_customers"]) for r in d["rows"]] == [
        ("price", 500, 2),
        ("(unknown)", 100, 1),
    ]
    assert [(t["customer_id"], t["reason_code"]) for t in d["top_customers"]] == [
        ("A", "price"),
        ("B", "price"),
        ("C", None),
    ]


def test_non_contractual_churn_date_is_the_declared_one(store: Store) -> None:
    # Purchases never more than 90 days apart from 2023-05-01 to 2024-03-01: one spell.  With 90 days
    # of inactivity the churn date is 2024-03-01 + 90 days = 2024-05-30, and the 12-month window
    # (2023-05-31 … 2024-05-30) leaves out only the first purchase.
    days = [D(2023, 5, 1), D(2023, 6, 1), D(2023, 8, 1), D(2023, 10, 1), D(2023, 12, 1), D(2024, 1, 15), D(2024, 3, 1)]
    amounts = [1, 10, 10, 10, 10, 10, 100]
    load(
        store,
        customers=customers(("A", "C1")),
        transactions=txs(*[("A", d, a, None, "purchase") for d, a in zip(days, amounts, strict=True)]),
    )
    rules = ActivityRules(definition="non_contractual", inactivity_days=90, as_of=AS_OF)
    report = churn_loss(store, **YEAR, rules=rules)
    assert [t["churn_date"] for t in report.top_customers] == ["2024-05-30"]
    assert report.lost_revenue == 150
    # With 60 days of inactivity the gaps of 61 days split it: the last spell starts 2023-12-01, and
    # its window stops there (10 + 10 + 100).
    rules = ActivityRules(definition="non_contractual", inactivity_days=60, as_of=AS_OF)
    report = churn_loss(store, **YEAR, rules=rules)
    assert [(t["churn_date"], t["lost_revenue"]) for t in report.top_customers] == [("2024-04-30", 120)]


def test_no_churn_is_no_loss(store: Store) -> None:
    load(store, customers=customers(("A", "C1")), subscriptions=subs(("A", D(2022, 1, 1), None, 5.0)))
    d = churn_loss(store, **YEAR, rules=RULES, margin=0.2, by="plan").to_dict()
    assert (d["churned_customers"], d["lost_revenue"], d["profit_loss"], d["rows"], d["top_customers"]) == (
        0,
        0,
        0,
        [],
        [],
    )


def test_windows_before_the_data_warn(store: Store) -> None:
    load(
        store,
        customers=customers(("A", "C1")),
        subscriptions=subs(("A", D(2022, 1, 1), D(2024, 3, 31), 5.0)),
        transactions=txs(("A", D(2023, 9, 1), 100, None, "bill")),  # the data begin after 2023-04-01
    )
    with pytest.warns(TruncatedWindowWarning, match="before the first transaction"):
        d = churn_loss(store, **YEAR, rules=RULES).to_dict()
    assert d["windows_before_data"] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        churn_loss(store, **YEAR, rules=RULES, window_months=6)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"margin": 5.0}, "--margin: expected a fraction between -1 and 1 (0.05 for 5 %), got 5.0"),
        ({"window_months": 0}, "--window-months: expected a whole number of months from 1 to 120, got 0"),
        (
            {"by": "colour"},
            '--by: expected one of branch, plan, segment, tier, cohort, reason, destination, got "colour"',
        ),
        ({"branch": "XX"}, 'branch "XX": expected a branch id such as HQ'),
        ({"start": D(2025, 1, 1)}, "--to 2024-12-31 is before --from 2025-01-01"),
    ],
)
def test_bad_options_are_named(store: Store, kwargs: dict[str, Any], fragment: str) -> None:
    load(store)
    args = {**YEAR, "rules": RULES, **kwargs}
    with pytest.raises(ConfigError) as info:
        churn_loss(store, **args)
    assert fragment in str(info.value)


# -- key accounts ----------------------------------------------------------------------------------


def key_store(store: Store, tiers: list[str | None]) -> Store:
    """Six customers K0 … K5 with trailing revenue 600, 500, … 100 before 2024; K0, K1 and K5 churn
    on 2024-06-30 (with their 2024 revenue 60, 50, 10), K4 signs up on 2024-02-01 and K3 churned in 2023."""
    ids = [f"K{i}" for i in range(6)]
    ends: list[dt.date | None] = [D(2024, 6, 30), D(2024, 6, 30), None, D(2023, 6, 30), None, D(2024, 6, 30)]
    starts = [D(2022, 1, 1)] * 4 + [D(2024, 2, 1), D(2022, 1, 1)]
    rows = []
    for i, c in enumerate(ids):
        rows.append((c, D(2023, 3, 1), (6 - i) * 100, (6 - i) * 10, "bill"))
        rows.append((c, D(2024, 3, 1), (6 - i) * 10, None, "bill"))
    rows = [r for r in rows if r[0] != "K4" or r[1] >= D(2024, 2, 1)]
    return load(
        store,
        customers={**customers(*[(c, "C1" if i % 2 else "C2") for i, c in enumerate(ids)]), "tier_override": tiers},
        subscriptions=subs(*[(c, starts[i], ends[i], 1.0) for i, c in enumerate(ids)]),
        transactions=txs(*rows),
        churn_events={"customer_id": ["K0"], "churn_date": [D(2024, 6, 30)], "reason_code": ["competitor"]},
    )


def test_key_accounts_flagged_vip_or_a_in_any_case(store: Store) -> None:
    key_store(store, ["vip", "A", "VIP", None, "Vip", "B"])
    k = key_account_churn(store, **YEAR, rules=RULES, margin=0.5)
    assert k["selection"]["method"] == "flagged"
    assert k["selection"]["key_accounts"] == 4  # K0, K1, K2, K4
    # At the start: K0, K1, K2 (K4 is new); K0 and K1 churned.
    assert (k["start_customers"], k["churned_customers"], k["churn_rate"]) == (3, 2, pytest.approx(2 / 3, abs=1e-6))
    # Windows 2023-07-01 … 2024-06-30 hold only the 2024 bills: K0 60, K1 50.
    assert (k["lost_revenue"], k["profit_loss"]) == (110, 55)
    assert [(a["customer_id"], a["lost_revenue"], a["reason_code"], a["tier"]) for a in k["lost_accounts"]] == [
        ("K0", 60, "competitor", "VIP"),
        ("K1", 50, None, "A"),
    ]
    assert k["lost_accounts"][0]["branch_id"] == "C2"
    others = k["others"]
    assert (others["start_customers"], others["churned_customers"], others["lost_revenue"]) == (1, 1, 10)  # K5
    assert k["share_of_lost_revenue"] == pytest.approx(110 / 120, abs=1e-6)
    assert key_account_churn(store, **YEAR, rules=RULES, branch="C1")["lost_revenue"] == 50


def test_key_accounts_from_customer_value_tier_a(store: Store) -> None:
    key_store(store, [None] * 6)
    store.execute("INSERT INTO customer_value (customer_id, tier) VALUES ('K5', 'a'), ('K1', 'B')")
    k = key_account_churn(store, **YEAR, rules=RULES)
    assert k["selection"]["method"] == "flagged"
    assert "customer_value.tier" in k["selection"]["rule"]
    assert [a["customer_id"] for a in k["lost_accounts"]] == ["K5"]
    assert (k["start_customers"], k["churned_customers"], k["lost_revenue"]) == (1, 1, 10)


def test_key_accounts_fall_back_to_the_top_share_by_trailing_revenue(store: Store) -> None:
    key_store(store, [None] * 6)
    # Active at 2024-01-01: K0, K1, K2, K5 (4); revenue in 2023: 600, 500, 400, 100.
    # top_share 0.5 -> ranks ≤ ceil(0.5 · 4) = 2: K0 and K1.
    k = key_account_churn(store, **YEAR, rules=RULES, top_share=0.5)
    assert k["selection"]["method"] == "top_share"
    assert k["selection"]["key_accounts"] == 2
    assert [a["customer_id"] for a in k["lost_accounts"]] == ["K0", "K1"]
    assert k["start_customers"] == 2 and k["churn_rate"] == 1
    k = key_account_churn(store, **YEAR, rules=RULES, top_share=0.1)  # ceil(0.4) = 1
    assert [a["customer_id"] for a in k["lost_accounts"]] == ["K0"]
    with pytest.raises(ConfigError, match="--top-share"):
        key_account_churn(store, **YEAR, rules=RULES, top_share=0)


# -- the real CLI ----------------------------------------------------------------------------------


def cg(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNGUARD_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "churnguard", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_loss_json_and_table(worked: Path) -> None:
    db = str(worked)
    common = ("--from", "2024-01-01", "--to", "2024-12-31", "--as-of", "2024-12-31")
    r = cg("--db", db, "metrics", "loss", *common, "--margin", "0.05", "--by", "branch", "--format", "json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert (d["churned_customers"], d["lost_revenue"], d["profit_loss"]) == (200, 30_000_000, 1_500_000)
    assert [row["branch"] for row in d["rows"]] == ["P1", "P2"]
    r = cg("--db", db, "metrics", "loss", *common, "--margin", "0.05")
    assert r.returncode == 0, r.stderr
    assert "30,000,000.00" in r.stdout and "1,500,000.00" in r.stdout


def test_cli_key_accounts(tmp_path: Path, store_templates: dict[str, Path], make_store: Callable[..., Path]) -> None:
    db = str(make_store(["vip", "A", "VIP", None, "Vip", "B"]))
    args = ("--from", "2024-01-01", "--to", "2024-12-31", "--as-of", "2024-12-31")
    r = cg("--db", db, "metrics", "key-accounts", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert (d["start_customers"], d["churned_customers"], d["lost_revenue"]) == (3, 2, 110)
    r = cg("--db", db, "--lang", "zh", "metrics", "key-accounts", *args)
    assert r.returncode == 0, r.stderr
    assert "大客户" in r.stdout and "K0" in r.stdout


@pytest.fixture
def make_store(tmp_path: Path, store_templates: dict[str, Path]) -> Callable[..., Path]:
    """``make_store(tiers)``: the key-account store of :func:`key_store` in a closed DuckDB file."""
    import shutil

    def make(tiers: list[str | None]) -> Path:
        path = tmp_path / "keys.duckdb"
        shutil.copyfile(store_templates["empty"], path)
        with churnguard.connect(path) as s:
            key_store(s, tiers)
        return path

    return make
