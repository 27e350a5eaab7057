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
    key = ("overview", scope.metrics_branch, p["start"], p["end"])
    return cached(cache, store, key, lambda: _with_warnings(lambda: _compute_overview(store, scope.metrics_branch, p)))


def _compute_overview(store: Store, branch: str | None, p: dict[str, Any]) -> dict[str, Any]:
    from churnguard.metrics import churn_alerts, churn_loss, churn_report, reason_mix
    from churnguard.reports.periods import months_in

    rules, start, end, p_start, p_end = p["rules"], p["start"], p["end"], p["prev_start"], p["prev_end"]
    cur = churn_report(store, start=start, end=end, rules=rules, by="branch", branch=branch)
    prev = churn_report(store, start=p_start, end=p_end, rules=rules, by="branch", branch=branch)
    loss = churn_loss(store, start=start, end=end, rules=rules, branch=branch, by="branch").to_dict()
    trend = churn_report(store, start=start, end=end, rules=rules, period="month", branch=branch).rows
    mix_period = "quarter" if months_in(start, end) >= 6 else "month"
    mix = reason_mix(store, start=start, end=end, rules=rules, period=mix_period, branch=branch)
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
        "reasons": mix["reasons"],
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
