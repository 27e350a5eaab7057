"""Churn alerts (流失预警线) and the reason mix over time, on top of :func:`churn_report`.

An **alert** flags one group (a child branch, a segment or a plan) in one calendar period when

- **ceiling**: its churn rate r exceeds the configured ceiling c (流失率最低标准, the highest
  acceptable rate): r > c.  The ceiling is *per period length*: a monthly ceiling applies to
  monthly rates; a monthly 2 % is about 21.5 % a year (:func:`churnguard.metrics.annualise`);
- **jump**: its rate rose against the group's previous period (流失变动率) by more than
  ``jump_pp`` in rate units *and* more than ``jump_relative`` relative:
  r − r_prev > jump_pp and (r − r_prev) / r_prev > jump_relative (a rise from r_prev = 0
  passes the relative test).  With one threshold ``None`` only the other applies; with both
  ``None`` no jump alerts are raised.

Groups with fewer than ``min_start_customers`` customers at the period's start are skipped: one
churner more or less moves a small group's rate by whole percentage points.

Severity: ``high`` when a rate is over the ceiling *and* jumped; ``medium`` for either alone,
except that a jump that stays within a configured ceiling is ``low`` (rising, still acceptable).

Rates are the standard churn rate of :mod:`churnguard.metrics.churn` (churned among the
customers at the start ÷ customers at the start), computed there once; this module only reads
``churn_report``'s rows and applies the thresholds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from churnguard.errors import ConfigError
from churnguard.metrics.activity import ActivityRules, spells_sql
from churnguard.metrics.churn import PERIODS, ChurnReport, Period, churn_report, periods_between
from churnguard.reasons import REASON_CODES, reason
from churnguard.store.connection import Store

AlertGroup = Literal["branch", "segment", "plan"]
ALERT_GROUPS: tuple[str, ...] = ("branch", "segment", "plan")
AlertKind = Literal["ceiling", "jump", "both"]
SEVERITIES: tuple[str, ...] = ("high", "medium", "low")

#: How a group kind is named in the messages: (en, zh).
GROUP_KIND_LABELS: dict[str, tuple[str, str]] = {
    "branch": ("branch", "分支机构"),
    "segment": ("segment", "客户细分"),
    "plan": ("plan", "套餐"),
}
UNKNOWN_REASON = "(unknown)"


@dataclass(frozen=True)
class Alert:
    """One group in one period whose churn rate crossed a threshold.

    Attributes
    ----------
    period, period_from, period_to : the calendar period (label and its days, clipped to the range).
    group_kind : ``branch``, ``segment`` or ``plan``.
    group : the group's value (a branch id, a segment, a plan).
    group_name, group_name_zh : its display name in English and Chinese (a branch's name and id).
    churn_rate : churned among the customers at the start ÷ customers at the start.
    previous_rate : the group's rate in the previous period (``None`` if unknown).
    change_pp : ``churn_rate − previous_rate`` in rate units (0.02 = 2 percentage points).
    change_relative : ``change_pp / previous_rate`` (``None`` when the previous rate is 0 or unknown).
    start_customers : customers at the period's start.
    churned_from_start : those of them who churned in the period (the rate's numerator).
    churned_customers : every churn in the period, including customers who joined during it.
    kind : ``ceiling``, ``jump`` or ``both``.
    severity : ``high``, ``medium`` or ``low`` (module docstring).
    message_en, message_zh : one line each, in English and Chinese.
    """

    period: str
    period_from: str
    period_to: str
    group_kind: str
    group: str
    group_name: str
    group_name_zh: str
    churn_rate: float
    previous_rate: float | None
    change_pp: float | None
    change_relative: float | None
    start_customers: int
    churned_from_start: int
    churned_customers: int
    kind: str
    severity: str
    message_en: str
    message_zh: str

    def message(self, lang: str = "en") -> str:
        """The one-line message in ``lang`` (``en`` or ``zh``)."""
        return self.message_zh if lang.startswith("zh") else self.message_en

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class AlertReport:
    """The alerts of one run and the parameters that produced them.

    ``checked`` counts the (period, group) rows tested; ``skipped_small`` those skipped because
    the group had fewer than ``min_start_customers`` customers at the period's start.
    """

    start: dt.date
    end: dt.date
    period: str
    by: str
    branch: str | None
    ceiling: float | None
    jump_pp: float | None
    jump_relative: float | None
    min_start_customers: int
    rules: dict[str, Any]
    alerts: tuple[Alert, ...] = field(default_factory=tuple)
    checked: int = 0
    skipped_small: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "period": self.period,
            "by": self.by,
            "branch": self.branch,
            "ceiling": self.ceiling,
            "jump_pp": self.jump_pp,
            "jump_relative": self.jump_relative,
            "min_start_customers": self.min_start_customers,
            "rules": self.rules,
            "checked": self.checked,
            "skipped_small": self.skipped_small,
            "alerts": [a.to_dict() for a in self.alerts],
        }


def _check_thresholds(
    by: str, ceiling: float | None, jump_pp: float | None, jump_relative: float | None, min_start_customers: int
) -> None:
    if by not in ALERT_GROUPS:
        raise ConfigError(f'--by: expected one of {", ".join(ALERT_GROUPS)}, got "{by}".')
    if ceiling is not None and not 0 < ceiling < 1:
        raise ConfigError(
            f"--ceiling: expected a churn rate between 0 and 1 (0.05 = 5 % a period), got {ceiling}. "
            "Fix: give the highest acceptable rate for one period of the chosen length as a fraction."
        )
    if jump_pp is not None and not 0 <= jump_pp < 1:
        raise ConfigError(f"--jump-pp: expected a rise in rate units between 0 and 1 (0.02 = 2 pp), got {jump_pp}.")
    if jump_relative is not None and jump_relative < 0:
        raise ConfigError(f"--jump-relative: expected a relative rise ≥ 0 (0.5 = +50 %), got {jump_relative}.")
    if min_start_customers < 0:
        raise ConfigError(f"--min-start-customers: expected a count ≥ 0, got {min_start_customers}.")


def _period_start(day: dt.date, period: str) -> dt.date:
    step = {"month": 1, "quarter": 3, "year": 12}[period]
    return dt.date(day.year, (day.month - 1) // step * step + 1, 1)


def _group_names(store: Store, by: str, groups: set[str]) -> dict[str, tuple[str, str]]:
    """Display names (en, zh) of the groups: branch names for branches, the value itself otherwise."""
    if by != "branch" or not groups:
        return {g: (g, g) for g in groups}
    has_zh = any(name == "name_zh" for name, _ in store.columns("branches"))
    zh = "coalesce(name_zh, name)" if has_zh else "name"
    rows = store.execute(
        f"SELECT branch_id, name, {zh} FROM branches WHERE branch_id IN (SELECT unnest($ids))",
        {"ids": sorted(groups)},
    ).fetchall()
    names = {r[0]: (f"{r[1]} ({r[0]})", f"{r[2]}({r[0]})") for r in rows}
    return {g: names.get(g, (g, g)) for g in groups}


def first_churn_date(store: Store, rules: ActivityRules) -> dt.date | None:
    """The first churn date in the data (the earliest end of a spell); ``None`` before any churn."""
    sql, params = spells_sql(rules)
    return store.execute(f"SELECT min(end_date) FROM ({sql})", params).fetchone()[0]


def _pct(x: float, lang: str = "en") -> str:
    return f"{x * 100:.2f}%" if lang == "zh" else f"{x * 100:.2f} %"


def _messages(
    *,
    kind_of_group: str,
    names: tuple[str, str],
    period: str,
    rate: float,
    prev: float | None,
    change: float | None,
    rel: float | None,
    start_customers: int,
    churned: int,
    over_ceiling: bool,
    jumped: bool,
    ceiling: float | None,
) -> tuple[str, str]:
    kind_en, kind_zh = GROUP_KIND_LABELS[kind_of_group]
    name_en = names[0] if kind_of_group == "branch" else f"{kind_en} {names[0]}"
    name_zh = names[1] if kind_of_group == "branch" else f"{kind_zh} {names[1]}"
    en = [f"{name_en}, {period}: churn rate {_pct(rate)} ({churned:,} of {start_customers:,} customers at the start)"]
    zh = [f"{name_zh} {period}:客户流失率 {_pct(rate, 'zh')}(期初 {start_customers:,} 户,流失 {churned:,} 户)"]
    if over_ceiling and ceiling is not None:
        en.append(f"above the {_pct(ceiling)} ceiling")
        zh.append(f"超过流失率最低标准 {_pct(ceiling, 'zh')}")
    if jumped and change is not None and prev is not None:
        rel_en = f", {rel * 100:+.0f} %" if rel is not None else ""
        rel_zh = f",相对 {rel * 100:+.0f}%" if rel is not None else ""
        en.append(f"up {change * 100:.2f} pp from {_pct(prev)} in the previous period{rel_en}")
        zh.append(f"流失变动率 +{change * 100:.2f} 个百分点(上期 {_pct(prev, 'zh')}{rel_zh})")
    return "; ".join(en) + ".", ";".join(zh) + "。"


def churn_alerts(
    store: Store,
    *,
    start: dt.date,
    end: dt.date,
    rules: ActivityRules,
    period: Period = "month",
    by: AlertGroup = "branch",
    ceiling: float | None = None,
    jump_pp: float | None = 0.02,
    jump_relative: float | None = 0.5,
    min_start_customers: int = 50,
    branch: str | None = None,
) -> AlertReport:
    """Groups and periods whose churn rate is over the ceiling or jumped (module docstring).

    Parameters
    ----------
    store : the store.
    start, end : the range, both days included; its calendar periods are checked.  When ``start``
        is the first day of a period, the period before it is read as well, so that the first
        period can jump; otherwise the first (partial) period has no previous rate.  A period that
        ends before the first churn in the data is not observed and is no previous rate either.
    rules : the churn definition (:func:`churnguard.metrics.rules_for`).
    period : ``month``, ``quarter`` or ``year``; the ceiling applies to rates of this length.
    by : ``branch`` (the children of ``branch``: head office sees provinces, a province its
        cities), ``segment`` or ``plan`` (the customer's current plan, as in ``churn_report``).
    ceiling : the highest acceptable churn rate per period (流失率最低标准); ``None``: no ceiling alerts.
    jump_pp : the rise against the previous period, in rate units (0.02 = 2 pp), that must be exceeded.
    jump_relative : the relative rise (0.5 = +50 %) that must be exceeded as well.
    min_start_customers : groups with fewer customers at the period's start are skipped.
    branch : limit to this branch's subtree.

    Returns
    -------
    AlertReport
        The alerts sorted by severity (high first), then by customers lost (most first).

    Examples
    --------
    A branch with 941 customers at the start of 2024-Q1 of whom 89 churn has r = 89 / 941 = 9.46 %;
    after 5.40 % in 2023-Q4 the change is +4.06 pp and +75 % relative, a jump under the defaults
    (> 2 pp and > 50 %); with ``ceiling=0.08`` it is over the ceiling too, so severity ``high``.
    """
    _check_thresholds(by, ceiling, jump_pp, jump_relative, min_start_customers)
    if period not in PERIODS:
        raise ConfigError(f'--period: expected one of {", ".join(PERIODS)}, got "{period}".')
    if end < start:
        raise ConfigError(f"--to {end.isoformat()} is before --from {start.isoformat()}; expected from ≤ to.")
    query_start = alert_start(start, period)
    report = churn_report(store, start=query_start, end=end, rules=rules, period=period, by=by, branch=branch)
    return alerts_from_report(
        store,
        report,
        start=start,
        end=end,
        period=period,
        by=by,
        ceiling=ceiling,
        jump_pp=jump_pp,
        jump_relative=jump_relative,
        min_start_customers=min_start_customers,
        branch=branch,
        first_churn=first_churn_date(store, rules),
    )


def alert_start(start: dt.date, period: str) -> dt.date:
    """The first day :func:`churn_alerts` counts from: the period before ``start`` too when ``start`` begins one."""
    if start == _period_start(start, period):
        return _period_start(start - dt.timedelta(days=1), period)
    return start


def alerts_from_report(
    store: Store,
    report: ChurnReport,
    *,
    start: dt.date,
    end: dt.date,
    period: Period = "month",
    by: str = "branch",
    ceiling: float | None = None,
    jump_pp: float | None = 0.02,
    jump_relative: float | None = 0.5,
    min_start_customers: int = 50,
    branch: str | None = None,
    first_churn: dt.date | None = None,
) -> AlertReport:
    """The alerts of :func:`churn_alerts` from a churn report already counted (the thresholds applied).

    ``report`` holds the rows of ``churn_report(start=alert_start(start, period), end=end, period=period,
    by=by, branch=branch)`` (:func:`churnguard.metrics.churn.report_rows`) and ``first_churn`` the first
    churn date in the data (the end of the first spell that ended).  ``churn_alerts`` computes both and
    calls this; the overview builds the report from the churn counts of every branch at once.
    """
    wanted = {label for label, _, _ in periods_between(start, end, period)}
    query_start = alert_start(start, period)
    rows = [r for r in report.rows if r["period"] in wanted]
    spans = periods_between(query_start, end, period)
    # A period that ends before the first recorded churn is not observed (the data begin later):
    # its rate of 0 is no baseline, so the next period has no previous rate.
    previous_label = {
        label: prev
        for (label, _, _), (prev, _, prev_to) in zip(spans[1:], spans[:-1], strict=True)
        if first_churn is not None and prev_to >= first_churn
    }
    rate_of = {(r["period"], str(r[by])): r["churn_rate"] for r in report.rows}
    names = _group_names(store, by, {str(r[by]) for r in rows})

    alerts: list[Alert] = []
    checked = skipped = 0
    for r in rows:
        if r["start_customers"] < min_start_customers or r["churn_rate"] is None:
            skipped += r["start_customers"] < min_start_customers
            continue
        checked += 1
        rate: float = r["churn_rate"]
        group = str(r[by])
        observed = r["period"] in previous_label
        prev = rate_of.get((previous_label.get(r["period"], ""), group))
        change: float | None = r["churn_rate_change"] if observed else None
        rel: float | None = r["churn_rate_change_relative"] if observed else None
        over = ceiling is not None and rate > ceiling
        jumped = False
        if change is not None and (jump_pp is not None or jump_relative is not None):
            pp_ok = jump_pp is None or change > jump_pp
            # A rise from a previous rate of 0 has no relative change; it counts as an unbounded one.
            rel_ok = jump_relative is None or (change > 0 and (rel is None or rel > jump_relative))
            jumped = pp_ok and rel_ok
        if not (over or jumped):
            continue
        kind = "both" if over and jumped else "ceiling" if over else "jump"
        severity = "high" if kind == "both" else "low" if kind == "jump" and ceiling is not None else "medium"
        en, zh = _messages(
            kind_of_group=by,
            names=names[group],
            period=r["period"],
            rate=rate,
            prev=prev,
            change=change,
            rel=rel,
            start_customers=r["start_customers"],
            churned=r["churned_from_start"],
            over_ceiling=over,
            jumped=jumped,
            ceiling=ceiling,
        )
        alerts.append(
            Alert(
                period=r["period"],
                period_from=r["period_from"],
                period_to=r["period_to"],
                group_kind=by,
                group=group,
                group_name=names[group][0],
                group_name_zh=names[group][1],
                churn_rate=rate,
                previous_rate=prev,
                change_pp=change,
                change_relative=rel,
                start_customers=r["start_customers"],
                churned_from_start=r["churned_from_start"],
                churned_customers=r["churned_customers"],
                kind=kind,
                severity=severity,
                message_en=en,
                message_zh=zh,
            )
        )
    alerts.sort(
        key=lambda a: (SEVERITIES.index(a.severity), -a.churned_from_start, -a.start_customers, a.period, a.group)
    )
    return AlertReport(
        start=start,
        end=end,
        period=period,
        by=by,
        branch=branch,
        ceiling=ceiling,
        jump_pp=jump_pp,
        jump_relative=jump_relative,
        min_start_customers=min_start_customers,
        rules=report.rules,
        alerts=tuple(alerts),
        checked=checked,
        skipped_small=skipped,
    )


def reason_label(code: str, lang: str = "en") -> str:
    """The display label of a reason code (``(unknown)`` for churn without a recorded reason)."""
    if code in REASON_CODES:
        return reason(code).label(lang)
    if code == UNKNOWN_REASON:
        return "未知" if lang.startswith("zh") else "Unknown"
    return code


def reason_mix(
    store: Store,
    *,
    start: dt.date,
    end: dt.date,
    rules: ActivityRules,
    period: Period = "quarter",
    branch: str | None = None,
) -> dict[str, Any]:
    """Each churn reason's share of the churn per period, and its change against the previous period.

    A thin layer over ``churn_report(..., by="reason", period=period)``: the churned customers
    of a period (every churn in it, new customers included) are split by the reason recorded
    nearest to the churn date; churn without a recorded reason is ``(unknown)``.

    share(reason, p) = churned(reason, p) / churned(p);
    share_change(reason, p) = share(reason, p) − share(reason, p − 1) (rate units; ``None`` for
    the first period and next to a period without churn).

    Returns
    -------
    dict
        ``from``, ``to``, ``period``, ``branch``, ``rules``; ``reasons``: every reason seen, with its
        labels, churned customers and share over the whole range, largest first; ``periods``: one
        entry per calendar period with ``churned_customers`` and ``mix`` (one entry per reason, in
        the order of ``reasons``, zeros included, so that series line up for plotting).
    """
    report = churn_report(store, start=start, end=end, rules=rules, period=period, by="reason", branch=branch)
    counts: dict[tuple[str, str], int] = {(r["period"], r["reason"]): r["churned_customers"] for r in report.rows}
    totals: dict[str, int] = {}
    by_reason: dict[str, int] = {}
    for (label, code), n in counts.items():
        totals[label] = totals.get(label, 0) + n
        by_reason[code] = by_reason.get(code, 0) + n
    all_churned = sum(by_reason.values())
    order = [r["reason"] for r in reason_shares(by_reason)]
    periods: list[dict[str, Any]] = []
    previous: dict[str, float] | None = None
    for label, p_from, p_to in periods_between(start, end, period):
        total = totals.get(label, 0)
        shares = {c: counts.get((label, c), 0) / total for c in order} if total else None
        mix = [
            {
                "reason": c,
                "churned_customers": counts.get((label, c), 0),
                "share": _round(shares[c]) if shares else None,
                "share_change": _round(shares[c] - previous[c]) if shares and previous else None,
            }
            for c in order
        ]
        periods.append(
            {
                "period": label,
                "period_from": p_from.isoformat(),
                "period_to": p_to.isoformat(),
                "churned_customers": total,
                "mix": mix,
            }
        )
        previous = shares
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "period": period,
        "branch": branch,
        "rules": report.rules,
        "churned_customers": all_churned,
        "reasons": reason_shares(by_reason),
        "periods": periods,
    }


def reason_shares(by_reason: dict[str, int]) -> list[dict[str, Any]]:
    """The ``reasons`` of :func:`reason_mix` from the churned customers per reason code over the range.

    share(reason) = churned(reason) / Σ churned; largest first (then by code), with both labels.
    """
    all_churned = sum(by_reason.values())
    return [
        {
            "reason": c,
            "label_en": reason_label(c, "en"),
            "label_zh": reason_label(c, "zh"),
            "churned_customers": by_reason[c],
            "share": _round(by_reason[c] / all_churned),
        }
        for c in sorted(by_reason, key=lambda c: (-by_reason[c], c))
    ]


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)
