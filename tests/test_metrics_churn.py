"""Churn counts and rates on tiny stores computed by hand (docs/metrics.md)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

import churnguard
from churnguard.errors import ConfigError
from churnguard.ingest import LoadSpec
from churnguard.metrics import ActivityRules, annualise, churn_report, monthly_from_annual, rules_for
from churnguard.metrics.activity import spells_sql

D = dt.date
AS_OF = D(2025, 6, 30)
BRANCHES = pa.table(
    {
        "branch_id": ["HQ", "GD", "GZ", "SZ", "ZJ"],
        "name": ["Head office", "Guangdong", "Guangzhou", "Shenzhen", "Zhejiang"],
        "parent_id": [None, "HQ", "GD", "GD", "HQ"],
    }
)
# id, branch, plan, segment, subscriptions [(start, end)]
PEOPLE = [
    ("A", "GZ", "basic", "consumer", [("2023-01-01", None)]),  # active all year
    ("B", "GZ", "basic", "consumer", [("2023-06-01", "2024-03-15")]),  # churns, was there at the start
    ("C", "SZ", "pro", "business", [("2024-02-01", None)]),  # new
    ("D", "SZ", "pro", "business", [("2024-02-01", "2024-05-31")]),  # new, churns in the year
    ("E", "ZJ", "basic", "consumer", [("2022-01-01", "2023-12-31")]),  # gone before the year
    ("F", "ZJ", "basic", "consumer", [("2023-01-01", "2023-06-30"), ("2024-04-01", None)]),  # comes back
    # renewals within the grace period continue the spell; a plan change too
    ("G", "GZ", "basic", "consumer", [("2023-01-01", "2023-12-31"), ("2024-01-20", "2024-12-31")]),
    ("H", "GZ", "pro", "consumer", [("2023-05-01", "2024-02-29"), ("2024-03-01", None)]),
]


@pytest.fixture
def store(tmp_path: Path) -> churnguard.Store:
    s = churnguard.connect(tmp_path / "m.duckdb")
    customers = pa.table(
        {
            "customer_id": [p[0] for p in PEOPLE],
            "branch_id": [p[1] for p in PEOPLE],
            "signup_date": [p[4][0][0] for p in PEOPLE],
            "plan": [p[2] for p in PEOPLE],
            "segment": [p[3] for p in PEOPLE],
        }
    )
    subs = [(p[0], p[2], start, end) for p in PEOPLE for start, end in p[4]]
    subscriptions = pa.table(
        {
            "customer_id": [x[0] for x in subs],
            "plan": [x[1] + ("-2" if i and subs[i - 1][0] == x[0] else "") for i, x in enumerate(subs)],
            "start_date": [x[2] for x in subs],
            "end_date": [x[3] for x in subs],
            "recurring_revenue": [10.0] * len(subs),
        }
    )
    churnguard.ingest_tables(
        s,
        [LoadSpec("branches", BRANCHES), LoadSpec("customers", customers), LoadSpec("subscriptions", subscriptions)],
        as_of=AS_OF,
    )
    return s


RULES = ActivityRules(definition="contractual", grace_days=30, as_of=AS_OF)
YEAR = {"start": D(2024, 1, 1), "end": D(2024, 12, 31)}


def spells(store: churnguard.Store, rules: ActivityRules) -> list[tuple]:
    sql, params = spells_sql(rules)
    return store.execute(
        f"SELECT customer_id, spell_no, start_date, end_date FROM ({sql}) ORDER BY 1, 2", params
    ).fetchall()


def test_spells_merge_renewals_within_the_grace_period_and_split_after_it(store) -> None:
    got = {(c, n): (s, e) for c, n, s, e in spells(store, RULES)}
    assert got[("G", 1)] == (D(2023, 1, 1), D(2024, 12, 31))  # renewed 20 days after the end: one spell
    assert got[("H", 1)] == (D(2023, 5, 1), None)  # plan change the next day: one open spell
    assert got[("F", 1)] == (D(2023, 1, 1), D(2023, 6, 30))  # 9 months away: two spells
    assert got[("F", 2)] == (D(2024, 4, 1), None)
    # With a grace period of 10 days, G's renewal after 20 days is a new spell (a reactivation).
    short = {(c, n): (s, e) for c, n, s, e in spells(store, ActivityRules(grace_days=10, as_of=AS_OF))}
    assert short[("G", 1)] == (D(2023, 1, 1), D(2023, 12, 31)) and ("G", 2) in short


def test_an_end_inside_the_grace_period_of_the_as_of_date_is_not_churn_yet(store) -> None:
    rules = ActivityRules(grace_days=30, as_of=D(2024, 4, 1))  # B ended 2024-03-15: may still renew
    got = {(c, n): e for c, n, _, e in spells(store, rules)}
    assert got[("B", 1)] is None
    rules = ActivityRules(grace_days=30, as_of=D(2024, 4, 14))
    assert {(c, n): e for c, n, _, e in spells(store, rules)}[("B", 1)] == D(2024, 3, 15)


def test_counts_and_rates_for_a_year_by_hand(store) -> None:
    t = churn_report(store, rules=RULES, **YEAR).totals
    # start: A B G H (F's first spell ended in 2023, E too); new: C D; back: F; churned: B D G.
    assert t["start_customers"] == 4
    assert t["new_customers"] == 2
    assert t["reactivated_customers"] == 1
    assert t["churned_customers"] == 3
    assert t["churned_from_start"] == 2  # B and G
    assert t["end_customers"] == 4  # A C F H
    assert t["end_customers"] == t["start_customers"] + t["new_customers"] + t["reactivated_customers"] - 3
    assert t["churn_rate"] == pytest.approx(2 / 4)
    assert t["retention_rate"] == pytest.approx(1 - 2 / 4)
    end_count = churn_report(store, rules=RULES, definition="end_count", **YEAR).totals
    assert end_count["churn_rate"] == pytest.approx((4 - (4 - 3)) / 4)
    average = churn_report(store, rules=RULES, definition="average", **YEAR).totals
    assert average["churn_rate"] == pytest.approx(3 / 4)
    daily = churn_report(store, rules=RULES, definition="daily", **YEAR).totals
    exposure = t["customer_days"]
    assert daily["churn_rate"] == pytest.approx(
        1 - (1 - 3 / exposure) ** 366, abs=1e-6
    )  # rates are rounded to 6 places


def test_customer_days_are_the_days_in_the_period_each_spell_covers(store) -> None:
    t = churn_report(store, rules=RULES, start=D(2024, 3, 1), end=D(2024, 3, 31)).totals
    # March 2024: A C D F? (F back in April: no) G H full month = 5 × 31, B until the 15th.
    assert t["customer_days"] == 5 * 31 + 15


def test_rows_per_quarter_carry_the_change_against_the_previous_quarter(store) -> None:
    rows = churn_report(store, rules=RULES, period="quarter", **YEAR).rows
    assert [r["period"] for r in rows] == ["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4"]
    q1, q2 = rows[0], rows[1]
    assert (q1["start_customers"], q1["churned_from_start"]) == (4, 1)  # B leaves in March
    assert q1["churn_rate"] == pytest.approx(1 / 4)
    assert (q2["start_customers"], q2["churned_from_start"]) == (5, 1)  # A C D G H; D leaves in May
    assert q2["churn_rate_change"] == pytest.approx(1 / 5 - 1 / 4)
    assert q2["churn_rate_change_relative"] == pytest.approx((1 / 5 - 1 / 4) / (1 / 4))
    assert q1["churn_rate_change"] is None


def test_by_branch_rolls_the_tree_up_and_scopes_drill_down(store) -> None:
    rows = {r["branch"]: r for r in churn_report(store, rules=RULES, by="branch", **YEAR).rows}
    assert set(rows) == {"GD", "ZJ"}  # head office sees its provinces
    assert rows["GD"]["start_customers"] == 4  # A B G H are in Guangzhou, under Guangdong
    assert rows["ZJ"]["reactivated_customers"] == 1
    gd = churn_report(store, rules=RULES, by="branch", branch="GD", **YEAR)
    assert {r["branch"] for r in gd.rows} == {"GZ", "SZ"}  # a province sees its cities
    assert gd.totals["start_customers"] == 4 and gd.totals["new_customers"] == 2
    with pytest.raises(ConfigError, match='branch "XX"'):
        churn_report(store, rules=RULES, branch="XX", **YEAR)


def test_by_plan_segment_and_cohort(store) -> None:
    plans = {r["plan"]: r["start_customers"] for r in churn_report(store, rules=RULES, by="plan", **YEAR).rows}
    assert plans == {"basic": 3, "pro": 1}
    cohorts = {r["cohort"] for r in churn_report(store, rules=RULES, by="cohort", **YEAR).rows}
    assert "2024-02" in cohorts and "2023-01" in cohorts


def test_non_contractual_churn_comes_from_inactivity(tmp_path: Path) -> None:
    s = churnguard.connect(tmp_path / "n.duckdb")
    tx = pa.table(
        {
            "customer_id": ["A", "A", "A", "B", "B"],
            "ts": ["2024-01-05", "2024-02-01", "2024-06-01", "2024-01-10", "2024-01-20"],
            "amount": [1.0] * 5,
        }
    )
    churnguard.ingest_tables(
        s,
        [
            LoadSpec("branches", BRANCHES),
            LoadSpec(
                "customers",
                pa.table(
                    {"customer_id": ["A", "B"], "branch_id": ["GZ", "GZ"], "signup_date": ["2024-01-05", "2024-01-10"]}
                ),
            ),
            LoadSpec("transactions", tx),
        ],
        as_of=D(2024, 12, 31),
    )
    rules = rules_for(s, inactivity_days=60, as_of=D(2024, 12, 31))
    assert rules.definition == "non_contractual"  # no subscriptions
    got = spells(s, rules)
    # A: Jan 5 – Feb 1, then a 4-month gap, back Jun 1, gone 60 days after; B gone 60 days after Jan 20.
    assert got == [
        ("A", 1, D(2024, 1, 5), D(2024, 4, 1)),
        ("A", 2, D(2024, 6, 1), D(2024, 7, 31)),
        ("B", 1, D(2024, 1, 10), D(2024, 3, 20)),
    ]


def test_rate_conversions() -> None:
    assert annualise(0.02) == pytest.approx(1 - 0.98**12)
    assert monthly_from_annual(annualise(0.02)) == pytest.approx(0.02)


def test_bad_options_are_clear_errors(store) -> None:
    with pytest.raises(ConfigError, match="expected from ≤ to"):
        churn_report(store, rules=RULES, start=D(2024, 2, 1), end=D(2024, 1, 1))
    with pytest.raises(ConfigError, match="--by: expected one of"):
        churn_report(store, rules=RULES, by="colour", **YEAR)
    with pytest.raises(ConfigError, match="--definition"):
        churn_report(store, rules=RULES, definition="weird", **YEAR)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="churn definition"):
        ActivityRules(definition="sometimes")  # type: ignore[arg-type]


def test_cli_prints_the_contracted_keys(store, tmp_path: Path) -> None:
    db = str(store.url.path)
    store.close()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "churnguard",
            "--db",
            db,
            "metrics",
            "churn",
            "--from",
            "2024-01-01",
            "--to",
            "2024-12-31",
            "--period",
            "quarter",
            "--by",
            "branch",
            "--as-of",
            "2025-06-30",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    for key in (
        "start_customers",
        "new_customers",
        "churned_customers",
        "end_customers",
        "churn_rate",
        "retention_rate",
    ):
        assert key in data
        assert all(key in row for row in data["rows"])
    assert all("churn_rate_change" in row for row in data["rows"])
    assert data["start_customers"] == 4 and data["churn_rate"] == pytest.approx(0.5)
    assert {(row["period"], row["branch"]) for row in data["rows"]} >= {("2024-Q1", "GD"), ("2024-Q4", "ZJ")}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "churnguard",
            "--db",
            db,
            "metrics",
            "churn",
            "--from",
            "2024-13-01",
            "--to",
            "2024-12-31",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and 'expected a date like 2024-01-31, got "2024-13-01"' in r.stderr


def test_by_reason_lists_every_reason_in_every_period(store) -> None:
    events = pa.table(
        {
            "customer_id": ["B", "D", "G"],
            "churn_date": ["2024-03-15", "2024-05-31", "2024-12-31"],
            "reason_code": ["price", "service", "price"],
        }
    )
    churnguard.ingest_table(store, "churn_events", events, as_of=AS_OF)
    rows = churn_report(store, rules=RULES, period="quarter", by="reason", **YEAR).rows
    price = {r["period"]: r for r in rows if r["reason"] == "price"}
    assert [price[q]["churned_customers"] for q in ("2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4")] == [1, 0, 0, 1]
    assert price["2024-Q1"]["churn_rate"] == pytest.approx(1 / 4)  # B of the 4 at the start of Q1
    # The change is against the quarter just before, also when that quarter had no such churn.
    assert price["2024-Q2"]["churn_rate_change"] == pytest.approx(0 - 1 / 4)
    assert price["2024-Q4"]["churn_rate_change"] == pytest.approx(price["2024-Q4"]["churn_rate"])
    assert price["2024-Q1"]["share_of_churned"] == pytest.approx(1.0)  # B was Q1's only churn
    assert {r["reason"] for r in rows} == {"price", "service"}


def test_a_recorded_churn_event_confirms_churn_inside_the_grace_period(store) -> None:
    rules = ActivityRules(grace_days=30, as_of=D(2024, 3, 20))  # B ended 2024-03-15: may still renew
    assert dict(((c, n), e) for c, n, _, e in spells(store, rules))[("B", 1)] is None
    churnguard.ingest_table(
        store, "churn_events", pa.table({"customer_id": ["B"], "churn_date": ["2024-03-15"]}), as_of=AS_OF
    )
    assert dict(((c, n), e) for c, n, _, e in spells(store, rules))[("B", 1)] == D(2024, 3, 15)


def test_telco_snapshot_churners_count_as_churned(tmp_path: Path) -> None:
    from churnguard.datasets.real import load_dataset

    s = churnguard.connect(tmp_path / "t.duckdb")
    load_dataset(s, "telco")
    t = churn_report(s, rules=rules_for(s), start=D(2019, 7, 1), end=D(2019, 9, 30)).totals
    assert t["churned_customers"] == 1869


def test_a_churn_event_after_the_as_of_date_is_not_known_yet(store) -> None:
    churnguard.ingest_table(
        store, "churn_events", pa.table({"customer_id": ["B"], "churn_date": ["2024-03-25"]}), as_of=AS_OF
    )
    rules = ActivityRules(grace_days=30, as_of=D(2024, 3, 20))  # recorded on the 25th: unknown on the 20th
    assert dict(((c, n), e) for c, n, _, e in spells(store, rules))[("B", 1)] is None


def test_cli_labels_in_chinese(store, tmp_path: Path) -> None:
    churnguard.ingest_table(
        store, "churn_events", pa.table({"customer_id": ["B"], "churn_date": ["2024-03-15"], "reason_code": ["price"]})
    )
    db = str(store.url.path)
    store.close()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "churnguard",
            "--db",
            db,
            "--lang",
            "zh",
            "metrics",
            "churn",
            "--from",
            "2024-01-01",
            "--to",
            "2024-12-31",
            "--by",
            "reason",
            "--as-of",
            "2025-06-30",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert r.returncode == 0, r.stderr
    assert "期初客户数" in r.stdout and "客户流失率" in r.stdout and "价格因素" in r.stdout
