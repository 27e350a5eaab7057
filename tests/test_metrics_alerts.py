"""Churn-rate alerts and the reason mix: a hand-built store with known rates, the demo, the real CLI."""

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
from churnguard.metrics.alerts import churn_alerts, reason_mix
from churnguard.store import Store

AS_OF = dt.date(2024, 12, 31)
RULES = ActivityRules(definition="contractual", grace_days=30, as_of=AS_OF)
JAN, MAR = dt.date(2024, 1, 1), dt.date(2024, 3, 31)

# branch -> (customers at 2023-12-01, plan, segment, {churn day: [reason per churner, None = no churn event]})
BRANCHES = {
    "P1A": (
        102,
        "basic",
        "consumer",
        {
            "2023-12-15": ["natural"] * 2,
            "2024-01-15": ["product"] * 2,
            "2024-02-15": ["price"] * 14,
            "2024-03-15": ["price"] * 12,
        },
    ),
    "P2": (
        204,
        "pro",
        "business",
        {
            "2023-12-15": ["natural"] * 4,
            "2024-01-15": ["product"] * 4,
            "2024-02-15": ["product"] * 5,
            "2024-03-15": ["competitor"] * 14 + [None],
        },
    ),
    "P3": (20, "basic", "consumer", {"2024-02-15": ["service"] * 10}),
}
# Monthly standard rates that follow: P1 (all in city P1A) 2/102, 2/100, 14/98, 12/84;
# P2 4/204, 4/200, 5/196, 15/191; P3 (20 customers) is below min_start_customers.


def build_store(folder: Path) -> Path:
    """Write the CSV files and load them through ``churnguard.ingest_tables``; return the store's path."""
    branches = ["branch_id,name,parent_id", "HQ,Head office,", "P1,Province One,HQ", "P1A,City One A,P1"]
    branches += ["P1B,City One B,P1", "P2,Province Two,HQ", "P3,Province Three,HQ"]
    customers = ["customer_id,branch_id,signup_date,plan,segment"]
    subscriptions = ["customer_id,plan,start_date,end_date,recurring_revenue"]
    churn_events = ["customer_id,churn_date,voluntary,reason_code"]
    for branch, (n, plan, segment, churns) in BRANCHES.items():
        ends = [(day, why) for day, whys in churns.items() for why in whys]
        for i in range(n):
            cid = f"{branch}-{i:03d}"
            end, why = ends[i] if i < len(ends) else ("", None)
            customers.append(f"{cid},{branch},2023-06-01,{plan},{segment}")
            subscriptions.append(f"{cid},{plan},2023-06-01,{end},50")
            if end and why:
                churn_events.append(f"{cid},{end},true,{why}")
    tables = {
        "branches": branches,
        "customers": customers,
        "subscriptions": subscriptions,
        "churn_events": churn_events,
    }
    loads = []
    for name, lines in tables.items():
        path = folder / f"{name}.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        loads.append(LoadSpec(name, path))
    db = folder / "alerts.duckdb"
    with churnguard.connect(db) as s:
        ingest_tables(s, loads, as_of=AS_OF)
        s.set_meta("churn_definition", "contractual")
        s.set_meta("dataset_as_of", AS_OF.isoformat())
    return db


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("alerts"))


@pytest.fixture
def hand(db: Path) -> Iterator[Store]:
    s = churnguard.connect(db)
    try:
        yield s
    finally:
        s.close()


def keyed(report: object) -> dict[tuple[str, str], object]:
    return {(a.period, a.group): a for a in report.alerts}  # type: ignore[attr-defined]


def test_ceiling_and_jump_on_known_rates(hand: Store) -> None:
    report = churn_alerts(hand, start=JAN, end=MAR, rules=RULES, ceiling=0.1)
    alerts = keyed(report)
    assert set(alerts) == {("2024-02", "P1"), ("2024-03", "P1"), ("2024-03", "P2")}
    feb = alerts[("2024-02", "P1")]
    assert feb.churn_rate == pytest.approx(14 / 98, abs=1e-6)
    assert feb.previous_rate == pytest.approx(2 / 100, abs=1e-6)
    assert feb.change_pp == pytest.approx(14 / 98 - 0.02, abs=1e-6)
    assert feb.change_relative == pytest.approx((14 / 98 - 0.02) / 0.02, abs=1e-5)
    assert (feb.start_customers, feb.churned_from_start, feb.kind, feb.severity) == (98, 14, "both", "high")
    # March: still 12/84 = 1/7, over the ceiling but no rise.
    mar = alerts[("2024-03", "P1")]
    assert (mar.kind, mar.severity, mar.change_pp) == ("ceiling", "medium", pytest.approx(0, abs=1e-6))
    # P2 in March: 15/191 after 5/196 — a jump that stays within the ceiling is low.
    p2 = alerts[("2024-03", "P2")]
    assert p2.churn_rate == pytest.approx(15 / 191, abs=1e-6)
    assert (p2.kind, p2.severity) == ("jump", "low")
    # Sorted by severity, then customers lost.
    assert [(a.period, a.group) for a in report.alerts] == [("2024-02", "P1"), ("2024-03", "P1"), ("2024-03", "P2")]
    # P3 (20, then 10 customers) is skipped in each of the three months; P1 and P2 are checked.
    assert (report.checked, report.skipped_small) == (6, 3)


def test_messages_name_the_group_rate_and_thresholds_in_both_languages(hand: Store) -> None:
    feb = keyed(churn_alerts(hand, start=JAN, end=MAR, rules=RULES, ceiling=0.1))[("2024-02", "P1")]
    assert feb.group_name == "Province One (P1)"
    assert feb.message_en == (
        "Province One (P1), 2024-02: churn rate 14.29 % (14 of 98 customers at the start); above the 10.00 % "
        "ceiling; up 12.29 pp from 2.00 % in the previous period, +614 %."
    )
    assert feb.message_zh.startswith("Province One(P1) 2024-02:客户流失率 14.29%(期初 98 户,流失 14 户)")
    assert "超过流失率最低标准 10.00%" in feb.message_zh and "流失变动率 +12.29 个百分点" in feb.message_zh
    assert feb.message("zh") == feb.message_zh


def test_jump_thresholds_both_either_or_none(hand: Store) -> None:
    # Defaults (no ceiling): the two jumps only, each medium; P2 lost more customers, so it comes first.
    report = churn_alerts(hand, start=JAN, end=MAR, rules=RULES)
    assert [(a.period, a.group, a.kind, a.severity) for a in report.alerts] == [
        ("2024-03", "P2", "jump", "medium"),
        ("2024-02", "P1", "jump", "medium"),
    ]
    # P2 in February rose 0.55 pp (+27.6 %): enough for 0.5 pp alone, or for 20 % alone, not for both defaults.
    only_pp = keyed(churn_alerts(hand, start=JAN, end=MAR, rules=RULES, jump_pp=0.005, jump_relative=None))
    assert ("2024-02", "P2") in only_pp and ("2024-01", "P1") not in only_pp
    only_rel = keyed(churn_alerts(hand, start=JAN, end=MAR, rules=RULES, jump_pp=None, jump_relative=0.2))
    assert ("2024-02", "P2") in only_rel
    both = keyed(churn_alerts(hand, start=JAN, end=MAR, rules=RULES, jump_pp=0.005, jump_relative=0.3))
    assert ("2024-02", "P2") not in both
    assert churn_alerts(hand, start=JAN, end=MAR, rules=RULES, jump_pp=None, jump_relative=None).alerts == ()


def test_first_period_reads_the_previous_one_but_not_before_the_data(hand: Store) -> None:
    # From 2024-02-01, January is read as February's previous period.
    report = churn_alerts(hand, start=dt.date(2024, 2, 1), end=MAR, rules=RULES)
    assert ("2024-02", "P1") in keyed(report)
    # From 2023-12-01 (the first churn is 2023-12-15), November is not observed: December has no previous rate.
    report = churn_alerts(hand, start=dt.date(2023, 12, 1), end=MAR, rules=RULES, jump_pp=0, jump_relative=0)
    assert all(a.period != "2023-12" for a in report.alerts)


def test_matches_churn_report_and_drills_down_a_branch(hand: Store) -> None:
    rows = churn_report(hand, start=JAN, end=MAR, rules=RULES, period="month", by="branch").rows
    rates = {(r["period"], r["branch"]): r["churn_rate"] for r in rows}
    for a in churn_alerts(hand, start=JAN, end=MAR, rules=RULES, ceiling=0.05).alerts:
        assert a.churn_rate == rates[(a.period, a.group)]
    # A province sees its cities.
    report = churn_alerts(hand, start=JAN, end=MAR, rules=RULES, ceiling=0.1, branch="P1")
    assert {(a.period, a.group) for a in report.alerts} == {("2024-02", "P1A"), ("2024-03", "P1A")}
    assert report.alerts[0].group_name == "City One A (P1A)"
    # By plan and by segment: P1 and P3 are basic / consumer, P2 pro / business.
    by_plan = churn_alerts(hand, start=JAN, end=MAR, rules=RULES, by="plan")
    assert {(a.period, a.group) for a in by_plan.alerts} == {("2024-02", "basic"), ("2024-03", "pro")}
    # basic in February: P1's 14 and P3's 10 churners of 98 + 20 customers.
    assert by_plan.alerts[0].message_en.startswith("plan basic, 2024-02: churn rate 20.34 % (24 of 118 customers")
    assert by_plan.alerts[1].message_zh.startswith("套餐 pro 2024-03:客户流失率 7.85%")
    by_segment = churn_alerts(hand, start=JAN, end=MAR, rules=RULES, by="segment", min_start_customers=0)
    assert {a.group for a in by_segment.alerts} == {"consumer", "business"}


def test_quarterly_ceiling_applies_to_quarterly_rates(hand: Store) -> None:
    # 2024-Q1 for P1: 100 at the start, 2 + 14 + 12 = 28 churned -> 28 %; P2: 200, 24 -> 12 %.
    # 2023-Q4 (read as the previous quarter): P1 2 / 102, P2 4 / 204.
    report = churn_alerts(hand, start=JAN, end=MAR, rules=RULES, period="quarter", ceiling=0.15)
    assert [(a.group, a.kind, a.severity) for a in report.alerts] == [("P1", "both", "high"), ("P2", "jump", "low")]
    p1, p2 = report.alerts
    assert (p1.churn_rate, p1.previous_rate) == (pytest.approx(0.28), pytest.approx(2 / 102, abs=1e-6))
    assert (p2.churn_rate, p2.start_customers) == (pytest.approx(0.12), 200)


def test_to_dict_has_parameters_and_sorted_alerts(hand: Store) -> None:
    d = churn_alerts(hand, start=JAN, end=MAR, rules=RULES, ceiling=0.1).to_dict()
    assert (d["from"], d["to"], d["period"], d["by"], d["ceiling"], d["jump_pp"], d["jump_relative"]) == (
        "2024-01-01",
        "2024-03-31",
        "month",
        "branch",
        0.1,
        0.02,
        0.5,
    )
    assert d["min_start_customers"] == 50 and d["rules"]["definition"] == "contractual"
    assert [a["severity"] for a in d["alerts"]] == ["high", "medium", "low"]
    assert json.loads(json.dumps(d)) == d


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"by": "tier"}, "--by: expected one of branch, segment, plan"),
        ({"ceiling": 5.0}, "--ceiling: expected a churn rate between 0 and 1"),
        ({"jump_pp": -0.1}, "--jump-pp"),
        ({"period": "week"}, "--period: expected one of month, quarter, year"),
        ({"branch": "XX"}, 'branch "XX"'),
    ],
)
def test_bad_options_are_refused_with_the_fix(hand: Store, kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        churn_alerts(hand, start=JAN, end=MAR, rules=RULES, **kwargs)
    assert fragment in str(info.value)


def test_reason_mix_shares_and_changes(hand: Store) -> None:
    mix = reason_mix(hand, start=JAN, end=MAR, rules=RULES, period="month")
    assert [r["reason"] for r in mix["reasons"]] == ["price", "competitor", "product", "service", "(unknown)"]
    assert mix["reasons"][0] | {"share": None} == {
        "reason": "price",
        "label_en": "Price",
        "label_zh": "价格因素",
        "churned_customers": 26,
        "share": None,
    }
    assert mix["churned_customers"] == 6 + 29 + 27
    jan, feb, mar = mix["periods"]
    assert (jan["period"], jan["churned_customers"], feb["churned_customers"], mar["churned_customers"]) == (
        "2024-01",
        6,
        29,
        27,
    )
    share = {p["period"]: {m["reason"]: m for m in p["mix"]} for p in mix["periods"]}
    assert share["2024-01"]["product"]["share"] == 1.0 and share["2024-01"]["product"]["share_change"] is None
    assert share["2024-02"]["price"]["share"] == pytest.approx(14 / 29, abs=1e-6)
    assert share["2024-02"]["product"]["share_change"] == pytest.approx(5 / 29 - 1, abs=1e-6)
    assert share["2024-03"]["price"]["share_change"] == pytest.approx(12 / 27 - 14 / 29, abs=1e-6)
    assert share["2024-03"]["competitor"]["share"] == pytest.approx(14 / 27, abs=1e-6)
    assert share["2024-03"]["(unknown)"]["churned_customers"] == 1
    assert share["2024-01"]["service"] == {
        "reason": "service",
        "churned_customers": 0,
        "share": 0.0,
        "share_change": None,
    }


# -- the demo -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, dict]]:
    path, truth = build_demo_store(tmp_path_factory)
    with churnguard.connect(path, read_only=True) as s:
        yield s, truth


def test_demo_a_monthly_ceiling_flags_each_competitor_promotion_and_nothing_else(demo: tuple[Store, dict]) -> None:
    store, truth = demo
    rules = ActivityRules(definition="contractual", as_of=dt.date.fromisoformat(truth["end"]))
    start, end = dt.date.fromisoformat(truth["start"]), dt.date.fromisoformat(truth["end"])
    # The operator loses about 2 % a month; a 3 % monthly ceiling flags the provinces under a competitor's offer.
    report = churn_alerts(store, start=start, end=end, rules=rules, ceiling=0.03, jump_pp=None, jump_relative=None)
    windows = {p["province"]: (p["start"], p["end"]) for p in truth["promotions"]}
    flagged = {(a.group, a.period) for a in report.alerts}
    for province, (p_from, p_to) in windows.items():
        inside = {(g, p) for g, p in flagged if g == province and p_from[:7] <= p <= p_to[:7]}
        assert len(inside) >= 2, f"{province}: {sorted(inside)}"
    outside = {(g, p) for g, p in flagged if g not in windows or not windows[g][0][:7] <= p <= windows[g][1][:7]}
    assert outside == set()
    assert {a.kind for a in report.alerts} == {"ceiling"} and report.alerts[0].group == "GD"
    # Quarter on quarter, the Sichuan offer (2025-Q2) is a jump; the Guangdong one ramps up over two quarters
    # (+1.1 pp, then +2.6 pp / +38 %), below the default +50 % but over a 30 % relative threshold.
    quarterly = churn_alerts(store, start=start, end=end, rules=rules, period="quarter")
    assert ("SC", "2025-Q2") in {(a.group, a.period) for a in quarterly.alerts}
    assert "GD" not in {a.group for a in quarterly.alerts}
    quarterly = churn_alerts(store, start=start, end=end, rules=rules, period="quarter", jump_relative=0.3)
    assert ("GD", "2024-Q1") in {(a.group, a.period) for a in quarterly.alerts}


def test_demo_reason_mix_shows_the_promotion_and_the_price_rise(demo: tuple[Store, dict]) -> None:
    store, truth = demo
    rules = ActivityRules(definition="contractual", as_of=dt.date.fromisoformat(truth["end"]))
    mix = reason_mix(store, start=dt.date(2023, 1, 1), end=dt.date(2025, 12, 31), rules=rules)
    share = {p["period"]: {m["reason"]: m for m in p["mix"]} for p in mix["periods"]}
    # Competitor share jumps when the GD promotion starts (2023-11); price share when the smart fee rises (2024-07).
    assert share["2023-Q4"]["competitor"]["share_change"] > 0.05
    assert share["2024-Q3"]["price"]["share_change"] > 0.1
    assert share["2024-Q3"]["price"]["share"] == max(m["share"] for m in share["2024-Q3"].values())


# -- the real CLI ---------------------------------------------------------------------------------

CLI = [sys.executable, "-m", "churnguard"]


def cg(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNGUARD_")}
    env["COLUMNS"] = "200"
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_alerts_json_and_exit_code_zero_either_way(db: Path) -> None:
    r = cg(
        "--db", str(db), "metrics", "alerts", "--from", "2024-01-01", "--to", "2024-03-31",
        "--ceiling", "0.1", "--format", "json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert [(a["period"], a["group"], a["severity"]) for a in data["alerts"]] == [
        ("2024-02", "P1", "high"),
        ("2024-03", "P1", "medium"),
        ("2024-03", "P2", "low"),
    ]
    r = cg(
        "--db", str(db), "metrics", "alerts", "--from", "2024-01-01", "--to", "2024-01-31", "--no-jump", "-f", "json"
    )  # fmt: skip
    assert r.returncode == 0 and json.loads(r.stdout)["alerts"] == []


def test_cli_alerts_in_chinese_and_reasons_json(db: Path) -> None:
    r = cg(
        "--db", str(db), "--lang", "zh", "metrics", "alerts", "--from", "2024-01-01", "--to", "2024-03-31",
        "--by", "plan", "--ceiling", "0.1", "--no-jump",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "客户流失率预警" in r.stdout and "突增阈值: 未设置" in r.stdout
    # Ceiling alerts only: basic in February (24 of 118) and March (12 of 94: P1's 84 and P3's 10).
    assert "套餐 basic 2024-02:客户流失率 20.34%(期初 118 户,流失 24 户);超过流失率最低标准 10.00%。" in r.stdout
    assert "套餐 basic 2024-03" in r.stdout and "套餐 pro" not in r.stdout
    r = cg(
        "--db", str(db), "metrics", "reasons", "--from", "2024-01-01", "--to", "2024-03-31",
        "--period", "month", "--format", "json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert [p["churned_customers"] for p in data["periods"]] == [6, 29, 27]
