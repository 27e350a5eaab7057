"""Customer lifetime: Kaplan–Meier survival curves by group (docs/metrics-cohorts.md).

Each customer contributes their **first spell** (:mod:`churnguard.metrics.activity`):

- duration T = ``end_date − start_date`` in days when the spell has ended (an event: churn), else
  ``as_of − start_date`` (censored: still a customer);
- entry a = ``max(0, observed_from − start_date − 1)``: a spell that began before the data
  observe customers (:func:`churnguard.metrics.cohorts.observation_start`) was only seen because
  it lasted until then, so it joins the risk sets from that day on (left truncation, *delayed
  entry*); first spells that ended before that day are left out (the data could not have seen
  them).  Without delayed entry the customers who left before the data began are missing and
  lifetimes are grossly overstated (on the demo, prepaid's median comes out 1,580 days, not 553).

A customer is at risk at day t when a < t ≤ T (from day 0 on when a = 0) — lifelines'
convention.  The Kaplan–Meier (product-limit) estimate, with n_i the customers at risk at churn
day t_i and d_i the churns on it:

    S(t) = Π_{t_i ≤ t} (1 − d_i / n_i)

with Greenwood's variance and lifelines' exponential ("log-log") 95 % interval.  From it:

- median lifetime: the first t with S(t) ≤ 0.5 (``None`` if the curve never gets there);
- restricted mean lifetime up to a horizon τ: RMST(τ) = ∫_0^τ S(t) dt, the expected days as a
  customer within the first τ days.  Default τ: the longest follow-up that every group reaches
  (the smallest of the groups' longest durations) — one horizon for all groups so that their
  means compare, and none beyond a group's data, where its curve is unknown.  Without ``by`` it
  is simply the longest follow-up;
- S(90), S(180), S(365), S(730): ``None`` beyond the group's longest follow-up.

A group none of whose customers is observed from day 0 (e.g. ``by="cohort"`` for a year before
the data begin) has only the conditional curve S(t | T > a_min); its median, mean and S(·) are
``None`` and ``conditional_on_days`` says a_min.

Groups are compared with the log-rank test: for each group j, observed churns O_j = Σ_i d_ij
against expected E_j = Σ_i d_i n_ij / n_i, and

    χ² = (O − E)ᵀ V⁻¹ (O − E),  V_jl = Σ_i d_i (n_i − d_i) / (n_i − 1) · n_ij / n_i · (δ_jl − n_il / n_i)

over the first k − 1 groups, with k − 1 degrees of freedom.  It is lifelines'
``multivariate_logrank_test`` with risk sets that honour delayed entry (lifelines' own assumes
every customer is at risk from day 0); without delayed entry the two agree (tested).

The durations table (one row per customer) comes from one engine query; lifelines fits on it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from churnguard.errors import ConfigError
from churnguard.metrics.activity import ActivityRules, spells_sql
from churnguard.metrics.cohorts import group_sql, observation_start
from churnguard.metrics.scope import check_branch, customer_scope_sql
from churnguard.store.connection import Store

#: What ``by`` may split the customers by (``cohort``: the calendar year the first spell began).
SURVIVAL_GROUPS: tuple[str, ...] = ("segment", "plan", "branch", "cohort")
#: Days at which the survival is reported.
SURVIVAL_DAYS: tuple[int, ...] = (90, 180, 365, 730)
#: The most points of a curve handed out for plotting.
CURVE_POINTS = 200


@dataclass(frozen=True)
class SurvivalReport:
    """Kaplan–Meier estimates per group.

    Attributes
    ----------
    groups : per group: ``group``, ``n``, ``events``, ``median_lifetime_days``,
        ``restricted_mean_lifetime_days``, ``survival_at`` ({"90": S(90), …}), ``followup_days``,
        ``conditional_on_days`` (module docstring)
        and ``curve`` (``timeline``, ``survival``, ``ci_lower``, ``ci_upper``; at most 200 points).
    logrank : ``test_statistic``, ``degrees_of_freedom``, ``p_value``; ``None`` with fewer than two groups
        or no churn at all.
    horizon_days : τ of the restricted mean.
    """

    by: str | None
    as_of: dt.date
    horizon_days: float | None
    groups: list[dict[str, Any]]
    logrank: dict[str, Any] | None
    start: dt.date | None = None
    end: dt.date | None = None
    branch: str | None = None
    observed_from: dt.date | None = None
    rules: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "as_of": self.as_of.isoformat(),
            "observed_from": self.observed_from.isoformat() if self.observed_from else None,
            "branch": self.branch,
            "rules": self.rules,
            "horizon_days": self.horizon_days,
            "customers": sum(g["n"] for g in self.groups),
            "events": sum(g["events"] for g in self.groups),
            "groups": self.groups,
            "logrank": self.logrank,
        }


def durations_sql(rules: ActivityRules, by: str | None, branch: str | None) -> tuple[str, dict[str, Any]]:
    """SQL selecting ``grp, duration, event, entry``: one row per customer (module docstring)."""
    spells, sparams = spells_sql(rules)
    scope, cparams = customer_scope_sql(branch)
    group = group_sql(by, SURVIVAL_GROUPS)
    sql = f"""
    WITH d AS (
      SELECT {group} AS grp,
             coalesce(s.end_date, CAST($as_of AS DATE)) - s.start_date AS duration,
             s.end_date IS NOT NULL AS event,
             greatest(coalesce(CAST($observed_from AS DATE) - s.start_date - 1, 0), 0) AS entry
      FROM ({spells}) s
      JOIN ({scope}) sc ON sc.customer_id = s.customer_id
      JOIN customers c ON c.customer_id = s.customer_id
      WHERE s.first_spell
        AND (s.end_date IS NULL OR s.end_date >= coalesce(CAST($observed_from AS DATE), s.end_date))
        AND s.start_date >= coalesce(CAST($start AS DATE), DATE '0001-01-01')
        AND s.start_date <= coalesce(CAST($end AS DATE), CAST($as_of AS DATE))
    )
    SELECT grp, duration, event, entry FROM d WHERE entry = 0 OR entry < duration  -- never at risk otherwise
    """
    return sql, {**sparams, **cparams}


def survival_curves(
    store: Store,
    *,
    rules: ActivityRules,
    by: str | None = "segment",
    branch: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    horizon_days: float | None = None,
    observed_from: dt.date | None = None,
) -> SurvivalReport:
    """Kaplan–Meier survival of the first spell, per group, with the log-rank test between groups.

    Parameters
    ----------
    store : the store.
    rules : the churn definition (:func:`churnguard.metrics.activity.rules_for`); its as-of date censors.
    by : ``segment``, ``plan``, ``branch`` (the children of ``branch``), ``cohort`` (the year the first
        spell began) or ``None`` for everyone together.
    branch : limit to this branch's subtree (default: the whole company).
    start, end : only customers whose first spell began in ``[start, end]`` (default: all).
    horizon_days : τ of the restricted mean lifetime (default: the longest follow-up every group reaches).
    observed_from : the first day the data observe (default: :func:`~churnguard.metrics.cohorts.observation_start`);
        earlier spells enter the risk sets on this day.

    Returns
    -------
    SurvivalReport

    Examples
    --------
    Five customers followed from their start: churns on days 3, 5 and 8, still customers
    (censored) at days 5 and 10.  S(3) = 4/5 = 0.8; at day 5 one of the 4 at risk churns:
    S(5) = 0.8 · 3/4 = 0.6 (the customer censored on day 5 still counts as at risk);
    at day 8 one of 2: S(8) = 0.3.  The median lifetime is 8 days and RMST(10) = 3·1 + 2·0.8 +
    3·0.6 + 2·0.3 = 7.0 days.
    """
    import numpy as np
    from lifelines import KaplanMeierFitter
    from lifelines.utils import restricted_mean_survival_time

    if by is not None and by not in SURVIVAL_GROUPS:
        raise ConfigError(f'--by: expected one of {", ".join(SURVIVAL_GROUPS)}, got "{by}".')
    if branch is not None:
        check_branch(store, branch)
    if start is not None and end is not None and end < start:
        raise ConfigError(f"--to {end.isoformat()} is before --from {start.isoformat()}; expected from ≤ to.")
    if horizon_days is not None and horizon_days <= 0:
        raise ConfigError(f"horizon: expected a positive number of days, got {horizon_days}.")
    as_of = rules.as_of or dt.datetime.now(dt.UTC).date()
    if observed_from is None:
        observed_from = observation_start(store)
    sql, params = durations_sql(rules, by, branch)
    params.update(as_of=as_of, observed_from=observed_from, start=start, end=end)
    data = store.execute(sql, params).fetchnumpy()

    duration = np.asarray(data["duration"], dtype=float)
    event = np.asarray(data["event"], dtype=bool)
    entry = np.asarray(data["entry"], dtype=float)
    names, code = np.unique(np.asarray(data["grp"], dtype=str), return_inverse=True)
    if horizon_days is not None:
        horizon: float | None = float(horizon_days)
    else:  # the longest follow-up every group reaches (groups seen only from a later day do not count)
        reach = [duration[code == j].max() for j in range(len(names)) if entry[code == j].min() == 0]
        horizon = float(min(reach)) if reach else None

    groups = []
    for j, g in enumerate(names):  # the groups, in order: a handful, not customers
        mask = code == j
        kmf = KaplanMeierFitter(label="S").fit(duration[mask], event[mask], entry=entry[mask])
        followup = float(duration[mask].max())
        # Nobody of the group observed from day 0: only S(t | alive at the first entry) is known.
        conditional = float(entry[mask].min())
        known = conditional == 0
        median = float(kmf.median_survival_time_)
        at = kmf.survival_function_at_times(list(SURVIVAL_DAYS)).to_numpy()
        sf = kmf.survival_function_["S"]
        ci = kmf.confidence_interval_survival_function_
        finite = np.flatnonzero(np.isfinite(sf.to_numpy()))
        keep = finite[np.unique(np.linspace(0, len(finite) - 1, min(len(finite), CURVE_POINTS)).round().astype(int))]
        groups.append(
            {
                "group": str(g),
                "n": int(mask.sum()),
                "events": int(event[mask].sum()),
                "followup_days": followup,
                "conditional_on_days": None if known else conditional,
                "median_lifetime_days": median if known and np.isfinite(median) else None,
                "restricted_mean_lifetime_days": (
                    _round(restricted_mean_survival_time(kmf, t=horizon)) if known and horizon else None
                ),
                "survival_at": {
                    str(t): (_round(s) if known and t <= followup else None)
                    for t, s in zip(SURVIVAL_DAYS, at, strict=True)
                },
                "curve": {
                    "timeline": [float(x) for x in sf.index.to_numpy()[keep]],
                    "survival": [_round(x) for x in sf.to_numpy()[keep]],
                    "ci_lower": [_round(x) for x in ci.iloc[:, 0].to_numpy()[keep]],
                    "ci_upper": [_round(x) for x in ci.iloc[:, 1].to_numpy()[keep]],
                },
            }
        )
    logrank = None
    if len(groups) >= 2 and event.any():  # without a churn there is nothing to compare
        stat, dof, p = logrank_test(duration, code, event, entry)
        logrank = {"test_statistic": _round(stat), "degrees_of_freedom": dof, "p_value": p}
    return SurvivalReport(
        by=by,
        as_of=as_of,
        horizon_days=horizon,
        groups=groups,
        logrank=logrank,
        start=start,
        end=end,
        branch=branch,
        observed_from=observed_from,
        rules={
            "definition": rules.definition,
            "grace_days": rules.grace_days,
            "inactivity_days": rules.inactivity_days,
            "as_of": as_of.isoformat(),
        },
    )


def logrank_test(durations: Any, groups: Any, events: Any, entry: Any = None) -> tuple[float, int, float]:
    """The multi-group log-rank test with delayed entry: ``(chi-square statistic, degrees of freedom, p-value)``.

    A customer j is at risk at time t when ``entry_j < t ≤ duration_j``, from t = 0 on when
    ``entry_j`` is 0 (the convention of lifelines' Kaplan–Meier fit with ``entry``); the statistic
    is the one of the module docstring.  With ``entry`` ``None`` (or all 0) it equals
    ``lifelines.statistics.multivariate_logrank_test(durations, groups, events)``.
    """
    import numpy as np
    from scipy import stats

    t = np.asarray(durations, dtype=float)
    e = np.asarray(events, dtype=bool)
    a = np.zeros_like(t) if entry is None else np.asarray(entry, dtype=float)
    names, g = np.unique(np.asarray(groups), return_inverse=True)
    seen = (a == 0) | (a < t)  # a customer who entered only at (or after) their end was never at risk
    t, e, a, g = t[seen], e[seen], a[seen], g[seen]
    k = len(names)
    if k < 2:
        raise ConfigError("the log-rank test compares groups: expected at least 2 groups, got 1.")
    times = np.unique(t[e])  # the distinct churn times t_i
    # d_ij: churns of group j at t_i; n_ij: at risk in group j at t_i (entered by t_i, not gone before it)
    d = np.zeros((len(times), k))
    np.add.at(d, (np.searchsorted(times, t[e]), g[e]), 1.0)
    n = np.empty((len(times), k))
    a = np.where(a > 0, a, -np.inf)  # entry 0: at risk from day 0 on, day 0 included
    for j in range(k):  # per group (a handful), each one vectorised over its customers
        mine = g == j
        entered = np.searchsorted(np.sort(a[mine]), times, side="left")  # entry < t
        gone = np.searchsorted(np.sort(t[mine]), times, side="left")
        n[:, j] = entered - gone
    d_i, n_i = d.sum(axis=1), n.sum(axis=1)
    expected = (n * (d_i / n_i)[:, None]).sum(axis=0)
    z = d.sum(axis=0) - expected
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(n_i > 1, (n_i - d_i) / (n_i - 1), 1.0) * d_i / n_i**2
    w = n * np.sqrt(factor)[:, None]
    v = -(w.T @ w)
    v[np.diag_indices(k)] += (n * (factor * n_i)[:, None]).sum(axis=0)
    stat = float(z[:-1] @ np.linalg.pinv(v[:-1, :-1]) @ z[:-1])
    return stat, k - 1, float(stats.chi2.sf(stat, k - 1))


def _round(x: float | None) -> float | None:
    """``x`` to 6 decimals; ``None`` for a missing or non-finite value (JSON has no NaN)."""
    import math

    return None if x is None or not math.isfinite(float(x)) else round(float(x), 6)
