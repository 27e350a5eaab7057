"""Company figures for a scope: the overview (head office and branch pages) and the metrics endpoints.

Every number comes from a :mod:`churnguard.metrics` function, called with ``branch`` = the scope's
branch, so the metric's own SQL restricts every count to that subtree
(:func:`churnguard.metrics.scope.customer_scope_sql`).  Results are cached per data version
(:mod:`churnguard.api.cache`).

Overview, for the period ``[from, to]`` (default: the last ``months`` full calendar months up to the
data's as-of date, :func:`churnguard.reports.default_range`) and the period of the same length
before it:

- ``headline``: customers at the start and end, churned, churn rate, the previous period's rate and the
  change (流失变动率: rate − previous rate, in rate units), lost revenue and profit loss (客户流失损失);
- ``branches``: one row per child branch of the scope (with its subtree) with the same figures;
- ``trend``: the churn rate per month of the period;
- ``reasons``: each churn reason's share of the period's churn (:func:`churnguard.metrics.reason_mix`);
- ``alerts``: child branches whose monthly churn rate jumped (:func:`churnguard.metrics.churn_alerts`).

The overview does not call the metrics functions per branch: its figures are computed for **every
branch at once**, once per period and data version, and each branch's overview is assembled from them
(a few milliseconds).  They are
sums over the spell facts of :mod:`churnguard.api.services.overview_model` (every spell with its
branch, churn reason and lost revenue, read from the store once per data version into memory): the
churn counts of every branch for the period, the previous one and each month
(:meth:`~churnguard.api.services.overview_model.OverviewFacts.counts`), and the loss and churn per
reason of every branch (:func:`churnguard.metrics.loss.churned_by_branch`).  The alerts, the reason
shares and the rates are then applied by the same code as :func:`churnguard.metrics.churn_alerts`
(:func:`churnguard.metrics.alerts.alerts_from_report`), :func:`churnguard.metrics.reason_mix`
(:func:`churnguard.metrics.alerts.reason_shares`) and :func:`churnguard.metrics.churn_report`
(:func:`churnguard.metrics.churn.report_rows`), so each figure equals what the per-branch function gives
(tests/test_overview_grouped.py compares them for every branch).
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable
from typing import Any

from churnguard.api.cache import FigureCache, data_version
from churnguard.auth.scope import Scope
from churnguard.store.connection import Store

OVERVIEW_MONTHS: tuple[int, ...] = (1, 3, 6, 12)


def _rules(store: Store) -> Any:
    from churnguard.metrics import rules_for

    return rules_for(store)


def period_for(store: Store, months: int = 12, start: dt.date | None = None, end: dt.date | None = None) -> dict:
    """The period asked for (or the last ``months`` full months) and the one before it."""
    from churnguard.reports.periods import default_range, previous_range

    rules = _rules(store)
    if start is None or end is None:
        d_start, d_end = default_range(rules, months)
        start, end = start or d_start, end or d_end
    p_start, p_end = previous_range(start, end)
    return {"rules": rules, "start": start, "end": end, "prev_start": p_start, "prev_end": p_end}


def _with_warnings(compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = compute()
    texts = []
    for w in caught:
        text = str(w.message)
        if w.category.__module__.startswith("churnguard") and text not in texts:
            texts.append(text)
    out["warnings"] = texts
    return out


def cached(cache: FigureCache, store: Store, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
    """``compute()`` once per (data version, ``key``)."""
    return cache.get_or_compute((data_version(store), *key), compute)


def overview(
    store: Store,
    scope: Scope,
    cache: FigureCache,
    *,
    months: int = 12,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> dict[str, Any]:
    """The overview figures of ``scope`` (module docstring); cached per data version, branch and period."""
    p = period_for(store, months, start, end)
    branch = scope.metrics_branch
    key = ("overview", branch, p["start"], p["end"])

    def compute() -> dict[str, Any]:
        shared = period_figures(store, cache, p)
        return _with_warnings(lambda: _compute_overview(store, branch, p, shared))

    return cached(cache, store, key, compute)


def overview_facts(store: Store, cache: FigureCache, rules: Any | None = None) -> Any:
    """The spell facts of the store's current data version (built on first use; one kept at a time)."""
    from churnguard.api.services.overview_model import build_overview_facts

    return cache.latest(
        "overview-facts", data_version(store), lambda: build_overview_facts(store, rules or _rules(store))
    )


def period_figures(store: Store, cache: FigureCache, p: dict[str, Any]) -> dict[str, Any] | None:
    """The figures of every branch for the period ``p`` (module docstring), each cached per data version.

    ``None`` for a store without branches (the overview then calls the metrics functions directly).
    """
    facts = overview_facts(store, cache, p["rules"])
    if facts.root is None:
        return None
    start, end = p["start"], p["end"]
    return {
        "root": facts.root,
        "counts": cached(cache, store, ("churn-counts", start, end), lambda: facts.counts(p)),
        "churned": cached(cache, store, ("churned-by-branch", start, end), lambda: facts.churned(start, end)),
        "first_churn": facts.first_churn,
    }


def _report(counts: dict[str, Any] | None, start: dt.date, end: dt.date) -> dict[str, Any]:
    """Counts with their (standard) churn rate, as a :func:`churnguard.metrics.churn_report` row."""
    from churnguard.metrics.churn import COUNT_KEYS, churn_rate

    row = dict(counts) if counts else dict.fromkeys(COUNT_KEYS, 0)
    rate = churn_rate(row, definition="standard", days=(end - start).days + 1)
    row["churn_rate"] = None if rate is None else round(rate, 6)
    return row


class _Report:
    """The parts of a :class:`churnguard.metrics.churn.ChurnReport` the overview reads."""

    def __init__(self, totals: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        self.totals, self.rows = totals, rows


def _from_counts(counts: dict[str, Any], branch: str, p: dict[str, Any]) -> tuple[_Report, _Report, list[dict]]:
    """This branch's period and previous-period reports (by child branch) and monthly trend, from the grouped counts."""
    tree, own = counts["tree"], counts["own"]

    def report(label: str, start: dt.date, end: dt.date) -> _Report:
        rows = [
            {"branch": child, **_report(tree[(label, child)], start, end)}
            for child in counts["children"].get(branch, [])
            if (label, child) in tree
        ]
        if (label, branch) in own:
            rows.append({"branch": branch, **_report(own[(label, branch)], start, end)})
        rows.sort(key=lambda r: r["branch"])
        return _Report(_report(tree.get((label, branch)), start, end), rows)

    trend = [{"period": label, **_report(tree.get((f"m:{label}", branch)), a, b)} for label, a, b in counts["months"]]
    return report("cur", p["start"], p["end"]), report("prev", p["prev_start"], p["prev_end"]), trend


def _alerts_from_counts(
    store: Store,
    counts: dict[str, Any],
    target: str,
    branch: str | None,
    p: dict[str, Any],
    first_churn: dt.date | None,
) -> Any:
    """``churn_alerts(period="month", by="branch", branch=branch)`` from the grouped counts of ``target``'s children."""
    from churnguard.metrics.alerts import alert_start, alerts_from_report
    from churnguard.metrics.churn import ChurnReport, report_rows, rules_dict

    tree, own = counts["tree"], counts["own"]
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for label, _, _ in counts["alert_months"]:
        for child in counts["children"].get(target, []):
            if (f"m:{label}", child) in tree:
                found[(label, child)] = tree[(f"m:{label}", child)]
        if (f"m:{label}", target) in own:
            found[(label, target)] = own[(f"m:{label}", target)]
    rows = report_rows(found, counts["alert_months"], by="branch", period="month")
    report = ChurnReport(
        start=alert_start(p["start"], "month"),
        end=p["end"],
        definition="standard",
        totals={},
        rows=rows,
        period="month",
        by="branch",
        branch=branch,
        rules=rules_dict(p["rules"]),
    )
    return alerts_from_report(
        store,
        report,
        start=p["start"],
        end=p["end"],
        period="month",
        by="branch",
        branch=branch,
        first_churn=first_churn,
    )


def _compute_overview(
    store: Store, branch: str | None, p: dict[str, Any], shared: dict[str, Any] | None = None
) -> dict[str, Any]:
    from churnguard.metrics import churn_alerts, churn_loss, churn_report, reason_mix
    from churnguard.metrics.alerts import reason_shares
    from churnguard.reports.periods import months_in

    rules, start, end, p_start, p_end = p["rules"], p["start"], p["end"], p["prev_start"], p["prev_end"]
    known = shared is not None and (branch is None or any(branch in c for c in shared["counts"]["children"].values()))
    if shared is not None and known:  # every branch's figures, computed once per period (period_figures)
        target = branch if branch is not None else shared["root"]  # the whole company: the root's subtree
        counts = shared["counts"]
        cur, prev, trend = _from_counts(counts, target, p)
        children = counts["children"].get(target, [])
        loss = shared["churned"].loss_report(target, children, whole_company=branch is None).to_dict()
        reasons = reason_shares(shared["churned"].reason_counts(target))
        alerts = _alerts_from_counts(store, counts, target, branch, p, shared["first_churn"])
    else:  # no branch tree, or a branch not in it (the metrics functions say so)
        cur = churn_report(store, start=start, end=end, rules=rules, by="branch", branch=branch)
        prev = churn_report(store, start=p_start, end=p_end, rules=rules, by="branch", branch=branch)
        trend = churn_report(store, start=start, end=end, rules=rules, period="month", branch=branch).rows
        loss = churn_loss(store, start=start, end=end, rules=rules, branch=branch, by="branch").to_dict()
        mix_period = "quarter" if months_in(start, end) >= 6 else "month"
        reasons = reason_mix(store, start=start, end=end, rules=rules, period=mix_period, branch=branch)["reasons"]
        alerts = churn_alerts(store, start=start, end=end, rules=rules, period="month", by="branch", branch=branch)

    def change(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round(a - b, 6)

    headline = {
        **{k: cur.totals[k] for k in ("start_customers", "new_customers", "churned_customers", "end_customers")},
        "churned_from_start": cur.totals["churned_from_start"],
        "churn_rate": cur.totals["churn_rate"],
        "previous_rate": prev.totals["churn_rate"],
        "churn_rate_change": change(cur.totals["churn_rate"], prev.totals["churn_rate"]),
        "lost_revenue": loss.get("lost_revenue"),
        "profit_loss": loss.get("profit_loss"),
    }
    prev_rows = {r["branch"]: r for r in prev.rows}
    loss_rows = {r.get("branch"): r for r in loss.get("rows", [])}
    branches = []
    for r in cur.rows:
        before = prev_rows.get(r["branch"], {})
        lost = loss_rows.get(r["branch"], {})
        branches.append(
            {
                "branch": r["branch"],
                "direct": r["branch"] == branch,
                "start_customers": r["start_customers"],
                "churned_customers": r["churned_customers"],
                "end_customers": r["end_customers"],
                "churn_rate": r["churn_rate"],
                "previous_rate": before.get("churn_rate"),
                "churn_rate_change": change(r["churn_rate"], before.get("churn_rate")),
                "lost_revenue": lost.get("lost_revenue"),
                "profit_loss": lost.get("profit_loss"),
            }
        )
    branches.sort(key=lambda x: (x["direct"], -(x["churn_rate"] or 0), x["branch"]))
    return {
        "branch": branch,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "previous_from": p_start.isoformat(),
        "previous_to": p_end.isoformat(),
        "as_of": rules.as_of.isoformat() if rules.as_of else None,
        "definition": rules.definition,
        "headline": headline,
        "branches": branches,
        "trend": [
            {"period": r["period"], "churn_rate": r["churn_rate"], "churned": r["churned_customers"]} for r in trend
        ],
        "reasons": reasons,
        "alerts": [a.to_dict() for a in alerts.alerts],
    }


# -- the metrics endpoints ---------------------------------------------------------------------------


def churn(
    store: Store,
    scope: Scope,
    cache: FigureCache,
    *,
    start: dt.date,
    end: dt.date,
    period: str | None,
    by: str | None,
    definition: str,
) -> dict[str, Any]:
    """:func:`churnguard.metrics.churn_report` for the scope."""
    from churnguard.metrics import churn_report

    def compute() -> dict[str, Any]:
        return churn_report(
            store,
            start=start,
            end=end,
            rules=_rules(store),
            period=period,  # type: ignore[arg-type]
            by=by,
            branch=scope.metrics_branch,
            definition=definition,  # type: ignore[arg-type]
        ).to_dict()

    return cached(
        cache,
        store,
        ("churn", scope.metrics_branch, start, end, period, by, definition),
        lambda: _with_warnings(compute),
    )


def loss(
    store: Store,
    scope: Scope,
    cache: FigureCache,
    *,
    start: dt.date,
    end: dt.date,
    by: str | None,
    window_months: int,
    margin: float | None,
) -> dict[str, Any]:
    """:func:`churnguard.metrics.churn_loss` for the scope."""
    from churnguard.metrics import churn_loss

    def compute() -> dict[str, Any]:
        return churn_loss(
            store,
            start=start,
            end=end,
            rules=_rules(store),
            window_months=window_months,
            margin=margin,
            branch=scope.metrics_branch,
            by=by,
        ).to_dict()

    key = ("loss", scope.metrics_branch, start, end, by, window_months, margin)
    return cached(cache, store, key, lambda: _with_warnings(compute))


def cohorts(
    store: Store,
    scope: Scope,
    cache: FigureCache,
    *,
    start: dt.date | None,
    end: dt.date | None,
    period: str,
    max_age: int,
    by: str | None,
) -> dict[str, Any]:
    """:func:`churnguard.metrics.cohort_retention` for the scope."""
    from churnguard.metrics import cohort_retention

    def compute() -> dict[str, Any]:
        return cohort_retention(
            store,
            rules=_rules(store),
            start=start,
            end=end,
            period=period,
            max_age=max_age,
            branch=scope.metrics_branch,
            by=by,
        ).to_dict()

    key = ("cohorts", scope.metrics_branch, start, end, period, max_age, by)
    return cached(cache, store, key, lambda: _with_warnings(compute))


def alerts(
    store: Store,
    scope: Scope,
    cache: FigureCache,
    *,
    start: dt.date,
    end: dt.date,
    period: str,
    by: str,
    ceiling: float | None,
    jump_pp: float | None,
    min_start_customers: int,
) -> dict[str, Any]:
    """:func:`churnguard.metrics.churn_alerts` for the scope."""
    from churnguard.metrics import churn_alerts

    def compute() -> dict[str, Any]:
        return churn_alerts(
            store,
            start=start,
            end=end,
            rules=_rules(store),
            period=period,
            by=by,  # type: ignore[arg-type]
            ceiling=ceiling,
            jump_pp=jump_pp,
            min_start_customers=min_start_customers,
            branch=scope.metrics_branch,
        ).to_dict()

    key = ("alerts", scope.metrics_branch, start, end, period, by, ceiling, jump_pp, min_start_customers)
    return cached(cache, store, key, lambda: _with_warnings(compute))


def reasons(
    store: Store, scope: Scope, cache: FigureCache, *, start: dt.date, end: dt.date, period: str
) -> dict[str, Any]:
    """:func:`churnguard.metrics.reason_mix` for the scope."""
    from churnguard.metrics import reason_mix

    def compute() -> dict[str, Any]:
        return reason_mix(
            store,
            start=start,
            end=end,
            rules=_rules(store),
            period=period,  # type: ignore[arg-type]
            branch=scope.metrics_branch,
        )

    return cached(cache, store, ("reasons", scope.metrics_branch, start, end, period), lambda: _with_warnings(compute))
