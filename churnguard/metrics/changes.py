"""Churn around a dated product or price change: touched vs untouched customers, before vs after.

For a change on day t₀ (e.g. the ``smart`` plan's fee rise on 2024-07-01) and a window of W days:

- the **before** window is ``[t₀ − W, t₀ − 1]``, the **after** window ``[t₀, t₀ + W − 1]``;
- each window's population is the customers active at its start (a spell begun before that day
  and not ended before it — the ``start_customers`` of :mod:`churnguard.metrics.churn`);
- a customer is **touched** when, at the window's start, they are on a subscription of ``plan``
  (its ``start_date ≤ day ≤ end_date``, open ends included) — or, with ``branch`` instead, when
  they belong to that branch's subtree; the other customers of the population are **untouched**.
  Membership is read at each window's start: the before window compares the customers who were
  on the plan then (those the change would have touched) with the rest;
- the churn rate of a group in a window is the standard rate C_S / S: those of its S customers
  whose spell ended (churn date) inside the window, over S (:func:`churnguard.metrics.churn.churn_rate`).

The difference-in-differences is

  DiD = (r_touched,after − r_touched,before) − (r_untouched,after − r_untouched,before)

the rise of the touched group's churn beyond the rise that everyone saw (season, the economy).
A DiD > 0 says the change went with extra churn among the customers it touched; it assumes the
two groups would have moved alike without the change (parallel trends), which is worth a look at
their rates in earlier periods (``churn_report(..., by="plan")``), and that nothing else hit one
group more than the other in one window (a competitor's offer, say).

Its standard error treats the four rates as independent binomial proportions,
SE = √(Σ r(1 − r) / S) over the four (group, window) cells, and the 95 % interval is DiD ± 1.96 SE.
It is approximate (the windows share customers), but it tells a real shift from noise: a
1,000-customer plan with 12 % churn in six months has an SE of about 1.5 pp on each rate.

The **reason mix** splits each group's churners in each window by the ``churn_events.reason_code``
recorded nearest to the spell's end (within the grace period, at least 31 days, as in
``churn_report``); churn without a recorded reason is ``(unknown)``.

Everything is counted by one SQL statement in the engine.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

from churnguard.errors import ConfigError
from churnguard.metrics.activity import ActivityRules, spells_sql
from churnguard.metrics.churn import churn_rate
from churnguard.metrics.scope import check_branch, customer_scope_sql
from churnguard.store.connection import Store

GROUPS: tuple[str, ...] = ("touched", "untouched")
WINDOWS: tuple[str, ...] = ("before", "after")
UNKNOWN_REASON = "(unknown)"


class IncompleteWindowWarning(UserWarning):
    """The after window runs past the last day the data describe, so its churn is undercounted."""


@dataclass(frozen=True)
class ChangeImpact:
    """Churn of touched and untouched customers before and after a change (module docstring).

    Attributes
    ----------
    change_date, plan, branch, window_days : the question asked.
    before, after : each window's ``(from, to)`` days, both included.
    groups : ``{"touched" | "untouched": {"before" | "after": {start_customers, churned_customers,
        churn_rate}, "change_pp": after − before, "change_relative": change_pp / before}}``.
    did : the difference-in-differences in rate units (0.01 = 1 percentage point).
    did_se, did_ci95 : its approximate standard error and 95 % interval (module docstring).
    reasons : ``{"touched" | "untouched": [{reason, before, after, before_share, after_share,
        share_change}]}``, largest after-share first; counts are churned customers.
    after_complete : ``False`` when the after window runs past the data's as-of date.
    rules : the churn definition used.
    """

    change_date: dt.date
    plan: str | None
    branch: str | None
    window_days: int
    before: tuple[dt.date, dt.date]
    after: tuple[dt.date, dt.date]
    groups: dict[str, dict[str, Any]]
    did: float | None
    did_se: float | None = None
    did_ci95: tuple[float, float] | None = None
    reasons: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    after_complete: bool = True
    rules: dict[str, Any] = field(default_factory=dict)

    def rate(self, group: str, window: str) -> float | None:
        """The churn rate of ``group`` (touched, untouched) in ``window`` (before, after)."""
        return self.groups[group][window]["churn_rate"]

    def reason_share(self, group: str, window: str, code: str) -> float | None:
        """The share of ``group``'s churners in ``window`` who gave reason ``code`` (0 if none did)."""
        for row in self.reasons.get(group, []):
            if row["reason"] == code:
                return row[f"{window}_share"]
        total = sum(r[window] for r in self.reasons.get(group, []))
        return 0.0 if total else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "change_date": self.change_date.isoformat(),
            "plan": self.plan,
            "branch": self.branch,
            "window_days": self.window_days,
            "before": {"from": self.before[0].isoformat(), "to": self.before[1].isoformat()},
            "after": {"from": self.after[0].isoformat(), "to": self.after[1].isoformat()},
            "after_complete": self.after_complete,
            "rules": self.rules,
            "groups": self.groups,
            "did": self.did,
            "did_se": self.did_se,
            "did_ci95": list(self.did_ci95) if self.did_ci95 else None,
            "reasons": self.reasons,
        }


def _counts_sql(rules: ActivityRules, *, by_plan: bool, branch: str | None) -> tuple[str, dict[str, Any]]:
    spells, sparams = spells_sql(rules)
    if by_plan:
        touched = """
        LEFT JOIN (
          SELECT DISTINCT w.win, x.customer_id
          FROM w JOIN subscriptions x
            ON x.plan = $plan AND x.start_date <= w.w_from AND coalesce(x.end_date, DATE '9999-12-31') >= w.w_from
        ) t ON t.win = w.win AND t.customer_id = s.customer_id"""
        scope_params: dict[str, Any] = {}
    else:
        scope, scope_params = customer_scope_sql(branch)
        touched = f"LEFT JOIN ({scope}) t ON t.customer_id = s.customer_id"
    tolerance = int(max(rules.grace_days, 31))
    sql = f"""
    WITH sp AS ({spells}),
    w AS (SELECT unnest($wins) AS win, unnest($froms) AS w_from, unnest($tos) AS w_to),
    ce AS (  -- the churn event recorded nearest to each ended spell's end gives its reason
      SELECT s.customer_id, s.spell_no, arg_min(e.reason_code, abs(e.churn_date - s.end_date)) AS reason_code
      FROM sp s JOIN churn_events e ON e.customer_id = s.customer_id
      WHERE s.end_date IS NOT NULL AND abs(e.churn_date - s.end_date) <= {tolerance}
      GROUP BY ALL
    ),
    pop AS (
      SELECT w.win, t.customer_id IS NOT NULL AS touched,
             s.end_date IS NOT NULL AND s.end_date <= w.w_to AS churned,
             CASE WHEN s.end_date IS NOT NULL AND s.end_date <= w.w_to
                  THEN coalesce(ce.reason_code, '{UNKNOWN_REASON}') END AS reason
      FROM w
      JOIN sp s ON s.start_date < w.w_from AND (s.end_date IS NULL OR s.end_date >= w.w_from)
      {touched}
      LEFT JOIN ce ON ce.customer_id = s.customer_id AND ce.spell_no = s.spell_no
    )
    SELECT win, touched, reason, GROUPING(reason) = 1 AS total_row,
           count(*) AS start_customers, count(*) FILTER (WHERE churned) AS churned_customers
    FROM pop
    GROUP BY GROUPING SETS ((win, touched), (win, touched, reason))
    """
    return sql, {**sparams, **scope_params}


def change_impact(
    store: Store,
    *,
    rules: ActivityRules,
    change_date: dt.date,
    plan: str | None = None,
    branch: str | None = None,
    window_days: int = 180,
) -> ChangeImpact:
    """Churn before vs after ``change_date`` for the customers it touched and the others.

    Parameters
    ----------
    store : the store.
    rules : the churn definition (:func:`churnguard.metrics.rules_for`).
    change_date : the first day the change applied (e.g. the first bill at the new fee).
    plan : the plan that changed: touched customers are those on a subscription of it.
    branch : instead of ``plan``, a branch whose subtree was touched (a local offer or policy).
    window_days : length W of each window, in days.

    Returns
    -------
    ChangeImpact
        Rates, changes, the difference-in-differences and the reason mix (module docstring).

    Examples
    --------
    Touched: 100 customers at the before window's start, 5 churn (5 %); 96 at the change, 24
    churn (25 %).  Untouched: 210 and 21 (10 %); 189 and 27 (14.29 %).  Then
    DiD = (0.25 − 0.05) − (0.1429 − 0.10) = 0.1571: 15.7 pp of extra churn went with the change.
    """
    if (plan is None) == (branch is None):
        raise ConfigError(
            "change impact: expected exactly one of --plan (the plan that changed) or --branch "
            f"(the branch it applied to), got {'both' if plan else 'neither'}."
        )
    if window_days < 1:
        raise ConfigError(f"--window-days: expected a number of days ≥ 1, got {window_days}.")
    if branch is not None:
        check_branch(store, branch)
    if plan is not None:
        known = [r[0] for r in store.execute("SELECT DISTINCT plan FROM subscriptions ORDER BY plan").fetchall()]
        if plan not in known:
            listed = ", ".join(known[:10]) if known else "none (the subscriptions table is empty)"
            raise ConfigError(
                f'plan "{plan}": expected a plan found in subscriptions, such as {listed}. '
                "Fix: give the plan's name as in subscriptions.plan, or use --branch for a change by branch."
            )
    width = dt.timedelta(days=window_days)
    before = (change_date - width, change_date - dt.timedelta(days=1))
    after = (change_date, change_date + width - dt.timedelta(days=1))
    as_of = rules.as_of
    complete = as_of is None or after[1] <= as_of
    if not complete:
        warnings.warn(
            f"change impact: the after window ends {after[1].isoformat()}, past the data's last day "
            f"{as_of.isoformat() if as_of else ''}; churn after that is not counted, so the after rates are too low. "
            "Fix: use a shorter --window-days or a later --as-of.",
            IncompleteWindowWarning,
            stacklevel=2,
        )
    sql, params = _counts_sql(rules, by_plan=plan is not None, branch=branch)
    params.update(wins=list(WINDOWS), froms=[before[0], after[0]], tos=[before[1], after[1]])
    if plan is not None:
        params["plan"] = plan
    rows = store.execute(sql, params).fetchall()

    counts: dict[tuple[str, str], dict[str, int]] = {
        (w, g): {"start_customers": 0, "churned_from_start": 0} for g in GROUPS for w in WINDOWS
    }
    reasons: dict[str, dict[str, dict[str, int]]] = {g: {} for g in GROUPS}
    for win, touched, code, total_row, start_n, churned_n in rows:
        g = "touched" if touched else "untouched"
        if total_row:
            counts[(win, g)] = {"start_customers": int(start_n), "churned_from_start": int(churned_n)}
        elif code is not None:
            reasons[g].setdefault(code, dict.fromkeys(WINDOWS, 0))[win] = int(churned_n)

    groups: dict[str, dict[str, Any]] = {}
    for g in GROUPS:
        entry: dict[str, Any] = {}
        for w in WINDOWS:
            c = counts[(w, g)]
            rate = churn_rate({**c, "end_customers": None})
            entry[w] = {
                "start_customers": c["start_customers"],
                "churned_customers": c["churned_from_start"],
                "churn_rate": _round(rate),
            }
        b, a = entry["before"]["churn_rate"], entry["after"]["churn_rate"]
        entry["change_pp"] = _round(a - b) if a is not None and b is not None else None
        entry["change_relative"] = _round((a - b) / b) if a is not None and b else None
        groups[g] = entry
    t, u = groups["touched"]["change_pp"], groups["untouched"]["change_pp"]
    did = _round(t - u) if t is not None and u is not None else None
    cells = [(groups[g][w]["churn_rate"], groups[g][w]["start_customers"]) for g in GROUPS for w in WINDOWS]
    did_se: float | None = None
    did_ci95: tuple[float, float] | None = None
    if did is not None and all(n for _, n in cells):
        se = math.sqrt(sum(r * (1 - r) / n for r, n in cells))
        did_se = round(se, 6)
        did_ci95 = (round(did - 1.96 * se, 6), round(did + 1.96 * se, 6))

    mix: dict[str, list[dict[str, Any]]] = {}
    for g in GROUPS:
        totals = {w: sum(r[w] for r in reasons[g].values()) for w in WINDOWS}
        items = []
        for code, n in reasons[g].items():
            shares = {w: n[w] / totals[w] if totals[w] else None for w in WINDOWS}
            items.append(
                {
                    "reason": code,
                    "before": n["before"],
                    "after": n["after"],
                    "before_share": _round(shares["before"]),
                    "after_share": _round(shares["after"]),
                    "share_change": _round(shares["after"] - shares["before"])
                    if shares["after"] is not None and shares["before"] is not None
                    else None,
                }
            )
        items.sort(key=lambda r: (-(r["after_share"] or 0), -(r["before_share"] or 0), r["reason"]))
        mix[g] = items

    return ChangeImpact(
        change_date=change_date,
        plan=plan,
        branch=branch,
        window_days=window_days,
        before=before,
        after=after,
        groups=groups,
        did=did,
        did_se=did_se,
        did_ci95=did_ci95,
        reasons=mix,
        after_complete=complete,
        rules={
            "definition": rules.definition,
            "grace_days": rules.grace_days,
            "inactivity_days": rules.inactivity_days,
            "as_of": as_of.isoformat() if as_of else None,
        },
    )


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)
