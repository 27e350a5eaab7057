"""Churn around a dated change: a hand-built store with known numbers, the demo's price rise, the real CLI."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import build_demo_store

import churnguard
from churnguard import LoadSpec, ingest_tables
from churnguard.errors import ConfigError
from churnguard.metrics import ActivityRules, churn_report
from churnguard.metrics.changes import IncompleteWindowWarning, change_impact
from churnguard.store import Store

AS_OF = dt.date(2024, 12, 31)
RULES = ActivityRules(definition="contractual", grace_days=30, as_of=AS_OF)
CHANGE = dt.date(2024, 7, 1)
# window_days=90: before 2024-04-02 … 2024-06-30, after 2024-07-01 … 2024-09-28.


def build_store(folder: Path) -> Path:
    """The smart plan's customers in branch P1, basic's in P2, all from 2023-01-01, and a few edge cases.

    - smart S000–S099: 5 churn 2024-05-10 (3 product, 2 price), 24 churn 2024-08-10 (20 price, 4 product),
      1 churns 2024-10-15 (after the after window);
    - basic B000–B209: 21 churn 2024-05-10 (natural), 27 churn 2024-08-10 (20 natural, 7 price);
      B209 moves to smart on 2024-06-15 (it is basic at the before window's start, smart at the change);
    - N joins smart on 2024-05-01 (not at the before window's start; at the change it is);
    - M joins smart on 2024-07-01 and churns 2024-08-01 (new in the after window: in neither population);
    - L (smart) churned 2024-04-01, the day before the before window.
    """
    customers = ["customer_id,branch_id,signup_date,plan"]
    subs = ["customer_id,plan,start_date,end_date,recurring_revenue"]
    events = ["customer_id,churn_date,voluntary,reason_code"]

    def add(cid: str, branch: str, plan: str, start: str, end: str = "", reason: str | None = None) -> None:
        customers.append(f"{cid},{branch},{start},{plan}")
        subs.append(f"{cid},{plan},{start},{end},10")
        if end and reason:
            events.append(f"{cid},{end},true,{reason}")

    smart = [("2024-05-10", "product")] * 3 + [("2024-05-10", "price")] * 2
    smart += [("2024-08-10", "price")] * 20 + [("2024-08-10", "product")] * 4 + [("2024-10-15", "natural")]
    for i in range(100):
        end, why = smart[i] if i < len(smart) else ("", None)
        add(f"S{i:03d}", "P1", "smart", "2023-01-01", end, why)
    basic = [("2024-05-10", "natural")] * 21 + [("2024-08-10", "natural")] * 20 + [("2024-08-10", "price")] * 7
    for i in range(209):
        end, why = basic[i] if i < len(basic) else ("", None)
        add(f"B{i:03d}", "P2", "basic", "2023-01-01", end, why)
    customers.append("B209,P2,2023-01-01,smart")
    subs += ["B209,basic,2023-01-01,2024-06-14,10", "B209,smart,2024-06-15,,10"]
    add("N", "P1", "smart", "2024-05-01")
    add("M", "P1", "smart", "2024-07-01", "2024-08-01", "price")
    add("L", "P1", "smart", "2023-01-01", "2024-04-01", "price")
    tables = {
        "branches": ["branch_id,name,parent_id", "HQ,Head office,", "P1,Province One,HQ", "P2,Province Two,HQ"],
        "customers": customers,
        "subscriptions": subs,
        "churn_events": events,
    }
    loads = []
    for name, lines in tables.items():
        path = folder / f"{name}.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        loads.append(LoadSpec(name, path))
    db = folder / "changes.duckdb"
    with churnguard.connect(db) as s:
        ingest_tables(s, loads, as_of=AS_OF)
        s.set_meta("churn_definition", "contractual")
        s.set_meta("dataset_as_of", AS_OF.isoformat())
    return db


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("changes"))


@pytest.fixture
def hand(db: Path) -> Iterator[Store]:
    s = churnguard.connect(db)
    try:
        yield s
    finally:
        s.close()


def test_plan_change_rates_did_and_reasons_by_hand(hand: Store) -> None:
    impact = change_impact(hand, rules=RULES, change_date=CHANGE, plan="smart", window_days=90)
    assert impact.before == (dt.date(2024, 4, 2), dt.date(2024, 6, 30))
    assert impact.after == (dt.date(2024, 7, 1), dt.date(2024, 9, 28))
    t, u = impact.groups["touched"], impact.groups["untouched"]
    # Touched: 100 smart at the before start (L gone, N not yet, B209 still basic), 5 churn;
    # at the change 95 + B209 + N = 97, 24 churn (the 2024-10-15 churn is after the window, M is new).
    assert (t["before"]["start_customers"], t["before"]["churned_customers"]) == (100, 5)
    assert (t["after"]["start_customers"], t["after"]["churned_customers"]) == (97, 24)
    # Untouched: 210 basic (B209 included), 21 churn; then 210 − 21 − B209 = 188, 27 churn.
    assert (u["before"]["start_customers"], u["before"]["churned_customers"]) == (210, 21)
    assert (u["after"]["start_customers"], u["after"]["churned_customers"]) == (188, 27)
    assert impact.rate("touched", "before") == pytest.approx(0.05)
    assert impact.rate("touched", "after") == pytest.approx(24 / 97, abs=1e-6)
    assert t["change_pp"] == pytest.approx(24 / 97 - 0.05, abs=1e-6)
    assert t["change_relative"] == pytest.approx((24 / 97 - 0.05) / 0.05, abs=1e-5)
    did = (24 / 97 - 0.05) - (27 / 188 - 0.1)
    assert impact.did == pytest.approx(did, abs=1e-6)
    cells = [(0.05, 100), (24 / 97, 97), (0.1, 210), (27 / 188, 188)]
    se = sum(r * (1 - r) / n for r, n in cells) ** 0.5
    assert impact.did_se == pytest.approx(se, abs=1e-6)
    assert impact.did_ci95 == (pytest.approx(did - 1.96 * se, abs=1e-5), pytest.approx(did + 1.96 * se, abs=1e-5))
    # Reasons of the touched group's churn: price 2 of 5, then 20 of 24.
    assert impact.reasons["touched"][0] == {
        "reason": "price",
        "before": 2,
        "after": 20,
        "before_share": 0.4,
        "after_share": pytest.approx(20 / 24, abs=1e-6),
        "share_change": pytest.approx(20 / 24 - 0.4, abs=1e-6),
    }
    assert impact.reason_share("touched", "after", "product") == pytest.approx(4 / 24, abs=1e-6)
    assert impact.reason_share("untouched", "before", "price") == 0.0
    assert impact.reason_share("untouched", "after", "price") == pytest.approx(7 / 27, abs=1e-6)
    assert impact.after_complete


def test_branch_change_matches_churn_report_of_the_branch(hand: Store) -> None:
    impact = change_impact(hand, rules=RULES, change_date=CHANGE, branch="P1", window_days=90)
    for window, (start, end) in (("before", impact.before), ("after", impact.after)):
        for group, branch in (("touched", "P1"), ("untouched", "P2")):
            expected = churn_report(hand, start=start, end=end, rules=RULES, branch=branch).totals
            got = impact.groups[group][window]
            assert got["start_customers"] == expected["start_customers"], (group, window)
            assert got["churned_customers"] == expected["churned_from_start"], (group, window)
            assert got["churn_rate"] == expected["churn_rate"], (group, window)
    # B209 is in P2, so P1 has 95 + N = 96 at the change.
    assert impact.groups["touched"]["after"]["start_customers"] == 96


def test_to_dict_has_every_part(hand: Store) -> None:
    d = change_impact(hand, rules=RULES, change_date=CHANGE, plan="smart", window_days=90).to_dict()
    assert set(d) >= {"change_date", "plan", "branch", "window_days", "before", "after", "groups", "did", "reasons"}
    assert d["before"] == {"from": "2024-04-02", "to": "2024-06-30"} and d["plan"] == "smart"
    assert set(d["groups"]) == {"touched", "untouched"} and set(d["reasons"]) == {"touched", "untouched"}
    assert json.loads(json.dumps(d)) == d


def test_a_window_past_the_data_warns(hand: Store) -> None:
    with pytest.warns(IncompleteWindowWarning, match="past the data's last day 2024-12-31"):
        impact = change_impact(hand, rules=RULES, change_date=CHANGE, plan="smart", window_days=200)
    assert not impact.after_complete


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({}, "expected exactly one of --plan"),
        ({"plan": "smart", "branch": "P1"}, "got both"),
        ({"plan": "gold"}, 'plan "gold": expected a plan found in subscriptions, such as basic, smart'),
        ({"branch": "XX"}, 'branch "XX"'),
        ({"plan": "smart", "window_days": 0}, "--window-days"),
    ],
)
def test_bad_questions_are_refused(hand: Store, kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        change_impact(hand, rules=RULES, change_date=CHANGE, **kwargs)
    assert fragment in str(info.value)


# -- the demo -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, dict]]:
    path, truth = build_demo_store(tmp_path_factory)
    with churnguard.connect(path, read_only=True) as s:
        yield s, truth


def test_demo_smart_price_rise_raises_churn_beyond_the_others(demo: tuple[Store, dict]) -> None:
    store, truth = demo
    rules = ActivityRules(definition="contractual", as_of=dt.date.fromisoformat(truth["end"]))
    change = truth["price_change"]
    impact = change_impact(store, rules=rules, change_date=dt.date.fromisoformat(change["date"]), plan=change["plan"])
    assert impact.did is not None and impact.did > 0
    assert impact.groups["touched"]["change_pp"] > impact.groups["untouched"]["change_pp"]
    # The price reason's share of smart's churn rises a lot; among the others it does not.
    assert impact.reason_share("touched", "after", "price") - impact.reason_share("touched", "before", "price") > 0.15
    assert (
        impact.reason_share("untouched", "after", "price") - impact.reason_share("untouched", "before", "price") < 0.05
    )


def test_demo_promotion_window_as_a_branch_change(demo: tuple[Store, dict]) -> None:
    store, truth = demo
    rules = ActivityRules(definition="contractual", as_of=dt.date.fromisoformat(truth["end"]))
    promo = next(p for p in truth["promotions"] if p["province"] == "GD")
    start, end = dt.date.fromisoformat(promo["start"]), dt.date.fromisoformat(promo["end"])
    impact = change_impact(store, rules=rules, change_date=start, branch="GD", window_days=(end - start).days + 1)
    assert impact.did_ci95 is not None and impact.did_ci95[0] > 0  # clearly above the noise
    assert impact.reasons["touched"][0]["reason"] == "competitor"


# -- the real CLI ---------------------------------------------------------------------------------


def cg(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNGUARD_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "churnguard", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_change_json_table_and_errors(db: Path) -> None:
    r = cg(
        "--db",
        str(db),
        "metrics",
        "change",
        "--date",
        "2024-07-01",
        "--plan",
        "smart",
        "--window-days",
        "90",
        "-f",
        "json",
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["groups"]["touched"]["after"]["start_customers"] == 97
    assert data["did"] == pytest.approx((24 / 97 - 0.05) - (27 / 188 - 0.1), abs=1e-6)
    r = cg(
        "--db",
        str(db),
        "--lang",
        "zh",
        "metrics",
        "change",
        "--date",
        "2024-07-01",
        "--branch",
        "P1",
        "--window-days",
        "200",
    )
    assert r.returncode == 0, r.stderr
    assert "受影响客户" in r.stdout and "双重差分" in r.stdout and "价格因素" in r.stdout
    assert "警告" in r.stderr and "2025-01-16" in r.stderr  # 200 days after 2024-07-01 run past the data's last day
    r = cg("--db", str(db), "metrics", "change", "--date", "2024-07-01", "--format", "json")
    assert r.returncode == 2
    assert "expected exactly one of --plan" in json.loads(r.stderr)["error"]["message"]
