"""Campaigns end to end on real DuckDB stores: playbook and abandon rules on hand-made customers, the
budget, the control group, the cases, atomicity, the measured effect of a known treatment, and the CLI."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import build_demo_store
from typer.testing import CliRunner

import churnguard
from churnguard.cli.app import app
from churnguard.errors import ConfigError
from churnguard.ingest import LoadSpec
from churnguard.retention.campaigns import (
    CampaignNotFoundError,
    campaign_members,
    campaign_report,
    create_campaign,
    list_campaigns,
)
from churnguard.retention.playbook import default_playbook, default_playbook_text, load_playbook

AS_OF = dt.date(2024, 6, 30)
NOW = dt.datetime(2024, 7, 1, 9, 0)
D = dt.date
ENV = {"COLUMNS": "200", "CHURNGUARD_DB": None, "CHURNGUARD_LANG": None}

BRANCHES = pa.table(
    {"branch_id": ["HQ", "P1", "C1", "C2"], "name": ["HQ", "P1", "C1", "C2"], "parent_id": [None, "HQ", "P1", "P1"]}
)

#: id: (branch, customer_value tier, tier_override, clv, probability, top reason, abusive)
PEOPLE: dict[str, tuple[str, str | None, str | None, float | None, float | None, str | None, bool]] = {
    "v1": ("C1", "A", "VIP", 5000.0, 0.5, "price", False),
    "a1": ("C1", "A", None, 2000.0, 0.4, "service", False),
    "a2": ("C2", "A", None, 1000.0, 0.3, "price", False),
    "b1": ("C1", "B", None, 600.0, 0.5, "competitor", False),
    "b2": ("C2", "B", None, 500.0, 0.4, "usage", False),
    "c1": ("C1", "C", None, 300.0, 0.5, "price", False),
    "c2": ("C2", "C", None, 200.0, 0.2, "payment", False),
    "low": ("C1", "C", None, 100.0, 0.1, "price", False),
    "debt": ("C2", "B", None, 800.0, 0.5, "payment", False),
    "abuse": ("C1", "A", None, 3000.0, 0.5, "service", True),
    "novalue": ("C2", "C", None, None, 0.6, "price", False),
    "marg": ("C1", "C", None, None, 0.5, "tenure", False),
    "gone": ("C2", "B", None, 800.0, None, None, False),
    "nosc": ("C1", "C", None, 300.0, None, None, False),
}

#: What the default playbook does with each (no budget, no control group).
EXPECTED = {
    "v1": ("treatment", "am_visit", 800.0),  # VAR 2500: visit 2500·0.40−200 = 800 beats a tariff call (795)
    "a1": ("treatment", "am_call_service", 270.0),
    "a2": ("treatment", "am_call_tariff", 25.0),
    "b1": ("treatment", "auto_matching_sms", 7.0),  # the matching offer gains 300·0.2−60 = 0: not worth it
    "b2": ("treatment", "upgrade_offer", 10.0),
    "c1": ("treatment", "auto_discount_sms", 1.5),
    "c2": ("treatment", "auto_payment_sms", 1.9),
    "marg": ("treatment", "auto_care_sms", 1.9),  # value = 12 months of margin (240), no CLV
    "low": ("excluded", None, None),
    "debt": ("excluded", None, None),
    "abuse": ("excluded", None, None),
    "novalue": ("excluded", None, None),
}


def build_store(path: Path) -> churnguard.Store:
    """A contractual store as of 2024-06-30 with the customers of :data:`PEOPLE`, their values and scores."""
    ids = list(PEOPLE)
    customers = pa.table(
        {
            "customer_id": ids,
            "branch_id": [PEOPLE[i][0] for i in ids],
            "signup_date": [D(2023, 1, 1)] * len(ids),
            "tier_override": [PEOPLE[i][2] for i in ids],
            "abusive": [PEOPLE[i][6] for i in ids],
        }
    )
    subs = pa.table(
        {
            "customer_id": ids,
            "plan": ["basic"] * len(ids),
            "start_date": [D(2023, 1, 1)] * len(ids),
            "end_date": [D(2024, 5, 15) if i == "gone" else None for i in ids],
            "recurring_revenue": [20.0] * len(ids),
        }
    )
    tx: list[tuple[str, dt.datetime, float, float | None, str, D | None, dt.datetime | None]] = []
    for k in range(12):  # marg: twelve monthly bills in the window, margin 20 each
        day = D(2023 + (6 + k) // 12, (6 + k) % 12 + 1, 15)
        tx.append(("marg", dt.datetime.combine(day, dt.time(2)), 50.0, 20.0, "bill", day, dt.datetime(2024, 6, 30)))
    tx.append(("marg", dt.datetime(2023, 6, 1, 2), 50.0, 999.0, "bill", D(2023, 6, 20), dt.datetime(2023, 6, 2)))
    for k in range(5):  # debt: five unpaid bills of 100, all past due
        tx.append(("debt", dt.datetime(2024, 1 + k, 1, 2), 100.0, 40.0, "bill", D(2024, 1 + k, 20), None))
    tx.append(("c1", dt.datetime(2024, 6, 20, 2), 400.0, 100.0, "bill", D(2024, 7, 10), None))  # not yet due
    tx.append(("b1", dt.datetime(2024, 5, 1, 2), 350.0, 100.0, "bill", D(2024, 5, 20), dt.datetime(2024, 5, 2)))
    transactions = pa.table(
        {
            "customer_id": [t[0] for t in tx],
            "ts": [t[1] for t in tx],
            "amount": [t[2] for t in tx],
            "margin": [t[3] for t in tx],
            "kind": [t[4] for t in tx],
            "due_date": [t[5] for t in tx],
            "paid_at": pa.array([t[6] for t in tx], pa.timestamp("us")),
        }
    )
    churn = pa.table(
        {
            "customer_id": ["gone"],
            "churn_date": [D(2024, 5, 15)],
            "reason_code": ["price"],
            "destination": ["Orbit Telecom"],
        }
    )
    s = churnguard.connect(path)
    churnguard.ingest_tables(
        s,
        [
            LoadSpec("branches", BRANCHES),
            LoadSpec("customers", customers),
            LoadSpec("subscriptions", subs),
            LoadSpec("transactions", transactions),
            LoadSpec("churn_events", churn),
        ],
        as_of=AS_OF,
    )
    s.set_meta("dataset_as_of", AS_OF.isoformat())
    s.set_meta("churn_definition", "contractual")
    for cid, (_, tier, _, clv, *_rest) in PEOPLE.items():
        s.execute("INSERT INTO customer_value (customer_id, tier, clv) VALUES (?, ?, ?)", [cid, tier, clv])
    for cid, (_, _, _, _, p, reason, _) in PEOPLE.items():
        if p is not None:
            insert_score(s, cid, AS_OF, p, reason)
    return s


def reasons_json(top: str) -> str:
    cats = [top, "tenure", "usage", "value"]
    return json.dumps(
        [
            {
                "feature": f"f{i}",
                "category": c,
                "contribution": 0.4 - 0.1 * i,
                "value": 1.0,
                "text_en": f"reason {i} ({c})",
                "text_zh": f"原因{i}",
            }
            for i, c in enumerate(cats)
        ]
    )


def insert_score(s: churnguard.Store, cid: str, as_of: D, p: float, reason: str | None, model: str = "m1") -> None:
    s.execute(
        "INSERT INTO scores (customer_id, as_of, model_id, horizon_days, probability, risk_band, value_at_risk, "
        "top_reason, reasons, expected_days_to_churn, scored_at) VALUES (?, ?, ?, 90, ?, 'high', NULL, ?, ?, NULL, ?)",
        [cid, as_of, model, p, reason, reasons_json(reason or "other"), dt.datetime.combine(as_of, dt.time(23))],
    )


@pytest.fixture
def hand(tmp_path: Path) -> churnguard.Store:
    s = build_store(tmp_path / "hand.duckdb")
    yield s
    s.close()


def members(s: churnguard.Store, campaign_id: str) -> dict[str, dict[str, Any]]:
    frame = campaign_members(s, campaign_id, limit=None)
    out = {}
    for r in frame.to_dict("records"):
        r["why"] = json.loads(r["why"])
        out[r["customer_id"]] = r
    return out


# -- playbook and abandon rules on hand-made customers ---------------------------------------------------


def test_playbook_and_abandon_rules_on_hand_made_customers(hand: churnguard.Store) -> None:
    result = create_campaign(hand, name="June retention", control_share=0.0, now=NOW)
    assert re.fullmatch(r"CMP-20240701-[0-9A-F]{4}", result["campaign_id"])
    assert result["as_of"] == AS_OF and result["horizon_days"] == 90 and result["model_id"] == "m1"
    got = members(hand, result["campaign_id"])
    # gone (churned) and nosc (no score) are not in a retention campaign
    assert set(got) == set(EXPECTED)
    for cid, (arm, action, gain) in EXPECTED.items():
        m = got[cid]
        assert (m["arm"], m["action"]) == (arm, action), cid
        if gain is not None:
            assert m["expected_gain"] == pytest.approx(gain), cid
            assert m["why"]["expected_gain"] == pytest.approx(gain) and m["why"]["decision"] == "treat"
    rules = {cid: got[cid]["why"]["abandon_rule"] for cid in ("low", "debt", "abuse", "novalue")}
    assert rules == {"low": "no_gain", "debt": "arrears", "abuse": "abusive", "novalue": "no_value"}
    assert got["debt"]["why"]["debt"] == 500.0 and "500.00 > 300.00" in got["debt"]["why"]["abandon_detail"]
    assert got["c1"]["why"]["debt"] == 0.0  # a bill not yet due is not arrears
    assert got["b1"]["why"]["debt"] == 0.0  # a paid one neither
    assert result["exclusions"] == {"no_gain": 1, "arrears": 1, "abusive": 1, "no_value": 1}
    assert result["treatment"] == 8 and result["control"] == 0 and result["cases_opened"] == 8


def test_why_records_every_input(hand: churnguard.Store) -> None:
    cid = create_campaign(hand, name="why", control_share=0.0, now=NOW)["campaign_id"]
    got = members(hand, cid)
    v1 = got["v1"]["why"]
    assert (v1["tier"], v1["tier_source"], v1["playbook_tier"]) == ("VIP", "override", "VIP")
    assert v1["top_reason"] == "price" and [r["category"] for r in v1["reasons"]] == ["price", "tenure", "usage"]
    assert v1["probability"] == 0.5 and v1["clv"] == 5000 and v1["value_basis"] == "clv"
    assert v1["value_at_risk"] == pytest.approx(2500)
    assert (v1["action"], v1["action_label_zh"], v1["channel"], v1["cost"], v1["save_rate"]) == (
        "am_visit",
        "客户经理上门拜访",
        "visit",
        200.0,
        0.4,
    )
    assert [c["action"] for c in v1["candidates"]] == ["am_visit", "am_call_tariff"]
    assert [c["expected_gain"] for c in v1["candidates"]] == [800.0, 795.0]
    marg = got["marg"]["why"]
    assert (marg["clv"], marg["margin_12m"], marg["value_basis"]) == (None, 240.0, "margin_12m")
    assert got["marg"]["value"] == 240.0 and got["marg"]["value_at_risk"] == pytest.approx(120.0)
    assert got["a1"]["why"]["tier_source"] == "computed" and got["a1"]["stratum"] == "A|C1"
    assert got["low"]["why"]["candidates"][0]["expected_gain"] == pytest.approx(-5.5)


def test_rules_are_configurable(hand: churnguard.Store, tmp_path: Path) -> None:
    text = default_playbook_text().replace(
        "    enabled: true\n    threshold: 300", "    enabled: false\n    threshold: 300"
    )
    text = text.replace("    column: abusive", "    column: is_abusive")
    text = text.replace("    min_expected_gain: 0 ", "    min_expected_gain: -10 ")
    path = tmp_path / "pb.yaml"
    path.write_text(text, encoding="utf-8")
    result = create_campaign(hand, name="lenient", control_share=0.0, playbook=path, now=NOW)
    got = members(hand, result["campaign_id"])
    assert got["debt"]["action"] == "payment_plan_offer"  # arrears off: 400·0.2 − 10 = 70
    assert got["abuse"]["action"] == "am_call_service"  # the flag column is now is_abusive: absent
    assert any("no column `is_abusive`" in n for n in result["notes"])
    assert got["low"]["arm"] == "treatment" and got["low"]["expected_gain"] == pytest.approx(-5.5)


def test_budget_choice_is_the_brute_force_optimum(hand: churnguard.Store) -> None:
    budget = 210.0
    result = create_campaign(hand, name="tight", budget=budget, control_share=0.0, now=NOW, method="dp")
    got = members(hand, result["campaign_id"])
    assert result["allocation"]["method"] == "dp" and result["cost"] <= budget
    # brute force over the recorded candidates of the eligible customers
    eligible = {c: m["why"]["candidates"] for c, m in got.items() if not m["why"]["abandon_rule"]}
    names = sorted(eligible)
    best = 0.0
    for combo in itertools.product(*[[None, *eligible[c]] for c in names]):
        picked = [o for o in combo if o is not None and o["expected_gain"] > 0]
        if sum(o["cost"] for o in picked) <= budget:
            best = max(best, sum(o["expected_gain"] for o in picked))
    assert result["expected_gain"] == pytest.approx(best, abs=0.05)  # candidates' gains are rounded to cents
    treated = {c for c, m in got.items() if m["arm"] == "treatment"}
    assert all(got[c]["why"]["decision"] == "not_selected" for c in set(eligible) - treated)


def test_capacity_per_branch_scope_and_min_value(hand: churnguard.Store) -> None:
    r = create_campaign(hand, name="cap", capacity={"C1": 2, "C2": 1}, control_share=0.0, now=NOW)
    treated = {c for c, m in members(hand, r["campaign_id"]).items() if m["arm"] == "treatment"}
    assert treated == {"v1", "a1", "a2"}  # the largest gains of each branch
    r = create_campaign(hand, name="C2 only", branch="C2", control_share=0.0, now=NOW)
    assert {m["branch_id"] for m in members(hand, r["campaign_id"]).values()} == {"C2"}
    r = create_campaign(hand, name="big", min_value_at_risk=100, control_share=0.0, now=NOW)
    kept = set(members(hand, r["campaign_id"]))
    assert "low" not in kept and "c2" not in kept and "c1" in kept  # VAR 10 and 40 < 100 ≤ 150
    assert any("below 100" in n for n in r["notes"])
    with pytest.raises(ConfigError, match="branch"):
        create_campaign(hand, name="x", branch="Nowhere")


def test_winback_campaign(hand: churnguard.Store) -> None:
    r = create_campaign(hand, name="win back", kind="winback", control_share=0.0, now=NOW)
    got = members(hand, r["campaign_id"])
    assert set(got) == {"gone"}
    why = got["gone"]["why"]
    assert (why["churn_date"], why["churn_reason"], why["destination"], why["top_reason"]) == (
        "2024-05-15",
        "price",
        "Orbit Telecom",
        "price",
    )
    assert why["probability"] is None and why["value_at_risk"] == 800.0
    assert got["gone"]["action"] == "winback_sms"  # 800·0.015 − 2 = 10 beats the offer's 800·0.06 − 40 = 8
    case = hand.execute("SELECT kind, status FROM cases WHERE campaign_id = ?", [r["campaign_id"]]).fetchall()
    assert case == [("winback", "open")]
    assert create_campaign(hand, name="none", kind="winback", winback_days=10, now=NOW)["population"] == 0


def test_control_members_get_no_case_and_arms_are_stratified(hand: churnguard.Store) -> None:
    r = create_campaign(hand, name="half", control_share=0.5, seed=11, now=NOW)
    got = members(hand, r["campaign_id"])
    arms = pd.DataFrame(
        [
            {"c": c, "arm": m["arm"], "stratum": m["stratum"], "case": m["case_id"], "at": m["assigned_at"]}
            for c, m in got.items()
        ]
    )
    chosen = arms[arms["arm"] != "excluded"]
    for _, g in chosen.groupby("stratum"):
        assert (g["arm"] == "control").sum() == int(np.floor(len(g) * 0.5 + 0.5))
    assert chosen.loc[chosen["arm"] == "control", "case"].isna().all()
    assert chosen.loc[chosen["arm"] == "treatment", "case"].notna().all()
    assert (arms["at"] == pd.Timestamp(NOW)).all()
    cases = hand.execute("SELECT customer_id FROM cases WHERE campaign_id = ?", [r["campaign_id"]]).fetchall()
    assert sorted(c for (c,) in cases) == sorted(chosen.loc[chosen["arm"] == "treatment", "c"])
    # the same seed on the same customers gives the same arms
    hand.execute("DELETE FROM cases")
    again = members(hand, create_campaign(hand, name="again", control_share=0.5, seed=11, now=NOW)["campaign_id"])
    assert {c: m["arm"] for c, m in again.items()} == {c: m["arm"] for c, m in got.items()}


def test_a_failure_leaves_nothing_behind(hand: churnguard.Store) -> None:
    hand.execute("DROP TABLE case_log")  # open_cases fails after the campaign, members and cases are written
    with pytest.raises(duckdb.CatalogException, match="case_log"):  # the error that aborted it reaches the caller
        create_campaign(hand, name="doomed", control_share=0.1, now=NOW)
    for table in ("campaigns", "campaign_members", "cases"):
        assert hand.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
    left = hand.execute("SELECT table_name FROM information_schema.tables WHERE table_name LIKE '_cg_cmp%'").fetchall()
    assert left == []


def test_errors(hand: churnguard.Store, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kind"):
        create_campaign(hand, name="x", kind="upsell")
    with pytest.raises(ConfigError, match="control share"):
        create_campaign(hand, name="x", control_share=1.5)
    with pytest.raises(ConfigError, match="no scores on or before 2024-01-01"):
        create_campaign(hand, name="x", as_of=D(2024, 1, 1))
    with pytest.raises(CampaignNotFoundError, match="CMP-nope"):
        campaign_report(hand, "CMP-nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text(default_playbook_text().replace("  C:\n    default", "  D:\n    default"))
    with pytest.raises(ConfigError, match=r"bad\.yaml line"):
        create_campaign(hand, name="x", playbook=bad)
    assert hand.execute("SELECT count(*) FROM campaigns").fetchone()[0] == 0


# -- measured effect: a store where the treatment's true effect is known ----------------------------------


def build_experiment(path: Path, n: int = 3000) -> churnguard.Store:
    rng = np.random.default_rng(5)
    ids = [f"x{i:05d}" for i in range(n)]
    branch = rng.choice(["C1", "C2"], n)
    customers = pa.table({"customer_id": ids, "branch_id": branch, "signup_date": [D(2023, 1, 1)] * n})
    subs = pa.table(
        {
            "customer_id": ids,
            "plan": ["basic"] * n,
            "start_date": [D(2023, 1, 1)] * n,
            "end_date": pa.array([None] * n, pa.date32()),
        }
    )
    s = churnguard.connect(path)
    a0 = D(2024, 3, 31)
    churnguard.ingest_tables(
        s,
        [LoadSpec("branches", BRANCHES), LoadSpec("customers", customers), LoadSpec("subscriptions", subs)],
        as_of=a0,
    )
    s.set_meta("dataset_as_of", a0.isoformat())
    s.set_meta("churn_definition", "contractual")
    frame = pd.DataFrame({"customer_id": ids, "tier": rng.choice(["A", "B", "C"], n, p=[0.15, 0.25, 0.6])})
    s.raw.register("tiers_df", frame)
    s.execute("INSERT INTO customer_value (customer_id, tier, clv) SELECT customer_id, tier, 1000.0 FROM tiers_df")
    s.execute(
        "INSERT INTO scores (customer_id, as_of, model_id, horizon_days, probability, top_reason, reasons, scored_at) "
        "SELECT customer_id, DATE '2024-03-31', 'm1', 90, 0.5, 'other', '[]', TIMESTAMP '2024-03-31 23:00' "
        "FROM tiers_df"
    )
    return s


def apply_outcomes(s: churnguard.Store, campaign_id: str, p_treated: float, p_control: float) -> None:
    """Churn members within the horizon with a known probability per arm; some churn after it (not counted)."""
    arms = s.execute(
        "SELECT customer_id, arm FROM campaign_members WHERE campaign_id = ? ORDER BY customer_id", [campaign_id]
    ).df()
    rng = np.random.default_rng(99)
    p = np.where(arms["arm"] == "treatment", p_treated, p_control)
    u = rng.random(len(arms))
    days = np.where(u < p, rng.integers(1, 90, len(arms)), np.where(u > 0.95, 120, -1))
    arms["end_date"] = [D(2024, 3, 31) + dt.timedelta(days=int(d)) if d > 0 else None for d in days]
    s.raw.register("ends_df", arms)
    s.execute(
        "UPDATE subscriptions SET end_date = e.end_date FROM ends_df e "
        "WHERE subscriptions.customer_id = e.customer_id AND e.end_date IS NOT NULL"
    )
    s.set_meta("dataset_as_of", "2024-08-31")


def test_report_measures_a_known_effect(tmp_path: Path) -> None:
    s = build_experiment(tmp_path / "exp.duckdb")
    r = create_campaign(s, name="experiment", control_share=0.3, seed=5, now=dt.datetime(2024, 4, 1))
    cid = r["campaign_id"]
    early = campaign_report(s, cid)
    assert early["status"] == "too_early" and early["days_left"] == 90 and early["ready_on"] == D(2024, 6, 29)
    assert early["members"]["control"] == r["control"] > 800
    apply_outcomes(s, cid, p_treated=0.10, p_control=0.30)
    rep = campaign_report(s, cid)
    assert rep["status"] == "measured" and rep["notes"] == []
    t, c = rep["arms"]["treatment"], rep["arms"]["control"]
    assert t["churned_rate"] == pytest.approx(0.10, abs=0.02) and c["churned_rate"] == pytest.approx(0.30, abs=0.03)
    e = rep["effect"]
    assert e["low"] < 0.20 < e["high"] and e["low"] > 0.1  # retained share: treated − control, truth +20 pp
    assert e["strata_measured"] == 6 and e["unmeasured_treated"] == 0
    assert rep["pooled"]["low"] < 0.20 < rep["pooled"]["high"]
    assert rep["saved_customers"] == pytest.approx(e["estimate"] * t["customers"])
    # every member has value 1000: saved value = saved customers × 1000
    assert rep["saved_value"] == pytest.approx(rep["saved_customers"] * 1000)
    assert rep["cost"] == pytest.approx(t["cost"]) and rep["roi"] == pytest.approx(
        (rep["saved_value"] - t["cost"]) / t["cost"]
    )
    assert {row["tier"] for row in rep["by_tier"]} == {"A", "B", "C"}
    # measuring at the end of the horizon: churns in the grace period are not confirmed yet
    assert campaign_report(s, cid, as_of=D(2024, 7, 1))["notes"]
    # the uplift model on the members: the same effect for everyone, about +20 pp
    from churnguard.retention.uplift import campaign_uplift

    model, members_ = campaign_uplift(s, cid)
    assert len(members_) == t["customers"] + c["customers"] and model.n_control_ == c["customers"]
    assert members_["uplift"].mean() == pytest.approx(0.20, abs=0.06)
    with pytest.raises(ConfigError, match="not known yet"):
        campaign_uplift(s, cid, as_of=D(2024, 5, 1))
    s.close()


# -- the CLI, on the shared demo store ------------------------------------------------------------------


def cg(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=ENV)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo store, segmented and scored (deterministic fake probabilities) as of 2025-06-30."""
    from churnguard.metrics.activity import rules_for, spells_sql
    from churnguard.segments import segment_customers

    path, _ = build_demo_store(tmp_path_factory)
    copy = tmp_path_factory.mktemp("campaigns") / "demo.duckdb"
    shutil.copyfile(path, copy)
    a0 = D(2025, 6, 30)
    with churnguard.connect(copy) as s:
        segment_customers(s, as_of=a0)
        sql, params = spells_sql(rules_for(s, as_of=a0))
        s.execute(
            f"""
            INSERT INTO scores (customer_id, as_of, model_id, horizon_days, probability, top_reason, reasons, scored_at)
            SELECT customer_id, DATE '2025-06-30', 'demo-test', 90,
                   0.02 + 0.6 * power((hash(customer_id) % 1000) / 1000.0, 3),
                   ['price', 'service', 'usage', 'competitor', 'payment', 'tenure']
                     [CAST(1 + hash(customer_id) % 6 AS BIGINT)],
                   '[]', TIMESTAMP '2025-07-01 00:00:00'
            FROM ({sql}) sp GROUP BY customer_id HAVING bool_or(end_date IS NULL)
            """,
            params,
        )
        s.execute(
            "INSERT INTO users (user_id, display_name, role, branch_id, active, max_claims, open_claims, created_at) "
            "SELECT 'AM-' || branch_id || '-' || i, 'AM ' || i, 'account_manager', branch_id, TRUE, 500, 0, "
            "TIMESTAMP '2025-01-01' FROM (SELECT DISTINCT branch_id FROM customers), range(2) r(i)"
        )
    return copy


def test_cli_create_assign_report_list(demo: Path) -> None:
    db = str(demo)
    r = cg(
        "--db",
        db,
        "campaign",
        "create",
        "--name",
        "Q3 retention",
        "--budget",
        "8000",
        "--capacity-per-branch",
        "40",
        "--seed",
        "7",
        "-f",
        "json",
    )
    assert r.exit_code == 0, r.output
    created = json.loads(r.output)
    cid = created["campaign_id"]
    assert created["cost"] <= 8000 and created["allocation"]["method"] == "greedy"
    assert any("no column `abusive`" in n for n in created["notes"])  # the demo has no abuse flags
    with churnguard.connect(demo) as s:
        per_branch = s.execute(
            "SELECT branch_id, count(*) FROM campaign_members WHERE campaign_id = ? AND arm <> 'excluded' GROUP BY 1",
            [cid],
        ).fetchall()
        assert max(n for _, n in per_branch) <= 40 and len(per_branch) == 13
        assert (
            s.execute(
                "SELECT count(*) FROM campaign_members WHERE campaign_id = ? AND NOT json_valid(why)", [cid]
            ).fetchone()[0]
            == 0
        )
    r = cg("--db", db, "campaign", "assign", cid, "--strategy", "load", "-f", "json")
    assert r.exit_code == 0, r.output
    assigned = json.loads(r.output)
    assert assigned["assigned_total"] == created["cases_opened"] and len(assigned["assigned"]) == 26
    r = cg("--db", db, "campaign", "report", cid, "-f", "json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["status"] == "measured" and rep["measured_at"] == "2025-12-31"
    assert rep["arms"]["treatment"]["customers"] == created["treatment"]
    assert rep["cases"].get("claimed", 0) == created["cases_opened"]
    r = cg("--db", db, "campaign", "uplift", cid, "--groups", "4", "-f", "json")
    assert r.exit_code == 0, r.output
    up = json.loads(r.output)
    assert up["control"] == created["control"] and [g["group"] for g in up["groups"]] == [1, 2, 3, 4]
    r = cg("--db", db, "--lang", "zh", "campaign", "report", cid)
    assert r.exit_code == 0 and "对照组" in r.output and "流失率" in r.output, r.output
    r = cg("--db", db, "campaign", "list", "-f", "json")
    assert r.exit_code == 0 and json.loads(r.output)[0]["campaign_id"] == cid
    r = cg("--db", db, "campaign", "list", "--branch", "GD")
    assert r.exit_code == 0 and cid not in r.output  # a company-wide campaign is not a province's
    r = cg("--db", db, "campaign", "members", cid, "--arm", "control", "--limit", "3", "-f", "json")
    rows = json.loads(r.output)
    assert len(rows) == 3 and {m["arm"] for m in rows} == {"control"} and rows[0]["case_id"] is None
    r = cg("--db", db, "campaign", "create", "--name", "WB", "--kind", "winback", "--as-of", "2025-06-30")
    assert r.exit_code == 0 and "win-back" in r.output, r.output
    r = cg("--db", db, "campaign", "report", "CMP-00000000-0000", "-f", "json")
    assert r.exit_code != 0


def test_cli_too_early_and_list_scope(hand: churnguard.Store) -> None:
    cid = create_campaign(hand, name="fresh", branch="C1", now=NOW)["campaign_id"]
    db = str(hand.url.path)
    hand.close()
    r = cg("--db", db, "campaign", "report", cid)
    assert r.exit_code == 0 and "Too early" in r.output and "90 days left" in r.output, r.output
    with churnguard.connect(db) as s:
        assert list(list_campaigns(s, branch_ids=["P1", "C1"])["campaign_id"]) == [cid]
        assert list_campaigns(s, branch_ids=["C2"]).empty


def test_playbook_command_prints_the_default_and_checks_files(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "churnguard", "campaign", "playbook", "--show"],
        capture_output=True,
        text=True,
        check=True,
    )
    path = tmp_path / "mine.yaml"
    path.write_text(out.stdout, encoding="utf-8")
    assert load_playbook(path).to_dict()["actions"] == default_playbook().to_dict()["actions"]
    r = cg("campaign", "playbook", "--check", str(path))
    assert r.exit_code == 0 and "valid" in r.output
    path.write_text(out.stdout.replace("cost: 200", "cost: free"), encoding="utf-8")
    bad = subprocess.run(
        [sys.executable, "-m", "churnguard", "campaign", "playbook", "--check", str(path), "-f", "json"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "actions.am_visit.cost" in json.loads(bad.stderr)["error"]["message"]
