"""Customer value segmentation: RFM, ABC value tiers and lifecycle stage (docs/segments.md).

:func:`segment_customers` runs all three and stores them per customer in ``customer_value``
with the as-of date, for the early warning, actions and dashboard to read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from churnguard.metrics.activity import ActivityRules, rules_for
from churnguard.segments.abc import AbcReport, abc_sql, abc_tiers, check_options
from churnguard.segments.lifecycle import LifecycleReport, lifecycle_sql, lifecycle_stages
from churnguard.segments.rfm import RfmReport, rfm_scores, rfm_sql
from churnguard.segments.store import write_customer_value
from churnguard.store.connection import Store

__all__ = [
    "AbcReport",
    "LifecycleReport",
    "RfmReport",
    "SegmentRun",
    "abc_tiers",
    "lifecycle_stages",
    "rfm_scores",
    "segment_customers",
]

_TMP = ("_cg_seg_rfm", "_cg_seg_abc", "_cg_seg_lc", "_cg_seg_new")


@dataclass(frozen=True)
class SegmentRun:
    """What :func:`segment_customers` computed and wrote.

    Attributes
    ----------
    as_of : the day the values describe.
    rfm, abc, lifecycle : the three reports, over the whole company.
    written : ``updated`` / ``inserted`` rows of customer_value, and ``cleared`` (rows of
        customers no longer in the population, their segmentation columns set to NULL).
    """

    as_of: dt.date
    rfm: RfmReport
    abc: AbcReport
    lifecycle: LifecycleReport
    written: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat()
        d["rfm"], d["abc"], d["lifecycle"] = self.rfm.to_dict(), self.abc.to_dict(), self.lifecycle.to_dict()
        return d


def segment_customers(
    store: Store,
    *,
    as_of: dt.date | None = None,
    window_days: int = 365,
    basis: str = "margin",
    a_share: float | None = None,
    b_share: float | None = None,
    by: str = "count",
    new_months: int = 3,
    trend_months: int = 3,
    threshold: float = 0.2,
    rules: ActivityRules | None = None,
) -> SegmentRun:
    """Compute RFM, ABC tiers and lifecycle stages for the whole company and store them.

    One row per customer with a spell by the as-of date is written to ``customer_value``
    (upsert by ``customer_id``, one transaction; the CLV columns are kept):

    - ``recency_days, frequency, monetary, r_score, f_score, m_score, rfm_segment`` from
      :func:`~churnguard.segments.rfm.rfm_scores` (customers active, or churned in the window);
    - ``value, value_basis`` and ``tier`` — the *effective* tier: ``customers.tier_override``
      where set, else the computed A/B/C (:func:`~churnguard.segments.abc.abc_tiers`);
    - ``lifecycle_stage`` for every customer (:func:`~churnguard.segments.lifecycle.lifecycle_stages`);
    - ``as_of`` and ``updated_at`` (UTC).

    Branch scopes are not offered here: stored tiers and quintiles are company-wide, so a
    branch's A customers are the company's A customers in that branch.
    """
    check_options(basis, by, a_share, b_share)
    rules = rules or rules_for(store, as_of=as_of)
    d = rules.as_of
    assert d is not None
    rsql, rparams = rfm_sql(store, rules, window_days=window_days)
    asql, aparams = abc_sql(store, rules, basis=basis, a_share=a_share, b_share=b_share, by=by, window_days=window_days)
    lsql, lparams = lifecycle_sql(store, rules, new_months=new_months, trend_months=trend_months, threshold=threshold)
    try:
        # Reports first: they validate the data (e.g. no margin) before anything is written.
        rfm = rfm_scores(store, window_days=window_days, rules=rules)
        abc = abc_tiers(
            store, basis=basis, a_share=a_share, b_share=b_share, by=by, window_days=window_days, rules=rules
        )
        life = lifecycle_stages(
            store, new_months=new_months, trend_months=trend_months, threshold=threshold, rules=rules
        )
        store.execute(f"CREATE OR REPLACE TEMP TABLE {_TMP[0]} AS {rsql}", rparams)
        store.execute(f"CREATE OR REPLACE TEMP TABLE {_TMP[1]} AS {asql}", aparams)
        store.execute(f"CREATE OR REPLACE TEMP TABLE {_TMP[2]} AS {lsql}", lparams)
        store.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {_TMP[3]} AS
            SELECT l.customer_id,
                   r.recency_days, r.frequency, r.monetary, r.r_score, r.f_score, r.m_score, r.rfm_segment,
                   a.value, CASE WHEN a.customer_id IS NOT NULL THEN $basis END AS value_basis,
                   coalesce(a.override, a.tier) AS tier,
                   l.lifecycle_stage
            FROM {_TMP[2]} l
            LEFT JOIN {_TMP[0]} r ON r.customer_id = l.customer_id
            LEFT JOIN {_TMP[1]} a ON a.customer_id = l.customer_id
            """,
            {"basis": basis},
        )
        written = write_customer_value(store, _TMP[3], as_of=d)
    finally:
        for t in _TMP:
            store.execute(f"DROP TABLE IF EXISTS {t}")
    return SegmentRun(as_of=d, rfm=rfm, abc=abc, lifecycle=life, written=written)
