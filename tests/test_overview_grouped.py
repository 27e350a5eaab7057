"""The overview's figures computed for every branch at once equal the per-branch metrics functions.

The overview assembles each branch's figures from queries that cover every branch of the tree
(:func:`churnguard.api.services.figures.period_figures`); before, it called ``churn_report``,
``churn_loss``, ``reason_mix`` and ``churn_alerts`` with ``branch`` = that branch.  On the demo operator
(20,000 customers, 19 branches) both ways must give the same overview, key for key, for every branch
and the whole company, and for periods that start on the first of a month or not.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from conftest import build_demo_store

import churnguard
from churnguard.api.cache import FigureCache
from churnguard.api.services import figures
from churnguard.api.services.overview_model import build_overview_facts
from churnguard.auth.scope import Scope
from churnguard.metrics import churn_loss, reason_mix, rules_for


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, _ = build_demo_store(tmp_path_factory)
    return path


def _branches(store: Any) -> list[str]:
    return [r[0] for r in store.execute("SELECT branch_id FROM branches ORDER BY level, branch_id").fetchall()]


def _scope(branch: str | None) -> Scope:
    return Scope("test", "admin" if branch is None else "analyst", branch)


def test_every_branch_equals_the_per_branch_functions(demo: Path) -> None:
    with churnguard.connect(demo, read_only=True) as s:
        cache = FigureCache()
        p = figures.period_for(s, 12)
        branches = _branches(s)
        assert len(branches) >= 10
        for branch in [None, *branches]:
            got = figures.overview(s, _scope(branch), cache, months=12)
            want = figures._with_warnings(lambda b=branch: figures._compute_overview(s, b, p, None))
            assert got == want, branch
            if branch in (None, "GD", "GD-GZ"):  # the figures are not empty
                assert got["headline"]["churned_customers"] > 0 and got["headline"]["lost_revenue"] > 0
                assert got["reasons"] and got["branches"] and len(got["trend"]) == 12
        # the shared figures were computed once for the period, not per branch; the spell facts once
        shared = [k for k in cache._entries if k[1] != "overview"]
        assert sorted(k[1] for k in shared) == ["churn-counts", "churned-by-branch"]
        assert list(cache._latest) == ["overview-facts"]
        company = figures.overview(s, _scope(None), cache, months=12)
        assert any(a["group_kind"] == "branch" for a in company["alerts"]) or company["alerts"] == []


@pytest.mark.parametrize(
    ("start", "end", "expect"),
    [
        # six months: the reason mix by quarter; the alerts read March too, and Sichuan's Mianyang jumps in April
        (dt.date(2025, 4, 1), dt.date(2025, 9, 30), "alerts"),
        # starts mid-month (no month before it for the alerts); loss windows reach back before the first
        # transaction (2023-01-01), so the loss warns, per branch with its own counts
        (dt.date(2023, 2, 15), dt.date(2023, 5, 20), "warnings"),
        (dt.date(2025, 10, 1), dt.date(2025, 10, 31), None),  # one month
    ],
)
def test_other_periods_equal_the_per_branch_functions(demo: Path, start: dt.date, end: dt.date, expect: str) -> None:
    with churnguard.connect(demo, read_only=True) as s:
        cache = FigureCache()
        p = figures.period_for(s, start=start, end=end)
        for branch in (None, "GD", "SC", "SC-MY"):
            got = figures.overview(s, _scope(branch), cache, start=start, end=end)
            want = figures._with_warnings(lambda b=branch: figures._compute_overview(s, b, p, None))
            assert got == want, branch
            assert got["headline"]["churned_customers"] > 0
            if expect == "alerts" and branch == "SC":
                assert [(a["period"], a["group"]) for a in got["alerts"]] == [("2025-04", "SC-MY")]
            if expect == "warnings":
                assert got["warnings"] and "churn loss" in got["warnings"][0], branch


def test_churned_by_branch_equals_churn_loss_and_reason_mix(demo: Path) -> None:
    start, end = dt.date(2025, 1, 1), dt.date(2025, 12, 31)
    with churnguard.connect(demo, read_only=True) as s:
        rules = rules_for(s)
        facts = build_overview_facts(s, rules)
        spells = s.execute("SELECT count(*) FROM subscriptions").fetchone()[0]
        assert 0 < facts.spells <= spells and facts.root == "HQ"
        grouped = facts.churned(start, end)
        for branch in ("HQ", "GD", "ZJ", "GD-GZ", "SC-MY"):
            want = churn_loss(s, start=start, end=end, rules=rules, branch=branch, by="branch").to_dict()
            got = grouped.loss_report(branch, facts.children.get(branch, [])).to_dict()
            want.pop("top_customers"), got.pop("top_customers")
            assert got == want, branch
            mix = reason_mix(s, start=start, end=end, rules=rules, period="quarter", branch=branch)
            by_reason = {r["reason"]: r["churned_customers"] for r in mix["reasons"]}
            assert grouped.reason_counts(branch) == by_reason, branch
        assert grouped.loss_report("HQ", facts.children["HQ"]).totals["churned_customers"] > 1000


def test_a_new_load_replaces_the_facts(demo: Path, tmp_path: Path) -> None:
    import shutil

    path = tmp_path / "demo.duckdb"
    shutil.copyfile(demo, path)
    with churnguard.connect(path) as s:
        cache = FigureCache()
        before = figures.overview(s, _scope("GD-GZ"), cache, months=3)
        facts = cache._latest["overview-facts"][1]
        # one customer of Guangzhou moves to Shenzhen: a load (ingest_log) changes the data version
        moved = s.execute(
            "SELECT customer_id FROM customers WHERE branch_id = 'GD-GZ' ORDER BY customer_id LIMIT 1"
        ).fetchone()[0]
        s.execute("UPDATE customers SET branch_id = 'GD-SZ' WHERE customer_id = ?", [moved])
        s.execute("INSERT INTO ingest_log (load_id, table_name, finished_at) VALUES ('test-move', 'customers', now())")
        after = figures.overview(s, _scope("GD-GZ"), cache, months=3)
        assert cache._latest["overview-facts"][1] is not facts
        p = figures.period_for(s, 3)
        assert after == figures._with_warnings(lambda: figures._compute_overview(s, "GD-GZ", p, None))
        assert after["headline"]["start_customers"] in (
            before["headline"]["start_customers"],
            before["headline"]["start_customers"] - 1,
        )


def test_a_branch_not_in_the_tree_is_refused_as_before(demo: Path) -> None:
    from churnguard.errors import ConfigError

    with churnguard.connect(demo, read_only=True) as s, pytest.raises(ConfigError, match="not in branches"):
        figures.overview(s, _scope("XX-NOWHERE"), FigureCache(), months=3)
