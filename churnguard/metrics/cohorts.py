"""Cohort retention: signup cohort × periods since signup (docs/metrics-cohorts.md).

A customer's *cohort* is the calendar month (or quarter) in which their first spell began
(:mod:`churnguard.metrics.activity`).  For cohort *c* and age *k* = 0, 1, 2, … let
``e(c, k)`` be the last day of the *k*-th period after the cohort's own period (``e(c, 0)``
is the last day of the signup period itself).  Then

    retention(c, k) = |{customers of c in a spell on e(c, k)}| / |c|

where "in a spell on day d" means ``start_date ≤ d`` and (``end_date`` empty or
``end_date > d``) — the same "active at the end of a period" as ``end_customers`` in
:mod:`churnguard.metrics.churn`.  *Any* spell counts, so a customer who left and came back is
retained again from the day they returned (the curve can rise).  Cells whose day ``e(c, k)``
is after the as-of date have not happened yet and are ``None`` (not 0).

The size-weighted average retention at age *k* pools the cohorts that have reached it:

    average(k) = Σ_c retained(c, k) / Σ_c |c|   over cohorts c with e(c, k) ≤ as-of.

The whole matrix is one engine query; Python only reshapes its (cohort × age) rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from churnguard.errors import ConfigError
from churnguard.metrics.activity import ActivityRules, spells_sql
from churnguard.metrics.scope import check_branch, customer_scope_sql
from churnguard.store.connection import Store

#: Months in one cohort period.
PERIOD_MONTHS: dict[str, int] = {"month": 1, "quarter": 3}
#: What ``by`` may split the cohorts by.
COHORT_GROUPS: tuple[str, ...] = ("branch", "plan", "segment")
#: Store metadata key a data set may set to the first day its data observe (see :func:`observation_start`).
META_OBSERVED_FROM = "dataset_start"
MAX_AGE_LIMIT = 600


def observation_start(store: Store) -> dt.date | None:
    """The first day the store's data observe customers, or ``None`` when it cannot be told.

    The data set's recorded ``dataset_start`` when there is one, else the first day with any
    activity (a row of ``transactions`` or ``events``).  Spells that began earlier were only
    seen because they lasted until then (*left truncation*): customers who had already left
    are missing, so retention and survival before this day would be overstated.
    :func:`cohort_retention` starts its cohorts here by default and
    :func:`churnguard.metrics.survival.survival_curves` lets earlier spells enter its risk
    sets only on this day.  Subscription dates are not used: a subscription that began before
    the data says when the customer joined, not that the data saw them.
    """
    recorded = store.get_meta(META_OBSERVED_FROM)
    if recorded:
        return dt.date.fromisoformat(recorded)
    return store.execute(
        """
        SELECT least((SELECT CAST(min(ts) AS DATE) FROM transactions),
                     (SELECT CAST(min(ts) AS DATE) FROM events))
        """
    ).fetchone()[0]


def group_sql(by: str | None, allowed: tuple[str, ...]) -> str:
    """The SQL expression of a customer's group (aliases: ``c`` customers, ``sc`` scope, ``s`` spells)."""
    if by is None:
        return "'all'"
    if by not in allowed:
        raise ConfigError(f'--by: expected one of {", ".join(allowed)}, got "{by}".')
    return {
        "branch": "sc.child_branch",
        "plan": "coalesce(c.plan, '(none)')",
        "segment": "coalesce(c.segment, '(none)')",
        "cohort": "CAST(year(s.start_date) AS VARCHAR)",
    }[by]


def cohort_label(cohort: dt.date, period: str) -> str:
    """``2024-03`` for a month, ``2024-Q1`` for a quarter."""
    if period == "quarter":
        return f"{cohort.year}-Q{(cohort.month - 1) // 3 + 1}"
    return f"{cohort.year}-{cohort.month:02d}"


@dataclass(frozen=True)
class CohortMatrix:
    """Retention by signup cohort (rows) and age in periods (columns).

    Attributes
    ----------
    cohorts : one dict per cohort: ``cohort`` (label), ``group`` (with ``by``), ``size``,
        ``retained`` [n0, n1, …] and ``retention`` [r0, r1, …]; ``None`` where the age is not reached.
    average_retention : the size-weighted average over the cohorts that reached each age.
    groups : with ``by``: per group, its ``size`` and ``average_retention``.
    """

    period: str
    max_age: int
    start: dt.date | None
    end: dt.date
    as_of: dt.date
    cohorts: list[dict[str, Any]]
    average_retention: list[float | None]
    by: str | None = None
    branch: str | None = None
    observed_from: dt.date | None = None
    groups: list[dict[str, Any]] = field(default_factory=list)
    rules: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "period": self.period,
            "max_age": self.max_age,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat(),
            "as_of": self.as_of.isoformat(),
            "observed_from": self.observed_from.isoformat() if self.observed_from else None,
            "by": self.by,
            "branch": self.branch,
            "rules": self.rules,
            "cohorts": self.cohorts,
            "average_retention": self.average_retention,
        }
        if self.by:
            out["groups"] = self.groups
        return out


def _matrix_sql(rules: ActivityRules, by: str | None, branch: str | None) -> tuple[str, dict[str, Any]]:
    spells, sparams = spells_sql(rules)
    scope, cparams = customer_scope_sql(branch)
    group = group_sql(by, COHORT_GROUPS)
    sql = f"""
    WITH sp AS MATERIALIZED ({spells}),
    members AS MATERIALIZED (
      SELECT s.customer_id, {group} AS grp, CAST(date_trunc($period, s.start_date) AS DATE) AS cohort
      FROM sp s
      JOIN ({scope}) sc ON sc.customer_id = s.customer_id
      JOIN customers c ON c.customer_id = s.customer_id
      WHERE s.first_spell AND s.start_date >= coalesce(CAST($start AS DATE), DATE '0001-01-01')
        AND s.start_date <= $end
    ),
    sizes AS (SELECT grp, cohort, count(*) AS size FROM members GROUP BY ALL),
    cells AS (  -- the ages each cohort has reached: e(c, k) no later than the as-of date
      SELECT z.grp, z.cohort, a.age,
             CAST(z.cohort + to_months(CAST((a.age + 1) * $step AS INTEGER)) AS DATE) - 1 AS age_end
      FROM sizes z, range(0, $max_age + 1) a(age)
    ),
    reached AS (
      SELECT * FROM cells
      WHERE age_end <= $as_of AND age_end >= coalesce(CAST($observed_from AS DATE), DATE '0001-01-01')
    ),
    retained AS (
      SELECT r.grp, r.cohort, r.age, count(*) AS retained
      FROM members m
      JOIN sp s ON s.customer_id = m.customer_id
      JOIN reached r ON r.grp = m.grp AND r.cohort = m.cohort
      WHERE s.start_date <= r.age_end AND (s.end_date IS NULL OR s.end_date > r.age_end)
      GROUP BY ALL
    )
    SELECT z.grp, z.cohort, z.size, r.age, coalesce(t.retained, 0) AS retained
    FROM sizes z
    LEFT JOIN reached r ON r.grp = z.grp AND r.cohort = z.cohort
    LEFT JOIN retained t ON t.grp = r.grp AND t.cohort = r.cohort AND t.age = r.age
    ORDER BY z.grp, z.cohort, r.age
    """
    return sql, {**sparams, **cparams}


def cohort_retention(
    store: Store,
    *,
    rules: ActivityRules,
    start: dt.date | None = None,
    end: dt.date | None = None,
    period: str = "month",
    max_age: int = 24,
    branch: str | None = None,
    by: str | None = None,
) -> CohortMatrix:
    """The cohort retention matrix: share of each signup cohort still a customer k periods on.

    Parameters
    ----------
    store : the store.
    rules : the churn definition (:func:`churnguard.metrics.activity.rules_for`); its as-of date
        ends the matrix.
    start, end : cohorts of the first spells begun in ``[start, end]``.  ``start`` defaults to
        :func:`observation_start` (earlier cohorts were seen only through their survivors; pass
        an earlier ``start`` to include them anyway — their cells before that day stay ``None``),
        ``end`` to the as-of date.
    period : ``month`` or ``quarter``: the cohort and age unit.
    max_age : the last age shown (``retention`` has ``max_age + 1`` entries, ages 0 … max_age).
    branch : limit to this branch's subtree (default: the whole company).
    by : ``branch`` (children of ``branch``), ``plan`` or ``segment`` (current values): one matrix per group.

    Returns
    -------
    CohortMatrix
        ``retention[k]`` = retained(c, k) / size(c) (module docstring), ``None`` for ages after the as-of date.

    Examples
    --------
    Five customers start in January 2024: A stays, B leaves on 2024-01-20, C on 2024-02-29 (the
    last day of February counts as gone), D on 2024-03-10 and comes back on 2024-04-15, E on
    2024-04-02.  Retention at ages 0–3 (end of January … end of April) is 4/5, 3/5, 2/5, 2/5:
    in April E left and D came back.
    """
    if period not in PERIOD_MONTHS:
        raise ConfigError(f'--period: expected month or quarter, got "{period}".')
    if not 0 <= max_age <= MAX_AGE_LIMIT:
        raise ConfigError(f"--max-age: expected a whole number from 0 to {MAX_AGE_LIMIT}, got {max_age}.")
    if by is not None and by not in COHORT_GROUPS:
        raise ConfigError(f'--by: expected one of {", ".join(COHORT_GROUPS)}, got "{by}".')
    if branch is not None:
        check_branch(store, branch)
    as_of = rules.as_of or dt.datetime.now(dt.UTC).date()
    observed_from = observation_start(store)
    first = start if start is not None else observed_from
    last = end if end is not None else as_of
    if first is not None and last < first:
        raise ConfigError(f"--to {last.isoformat()} is before --from {first.isoformat()}; expected from ≤ to.")
    sql, params = _matrix_sql(rules, by, branch)
    params.update(
        period=period,
        step=PERIOD_MONTHS[period],
        start=first,
        end=last,
        max_age=max_age,
        as_of=as_of,
        observed_from=observed_from,
    )
    rows = store.execute(sql, params).fetchall()

    cohorts: dict[tuple[str, dt.date], dict[str, Any]] = {}
    for grp, cohort, size, age, retained in rows:  # one row per (cohort, age): a few hundred at most
        item = cohorts.get((grp, cohort))
        if item is None:
            item = {"cohort": cohort_label(cohort, period)}
            if by:
                item["group"] = grp
            item.update(size=int(size), retained=[None] * (max_age + 1), retention=[None] * (max_age + 1))
            cohorts[(grp, cohort)] = item
        if age is not None:
            item["retained"][age] = int(retained)
            item["retention"][age] = round(retained / size, 6)
    items = list(cohorts.values())
    groups = []
    if by:
        for g in sorted({i["group"] for i in items}):
            mine = [i for i in items if i["group"] == g]
            groups.append(
                {"group": g, "size": sum(i["size"] for i in mine), "average_retention": _average(mine, max_age)}
            )
    return CohortMatrix(
        period=period,
        max_age=max_age,
        start=first,
        end=last,
        as_of=as_of,
        cohorts=items,
        average_retention=_average(items, max_age),
        by=by,
        branch=branch,
        observed_from=observed_from,
        groups=groups,
        rules={
            "definition": rules.definition,
            "grace_days": rules.grace_days,
            "inactivity_days": rules.inactivity_days,
            "as_of": as_of.isoformat(),
        },
    )


def _average(items: list[dict[str, Any]], max_age: int) -> list[float | None]:
    """Size-weighted average retention per age over the cohorts that reached it."""
    out: list[float | None] = []
    for k in range(max_age + 1):
        reached = [i for i in items if i["retained"][k] is not None]
        size = sum(i["size"] for i in reached)
        out.append(round(sum(i["retained"][k] for i in reached) / size, 6) if size else None)
    return out
