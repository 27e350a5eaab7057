"""Lifecycle stage (客户生命周期) of every customer, from tenure and the trend of their own activity.

Population: every customer in scope with a spell starting on or before the as-of date ``d``
(:mod:`churnguard.segments.store`, not limited to the recent window).  Rules, first match wins:

1. **churned** (已流失): no open spell at ``d``.
2. **new** (培养期, acquisition): the current spell started less than ``new_months`` (3) months
   before ``d``: ``spell_start > d − new_months months``.  A customer who came back starts anew.
3. Otherwise compare the last ``trend_months`` (3) calendar months, ``(d − 3 months, d]``, with
   the 3 months before, ``(d − 6 months, d − 3 months]``, on two measures of the customer's own
   level (calendar months, not 90-day blocks: a monthly bill dated on the 1st falls three times
   in any 3-month window, but two or three times in a 90-day one, which reads as a 33 % swing):

   - spend ``S``: revenue (:func:`churnguard.metrics.loss.revenue_condition`) in the window;
   - activity ``A``: distinct days with any transaction or event in the window.

   With ``θ = threshold`` (0.20):

   - **decline** (衰退期): ``S_prior > 0 and S_recent < (1 − θ)·S_prior``
     or ``A_prior > 0 and A_recent < (1 − θ)·A_prior`` — either falls by more than θ;
   - **growth** (成长期): ``S_recent > (1 + θ)·S_prior`` or ``A_recent > (1 + θ)·A_prior``
     (from zero, any spend or activity is growth);
   - **maturity** (成熟期): neither — stable within ±θ (or no activity in either window).

Decline is checked before growth: a customer who spends more but shows up less is flagged,
because a falling measure is the early sign the retention work needs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from churnguard.errors import ConfigError
from churnguard.metrics.activity import ActivityRules, rules_for
from churnguard.metrics.loss import revenue_condition
from churnguard.segments.labels import LIFECYCLE_STAGES
from churnguard.segments.store import population_sql
from churnguard.store.connection import Store


@dataclass(frozen=True)
class LifecycleReport:
    """Customers per lifecycle stage.

    Attributes
    ----------
    as_of, branch, new_months, trend_months, threshold : the options used.
    customers : customers in the population.
    rows : per stage (in order new, growth, maturity, decline, churned): ``stage, customers, share``.
    """

    as_of: dt.date
    branch: str | None
    new_months: int
    trend_months: int
    threshold: float
    customers: int
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat()
        return d


def lifecycle_sql(
    store: Store,
    rules: ActivityRules,
    *,
    new_months: int = 3,
    trend_months: int = 3,
    threshold: float = 0.2,
    branch: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """SQL (and parameters), one row per customer: ``customer_id, active, spend_prior, spend_recent,
    days_prior, days_recent, lifecycle_stage``."""
    if new_months < 0 or trend_months < 1 or not 0 <= threshold < 1:
        raise ConfigError(
            "lifecycle: expected new_months ≥ 0, trend_months ≥ 1 and 0 ≤ threshold < 1, "
            f"got {new_months}, {trend_months} and {threshold}."
        )
    base, params = population_sql(store, rules, window_days=1, branch=branch, recent_only=False)
    cond = revenue_condition(store)
    # Calendar months, not 90-day blocks: monthly bills dated on the same day of the month give
    # each window the same number of bills (90 days may hold two bills or three).
    lc_from = "CAST(CAST($seg_as_of AS DATE) - to_months(2 * CAST($lc_trend AS INTEGER)) AS DATE)"
    lc_mid = "CAST(CAST($seg_as_of AS DATE) - to_months(CAST($lc_trend AS INTEGER)) AS DATE)"
    sql = f"""{base},
    sp AS (
      SELECT t.customer_id,
             sum(t.amount) FILTER (WHERE CAST(t.ts AS DATE) <= {lc_mid}) AS spend_prior,
             sum(t.amount) FILTER (WHERE CAST(t.ts AS DATE) > {lc_mid}) AS spend_recent
      FROM transactions t
      WHERE {cond} AND CAST(t.ts AS DATE) > {lc_from} AND CAST(t.ts AS DATE) <= $seg_as_of
      GROUP BY 1
    ), dd AS (
      SELECT DISTINCT customer_id, day FROM (
      SELECT customer_id, CAST(ts AS DATE) AS day FROM transactions
      WHERE CAST(ts AS DATE) > {lc_from} AND CAST(ts AS DATE) <= $seg_as_of
      UNION ALL
      SELECT customer_id, CAST(ts AS DATE) FROM events
      WHERE CAST(ts AS DATE) > {lc_from} AND CAST(ts AS DATE) <= $seg_as_of)
    ), ac AS (
      SELECT customer_id, count(*) FILTER (WHERE day <= {lc_mid}) AS days_prior,
             count(*) FILTER (WHERE day > {lc_mid}) AS days_recent
      FROM dd GROUP BY 1
    ), j AS (
      SELECT b.customer_id, b.active, b.spell_start,
             coalesce(sp.spend_prior, 0) AS s0, coalesce(sp.spend_recent, 0) AS s1,
             coalesce(ac.days_prior, 0) AS a0, coalesce(ac.days_recent, 0) AS a1
      FROM base b LEFT JOIN sp ON sp.customer_id = b.customer_id LEFT JOIN ac ON ac.customer_id = b.customer_id
    )
    SELECT customer_id, active, spell_start, s0 AS spend_prior, s1 AS spend_recent, a0 AS days_prior, a1 AS days_recent,
      CASE
        WHEN NOT active THEN 'churned'
        WHEN spell_start > CAST(CAST($seg_as_of AS DATE) - to_months(CAST($lc_months AS INTEGER)) AS DATE) THEN 'new'
        WHEN (s0 > 0 AND s1 < (1 - $lc_theta) * s0) OR (a0 > 0 AND a1 < (1 - $lc_theta) * a0) THEN 'decline'
        WHEN s1 > (1 + $lc_theta) * s0 OR a1 > (1 + $lc_theta) * a0 THEN 'growth'
        ELSE 'maturity'
      END AS lifecycle_stage
    FROM j"""
    params = {
        **params,
        "lc_trend": int(trend_months),
        "lc_months": int(new_months),
        "lc_theta": float(threshold),
    }
    return sql, params


def lifecycle_stages(
    store: Store,
    *,
    as_of: dt.date | None = None,
    new_months: int = 3,
    trend_months: int = 3,
    threshold: float = 0.2,
    branch: str | None = None,
    rules: ActivityRules | None = None,
) -> LifecycleReport:
    """Put every customer in a lifecycle stage: new, growth, maturity, decline or churned.

    Parameters
    ----------
    store : the store.
    as_of : the day the stages describe (default: the data set's as-of date).
    new_months : tenure of the current spell below which a customer is new (培养期).
    trend_months : the length of the two windows compared (recent vs prior).
    threshold : θ, the relative change that counts as growth (> +θ) or decline (< −θ).
    branch : limit to this branch's subtree.
    rules : the churn rules that decide who is active (default: the store's).

    Returns
    -------
    LifecycleReport : customers per stage and ``share = n_stage / n``.
    """
    rules = rules or rules_for(store, as_of=as_of)
    sql, params = lifecycle_sql(
        store, rules, new_months=new_months, trend_months=trend_months, threshold=threshold, branch=branch
    )
    got = dict(store.execute(f"SELECT lifecycle_stage, count(*) FROM ({sql}) GROUP BY 1", params).fetchall())
    n = int(sum(got.values()))
    rows = [
        {"stage": k, "customers": int(got.get(k, 0)), "share": round(got.get(k, 0) / n, 6) if n else None}
        for k in LIFECYCLE_STAGES
    ]
    return LifecycleReport(
        as_of=rules.as_of,  # type: ignore[arg-type]
        branch=branch,
        new_months=new_months,
        trend_months=trend_months,
        threshold=threshold,
        customers=n,
        rows=rows,
    )
