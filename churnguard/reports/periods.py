"""The report's periods: the default range, the previous period of the same length, and when churn is final."""

from __future__ import annotations

import datetime as dt

from churnguard.metrics.activity import ActivityRules


def month_end(day: dt.date) -> dt.date:
    """The last day of ``day``'s month."""
    nxt = dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def add_months(day: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` after ``day``'s month (negative: before)."""
    y, m = divmod(day.year * 12 + day.month - 1 + months, 12)
    return dt.date(y, m + 1, 1)


def settled_until(rules: ActivityRules) -> dt.date:
    """The last day whose churn is final, for every customer, at the as-of date.

    Contractual churn is dated on the day the last subscription ended, but without a recorded churn
    event it is only known once the grace period has passed without a renewal: such a spell that
    ended in the last ``grace_days`` before the as-of date still counts as active.  So churn is
    final up to ``as_of − grace_days`` (later, only where a churn event confirms it).
    Non-contractual churn is dated on the day it is declared, so it is final up to the as-of date.
    """
    as_of = rules.as_of or dt.datetime.now(dt.UTC).date()
    if rules.definition == "contractual":
        return as_of - dt.timedelta(days=rules.grace_days)
    return as_of


def default_range(rules: ActivityRules, months: int = 12) -> tuple[dt.date, dt.date]:
    """The last ``months`` full calendar months up to the as-of date.

    With as-of 2025-12-31: 2025-01-01 … 2025-12-31; with as-of 2025-12-15: 2024-12-01 … 2025-11-30.
    """
    as_of = rules.as_of or dt.datetime.now(dt.UTC).date()
    end = as_of if as_of == month_end(as_of) else dt.date(as_of.year, as_of.month, 1) - dt.timedelta(days=1)
    return add_months(end, -(months - 1)), end


def previous_range(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The period of the same length just before ``[start, end]``.

    Whole calendar months map to the same number of months before (2025-01-01 … 2025-06-30 →
    2024-07-01 … 2024-12-31); any other range to the same number of days before it.
    """
    if start.day == 1 and end == month_end(end):
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        return add_months(start, -months), start - dt.timedelta(days=1)
    days = (end - start).days + 1
    return start - dt.timedelta(days=days), start - dt.timedelta(days=1)


def months_in(start: dt.date, end: dt.date) -> int:
    """Calendar months touched by ``[start, end]``."""
    return (end.year - start.year) * 12 + end.month - start.month + 1
