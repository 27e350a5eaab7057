"""Kaplan–Meier lifetimes and the log-rank test: by hand, against lifelines, on the demo store, via the CLI."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_metrics_cohorts import cg, cg_here, demo_file, load_people

import churnguard
from churnguard.errors import ConfigError
from churnguard.metrics import ActivityRules, rules_for
from churnguard.metrics.survival import logrank_test, survival_curves

D = dt.date
AS_OF = D(2024, 6, 30)
RULES = ActivityRules(definition="contractual", grace_days=0, as_of=AS_OF)


def day(n: int) -> str:
    return (AS_OF - dt.timedelta(days=n)).isoformat()


# The classic product-limit example: churn on days 3, 5 and 8; still customers after 5 and 10 days.
# id, branch, plan, subscriptions [(start, end)]; the as-of date is 2024-06-30, grace 0 days.
KM_PEOPLE = [
    ("K1", "GD", "basic", [("2024-01-01", "2024-01-04")]),  # 3 days, churned
    ("K2", "GD", "basic", [("2024-01-01", "2024-01-06")]),  # 5 days, churned
    ("K3", "GD", "basic", [(day(5), None)]),  # 5 days, still a customer
    ("K4", "ZJ", "pro", [("2024-02-01", "2024-02-09")]),  # 8 days, churned
    ("K5", "ZJ", "pro", [(day(10), None)]),  # 10 days, still a customer
]


@pytest.fixture
def km_store(tmp_path: Path) -> Iterator[churnguard.Store]:
    s = load_people(tmp_path / "km.duckdb", KM_PEOPLE)
    yield s
    s.close()


def test_product_limit_values_by_hand(km_store) -> None:
    r = survival_curves(km_store, rules=RULES, by=None)
    (g,) = r.groups
    assert (g["n"], g["events"], g["followup_days"]) == (5, 3, 10.0)
    # S(3) = 4/5; S(5) = 0.8 · 3/4 (the one censored on day 5 is still at risk); S(8) = 0.6 · 1/2.
    assert g["curve"]["timeline"] == [0.0, 3.0, 5.0, 8.0, 10.0]
    assert g["curve"]["survival"] == pytest.approx([1.0, 0.8, 0.6, 0.3, 0.3])
    assert all(
        lo <= s <= hi
        for lo, s, hi in zip(g["curve"]["ci_lower"], g["curve"]["survival"], g["curve"]["ci_upper"], strict=True)
    )
    assert g["median_lifetime_days"] == 8.0
    # RMST(10) = 3·1 + 2·0.8 + 3·0.6 + 2·0.3; the default horizon is the longest follow-up.
    assert r.horizon_days == 10.0 and g["restricted_mean_lifetime_days"] == pytest.approx(7.0)
    assert g["survival_at"] == {"90": None, "180": None, "365": None, "730": None}  # beyond 10 days of data
    assert survival_curves(km_store, rules=RULES, by=None, horizon_days=4).groups[0][
        "restricted_mean_lifetime_days"
    ] == pytest.approx(3 + 0.8)
    assert r.logrank is None  # one group, nothing to compare


def test_groups_and_their_log_rank(km_store) -> None:
    r = survival_curves(km_store, rules=RULES, by="plan")
    groups = {g["group"]: g for g in r.groups}
    assert (groups["basic"]["n"], groups["pro"]["n"]) == (3, 2)
    assert groups["basic"]["curve"]["survival"] == pytest.approx([1.0, 2 / 3, 1 / 3])
    assert groups["basic"]["median_lifetime_days"] == 5.0 and groups["pro"]["median_lifetime_days"] == 8.0
    # One horizon for all: the longest follow-up every group reaches (basic: 5 days).
    assert r.horizon_days == 5.0
    assert r.logrank["degrees_of_freedom"] == 1 and 0 < r.logrank["p_value"] < 1
    assert [g["group"] for g in survival_curves(km_store, rules=RULES, by="branch").groups] == ["GD", "ZJ"]
    d = r.to_dict()
    assert d["customers"] == 5 and d["events"] == 3 and json.dumps(d)  # plain JSON, no NaN


# Delayed entry: the data observe customers from 2024-06-24 (as-of − 6 days).
#   P: from the observation start, churns on day 4;  Q: from the observation start, still there on day 6;
#   R: began 6 days before it, churns on day 8;     U: began 6 days before it, still there on day 12.
TRUNCATED = [
    ("P", "GD", "basic", [(day(6), day(2))]),
    ("Q", "GD", "basic", [(day(6), None)]),
    ("R", "GD", "basic", [(day(12), day(4))]),
    ("U", "GD", "basic", [(day(12), None)]),
]


def test_left_truncated_spells_enter_the_risk_sets_late(tmp_path: Path) -> None:
    s = load_people(tmp_path / "t.duckdb", TRUNCATED)
    try:
        # Day 4: P and Q at risk (R and U enter on day 6), S = 1/2; day 8: R and U at risk, S = 1/4.
        late = survival_curves(s, rules=RULES, by=None, observed_from=AS_OF - dt.timedelta(days=6)).groups[0]
        assert dict(zip(late["curve"]["timeline"], late["curve"]["survival"], strict=True))[8.0] == pytest.approx(0.25)
        assert late["median_lifetime_days"] == 4.0
        # Without delayed entry every spell would count from day 0: S(4) = 3/4, S(8) = 3/8.
        naive = survival_curves(s, rules=RULES, by=None, observed_from=D(2000, 1, 1)).groups[0]
        assert naive["curve"]["survival"][-2:] == pytest.approx([0.375, 0.375])
        # The recorded start of the data is the default.
        s.set_meta("dataset_start", (AS_OF - dt.timedelta(days=6)).isoformat())
        assert survival_curves(s, rules=RULES, by=None).groups[0]["median_lifetime_days"] == 4.0
        # A group seen only from a later day has only a conditional curve: no median, mean or S(t).
        only_late = survival_curves(s, rules=RULES, by=None, start=D(2000, 1, 1), end=D.fromisoformat(day(7))).groups[0]
        assert only_late["conditional_on_days"] == 5.0 and only_late["median_lifetime_days"] is None
        assert only_late["restricted_mean_lifetime_days"] is None
    finally:
        s.close()


def test_log_rank_matches_lifelines_without_delayed_entry() -> None:
    from lifelines.statistics import multivariate_logrank_test

    # lifelines' own docstring example, then seeded data with ties and three groups.
    T = [5, 3, 9, 8, 7, 4, 4, 3, 2, 5, 6, 7]
    E = [1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0]
    G = [0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2]
    ref = multivariate_logrank_test(T, G, E)
    stat, dof, p = logrank_test(T, G, E)
    assert (stat, dof, p) == (pytest.approx(ref.test_statistic), 2, pytest.approx(ref.p_value))
    rng = np.random.default_rng(7)
    t = rng.integers(1, 60, 300)
    e = rng.random(300) < 0.7
    g = rng.choice(["a", "b", "c"], 300)
    ref = multivariate_logrank_test(t, g, e)
    assert logrank_test(t, g, e)[0] == pytest.approx(ref.test_statistic)
    # Entries before the first churn change no risk set at a churn time.
    assert logrank_test(t, g, e, entry=np.minimum(t, 0.5))[0] == pytest.approx(ref.test_statistic)


def test_log_rank_with_delayed_entry_by_hand() -> None:
    # Group a: churns on days 2 and 6.  Group b: one enters on day 3 and churns on day 4, one stays to day 8.
    # Day 2: n = (2, 1), E_a = 2/3, V = 2/9; day 4: n = (1, 2), E_a = 1/3, V = 2/9; day 6: n = (1, 1), E_a = 1/2,
    # V = 1/4.  O_a − E_a = 2 − 3/2 = 1/2 and χ² = (1/2)² / (25/36) = 9/25.
    durations, events, groups = [2, 6, 4, 8], [1, 1, 1, 0], ["a", "a", "b", "b"]
    stat, dof, p = logrank_test(durations, groups, events, entry=[0, 0, 3, 0])
    assert stat == pytest.approx(9 / 25) and dof == 1
    assert p == pytest.approx(0.548506, abs=1e-6)  # P(χ²₁ > 0.36) = 2 (1 − Φ(0.6))
    # Everybody from day 0 instead: E_a = 1/2 + 1/3 + 1/2, V = 1/4 + 2/9 + 1/4, χ² = (2/3)² / (26/36) = 8/13.
    assert logrank_test(durations, groups, events)[0] == pytest.approx(8 / 13)


def test_bad_options_are_clear_errors(km_store) -> None:
    with pytest.raises(ConfigError, match="--by: expected one of segment, plan, branch, cohort"):
        survival_curves(km_store, rules=RULES, by="colour")
    with pytest.raises(ConfigError, match="expected from ≤ to"):
        survival_curves(km_store, rules=RULES, start=D(2024, 3, 1), end=D(2024, 2, 1))
    with pytest.raises(ConfigError, match="horizon"):
        survival_curves(km_store, rules=RULES, horizon_days=0)
    with pytest.raises(ConfigError, match="at least 2 groups"):
        logrank_test([1, 2], ["a", "a"], [1, 1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[churnguard.Store]:
    with churnguard.connect(demo_file(tmp_path_factory), read_only=True) as s:
        yield s


def test_demo_prepaid_lives_shorter_than_family(demo) -> None:
    r = survival_curves(demo, rules=rules_for(demo), by="plan")
    plans = {g["group"]: g for g in r.groups}
    assert r.observed_from == D(2023, 1, 1)  # customers on board before the data enter late
    assert plans["prepaid"]["median_lifetime_days"] < plans["smart"]["median_lifetime_days"]
    assert plans["prepaid"]["median_lifetime_days"] < plans["family"]["median_lifetime_days"]
    assert plans["prepaid"]["restricted_mean_lifetime_days"] < plans["family"]["restricted_mean_lifetime_days"]
    assert plans["prepaid"]["survival_at"]["365"] < plans["family"]["survival_at"]["365"]
    assert r.logrank["p_value"] < 1e-6
    assert all(len(g["curve"]["timeline"]) <= 200 for g in r.groups)


def test_cli_survival_json_and_table(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    db = tmp_path / "demo.duckdb"
    shutil.copyfile(demo_file(tmp_path_factory), db)
    r = cg("--db", str(db), "metrics", "survival", "--by", "plan", "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["by"] == "plan" and {g["group"] for g in data["groups"]} >= {"prepaid", "family"}
    g = data["groups"][0]
    assert {"n", "events", "median_lifetime_days", "restricted_mean_lifetime_days", "survival_at", "curve"} <= set(g)
    assert set(g["curve"]) == {"timeline", "survival", "ci_lower", "ci_upper"}
    assert 0 <= data["logrank"]["p_value"] <= 1
    out = cg_here("--db", str(db), "metrics", "survival", "--branch", "GD")
    assert "Kaplan–Meier" in out and "consumer" in out and "Log-rank" in out
