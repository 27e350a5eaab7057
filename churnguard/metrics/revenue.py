"""Revenue retention for subscription data: MRR, its movements, GRR and NRR (docs/metrics-loss.md).

**MRR at the close of a day d** of a customer is the sum of ``recurring_revenue`` of their
subscriptions still running after that day: ``start_date ≤ d`` and (``end_date`` empty or
``end_date > d``) — a subscription's ``end_date`` is its last day, so on the close of that day it
is gone (the same boundary as the churn counts of docs/metrics.md, where a customer whose last
day is in the period has churned in it).  Between the close of d0 and the close of d1 each
customer's MRR moves from m0 = MRR(d0) to m1 = MRR(d1), and exactly one movement applies:

============  =====================================================  ===========
movement      condition                                              amount
============  =====================================================  ===========
new           m0 = 0, m1 > 0, no paying subscription before d0       m1
reactivation  m0 = 0, m1 > 0, a paying subscription began before d0  m1
expansion     0 < m0 < m1                                            m1 − m0
contraction   0 < m1 < m0                                            m0 − m1
churned       m0 > 0, m1 = 0                                         m0
============  =====================================================  ===========

so that, summed over customers, start MRR + new + reactivation + expansion − contraction −
churned = end MRR.  With MRR0 the start MRR (ChartMogul [CM2]; Baremetrics [B4]; the field
notes, shared/field/commercial_and_benchmarks.md §B1.5):

    GRR = (MRR0 − contraction − churned) / MRR0
    NRR = (MRR0 + expansion − contraction − churned) / MRR0

Reactivation and new MRR are in neither ratio.  For the period ``[start, end]``, d0 is the day
before ``start`` (the start MRR is what runs into the period) and d1 is ``end``.  Per-period rows
chain: a row compares the MRR at the close of the previous row's last day (``mrr_from_day``; the
day before ``start`` for the first row) with the MRR at the close of its own last day, so one
row's end MRR is the next row's start MRR.  A subscription that starts on ``start`` is new; one
whose last day is ``end`` has churned in the period.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from churnguard.errors import ConfigError
from churnguard.metrics.churn import PERIODS, periods_between
from churnguard.metrics.scope import check_branch, customer_scope_sql
from churnguard.store.connection import Store

MOVEMENTS: tuple[str, ...] = ("new", "reactivation", "expansion", "contraction", "churned")
MONEY_KEYS: tuple[str, ...] = ("start_mrr", "end_mrr", *(f"{m}_mrr" for m in MOVEMENTS))
COUNT_KEYS: tuple[str, ...] = (
    "start_customers",
    "end_customers",
    *(f"{m}_customers" for m in MOVEMENTS),
)


@dataclass(frozen=True)
class RevenueReport:
    """MRR movements, GRR and NRR for ``[start, end]``, and rows per period when asked for.

    ``totals`` has the MRR at both ends, each movement's MRR and the customers it moved, ``grr``,
    ``nrr``, ``quick_ratio`` ((new + expansion) / (contraction + churned)) and
    ``subscriptions_without_revenue`` (active subscriptions at either end with no recurring_revenue,
    left out of the MRR).
    """

    start: dt.date
    end: dt.date
    totals: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    period: str | None = None
    branch: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "period": self.period,
            "branch": self.branch,
            **self.totals,
        }
        if self.period is not None:
            out["rows"] = self.rows
        return out


def _movements_sql(branch: str | None) -> tuple[str, dict[str, Any]]:
    scope, params = customer_scope_sql(branch)
    sql = f"""
    WITH b AS (
      SELECT unnest($labels) AS label, unnest($d0s) AS d0, unnest($d1s) AS d1
    ), s AS (
      SELECT s.customer_id, s.start_date, s.end_date, s.recurring_revenue
      FROM subscriptions s JOIN ({scope}) sc ON sc.customer_id = s.customer_id
    ), a AS (
      SELECT b.label, s.*,
             s.start_date <= b.d0 AND (s.end_date IS NULL OR s.end_date > b.d0) AS at0,
             s.start_date <= b.d1 AND (s.end_date IS NULL OR s.end_date > b.d1) AS at1,
             s.start_date <= b.d0 AS before0
      FROM b JOIN s ON s.start_date <= b.d1
    ), m AS (
      SELECT label, customer_id,
             coalesce(sum(recurring_revenue) FILTER (WHERE at0), 0) AS m0,
             coalesce(sum(recurring_revenue) FILTER (WHERE at1), 0) AS m1,
             coalesce(bool_or(recurring_revenue > 0 AND before0), false) AS paid_before,
             count(*) FILTER (WHERE recurring_revenue IS NULL AND (at0 OR at1)) AS unknown
      FROM a GROUP BY ALL
    )
    SELECT label,
      sum(m0) AS start_mrr,
      sum(m1) AS end_mrr,
      coalesce(sum(m1) FILTER (WHERE m0 = 0 AND m1 > 0 AND NOT paid_before), 0) AS new_mrr,
      coalesce(sum(m1) FILTER (WHERE m0 = 0 AND m1 > 0 AND paid_before), 0) AS reactivation_mrr,
      coalesce(sum(m1 - m0) FILTER (WHERE m0 > 0 AND m1 > m0), 0) AS expansion_mrr,
      coalesce(sum(m0 - m1) FILTER (WHERE m1 > 0 AND m1 < m0), 0) AS contraction_mrr,
      coalesce(sum(m0) FILTER (WHERE m0 > 0 AND m1 = 0), 0) AS churned_mrr,
      count(*) FILTER (WHERE m0 > 0) AS start_customers,
      count(*) FILTER (WHERE m1 > 0) AS end_customers,
      count(*) FILTER (WHERE m0 = 0 AND m1 > 0 AND NOT paid_before) AS new_customers,
      count(*) FILTER (WHERE m0 = 0 AND m1 > 0 AND paid_before) AS reactivation_customers,
      count(*) FILTER (WHERE m0 > 0 AND m1 > m0) AS expansion_customers,
      count(*) FILTER (WHERE m1 > 0 AND m1 < m0) AS contraction_customers,
      count(*) FILTER (WHERE m0 > 0 AND m1 = 0) AS churned_customers,
      sum(unknown) AS subscriptions_without_revenue
    FROM m GROUP BY label
    """
    return sql, params


def _figures(row: dict[str, Any] | None) -> dict[str, Any]:
    row = row or {}
    out: dict[str, Any] = {k: round(float(row.get(k) or 0.0), 2) for k in MONEY_KEYS}
    out.update({k: int(row.get(k) or 0) for k in COUNT_KEYS})
    m0 = float(row.get("start_mrr") or 0.0)
    lost = float(row.get("contraction_mrr") or 0.0) + float(row.get("churned_mrr") or 0.0)
    gained = float(row.get("new_mrr") or 0.0) + float(row.get("expansion_mrr") or 0.0)
    expansion = float(row.get("expansion_mrr") or 0.0)
    out["grr"] = round((m0 - lost) / m0, 6) if m0 else None
    out["nrr"] = round((m0 + expansion - lost) / m0, 6) if m0 else None
    out["quick_ratio"] = round(gained / lost, 6) if lost else None
    out["subscriptions_without_revenue"] = int(row.get("subscriptions_without_revenue") or 0)
    return out


def revenue_retention(
    store: Store,
    *,
    start: dt.date,
    end: dt.date,
    period: str | None = None,
    branch: str | None = None,
) -> RevenueReport:
    """MRR movements between ``start`` and ``end``, gross and net revenue retention (GRR, NRR).

    Parameters
    ----------
    store : the store (its ``subscriptions`` give the MRR).
    start, end : the two days compared; the MRR of a day counts the subscriptions active on it.
    period : ``month``, ``quarter`` or ``year``: also one row per calendar period, chained from
        ``start`` (a row's start MRR is the previous row's end MRR).
    branch : limit to this branch's subtree (default: the whole company).

    Returns
    -------
    RevenueReport
        ``start_mrr``, ``end_mrr``, ``new_mrr``, ``reactivation_mrr``, ``expansion_mrr``,
        ``contraction_mrr``, ``churned_mrr`` (and the customers of each), with
        start + new + reactivation + expansion − contraction − churned = end, and

        GRR = (start_mrr − contraction_mrr − churned_mrr) / start_mrr,
        NRR = (start_mrr + expansion_mrr − contraction_mrr − churned_mrr) / start_mrr.

    Examples
    --------
    ChartMogul's example [CM2]: MRR0 = 100; a customer of 10 leaves, one contracts by 10 and one
    expands by 10: GRR = (100 − 10 − 10) / 100 = 0.8 and NRR = (100 + 10 − 10 − 10) / 100 = 0.9.
    """
    if end < start:
        raise ConfigError(f"--to {end.isoformat()} is before --from {start.isoformat()}; expected from ≤ to.")
    if period is not None and period not in PERIODS:
        raise ConfigError(f'--period: expected one of {", ".join(PERIODS)}, got "{period}".')
    if branch is not None:
        check_branch(store, branch)
    opening = start - dt.timedelta(days=1)  # the start MRR is what runs into the period
    spans = [("all", opening, end)]
    calendar = periods_between(start, end, period) if period is not None else []  # type: ignore[arg-type]
    previous = opening
    for label, _, p_to in calendar:
        spans.append((label, previous, p_to))  # chained: the previous row's last day opens this row
        previous = p_to
    sql, params = _movements_sql(branch)
    params.update(labels=[s[0] for s in spans], d0s=[s[1] for s in spans], d1s=[s[2] for s in spans])
    cur = store.execute(sql, params)
    names = [d[0] for d in cur.description]
    found = {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}
    rows = [
        {
            "period": label,
            "period_from": p_from.isoformat(),
            "period_to": d1.isoformat(),
            "mrr_from_day": d0.isoformat(),
            **_figures(found.get(label)),
        }
        for (label, d0, d1), (_, p_from, _) in zip(spans[1:], calendar, strict=True)
    ]
    return RevenueReport(
        start=start, end=end, totals=_figures(found.get("all")), rows=rows, period=period, branch=branch
    )
