"""Implicit churn (隐性流失): customers still on the books whose activity has fallen away.

Explicit churn is a closed account or an ended contract; implicit churn is a customer who is
still a customer — an open spell on the as-of date (:mod:`churnguard.metrics.activity`) — but
whose activity dropped sharply against their own past (docs/metrics-cohorts.md).

With as-of date D, ``recent_days`` r and ``baseline_days`` b:

- recent window R = [D − r + 1, D] and baseline window B = [D − r − b + 1, D − r] (days included);
- activity = the number of rows of ``events`` (usage records) or ``transactions`` (purchases,
  bills, payments) of the customer with ``ts`` in a window; a rate is per 30 days:

      recent_rate = 30 · rows(R) / r,   baseline_rate = 30 · rows(B) / b,
      change = recent_rate / baseline_rate − 1

  Rows are counted, not ``value`` summed: the values of different event types are in different
  units (MB, minutes, logins) and do not add up.
- a customer is *judged* when their open spell began on or before the first day of B (a full
  baseline) and baseline_rate ≥ ``min_baseline`` (and > 0): too new or too quiet customers say
  nothing about a fall;
- a judged customer is an **implicit churner** when change < −``drop`` (activity fell by more
  than ``drop``, e.g. 0.5 = 50 %).

``share`` = implicit churners / judged customers.  Everything is one engine query; the
customer list holds the ``limit`` largest falls.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from churnguard.errors import ConfigError
from churnguard.metrics.activity import ActivityRules, rules_for, spells_sql
from churnguard.metrics.scope import check_branch, customer_scope_sql
from churnguard.store.connection import Store

SOURCES: tuple[str, ...] = ("events", "transactions")
#: Rates are per this many days.
RATE_DAYS = 30


@dataclass(frozen=True)
class ImplicitChurnReport:
    """Counts of active, judged and implicitly churned customers, and the largest falls."""

    as_of: dt.date
    active_customers: int
    judged_customers: int
    implicit_churners: int
    parameters: dict[str, Any]
    windows: dict[str, str]
    customers: list[dict[str, Any]] = field(default_factory=list)
    branch: str | None = None
    rules: dict[str, Any] = field(default_factory=dict)

    @property
    def share(self) -> float | None:
        """Implicit churners ÷ judged customers (``None`` when nobody is judged)."""
        return round(self.implicit_churners / self.judged_customers, 6) if self.judged_customers else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "branch": self.branch,
            "rules": self.rules,
            "parameters": self.parameters,
            "windows": self.windows,
            "active_customers": self.active_customers,
            "judged_customers": self.judged_customers,
            "implicit_churners": self.implicit_churners,
            "share": self.share,
            "customers": self.customers,
        }


def implicit_churn_sql(
    rules: ActivityRules, source: str, branch: str | None, *, measure: str = "rows", event_type: str | None = None
) -> tuple[str, dict[str, Any]]:
    """SQL of the report: one row with the three counts and the list of the largest falls (module docstring)."""
    if source not in SOURCES:
        raise ConfigError(f'activity source: expected events or transactions, got "{source}".')
    if measure not in ("rows", "value"):
        raise ConfigError(f'activity measure: expected rows or value, got "{measure}".')
    amount = "1" if measure == "rows" else ("coalesce(value, 0)" if source == "events" else "coalesce(amount, 0)")
    of_type = "AND event_type = $event_type" if event_type is not None and source == "events" else ""
    spells, sparams = spells_sql(rules)
    scope, cparams = customer_scope_sql(branch)
    sql = f"""
    WITH active AS (
      SELECT s.customer_id, s.start_date
      FROM ({spells}) s JOIN ({scope}) sc ON sc.customer_id = s.customer_id
      WHERE s.end_date IS NULL AND s.start_date <= $as_of
    ),
    rows_in AS (  -- ts bounds as timestamps so that the engine can skip row groups by ts
      SELECT customer_id,
             sum({amount}) FILTER (WHERE ts >= $recent_from_ts) AS recent_rows,
             sum({amount}) FILTER (WHERE ts < $recent_from_ts) AS baseline_rows
      FROM {source}
      WHERE ts >= $baseline_from_ts AND ts < $after_ts {of_type}
      GROUP BY customer_id
    ),
    per AS MATERIALIZED (
      SELECT a.customer_id, c.branch_id, c.plan, a.start_date,
             {RATE_DAYS} * coalesce(r.baseline_rows, 0) / $baseline_days AS baseline_rate,
             {RATE_DAYS} * coalesce(r.recent_rows, 0) / $recent_days AS recent_rate
      FROM active a
      JOIN customers c ON c.customer_id = a.customer_id
      LEFT JOIN rows_in r ON r.customer_id = a.customer_id
    ),
    judged AS MATERIALIZED (
      SELECT *, recent_rate / baseline_rate - 1 AS change
      FROM per
      WHERE start_date <= $baseline_from AND baseline_rate >= $min_baseline AND baseline_rate > 0
    ),
    churners AS MATERIALIZED (SELECT * FROM judged WHERE change < -$drop)
    SELECT (SELECT count(*) FROM per) AS active_customers,
           (SELECT count(*) FROM judged) AS judged_customers,
           (SELECT count(*) FROM churners) AS implicit_churners,
           t.customer_id, t.branch_id, t.plan, t.baseline_rate, t.recent_rate, t.change
    FROM (SELECT 1 AS one) o
    LEFT JOIN (SELECT * FROM churners ORDER BY change, baseline_rate DESC, customer_id LIMIT $limit) t ON true
    ORDER BY t.change, t.baseline_rate DESC, t.customer_id
    """
    extra = {"event_type": event_type} if of_type else {}
    return sql, {**sparams, **cparams, **extra}


def implicit_churn(
    store: Store,
    *,
    as_of: dt.date | None = None,
    recent_days: int = 30,
    baseline_days: int = 90,
    drop: float = 0.5,
    source: str = "events",
    min_baseline: float = 1.0,
    branch: str | None = None,
    limit: int = 100,
    rules: ActivityRules | None = None,
    measure: str = "rows",
    event_type: str | None = None,
) -> ImplicitChurnReport:
    """Active customers whose activity rate fell by more than ``drop`` against their own baseline.

    Parameters
    ----------
    store : the store.
    as_of : the day judged (default: the rules' as-of date, else the data set's).  Spells are
        taken as they stood on this day: nothing later is read.
    recent_days, baseline_days : the lengths of the recent window and of the baseline window before it.
    drop : the fall that makes implicit churn, as a share of the baseline rate, 0 < drop < 1.
    source : ``events`` (usage) or ``transactions`` (purchases, bills, payments).
    min_baseline : the least baseline rate (of the measure, per 30 days) of a judged customer.
    measure : ``rows`` (how often: rows per 30 days) or ``value`` (how much: the sum of events'
        ``value`` or transactions' ``amount`` per 30 days) — ``value`` needs one unit, so pair it
        with ``event_type`` for events.
    event_type : only events of this type (e.g. ``data_mb``).
    branch : limit to this branch's subtree (default: the whole company).
    limit : the most customers listed (the largest falls first).
    rules : the churn definition that says who is active (default: :func:`rules_for` the store).

    Returns
    -------
    ImplicitChurnReport

    Examples
    --------
    A customer with 12 usage rows in the 90 days before the last 30 (baseline 4 per 30 days)
    and 1 row in the last 30 days (recent 1 per 30 days) changed by 1/4 − 1 = −75 %: an
    implicit churner at ``drop=0.5``.  With 6 rows (2 per 30 days) and 1 row the change is
    exactly −50 %: not more than 50 %, so not one.
    """
    if recent_days < 1 or baseline_days < 1:
        raise ConfigError(
            f"--recent-days and --baseline-days: expected at least 1 day each, got {recent_days} and {baseline_days}."
        )
    if not 0 < drop < 1:
        raise ConfigError(
            f"--drop: expected a share between 0 and 1 (0.5 = a fall of more than 50 %), got {drop}; "
            "use 0.99 for customers whose activity stopped."
        )
    if min_baseline < 0:
        raise ConfigError(f"--min-baseline: expected a rate ≥ 0 (rows per 30 days), got {min_baseline}.")
    if limit < 0:
        raise ConfigError(f"--limit: expected a whole number ≥ 0, got {limit}.")
    if branch is not None:
        check_branch(store, branch)
    if rules is None:
        rules = rules_for(store, as_of=as_of)
    elif as_of is not None:
        rules = dataclasses.replace(rules, as_of=as_of)
    day = rules.as_of or dt.datetime.now(dt.UTC).date()
    rules = dataclasses.replace(rules, as_of=day)
    recent_from = day - dt.timedelta(days=recent_days - 1)
    baseline_from = recent_from - dt.timedelta(days=baseline_days)
    sql, params = implicit_churn_sql(rules, source, branch, measure=measure, event_type=event_type)
    params.update(
        as_of=day,
        recent_days=recent_days,
        baseline_days=baseline_days,
        baseline_from=baseline_from,
        recent_from_ts=dt.datetime.combine(recent_from, dt.time()),
        baseline_from_ts=dt.datetime.combine(baseline_from, dt.time()),
        after_ts=dt.datetime.combine(day + dt.timedelta(days=1), dt.time()),
        min_baseline=float(min_baseline),
        drop=float(drop),
        limit=int(limit),
    )
    # One row per listed customer (ordered by the engine), the counts repeated on each; one row of
    # counts with empty customer columns when nobody is listed.
    rows = store.execute(sql, params).fetchall()
    active, judged, churners = rows[0][:3]
    listed = [
        {
            "customer_id": r[3],
            "branch_id": r[4],
            "plan": r[5],
            "baseline_rate": round(r[6], 6),
            "recent_rate": round(r[7], 6),
            "change": round(r[8], 6),
        }
        for r in rows
        if r[3] is not None
    ]
    return ImplicitChurnReport(
        as_of=day,
        active_customers=int(active),
        judged_customers=int(judged),
        implicit_churners=int(churners),
        parameters={
            "recent_days": recent_days,
            "baseline_days": baseline_days,
            "drop": drop,
            "source": source,
            "measure": measure,
            "event_type": event_type,
            "min_baseline": min_baseline,
            "limit": limit,
        },
        windows={
            "baseline_from": baseline_from.isoformat(),
            "baseline_to": (recent_from - dt.timedelta(days=1)).isoformat(),
            "recent_from": recent_from.isoformat(),
            "recent_to": day.isoformat(),
        },
        customers=listed,
        branch=branch,
        rules={
            "definition": rules.definition,
            "grace_days": rules.grace_days,
            "inactivity_days": rules.inactivity_days,
            "as_of": day.isoformat(),
        },
    )
