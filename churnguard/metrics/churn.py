"""Churn and retention rates for a period, by period and by group (docs/metrics.md).

For a period ``[from, to]`` (both days included) and the spells of
:mod:`churnguard.metrics.activity`:

- ``start_customers`` S: spells active at the start — begun before ``from``, not ended before it;
- ``new_customers`` N: first spells begun inside the period; ``reactivated_customers`` R: later
  spells begun inside it (customers who came back);
- ``churned_customers`` C: spells that ended (churned) inside the period;
  ``churned_from_start`` C_S: those of them that were active at the start;
- ``end_customers`` E: spells active at the end, so E = S + N + R − C.

Churn rate, by ``definition``:

- ``standard`` (default): C_S / S — the share of the customers at the start who left;
- ``end_count`` (期末口径, used in some Chinese textbooks): [S − (E − (N + R))] / E;
- ``average``: C / ((S + E) / 2);
- ``daily``: 1 − (1 − d)^days with d = C / customer-days (compounded daily churn).

``retention_rate`` = 1 − ``churn_rate``.  ``churn_rate_change`` (流失变动率) is the rate minus the
previous period's rate in the same group; ``churn_rate_change_relative`` divides by that rate.
Monthly and annual rates convert as r_year = 1 − (1 − r_month)^12 (:func:`annualise`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from churnguard.errors import ConfigError
from churnguard.metrics.activity import ActivityRules, spells_sql
from churnguard.metrics.scope import check_branch, customer_scope_sql
from churnguard.store.connection import Store

RateDefinition = Literal["standard", "end_count", "average", "daily"]
RATE_DEFINITIONS: tuple[str, ...] = ("standard", "end_count", "average", "daily")
Period = Literal["month", "quarter", "year"]
PERIODS: tuple[str, ...] = ("month", "quarter", "year")
GROUPS: tuple[str, ...] = ("branch", "plan", "segment", "tier", "cohort", "reason", "destination")
COUNT_KEYS = (
    "start_customers",
    "new_customers",
    "reactivated_customers",
    "churned_customers",
    "churned_from_start",
    "end_customers",
    "customer_days",
)


def churn_rate(
    counts: dict[str, Any], *, definition: RateDefinition = "standard", days: int | None = None
) -> float | None:
    """The churn rate of one period's ``counts`` under ``definition`` (module docstring); ``None`` if undefined."""
    s, e = counts["start_customers"], counts["end_customers"]
    if definition == "standard":
        return counts["churned_from_start"] / s if s else None
    if definition == "end_count":
        added = counts["new_customers"] + counts["reactivated_customers"]
        return (s - (e - added)) / e if e else None
    if definition == "average":
        avg = (s + e) / 2
        return counts["churned_customers"] / avg if avg else None
    if definition == "daily":
        exposure = counts["customer_days"]
        if not exposure or not days:
            return None
        d = counts["churned_customers"] / exposure
        return 1 - (1 - d) ** days
    raise ConfigError(f'churn rate definition: expected one of {", ".join(RATE_DEFINITIONS)}, got "{definition}".')


def annualise(monthly_rate: float) -> float:
    """Annual churn rate from a monthly one: 1 − (1 − r)^12."""
    return 1 - (1 - monthly_rate) ** 12


def monthly_from_annual(annual_rate: float) -> float:
    """Monthly churn rate from an annual one: 1 − (1 − r)^(1/12)."""
    return 1 - (1 - annual_rate) ** (1 / 12)


@dataclass(frozen=True)
class ChurnReport:
    """Totals for the whole period, and rows per period and/or group."""

    start: dt.date
    end: dt.date
    definition: str
    totals: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    period: str | None = None
    by: str | None = None
    branch: str | None = None
    rules: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "definition": self.definition,
            "period": self.period,
            "by": self.by,
            "branch": self.branch,
            "rules": self.rules,
            **self.totals,
        }
        if self.rows:
            out["rows"] = self.rows
        return out


def last_twelve_months(as_of: dt.date) -> tuple[dt.date, dt.date]:
    """The twelve months that end on ``as_of``: (the day after the same date a year earlier, ``as_of``)."""
    try:
        year_ago = as_of.replace(year=as_of.year - 1)
    except ValueError:  # 29 February
        year_ago = as_of.replace(year=as_of.year - 1, day=28)
    return year_ago + dt.timedelta(days=1), as_of


def periods_between(start: dt.date, end: dt.date, period: Period) -> list[tuple[str, dt.date, dt.date]]:
    """Calendar periods overlapping ``[start, end]``, clipped to it: ``(label, from, to)``."""
    if period not in PERIODS:
        raise ConfigError(f'period: expected one of {", ".join(PERIODS)}, got "{period}".')
    step = {"month": 1, "quarter": 3, "year": 12}[period]
    month0 = (start.month - 1) // step * step + 1
    cursor = dt.date(start.year, month0, 1)
    out = []
    while cursor <= end:
        y, m = divmod(cursor.month - 1 + step, 12)
        nxt = dt.date(cursor.year + y, m + 1, 1)
        label = {
            "month": f"{cursor.year}-{cursor.month:02d}",
            "quarter": f"{cursor.year}-Q{(cursor.month - 1) // 3 + 1}",
            "year": f"{cursor.year}",
        }[period]
        out.append((label, max(cursor, start), min(nxt - dt.timedelta(days=1), end)))
        cursor = nxt
    return out


def group_expr(by: str | None, store: Store) -> str:
    if by is None:
        return "'all'"
    if by == "branch":
        return "sc.child_branch"
    if by == "plan":
        return "coalesce(c.plan, '(none)')"
    if by == "segment":
        return "coalesce(c.segment, '(none)')"
    if by == "cohort":
        return "strftime(c.signup_date, '%Y-%m')"
    if by == "tier":
        if store.has_table("customer_value"):
            return "coalesce(c.tier_override, v.tier, '(unranked)')"
        return "coalesce(c.tier_override, '(unranked)')"
    if by in ("reason", "destination"):
        col = "reason_code" if by == "reason" else "destination"
        return f"coalesce(ce.{col}, '(unknown)')"
    raise ConfigError(f'--by: expected one of {", ".join(GROUPS)}, got "{by}".')


def _counts_sql(store: Store, rules: ActivityRules, by: str | None, branch: str | None) -> tuple[str, dict[str, Any]]:
    spells, sparams = spells_sql(rules)
    scope, cparams = customer_scope_sql(branch)
    group = group_expr(by, store)
    joins = ""
    if by == "tier" and store.has_table("customer_value"):
        joins += " LEFT JOIN customer_value v ON v.customer_id = s.customer_id"
    if by in ("reason", "destination"):
        # The churn event recorded nearest to the spell's end (within the grace period) gives the reason.
        joins += f"""
        LEFT JOIN (
          SELECT s2.customer_id, s2.spell_no, arg_min(e.reason_code, abs(e.churn_date - s2.end_date)) AS reason_code,
                 arg_min(e.destination, abs(e.churn_date - s2.end_date)) AS destination
          FROM ({spells}) s2 JOIN churn_events e ON e.customer_id = s2.customer_id
          WHERE s2.end_date IS NOT NULL AND abs(e.churn_date - s2.end_date) <= {int(max(rules.grace_days, 31))}
          GROUP BY ALL
        ) ce ON ce.customer_id = s.customer_id AND ce.spell_no = s.spell_no"""
    sql = f"""
    WITH p AS (
      SELECT unnest($labels) AS period, unnest($froms) AS p_from, unnest($tos) AS p_to
    ), sp AS (
      SELECT s.*, {group} AS grp
      FROM ({spells}) s
      JOIN ({scope}) sc ON sc.customer_id = s.customer_id
      JOIN customers c ON c.customer_id = s.customer_id
      {joins}
    )
    SELECT p.period, sp.grp,
      count(*) FILTER (WHERE sp.start_date < p.p_from) AS start_customers,
      count(*) FILTER (WHERE sp.start_date >= p.p_from AND sp.first_spell) AS new_customers,
      count(*) FILTER (WHERE sp.start_date >= p.p_from AND NOT sp.first_spell) AS reactivated_customers,
      count(*) FILTER (WHERE sp.end_date <= p.p_to) AS churned_customers,
      count(*) FILTER (WHERE sp.end_date <= p.p_to AND sp.start_date < p.p_from) AS churned_from_start,
      count(*) FILTER (WHERE sp.end_date IS NULL OR sp.end_date > p.p_to) AS end_customers,
      sum(least(coalesce(sp.end_date, p.p_to), p.p_to) - greatest(sp.start_date, p.p_from) + 1) AS customer_days
    FROM p JOIN sp ON sp.start_date <= p.p_to AND (sp.end_date IS NULL OR sp.end_date >= p.p_from)
    GROUP BY ALL
    ORDER BY min(p.p_from), sp.grp
    """
    return sql, {**sparams, **cparams}


def report_rows(
    found: dict[tuple[str, str], dict[str, Any]],
    spans: list[tuple[str, dt.date, dt.date]],
    *,
    by: str | None,
    period: str | None,
    definition: RateDefinition = "standard",
) -> list[dict[str, Any]]:
    """The rows of :func:`churn_report` from the counts of each (span label, group) found (``COUNT_KEYS``).

    One row per span and group (every group found in any span; zeros where a group has none in a
    span), with the rate under ``definition``, the retention rate and the change against the group's
    rate in the span before.  ``churn_report`` builds its rows with this; so does any caller that
    counted the spells itself (the overview counts every branch at once), so that both agree.
    """
    groups = sorted({g for _, g in found}) or (["all"] if by is None else [])
    out = []
    previous: dict[str, float | None] = {}
    for label, p_from, p_to in spans:
        days = (p_to - p_from).days + 1
        for g in groups:
            row = found.get((label, g)) or {"period": label, "grp": g, **dict.fromkeys(COUNT_KEYS, 0)}
            counts = {k: int(row[k] or 0) for k in COUNT_KEYS}
            rate = churn_rate(counts, definition=definition, days=days)
            prev = previous.get(g)
            item: dict[str, Any] = {}
            if period:
                item.update(period=label, period_from=p_from.isoformat(), period_to=p_to.isoformat())
            if by:
                item[by] = g
            item.update(counts)
            item.update(
                churn_rate=_round(rate),
                retention_rate=_round(1 - rate) if rate is not None else None,
                churn_rate_change=_round(rate - prev) if rate is not None and prev is not None else None,
                churn_rate_change_relative=(
                    _round((rate - prev) / prev) if rate is not None and prev not in (None, 0) else None
                ),
            )
            previous[g] = rate
            out.append(item)
    return out


def rules_dict(rules: ActivityRules) -> dict[str, Any]:
    """The churn definition as reported with every figure (``rules`` of :class:`ChurnReport`)."""
    return {
        "definition": rules.definition,
        "grace_days": rules.grace_days,
        "inactivity_days": rules.inactivity_days,
        "as_of": rules.as_of.isoformat() if rules.as_of else None,
    }


def churn_report(
    store: Store,
    *,
    start: dt.date,
    end: dt.date,
    rules: ActivityRules,
    period: Period | None = None,
    by: str | None = None,
    branch: str | None = None,
    definition: RateDefinition = "standard",
) -> ChurnReport:
    """Churn counts and rates for ``[start, end]``, optionally per period and/or per group.

    Parameters
    ----------
    store : the store.
    start, end : the period, both days included.
    rules : the churn definition (:func:`churnguard.metrics.activity.rules_for`).
    period : ``month``, ``quarter`` or ``year``: one row per calendar period (clipped to the range).
    by : ``branch`` (the children of ``branch``, each with its whole subtree), ``plan``, ``segment``,
        ``tier``, ``cohort`` (signup month), ``reason`` or ``destination`` (of the churn).
    branch : limit everything to this branch's subtree (default: the whole company).
    definition : the churn-rate definition (module docstring).

    Examples
    --------
    The worked check of docs/metrics.md: S = 3,000, N = 500, E = 3,300, so C = 200 and the
    standard rate is 200 / 3,000 = 0.0667 (end-count variant: 200 / 3,300 = 0.0606).
    """
    if end < start:
        raise ConfigError(f"--to {end.isoformat()} is before --from {start.isoformat()}; expected from ≤ to.")
    if definition not in RATE_DEFINITIONS:
        raise ConfigError(f'--definition: expected one of {", ".join(RATE_DEFINITIONS)}, got "{definition}".')
    if by is not None and by not in GROUPS:
        raise ConfigError(f'--by: expected one of {", ".join(GROUPS)}, got "{by}".')
    if branch is not None:
        check_branch(store, branch)
    whole = [("all", start, end)]
    spans = periods_between(start, end, period) if period else whole

    def run(spans: list[tuple[str, dt.date, dt.date]], by: str | None) -> list[dict[str, Any]]:
        if by in ("reason", "destination"):
            return _by_churn_attribute(spans, by)
        sql, params = _counts_sql(store, rules, by, branch)
        params.update(labels=[s[0] for s in spans], froms=[s[1] for s in spans], tos=[s[2] for s in spans])
        cur = store.execute(sql, params)
        names = [d[0] for d in cur.description]
        found = {(r[0], r[1]): dict(zip(names, r, strict=True)) for r in cur.fetchall()}
        return report_rows(found, spans, by=by, period=period, definition=definition)

    def _by_churn_attribute(spans: list[tuple[str, dt.date, dt.date]], by: str) -> list[dict[str, Any]]:
        # Only churned spells have a reason: each row is one reason's share of the period's churn,
        # beside the period's totals; churn_rate is that reason's part of the (standard) rate.
        sql, params = _counts_sql(store, rules, by, branch)
        params.update(labels=[s[0] for s in spans], froms=[s[1] for s in spans], tos=[s[2] for s in spans])
        cur = store.execute(f"SELECT * FROM ({sql}) WHERE churned_customers > 0", params)
        names = [d[0] for d in cur.description]
        found = {(r[0], r[1]): dict(zip(names, r, strict=True)) for r in cur.fetchall()}
        groups = sorted({g for _, g in found})
        totals = {row.get("period", "all"): row for row in run(spans, None)}
        out = []
        previous: dict[str, float | None] = {}
        for label, _, _ in spans:
            total = totals[label] if period else totals["all"]
            s_count = total["start_customers"]
            for g in groups:  # every reason in every period (zero where it had no churn), as other groups
                row = found.get((label, g), {"churned_customers": 0, "churned_from_start": 0})
                rate = row["churned_from_start"] / s_count if s_count else None
                prev = previous.get(g)
                item: dict[str, Any] = {}
                if period:
                    item.update(period=label, period_from=total["period_from"], period_to=total["period_to"])
                item[by] = g
                item.update({k: total[k] for k in ("start_customers", "new_customers", "reactivated_customers")})
                item.update(
                    churned_customers=int(row["churned_customers"]),
                    churned_from_start=int(row["churned_from_start"]),
                    end_customers=total["end_customers"],
                    share_of_churned=_round(row["churned_customers"] / total["churned_customers"])
                    if total["churned_customers"]
                    else None,
                    churn_rate=_round(rate),
                    retention_rate=_round(1 - rate) if rate is not None else None,
                    churn_rate_change=_round(rate - prev) if rate is not None and prev is not None else None,
                )
                previous[g] = rate
                out.append(item)
        return out

    totals = run(whole, None)[0]
    for k in ("churn_rate_change", "churn_rate_change_relative"):
        totals.pop(k)
    rows = run(spans, by) if (period or by) else []
    return ChurnReport(
        start=start,
        end=end,
        definition=definition,
        totals=totals,
        rows=rows,
        period=period,
        by=by,
        branch=branch,
        rules=rules_dict(rules),
    )


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)
