"""RFM scores (recency, frequency, monetary) and the named RFM segments, docs/segments.md.

Scores (field notes B3.1, ../shared/field/commercial_and_benchmarks.md)
    Over the **active** customers of the population (:mod:`churnguard.segments.store`), each
    dimension is cut into quintiles with ``ntile(5)`` over the customers ranked by the value,
    ties broken by ``customer_id`` — the SQL twin of pandas ``rank(method="first")`` followed
    by ``qcut(…, 5)``:

        r_score = ntile(5) over (recency_days DESC NULLS FIRST, customer_id)   5 = most recent
        f_score = ntile(5) over (frequency ASC, customer_id)                   5 = most frequent
        m_score = ntile(5) over (monetary ASC, customer_id)                    5 = highest spend

    With n customers, ``ntile`` gives the first ``n mod 5`` scores one customer more than the
    others.  Customers with equal values may straddle a cut and get neighbouring scores; a
    customer who never bought has ``recency_days`` NULL and ranks least recent.

Segments
    The widely used R×F segment map (field notes B3.1; public RFM notebooks, edrone's names),
    read with the combined score ``fm = round_half_up((f_score + m_score) / 2) = (f + m + 1) // 2``
    in place of F, so that spend counts as much as frequency:

    ============  ====================  ==========
    R             FM                    segment
    ============  ====================  ==========
    5             4–5                   champions
    3–4           4–5                   loyal
    4–5           2–3                   potential_loyalist
    5             1                     new
    4             1                     promising
    3             3                     need_attention
    3             1–2                   about_to_sleep
    1–2           5                     cant_lose_them
    1–2           3–4                   at_risk
    1             1                     lost
    1–2           1–2 (other cells)     hibernating
    ============  ====================  ==========

    Every one of the 25 (R, FM) cells has exactly one segment.  ``lost`` (edrone's eleventh
    name) also holds every **churned** customer of the population (no open spell at the as-of
    date, churned within the window); they keep their recency, frequency and monetary values
    but get no scores, so the quintiles describe the live base only.

Value share
    A segment's share of value is its share of ``monetary`` (revenue in the window):
    ``share_value(s) = Σ_{i∈s} monetary_i / Σ_i monetary_i``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from churnguard.metrics.activity import ActivityRules, rules_for
from churnguard.segments.labels import RFM_SEGMENTS
from churnguard.segments.store import population_sql
from churnguard.store.connection import Store

SEGMENT_CASE = """
  CASE
    WHEN NOT active THEN 'lost'
    WHEN r_score = 5 AND fm >= 4 THEN 'champions'
    WHEN r_score IN (3, 4) AND fm >= 4 THEN 'loyal'
    WHEN r_score >= 4 AND fm IN (2, 3) THEN 'potential_loyalist'
    WHEN r_score = 5 AND fm = 1 THEN 'new'
    WHEN r_score = 4 AND fm = 1 THEN 'promising'
    WHEN r_score = 3 AND fm = 3 THEN 'need_attention'
    WHEN r_score = 3 AND fm <= 2 THEN 'about_to_sleep'
    WHEN r_score <= 2 AND fm = 5 THEN 'cant_lose_them'
    WHEN r_score <= 2 AND fm IN (3, 4) THEN 'at_risk'
    WHEN r_score = 1 AND fm = 1 THEN 'lost'
    ELSE 'hibernating'
  END"""


@dataclass(frozen=True)
class RfmReport:
    """RFM segment sizes and value shares.

    Attributes
    ----------
    as_of, window_days, branch : the options the report was computed with.
    customers : customers in the population (active + churned within the window).
    active, churned : of which active at the as-of date / churned within the window.
    monetary : Σ monetary (revenue in the window) over the population.
    rows : one dict per segment (in :data:`~churnguard.segments.labels.RFM_SEGMENTS` order, empty
        segments included): ``segment, customers, share_customers, active, churned, monetary,
        share_value``.
    """

    as_of: dt.date
    window_days: int
    branch: str | None
    customers: int
    active: int
    churned: int
    monetary: float
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat()
        return d


def rfm_sql(
    store: Store, rules: ActivityRules, *, window_days: int = 365, branch: str | None = None
) -> tuple[str, dict[str, Any]]:
    """SQL (and parameters) with one row per customer of the population.

    Columns: ``customer_id, active, recency_days, frequency, monetary, margin, n_margin,
    r_score, f_score, m_score, rfm_segment`` (scores NULL for churned customers).
    """
    base, params = population_sql(store, rules, window_days=window_days, branch=branch)
    sql = f"""{base},
    sc AS (
      SELECT customer_id,
             ntile(5) OVER (ORDER BY recency_days DESC NULLS FIRST, customer_id) AS r_score,
             ntile(5) OVER (ORDER BY frequency, customer_id) AS f_score,
             ntile(5) OVER (ORDER BY monetary, customer_id) AS m_score
      FROM base WHERE active
    ), j AS (
      SELECT b.customer_id, b.active, b.recency_days, b.frequency, b.monetary, b.margin, b.n_margin,
             s.r_score, s.f_score, s.m_score, (s.f_score + s.m_score + 1) // 2 AS fm
      FROM base b LEFT JOIN sc s ON s.customer_id = b.customer_id
    )
    SELECT customer_id, active, recency_days, frequency, monetary, margin, n_margin,
           r_score, f_score, m_score, {SEGMENT_CASE} AS rfm_segment
    FROM j"""
    return sql, params


def rfm_scores(
    store: Store,
    *,
    as_of: dt.date | None = None,
    window_days: int = 365,
    branch: str | None = None,
    rules: ActivityRules | None = None,
) -> RfmReport:
    """Score the population's recency, frequency and monetary value 1–5 and name the segments.

    Parameters
    ----------
    store : the store.
    as_of : the day the scores describe (default: the data set's as-of date).
    window_days : frequency and monetary count the revenue in the ``window_days`` days up to
        the as-of date (a churned customer's: up to their churn date).
    branch : limit the population, and so the quintiles, to this branch's subtree.
    rules : the churn rules that decide who is active (default: :func:`rules_for` the store).

    Returns
    -------
    RfmReport : segment sizes and value shares ``share_value(s) = Σ_s monetary / Σ monetary``.

    Examples
    --------
    >>> report = rfm_scores(store)  # doctest: +SKIP
    >>> [r["segment"] for r in report.rows][:2]  # doctest: +SKIP
    ['champions', 'loyal']
    """
    rules = rules or rules_for(store, as_of=as_of)
    sql, params = rfm_sql(store, rules, window_days=window_days, branch=branch)
    got = store.execute(
        f"""
        SELECT rfm_segment, count(*), count(*) FILTER (WHERE active), count(*) FILTER (WHERE NOT active),
               sum(monetary)
        FROM ({sql}) GROUP BY rfm_segment
        """,
        params,
    ).fetchall()
    return _report(rules.as_of, window_days, branch, got)  # type: ignore[arg-type]


def _report(as_of: dt.date, window_days: int, branch: str | None, got: list[tuple]) -> RfmReport:
    by_seg = {r[0]: r for r in got}
    n = sum(r[1] for r in got)
    total = float(sum(r[4] or 0 for r in got))
    rows = []
    for key in RFM_SEGMENTS:
        r = by_seg.get(key, (key, 0, 0, 0, 0.0))
        money = float(r[4] or 0)
        rows.append(
            {
                "segment": key,
                "customers": int(r[1]),
                "share_customers": round(r[1] / n, 6) if n else None,
                "active": int(r[2]),
                "churned": int(r[3]),
                "monetary": round(money, 2),
                "share_value": round(money / total, 6) if total else None,
            }
        )
    return RfmReport(
        as_of=as_of,
        window_days=window_days,
        branch=branch,
        customers=n,
        active=sum(int(r[2]) for r in got),
        churned=sum(int(r[3]) for r in got),
        monetary=round(total, 2),
        rows=rows,
    )
