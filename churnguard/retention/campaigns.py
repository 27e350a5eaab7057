"""Campaigns (挽留/挽回活动): choose customers and actions, hold out a control group, open cases, measure.

:func:`create_campaign` (docs/retention.md, "Campaigns")

1. **Population.** ``retain``: the customers in scope (``branch``'s subtree) active at the as-of
   date with a score (their latest ``scores`` row on or before it).  ``winback``: the customers in
   scope whose last activity spell ended within the ``winback_days`` before the as-of date and who
   are not active again.  Customers whose value at risk is below ``min_value_at_risk`` are left out.
2. **Value.** ``value`` = CLV, else trailing 12-month margin (:mod:`churnguard.retention.value`);
   value at risk = probability × value (win-back: the value itself).
3. **Playbook.** Tier (``customers.tier_override``, else ``customer_value.tier``) × top reason
   category → candidate actions, each with ``expected gain = value at risk × save_rate − cost``.
4. **Abandon rules** (in this order): ``abusive``, ``arrears``, ``no_value`` (value unknown),
   ``no_gain`` (no candidate gains more than ``min_expected_gain``).
5. **Budget.** :func:`churnguard.retention.budget.allocate` picks one candidate (or none) per
   customer to maximise expected gain within the budget and contact capacity.
6. **Control group.** :func:`churnguard.retention.control.split_control` holds out
   ``control_share`` of the chosen customers, stratified by tier × branch.
7. **Write**, in ONE transaction: the ``campaigns`` row, a ``campaign_members`` row for every
   customer of the population (arm ``treatment``, ``control`` or ``excluded``, with ``why``: the
   JSON of every input and decision), and a case per treated member
   (:func:`churnguard.retention.cases.open_cases`).  A failure leaves nothing behind.

:func:`campaign_report` measures the effect once the horizon has passed
(:mod:`churnguard.retention.effect`); :func:`list_campaigns` lists them.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from churnguard.errors import ConfigError
from churnguard.metrics.activity import ActivityRules, rules_for, spells_sql
from churnguard.metrics.scope import check_branch, customer_scope_sql, root_branch
from churnguard.reasons import DRIVER_CATEGORIES, DRIVER_CODES
from churnguard.retention.budget import allocate
from churnguard.retention.control import CONTROL, TREATMENT, check_share, split_control
from churnguard.retention.effect import difference_ci, stratified_difference
from churnguard.retention.playbook import KINDS, Playbook, load_playbook
from churnguard.retention.value import customer_value_sql, debt_available, debt_sql
from churnguard.store.connection import Store

EXCLUDED = "excluded"
#: Default horizon (days) when the scores do not say, and for win-back campaigns.
DEFAULT_HORIZON_DAYS = 90
#: Recorded churn reasons (churn_events.reason_code) → the driver category a win-back playbook reads.
REASON_TO_DRIVER: dict[str, str] = {d.reason_code: d.code for d in DRIVER_CATEGORIES if d.reason_code}
#: Why a customer of the population gets no action (campaign_members.why.decision / exclusion).
EXCLUSIONS: tuple[str, ...] = ("abusive", "arrears", "no_value", "no_gain", "not_selected")

_T = {  # temp tables of one run
    "scope": "_cg_cmp_scope",
    "base": "_cg_cmp_base",
    "pop": "_cg_cmp_pop",
    "cells": "_cg_cmp_cells",
    "actions": "_cg_cmp_actions",
    "cand": "_cg_cmp_cand",
    "alloc": "_cg_cmp_alloc",
    "members": "_cg_cmp_members",
    "debt": "_cg_cmp_debt_t",
    "why": "_cg_cmp_why",
}


def _utc_now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    if now.tzinfo is not None:
        return now.astimezone(dt.UTC).replace(tzinfo=None)
    return now


def _drop(store: Store, *names: str) -> None:
    for name in names:
        store.execute(f"DROP TABLE IF EXISTS {name}")
        store.execute(f"DROP VIEW IF EXISTS {name}")


# -- creating a campaign --------------------------------------------------------------------------


def create_campaign(
    store: Store,
    *,
    name: str,
    kind: str = "retain",
    as_of: dt.date | None = None,
    branch: str | None = None,
    budget: float | None = None,
    capacity: int | Mapping[str, int] | None = None,
    control_share: float = 0.1,
    seed: int = 0,
    playbook: Playbook | str | Path | None = None,
    min_value_at_risk: float = 0.0,
    actor: str = "cli",
    horizon_days: int | None = None,
    winback_days: int = 90,
    method: str = "auto",
    deadline_days: int = 7,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Create a retention or win-back campaign: members, arms, actions and cases, in one transaction.

    Parameters
    ----------
    name : the campaign's name.
    kind : ``retain`` (active customers at risk, from ``scores``) or ``winback`` (recently churned).
    as_of : the campaign's date; default: the latest score date (retain) or the data's as-of date.
    branch : restrict to this branch's subtree.
    budget : money for the actions' costs (treated members); None: no limit.
    capacity : contacts (cases) available: an int, or branch_id → int (customers of branches not
        listed get none); None: no limit.
    control_share : share of the chosen customers held out, per tier × branch stratum.
    seed : seed of the control split.
    playbook : a :class:`Playbook`, a YAML path, or None for the shipped default.
    min_value_at_risk : leave out customers whose value at risk is below this.
    horizon_days : how long after ``as_of`` the outcome is measured; default: the scores' horizon
        (retain) or 90 days (win-back).
    winback_days : win-back: customers who churned within this many days before ``as_of``.
    method : budget allocation method (``auto``, ``dp``, ``greedy``).
    deadline_days : the cases' deadline.
    now : the creation time (UTC); default: the clock.

    Returns
    -------
    dict with ``campaign_id`` and a summary (counts per arm and exclusion, cost, expected gain,
    allocation, cases opened, notes).
    """
    from churnguard.retention.cases import open_cases

    if not isinstance(name, str) or not name.strip():
        raise ConfigError("campaign name: expected some text, got nothing.")
    if kind not in KINDS:
        raise ConfigError(f'campaign kind: expected one of {", ".join(KINDS)}, got "{kind}".')
    check_share(control_share)
    if budget is not None and (not math.isfinite(budget) or budget < 0):
        raise ConfigError(f"budget: expected a number ≥ 0, got {budget!r}.")
    if horizon_days is not None and horizon_days < 1:
        raise ConfigError(f"horizon days: expected a whole number ≥ 1, got {horizon_days!r}.")
    if winback_days < 1:
        raise ConfigError(f"win-back days: expected a whole number ≥ 1, got {winback_days!r}.")
    pb = playbook if isinstance(playbook, Playbook) else load_playbook(playbook)
    pb.cells(kind)  # a playbook without this kind's section is refused before any work
    if branch is not None:
        check_branch(store, branch)
    now = _utc_now(now)
    notes: list[str] = []

    as_of, horizon, model_id = _dates(store, kind, as_of, horizon_days, notes)
    rules = rules_for(store, as_of=as_of)
    try:
        _population(store, kind, pb, rules, branch, winback_days, min_value_at_risk, notes)
        frame, gains, costs, ranks = _candidates(store, pb, kind)
        chosen, allocation, exclusion = _choose(frame, gains, costs, pb, budget, capacity, method)
        control = np.zeros(len(frame), dtype=bool)
        picked = chosen >= 0
        control[picked] = split_control(
            frame["customer_id"].to_numpy()[picked],
            frame["stratum"].to_numpy()[picked],
            share=control_share,
            seed=seed,
        )
        arm = np.where(picked, np.where(control, CONTROL, TREATMENT), EXCLUDED)
        import pandas as pd

        alloc = pd.DataFrame(
            {
                "customer_id": frame["customer_id"],
                "arm": arm,
                "chosen_rank": np.where(picked, ranks[np.arange(len(frame)), np.maximum(chosen, 0)], -1),
                "exclusion": exclusion,
            }
        )
        store.raw.register("_cg_cmp_alloc_df", alloc)
        store.execute(f"CREATE OR REPLACE TEMP TABLE {_T['alloc']} AS SELECT * FROM _cg_cmp_alloc_df")
        store.raw.unregister("_cg_cmp_alloc_df")
        _members(store, kind, pb)

        params = {
            "budget": budget,
            "capacity": dict(capacity) if isinstance(capacity, Mapping) else capacity,
            "control_share": control_share,
            "seed": seed,
            "min_value_at_risk": min_value_at_risk,
            "winback_days": winback_days if kind == "winback" else None,
            "method": method,
            "deadline_days": deadline_days,
            "playbook_name": pb.name,
            "playbook_source": pb.source,
            "allocation": allocation.to_dict(),
        }
        with store.transaction():
            campaign_id = _new_campaign_id(store, now)
            store.execute(
                "INSERT INTO campaigns (campaign_id, name, kind, status, branch_id, as_of, horizon_days, model_id, "
                "budget, control_share, seed, playbook, parameters, created_by, created_at) "
                "VALUES (?, ?, ?, 'active', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    campaign_id,
                    name.strip(),
                    kind,
                    branch or root_branch(store),
                    as_of,
                    horizon,
                    model_id,
                    budget,
                    control_share,
                    seed,
                    pb.text or json.dumps(pb.to_dict(), ensure_ascii=False),
                    json.dumps(params, ensure_ascii=False, default=str),
                    actor,
                    now,
                ],
            )
            store.execute(
                "INSERT INTO campaign_members (campaign_id, customer_id, branch_id, tier, stratum, arm, probability, "
                "clv, value_at_risk, top_reason, action, action_cost, save_rate, expected_gain, why, case_id, "
                "assigned_at) "
                f"SELECT ?, m.customer_id, branch_id, tier, stratum, arm, probability, value, value_at_risk, "
                f"category, action, cost, save_rate, gain, w.why, NULL, ? FROM {_T['members']} m "
                f"LEFT JOIN {_T['why']} w ON w.customer_id = m.customer_id",
                [campaign_id, now],
            )
            treated = store.execute(
                f"SELECT customer_id, CAST(? AS VARCHAR) AS kind, gain AS priority, action, gain AS expected_gain, "
                f"branch_id, label_en AS note FROM {_T['members']} WHERE arm = 'treatment' "
                "ORDER BY gain DESC, customer_id",
                [kind],
            ).df()
            opened = open_cases(
                store,
                treated,
                actor=actor,
                campaign_id=campaign_id,
                deadline_days=deadline_days,
                now=now,
                in_transaction=True,
            )
        summary = _summary(store, campaign_id)
    finally:
        _drop(store, *_T.values())
    if opened.skipped:
        notes.append(
            f"{len(opened.skipped)} treated customers already had an active {kind} case: no new case was opened "
            "for them (their campaign_members.case_id is empty)."
        )
    return {
        "campaign_id": campaign_id,
        "name": name.strip(),
        "kind": kind,
        "as_of": as_of,
        "horizon_days": horizon,
        "branch": branch,
        "model_id": model_id,
        "playbook": pb.name,
        **summary,
        "allocation": allocation.to_dict(),
        "cases_opened": len(opened),
        "cases_skipped": len(opened.skipped),
        "notes": notes,
    }


def _dates(
    store: Store, kind: str, as_of: dt.date | None, horizon_days: int | None, notes: list[str]
) -> tuple[dt.date, int, str | None]:
    """The campaign's as-of date, horizon and model id."""
    from churnguard.metrics.activity import data_as_of

    if kind == "winback":
        return as_of or data_as_of(store), horizon_days or DEFAULT_HORIZON_DAYS, None
    latest = store.execute(
        "SELECT max(as_of) FROM scores WHERE CAST(? AS DATE) IS NULL OR as_of <= CAST(? AS DATE)", [as_of, as_of]
    ).fetchone()[0]
    if latest is None:
        when = f" on or before {as_of}" if as_of else ""
        raise ConfigError(
            f"no scores{when}: a retention campaign targets scored customers. "
            "Fix: run `churnguard score` first (or give --as-of a date with scores)."
        )
    use = as_of or latest
    if latest != use:
        notes.append(f"the latest scores on or before {use} are from {latest}.")
    row = store.execute(
        "SELECT horizon_days, model_id, count(*) FROM scores WHERE as_of = ? GROUP BY ALL ORDER BY 3 DESC LIMIT 1",
        [latest],
    ).fetchone()
    horizon = horizon_days or (int(row[0]) if row and row[0] else DEFAULT_HORIZON_DAYS)
    return use, horizon, row[1] if row else None


def _population(
    store: Store,
    kind: str,
    pb: Playbook,
    rules: ActivityRules,
    branch: str | None,
    winback_days: int,
    min_value_at_risk: float,
    notes: list[str],
) -> None:
    """Build the temp table of the population with tier, reason, value, value at risk, debt, flags, abandon rule."""
    as_of = rules.as_of
    spells, sparams = spells_sql(rules)
    if branch is None:
        scope, cparams = "SELECT customer_id FROM customers", {}
    else:
        scope, cparams = customer_scope_sql(branch)
    store.execute(f"CREATE OR REPLACE TEMP TABLE {_T['scope']} AS SELECT customer_id FROM ({scope})", cparams)
    status = f"""
      SELECT s.customer_id, bool_or(s.end_date IS NULL) AS active, max(s.end_date) AS last_end
      FROM ({spells}) s JOIN {_T["scope"]} sc ON sc.customer_id = s.customer_id
      GROUP BY s.customer_id
    """
    latest_score = """
      SELECT * FROM (
        SELECT sc.*, row_number() OVER (PARTITION BY customer_id ORDER BY as_of DESC, scored_at DESC NULLS LAST) AS rn
        FROM scores sc WHERE sc.as_of <= CAST($cmp_as_of AS DATE)
      ) WHERE rn = 1
    """
    if kind == "retain":
        base = f"""
          SELECT st.customer_id, CAST($cmp_as_of AS DATE) AS w_to, sc.probability, sc.top_reason AS reason,
                 sc.reasons, sc.model_id, sc.as_of AS score_as_of,
                 CAST(NULL AS DATE) AS churn_date, CAST(NULL AS VARCHAR) AS churn_reason,
                 CAST(NULL AS VARCHAR) AS destination
          FROM ({status}) st JOIN ({latest_score}) sc ON sc.customer_id = st.customer_id
          WHERE st.active
        """
    else:
        ce = {c for c, _ in store.columns("churn_events")}
        dest = "e.destination" if "destination" in ce else "CAST(NULL AS VARCHAR)"
        base = f"""
          SELECT st.customer_id, st.last_end AS w_to, CAST(NULL AS DOUBLE) AS probability,
                 coalesce(e.reason_code, sc.top_reason) AS reason, sc.reasons, sc.model_id,
                 sc.as_of AS score_as_of, st.last_end AS churn_date, e.reason_code AS churn_reason,
                 {dest} AS destination
          FROM ({status}) st
          LEFT JOIN ({latest_score}) sc ON sc.customer_id = st.customer_id
          LEFT JOIN (
            SELECT * FROM (
              SELECT e.*, row_number() OVER (PARTITION BY customer_id ORDER BY churn_date DESC) AS rn
              FROM churn_events e WHERE e.churn_date <= CAST($cmp_as_of AS DATE)
            ) WHERE rn = 1
          ) e ON e.customer_id = st.customer_id
          WHERE NOT st.active AND st.last_end > CAST($cmp_as_of AS DATE) - CAST($cmp_winback AS INTEGER)
        """
    store.execute(
        f"CREATE OR REPLACE TEMP TABLE {_T['base']} AS {base}",
        {**sparams, "cmp_as_of": as_of, **({"cmp_winback": int(winback_days)} if kind == "winback" else {})},
    )
    # debt and flags
    rules_on = pb.abandon
    debt = "CAST(NULL AS DOUBLE)"
    debt_join = ""
    if rules_on.arrears:
        if debt_available(store):
            store.execute(
                f"CREATE OR REPLACE TEMP TABLE {_T['debt']} AS SELECT customer_id, CAST($a AS DATE) AS w_to "
                f"FROM {_T['base']}",
                {"a": as_of},
            )
            debt = "d.debt"
            debt_join = f"LEFT JOIN ({debt_sql(store, _T['debt'])}) d ON d.customer_id = p.customer_id"
        else:
            notes.append(
                "abandon rule `arrears` skipped: transactions has no kind and paid_at columns to find unpaid bills."
            )
    cust_cols = {c for c, _ in store.columns("customers")}
    abusive = "FALSE"
    if rules_on.abusive:
        col = rules_on.abusive_column
        if col in cust_cols:
            abusive = f"coalesce(lower(trim(CAST(c.\"{col}\" AS VARCHAR))) IN ('true', 't', 'yes', 'y', '1'), FALSE)"
        else:
            notes.append(f"abandon rule `abusive` skipped: customers has no column `{col}`.")
    override = "c.tier_override" if "tier_override" in cust_cols else "CAST(NULL AS VARCHAR)"
    cv_tier = (
        "(SELECT max(v.tier) FROM customer_value v WHERE v.customer_id = p.customer_id)"
        if store.has_table("customer_value")
        else "CAST(NULL AS VARCHAR)"
    )
    tiers = list(pb.tiers)
    reason_map = " ".join(f"WHEN '{r}' THEN '{d}'" for r, d in REASON_TO_DRIVER.items())
    drivers = ", ".join(f"'{d}'" for d in sorted(DRIVER_CODES))
    ab = pb.abandon
    store.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {_T["pop"]} AS
        WITH v AS ({customer_value_sql(store, _T["base"])}),
        t AS (
          SELECT p.*, c.branch_id, coalesce({override}, {cv_tier}) AS tier,
                 CASE WHEN {override} IS NOT NULL THEN 'override'
                      WHEN {cv_tier} IS NOT NULL THEN 'computed' ELSE 'unranked' END AS tier_source,
                 {abusive} AS abusive, {debt} AS debt,
                 v.clv, v.margin_12m, v.value, v.value_basis
          FROM {_T["base"]} p JOIN customers c ON c.customer_id = p.customer_id
          LEFT JOIN v ON v.customer_id = p.customer_id
          {debt_join}
        )
        SELECT t.*,
               CASE WHEN tier IN (SELECT unnest(CAST($tiers AS VARCHAR[]))) THEN tier ELSE $unranked END AS pb_tier,
               CASE WHEN reason IN ({drivers}) THEN reason
                    WHEN $kind = 'winback' THEN coalesce(CASE reason {reason_map} END, 'other')
                    ELSE 'other' END AS category,
               CASE WHEN $kind = 'retain' THEN probability * value ELSE value END AS value_at_risk,
               coalesce(tier, 'unranked') || '|' || branch_id AS stratum
        FROM t
        """,
        {"tiers": tiers, "unranked": pb.unranked_tier, "kind": kind},
    )
    _drop(store, _T["debt"], _T["base"])
    dropped = store.execute(
        f"SELECT count(*) FROM {_T['pop']} WHERE value_at_risk < ?", [float(min_value_at_risk)]
    ).fetchone()[0]
    if min_value_at_risk and dropped:
        store.execute(f"DELETE FROM {_T['pop']} WHERE value_at_risk < ?", [float(min_value_at_risk)])
        notes.append(f"{dropped} customers with value at risk below {min_value_at_risk:g} were left out.")
    store.execute(
        f"""
        ALTER TABLE {_T["pop"]} ADD COLUMN abandon VARCHAR;
        UPDATE {_T["pop"]} SET abandon = CASE
          WHEN abusive THEN 'abusive'
          WHEN $arrears AND debt > $threshold THEN 'arrears'
          WHEN value_at_risk IS NULL THEN 'no_value'
        END
        """,
        {"arrears": ab.arrears, "threshold": ab.arrears_threshold},
    )


def _candidates(store: Store, pb: Playbook, kind: str) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """The population frame and its candidates' gains / costs / ranks as ``(n, m)`` arrays (NaN: none)."""
    import pandas as pd

    cells = pd.DataFrame(pb.cells(kind))
    actions = pd.DataFrame([a.to_dict() for a in pb.actions.values()])
    store.raw.register(_T["cells"], cells)
    store.raw.register(_T["actions"], actions)
    try:
        store.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {_T["cand"]} AS
            SELECT p.customer_id, k.rank, k.action, a.cost, a.save_rate,
                   p.value_at_risk * a.save_rate - a.cost AS gain
            FROM {_T["pop"]} p
            JOIN {_T["cells"]} k ON k.tier = p.pb_tier AND k.category = p.category
            JOIN {_T["actions"]} a ON a.code = k.action
            """
        )
    finally:
        store.raw.unregister(_T["cells"])
        store.raw.unregister(_T["actions"])
    frame = store.execute(f"SELECT customer_id, branch_id, stratum, abandon FROM {_T['pop']} ORDER BY customer_id").df()
    cand = store.execute(
        f"SELECT c.customer_id, c.rank, c.cost, c.gain FROM {_T['cand']} c ORDER BY c.customer_id, c.rank"
    ).df()
    n = len(frame)
    m = int(cand["rank"].max()) + 1 if len(cand) else 1
    pos = pd.Index(frame["customer_id"]).get_indexer(cand["customer_id"])
    gains = np.full((n, m), np.nan)
    costs = np.full((n, m), np.nan)
    ranks = np.tile(np.arange(m), (n, 1))
    r = cand["rank"].to_numpy(dtype=np.int64)
    gains[pos, r] = cand["gain"].to_numpy(dtype=float)  # NaN where the value at risk is unknown
    costs[pos, r] = cand["cost"].to_numpy(dtype=float)
    return frame, gains, costs, ranks


def _choose(
    frame: Any,
    gains: np.ndarray,
    costs: np.ndarray,
    pb: Playbook,
    budget: float | None,
    capacity: int | Mapping[str, int] | None,
    method: str,
) -> tuple[np.ndarray, Any, np.ndarray]:
    """Apply ``no_gain`` and the budget; return each customer's chosen column (-1: none) and exclusion."""
    abandon = frame["abandon"].to_numpy(dtype=object)
    floor = pb.abandon.min_expected_gain if pb.abandon.no_gain else -math.inf
    usable = np.isfinite(gains) & (gains > floor + 1e-9)  # 300 · 0.2 − 60 is 1e-14, not a gain
    no_gain = _isna(abandon) & ~usable.any(axis=1)
    abandon = np.where(no_gain, "no_gain", abandon)
    eligible = _isna(abandon)
    g = np.where(usable & eligible[:, None], gains, np.nan)
    allocation = allocate(
        g,
        costs,
        budget=budget,
        capacity=capacity,
        groups=frame["branch_id"].to_numpy() if isinstance(capacity, Mapping) else None,
        method=method,
        min_gain=floor,
    )
    chosen = allocation.choice
    exclusion = np.where(eligible & (chosen < 0), "not_selected", abandon)
    exclusion = np.where(chosen >= 0, None, exclusion)
    return chosen, allocation, exclusion


def _isna(values: np.ndarray) -> np.ndarray:
    """Element-wise "is missing" for an object array (None or NaN)."""
    import pandas as pd

    return pd.isna(values).astype(bool) if len(values) else np.zeros(0, dtype=bool)


def _members(store: Store, kind: str, pb: Playbook) -> None:
    """The campaign_members rows (without campaign id and timestamps), with ``why`` (:func:`_why_json`)."""
    import pandas as pd

    actions = pd.DataFrame([a.to_dict() for a in pb.actions.values()])
    store.raw.register(_T["actions"], actions)
    try:
        store.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {_T["members"]} AS
            WITH best AS (
              SELECT customer_id, max(gain) AS best_gain FROM {_T["cand"]} GROUP BY customer_id
            ), pick AS (
              SELECT al.customer_id, al.arm, al.exclusion, c.action, c.cost, c.save_rate, c.gain
              FROM {_T["alloc"]} al
              LEFT JOIN {_T["cand"]} c ON c.customer_id = al.customer_id AND c.rank = al.chosen_rank
            )
            SELECT p.customer_id, p.branch_id, p.tier, p.stratum, k.arm, p.probability, p.value, p.value_at_risk,
                   p.category, k.action, k.cost, k.save_rate, coalesce(k.gain, cs.best_gain) AS gain,
                   a.label_en, a.label_zh, a.channel,
                   CASE k.arm WHEN 'treatment' THEN 'treat' WHEN 'control' THEN 'hold out (control)'
                        ELSE coalesce(k.exclusion, 'not_selected') END AS decision,
                   CASE WHEN k.exclusion IN ('abusive', 'arrears', 'no_value', 'no_gain')
                        THEN k.exclusion END AS abandon_rule,
                   k.exclusion, k.gain AS chosen_gain,
                   p.tier_source, p.pb_tier, p.reasons, p.clv, p.margin_12m, p.value_basis, p.debt,
                   p.score_as_of, p.model_id, p.churn_date, p.churn_reason, p.destination
            FROM {_T["pop"]} p
            JOIN pick k ON k.customer_id = p.customer_id
            LEFT JOIN best cs ON cs.customer_id = p.customer_id
            LEFT JOIN {_T["actions"]} a ON a.code = k.action
            """
        )
    finally:
        store.raw.unregister(_T["actions"])
    members = store.execute(f"SELECT * FROM {_T['members']} ORDER BY customer_id").df()
    cands = store.execute(
        f"SELECT customer_id, action, cost, save_rate, round(gain, 2) AS expected_gain FROM {_T['cand']} "
        "ORDER BY customer_id, rank"
    ).df()
    why = pd.DataFrame({"customer_id": members["customer_id"], "why": _why_json(members, cands, kind, pb)})
    store.raw.register("_cg_cmp_why_df", why)
    store.execute(f"CREATE OR REPLACE TEMP TABLE {_T['why']} AS SELECT * FROM _cg_cmp_why_df")
    store.raw.unregister("_cg_cmp_why_df")


# -- the why JSON, built column-wise ----------------------------------------------------------------


def _why_json(members: Any, cands: Any, kind: str, pb: Playbook) -> list[str]:
    """``campaign_members.why`` of each row of ``members``: one JSON object of every input and decision.

    Built column by column (Arrow string kernels), so every engine writes the same content: numbers
    in their shortest exact form, strings escaped, dates as ``YYYY-MM-DD``, ``candidates`` the
    customer's playbook candidates in rank order, ``reasons`` the first three recorded reasons.
    """
    import pandas as pd

    n = len(members)
    if n == 0:
        return []
    ab = pb.abandon
    exclusion = members["exclusion"]
    detail = pd.Series([None] * n, dtype=object)
    detail[exclusion == "abusive"] = f"flagged abusive in customers.{ab.abusive_column}"
    arrears = (exclusion == "arrears").to_numpy() & members["debt"].notna().to_numpy()
    if arrears.any():
        debt = np.char.mod("%.2f", members["debt"].to_numpy(dtype=float)[arrears])
        detail[arrears] = np.char.add(np.char.add("unpaid bills ", debt), f" > {ab.arrears_threshold:.2f}")
    detail[exclusion == "no_value"] = "no CLV and no margin in the last 12 months"
    detail[exclusion == "no_gain"] = f"no action gains more than {ab.min_expected_gain:.2f}"
    detail[exclusion == "not_selected"] = "budget or capacity used by customers with more expected gain"

    text, num, raw = _json_str, _json_num, _json_raw
    fields: list[tuple[str, Any]] = [
        ("kind", text(pd.Series([kind] * n, dtype=object))),
        ("decision", text(members["decision"])),
        ("arm", text(members["arm"])),
        ("abandon_rule", text(members["abandon_rule"])),
        ("abandon_detail", text(detail)),
        ("tier", text(members["tier"])),
        ("tier_source", text(members["tier_source"])),
        ("playbook_tier", text(members["pb_tier"])),
        ("top_reason", text(members["category"])),
        ("reasons", raw(_first_reasons(members["reasons"]))),
        ("probability", num(members["probability"])),
        ("clv", num(members["clv"])),
        ("margin_12m", num(members["margin_12m"])),
        ("value", num(members["value"])),
        ("value_basis", text(members["value_basis"])),
        ("value_at_risk", num(members["value_at_risk"])),
        ("debt", num(members["debt"])),
        ("action", text(members["action"])),
        ("action_label_en", text(members["label_en"])),
        ("action_label_zh", text(members["label_zh"])),
        ("channel", text(members["channel"])),
        ("cost", num(members["cost"])),
        ("save_rate", num(members["save_rate"])),
        ("expected_gain", num(members["chosen_gain"])),
        ("candidates", raw(_candidate_lists(members["customer_id"], cands))),
        ("score_as_of", text(_iso_dates(members["score_as_of"]))),
        ("model_id", text(members["model_id"])),
        ("churn_date", text(_iso_dates(members["churn_date"]))),
        ("churn_reason", text(members["churn_reason"])),
        ("destination", text(members["destination"])),
    ]
    return _json_objects(fields).to_pylist()


def _json_objects(fields: Sequence[tuple[str, Any]]) -> Any:
    """Concatenate ``(key, JSON fragment array)`` pairs into one JSON object per row (an Arrow array)."""
    import pyarrow.compute as pc

    parts: list[Any] = []
    for i, (key, values) in enumerate(fields):
        parts += [("{" if i == 0 else ",") + json.dumps(key) + ":", values]
    parts.append("}")
    return pc.binary_join_element_wise(*parts, "")


def _json_str(values: Any) -> Any:
    """JSON string literals of a text column (``null`` where missing), as an Arrow string array."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(values.astype(object).where(values.notna(), None), type=pa.string())
    arr = pc.replace_substring(arr, "\\", "\\\\")
    arr = pc.replace_substring(arr, '"', '\\"')
    if pc.any(pc.match_substring_regex(arr, "[\\x00-\\x1f]")).as_py():
        for code in range(32):
            arr = pc.replace_substring(arr, chr(code), _CONTROL_ESCAPES.get(code, f"\\u{code:04x}"))
    return pc.binary_join_element_wise('"', arr, '"', "").fill_null("null")


_CONTROL_ESCAPES = {8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}


def _json_num(values: Any) -> Any:
    """JSON numbers of a numeric column in their shortest exact form (``null`` where missing or not finite)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    x = values.to_numpy(dtype=float, na_value=np.nan)
    x = np.where(np.isfinite(x), x, np.nan)
    text = pc.cast(pa.array(x, from_pandas=True), pa.string())
    whole = pc.match_substring_regex(text, "^-?[0-9]+$")  # 199 → 199.0: a double stays a double
    return pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text).fill_null("null")


def _json_raw(values: Any) -> Any:
    """JSON text fragments as they are (``null`` where missing)."""
    import pyarrow as pa

    return pa.array(values, type=pa.string(), from_pandas=True).fill_null("null")


def _iso_dates(values: Any) -> Any:
    """``YYYY-MM-DD`` of a date column (None where missing)."""
    import pandas as pd

    d = pd.to_datetime(values)
    return d.dt.strftime("%Y-%m-%d").where(d.notna(), None)


def _candidate_lists(customer_ids: Any, cands: Any) -> Any:
    """Per customer of ``customer_ids``: the JSON array of its candidates (rows of ``cands`` sorted by
    customer and rank), or None.

    Each candidate becomes an object; the objects of one customer are joined by running through
    the sorted rows once: ``[`` opens at a customer's first row, ``]`` and a newline close at its last.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(cands):
        return pd.Series([None] * len(customer_ids), dtype=object)

    objects = _json_objects(
        [
            ("action", _json_str(cands["action"])),
            ("cost", _json_num(cands["cost"])),
            ("save_rate", _json_num(cands["save_rate"])),
            ("expected_gain", _json_num(cands["expected_gain"])),
        ]
    )
    ids = cands["customer_id"].to_numpy(dtype=object)
    first = np.r_[True, ids[1:] != ids[:-1]]
    last = np.r_[ids[1:] != ids[:-1], True]
    opening = pa.array(np.where(first, "[", ""), type=pa.string())
    closing = pa.array(np.where(last, "]\n", ","), type=pa.string())
    pieces = pc.binary_join_element_wise(opening, objects, closing, "")
    lists = "".join(pieces.to_pylist()).split("\n")[:-1]
    pos = pd.Index(ids[last]).get_indexer(customer_ids)
    out = np.asarray([*lists, None], dtype=object)
    return pd.Series(out[pos], dtype=object)  # -1 (no candidates) picks the trailing None


def _first_reasons(values: Any) -> Any:
    """The first three elements of each recorded ``reasons`` JSON array (None where missing or not valid JSON).

    The texts are validated in one pass by Arrow's JSON reader; only when it refuses (a text that is
    not valid JSON, or reasons of differing shapes) or a list is longer than three are those rows
    read one by one.
    """
    import io

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pajson

    s = values.astype(object).where(values.notna(), None)
    out = s.copy()
    present = s.notna().to_numpy()
    if not present.any():
        return out
    texts = s[present].astype(str).str.replace("\r", " ").str.replace("\n", " ")
    lines = ('{"r":' + texts + "}\n").str.cat()
    try:
        table = pajson.read_json(
            io.BytesIO(lines.encode("utf-8")),
            read_options=pajson.ReadOptions(block_size=max(1 << 20, 2 * len(lines.encode("utf-8")))),
        )
        col = table.column("r")
        if not pa.types.is_list(col.type) or table.num_rows != int(present.sum()):
            raise ValueError("not lists")
        long = np.asarray(pc.fill_null(pc.greater(pc.list_value_length(col), 3), False))
    except (pa.ArrowInvalid, ValueError):
        long = np.ones(int(present.sum()), dtype=bool)
    idx = np.flatnonzero(present)[long]
    for i in idx:  # the exceptional rows only: not valid JSON, mixed shapes, or more than three reasons
        out.iloc[i] = _slice_reasons(s.iloc[i])
    return out


def _slice_reasons(text: str) -> str | None:
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    if isinstance(parsed, list):
        return json.dumps(parsed[:3], ensure_ascii=False)
    return json.dumps(parsed, ensure_ascii=False)


def _new_campaign_id(store: Store, now: dt.datetime) -> str:
    """A readable id ``CMP-<yyyymmdd>-<4 hex digits>``, not used before."""
    for _ in range(50):
        cid = f"CMP-{now:%Y%m%d}-{os.urandom(2).hex().upper()}"
        if not store.execute("SELECT count(*) FROM campaigns WHERE campaign_id = ?", [cid]).fetchone()[0]:
            return cid
    raise ConfigError(f"could not draw a free campaign id for {now:%Y-%m-%d}; try again.")  # pragma: no cover


def _summary(store: Store, campaign_id: str) -> dict[str, Any]:
    rows = store.execute(
        """
        SELECT arm, count(*) AS customers, sum(action_cost) AS cost, sum(expected_gain) AS expected_gain,
               sum(value_at_risk) AS value_at_risk, count(case_id) AS cases
        FROM campaign_members WHERE campaign_id = ? GROUP BY arm
        """,
        [campaign_id],
    ).fetchall()
    arms = {
        r[0]: {"customers": r[1], "cost": r[2], "expected_gain": r[3], "value_at_risk": r[4], "cases": r[5]}
        for r in rows
    }
    excl = store.execute(
        "SELECT coalesce(json_extract_string(CAST(why AS JSON), '$.decision'), 'unknown'), count(*) "
        "FROM campaign_members "
        "WHERE campaign_id = ? AND arm = 'excluded' GROUP BY 1 ORDER BY 2 DESC",
        [campaign_id],
    ).fetchall()
    by_tier = store.execute(
        """
        SELECT coalesce(tier, 'unranked') AS tier,
               count(*) FILTER (WHERE arm = 'treatment') AS treatment,
               count(*) FILTER (WHERE arm = 'control') AS control,
               count(*) FILTER (WHERE arm = 'excluded') AS excluded,
               sum(action_cost) FILTER (WHERE arm = 'treatment') AS cost,
               sum(expected_gain) FILTER (WHERE arm = 'treatment') AS expected_gain
        FROM campaign_members WHERE campaign_id = ? GROUP BY 1 ORDER BY 1
        """,
        [campaign_id],
    ).df()
    by_action = store.execute(
        """
        SELECT action, max(json_extract_string(CAST(why AS JSON), '$.action_label_en')) AS label_en,
               max(json_extract_string(CAST(why AS JSON), '$.action_label_zh')) AS label_zh,
               count(*) AS treatment, sum(action_cost) AS cost, sum(expected_gain) AS expected_gain
        FROM campaign_members WHERE campaign_id = ? AND arm = 'treatment' GROUP BY 1 ORDER BY 4 DESC, 1
        """,
        [campaign_id],
    ).df()
    t = arms.get(TREATMENT, {})
    return {
        "population": sum(a["customers"] for a in arms.values()),
        "treatment": t.get("customers", 0),
        "control": arms.get(CONTROL, {}).get("customers", 0),
        "excluded": arms.get(EXCLUDED, {}).get("customers", 0),
        "exclusions": {k: v for k, v in excl},
        "cost": float(t.get("cost") or 0.0),
        "expected_gain": float(t.get("expected_gain") or 0.0),
        "by_tier": _records(by_tier),
        "by_action": _records(by_action),
    }


def _records(df: Any) -> list[dict[str, Any]]:
    out = []
    for rec in df.to_dict(orient="records"):
        out.append({k: _plain(v) for k, v in rec.items()})
    return out


def _plain(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float | np.floating):
        return None if math.isnan(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    try:
        import pandas as pd

        if v is pd.NA or v is pd.NaT:
            return None
    except ImportError:  # pragma: no cover
        pass
    return v


# -- reading campaigns ----------------------------------------------------------------------------


def get_campaign(store: Store, campaign_id: str) -> dict[str, Any]:
    """The ``campaigns`` row of ``campaign_id`` as a dict (``parameters`` decoded)."""
    cur = store.execute("SELECT * FROM campaigns WHERE campaign_id = ?", [campaign_id])
    row = cur.fetchone()
    if row is None:
        known = [
            r[0] for r in store.execute("SELECT campaign_id FROM campaigns ORDER BY created_at DESC LIMIT 5").fetchall()
        ]
        hint = f" Known: {', '.join(known)}." if known else " There are no campaigns yet."
        raise CampaignNotFoundError(f'campaign "{campaign_id}" does not exist.{hint}')
    d = dict(zip([c[0] for c in cur.description], row, strict=True))
    try:
        d["parameters"] = json.loads(d["parameters"]) if d.get("parameters") else {}
    except ValueError:
        d["parameters"] = {}
    return d


class CampaignNotFoundError(ConfigError, LookupError):
    """An unknown campaign id."""

    http_status = 404
    exit_code = 6


def list_campaigns(store: Store, branch_ids: Sequence[str] | None = None) -> Any:
    """Campaigns, newest first, with their member counts, cost and expected gain (a DataFrame).

    ``branch_ids`` keeps the campaigns created for one of these branches (a user's branch subtree).
    """
    where, params = "", []
    if branch_ids is not None:
        if not branch_ids:
            where = "WHERE FALSE"
        else:
            where = f"WHERE c.branch_id IN ({', '.join('?' for _ in branch_ids)})"
            params = list(branch_ids)
    frame = store.execute(
        f"""
        SELECT c.campaign_id, c.name, c.kind, c.status, c.branch_id, c.as_of, c.horizon_days,
               c.as_of + CAST(c.horizon_days AS INTEGER) AS ready_on,
               c.budget, c.control_share, c.created_by, c.created_at,
               count(*) FILTER (WHERE m.arm = 'treatment') AS treatment,
               count(*) FILTER (WHERE m.arm = 'control') AS control,
               count(*) FILTER (WHERE m.arm = 'excluded') AS excluded,
               count(m.case_id) AS cases,
               coalesce(sum(m.action_cost) FILTER (WHERE m.arm = 'treatment'), 0) AS cost,
               coalesce(sum(m.expected_gain) FILTER (WHERE m.arm = 'treatment'), 0) AS expected_gain
        FROM campaigns c LEFT JOIN campaign_members m ON m.campaign_id = c.campaign_id
        {where}
        GROUP BY ALL
        ORDER BY c.created_at DESC, c.campaign_id
        """,
        params,
    ).df()
    for col in ("as_of", "ready_on"):  # plain dates, not midnight timestamps
        frame[col] = [None if v is None or v != v else v.date() for v in frame[col].astype(object)]
    return frame


def campaign_members(
    store: Store, campaign_id: str, *, arm: str | None = None, limit: int | None = 100, offset: int = 0
) -> Any:
    """The members of a campaign (a DataFrame), largest expected gain first; ``why`` is the JSON text."""
    get_campaign(store, campaign_id)
    if arm is not None and arm not in (TREATMENT, CONTROL, EXCLUDED):
        raise ConfigError(f'arm: expected one of treatment, control, excluded, got "{arm}".')
    lim = "" if limit is None else f"LIMIT {int(limit)} OFFSET {int(offset)}"
    return store.execute(
        f"""
        SELECT customer_id, branch_id, tier, stratum, arm, probability, clv AS value, value_at_risk, top_reason,
               action, action_cost, save_rate, expected_gain, case_id, assigned_at, why
        FROM campaign_members
        WHERE campaign_id = ? AND (CAST(? AS VARCHAR) IS NULL OR arm = ?)
        ORDER BY expected_gain DESC NULLS LAST, customer_id
        {lim}
        """,
        [campaign_id, arm, arm],
    ).df()


# -- measuring a campaign -------------------------------------------------------------------------


def campaign_report(store: Store, campaign_id: str, *, as_of: dt.date | None = None, level: float = 0.95) -> dict:
    """The measured effect of a campaign once its horizon has passed (docs/retention.md, "Measured effect").

    Outcome per member (treatment and control arms), from the activity spells as of ``as_of``
    (default: the data's as-of date):

    - ``retain``: churned = a spell of the customer ends in ``(campaign as_of, campaign as_of + horizon]``;
      success = not churned.
    - ``winback``: won back = a spell starts in ``(campaign as_of, campaign as_of + horizon]`` (挽回成功率).

    ::

        effect        = Σ_s w_s (p_ts − p_cs),  w_s = n_ts / Σ n_ts   (success rates; stratified, Wald CI)
        saved         = effect × n_treated                             (customers kept / won back)
        saved value   = Σ_s (p_ts − p_cs) · V_ts  +  effect · V_unmeasured
                        (V_ts: Σ value of the treated in stratum s; strata without a control use the overall effect)
        cost          = Σ action cost of the treated
        ROI           = (saved value − cost) / cost

    Before ``campaign as_of + horizon`` the report says ``too_early`` with the days left.
    """
    c = get_campaign(store, campaign_id)
    rules = rules_for(store, as_of=as_of)
    measured_at = rules.as_of
    assert measured_at is not None
    horizon = int(c["horizon_days"] or DEFAULT_HORIZON_DAYS)
    start = c["as_of"]
    end = start + dt.timedelta(days=horizon)
    head = {
        "campaign_id": campaign_id,
        "name": c["name"],
        "kind": c["kind"],
        "branch_id": c["branch_id"],
        "as_of": start,
        "horizon_days": horizon,
        "ready_on": end,
        "measured_at": measured_at,
        "control_share": c["control_share"],
    }
    counts = dict(
        store.execute(
            "SELECT arm, count(*) FROM campaign_members WHERE campaign_id = ? GROUP BY arm", [campaign_id]
        ).fetchall()
    )
    head["members"] = {k: int(counts.get(k, 0)) for k in (TREATMENT, CONTROL, EXCLUDED)}
    head["cases"] = _case_statuses(store, campaign_id)
    if measured_at < end:
        return {
            **head,
            "status": "too_early",
            "days_left": (end - measured_at).days,
            "notes": [f"the horizon ends on {end}; the data reach {measured_at}."],
        }

    frame = _outcomes(store, c, rules)
    notes: list[str] = []
    confirmed = end + dt.timedelta(days=rules.grace_days)
    if c["kind"] == "retain" and rules.definition == "contractual" and measured_at < confirmed:
        notes.append(
            f"contractual churn is confirmed {rules.grace_days} days after a subscription ends (or by a churn "
            f"event): churns in the last days of the horizon may not be known until {confirmed}."
        )
    result = _measure(frame, c["kind"], level)
    if head["members"][CONTROL] == 0:
        notes.append("the campaign has no control group: its effect cannot be measured.")
    return {**head, "status": "measured", **result, "notes": notes}


def member_outcomes(store: Store, campaign_id: str, *, as_of: dt.date | None = None) -> Any:
    """Treatment and control members with their recorded inputs and outcome (a DataFrame).

    Columns: ``customer_id, arm, stratum, tier, branch_id, probability, value, value_at_risk,
    top_reason, action, cost, success`` — ``success`` as in :func:`campaign_report` (retain: not
    churned within the horizon; win-back: won back within it), from the data up to ``as_of``.
    Raises :class:`ConfigError` while the horizon has not passed.
    """
    c = get_campaign(store, campaign_id)
    rules = rules_for(store, as_of=as_of)
    end = c["as_of"] + dt.timedelta(days=int(c["horizon_days"] or DEFAULT_HORIZON_DAYS))
    assert rules.as_of is not None
    if rules.as_of < end:
        raise ConfigError(
            f"campaign {campaign_id}: its horizon ends on {end}, the data reach {rules.as_of}; "
            "outcomes are not known yet."
        )
    return _outcomes(store, c, rules)


def _outcomes(store: Store, c: dict[str, Any], rules: ActivityRules) -> Any:
    start = c["as_of"]
    end = start + dt.timedelta(days=int(c["horizon_days"] or DEFAULT_HORIZON_DAYS))
    spells, sparams = spells_sql(rules)
    if c["kind"] == "winback":
        flag, missing = "bool_or(s.start_date > $start AND s.start_date <= $end)", "FALSE"
    else:
        flag, missing = "NOT coalesce(bool_or(s.end_date > $start AND s.end_date <= $end), FALSE)", "TRUE"
    return store.execute(
        f"""
        SELECT m.customer_id, m.arm, m.stratum, coalesce(m.tier, 'unranked') AS tier, m.branch_id,
               m.probability, coalesce(m.clv, 0) AS value, m.value_at_risk, m.top_reason, m.action,
               coalesce(m.action_cost, 0) AS cost,
               coalesce(o.success, {missing}) AS success
        FROM campaign_members m
        LEFT JOIN (
          SELECT s.customer_id, {flag} AS success FROM ({spells}) s
          WHERE s.customer_id IN (SELECT customer_id FROM campaign_members WHERE campaign_id = $cid)
          GROUP BY s.customer_id
        ) o ON o.customer_id = m.customer_id
        WHERE m.campaign_id = $cid AND m.arm IN ('treatment', 'control')
        ORDER BY m.customer_id
        """,
        {**sparams, "cid": c["campaign_id"], "start": start, "end": end},
    ).df()


def _case_statuses(store: Store, campaign_id: str) -> dict[str, int]:
    return {
        r[0]: int(r[1])
        for r in store.execute(
            "SELECT status, count(*) FROM cases WHERE campaign_id = ? GROUP BY 1 ORDER BY 1", [campaign_id]
        ).fetchall()
    }


def _measure(frame: Any, kind: str, level: float) -> dict[str, Any]:
    """Arms, effect (stratified and pooled), saved customers and value, cost, ROI; by stratum and by tier."""
    f = frame.copy()
    f["t"] = (f["arm"] == TREATMENT).astype(int)
    f["c"] = (f["arm"] == CONTROL).astype(int)
    f["y"] = f["success"].astype(int)
    f["yt"], f["yc"] = f["y"] * f["t"], f["y"] * f["c"]
    f["vt"] = f["value"] * f["t"]
    f["cost_t"] = f["cost"] * f["t"]
    outcome = "won_back" if kind == "winback" else "churned"

    def rate(x: float, n: float) -> float | None:
        return float(x / n) if n else None

    arms = {}
    for arm, col in ((TREATMENT, "t"), (CONTROL, "c")):
        sub = f[f[col] == 1]
        n = len(sub)
        events = int(sub["y"].sum()) if kind == "winback" else int(n - sub["y"].sum())
        arms[arm] = {
            "customers": n,
            outcome: events,
            f"{outcome}_rate": rate(events, n),
            "value": float(sub["value"].sum()),
            "cost": float(sub["cost"].sum()) if arm == TREATMENT else 0.0,
        }
    pooled = difference_ci(f["yt"].sum(), f["t"].sum(), f["yc"].sum(), f["c"].sum(), level=level)
    g = f.groupby("stratum", sort=True).agg(
        tier=("tier", "first"),
        branch_id=("branch_id", "first"),
        n_t=("t", "sum"),
        n_c=("c", "sum"),
        x_t=("yt", "sum"),
        x_c=("yc", "sum"),
        v_t=("vt", "sum"),
    )
    strat = stratified_difference(g["x_t"], g["n_t"], g["x_c"], g["n_c"], level=level)
    measured = (g["n_t"] > 0) & (g["n_c"] > 0)
    d_s = np.where(measured, g["x_t"] / g["n_t"].where(g["n_t"] > 0, 1) - g["x_c"] / g["n_c"].where(g["n_c"] > 0, 1), 0)
    effect = strat.difference
    n_treated = int(f["t"].sum())
    cost = float(f["cost_t"].sum())
    if math.isnan(effect):
        saved = saved_value = roi = None
    else:
        saved = effect * n_treated
        saved_value = float(np.sum(d_s * g["v_t"].where(measured, 0)) + effect * g["v_t"].where(~measured, 0).sum())
        roi = (saved_value - cost) / cost if cost > 0 else None
    by_stratum = []
    for (s, r), d, ok in zip(g.iterrows(), d_s, measured, strict=True):
        by_stratum.append(
            {
                "stratum": s,
                "tier": r["tier"],
                "branch_id": r["branch_id"],
                "treatment": int(r["n_t"]),
                "control": int(r["n_c"]),
                "success_treated": rate(r["x_t"], r["n_t"]),
                "success_control": rate(r["x_c"], r["n_c"]),
                "effect": float(d) if ok else None,
            }
        )
    by_tier = []
    for tier, gt in g.groupby("tier", sort=True):
        st = stratified_difference(gt["x_t"], gt["n_t"], gt["x_c"], gt["n_c"], level=level)
        by_tier.append(
            {
                "tier": tier,
                "treatment": int(gt["n_t"].sum()),
                "control": int(gt["n_c"].sum()),
                "success_treated": rate(gt["x_t"].sum(), gt["n_t"].sum()),
                "success_control": rate(gt["x_c"].sum(), gt["n_c"].sum()),
                "effect": None if math.isnan(st.difference) else st.difference,
                "low": None if math.isnan(st.low) else st.low,
                "high": None if math.isnan(st.high) else st.high,
            }
        )
    success = "won back" if kind == "winback" else "retained (not churned)"
    out: dict[str, Any] = {
        "outcome": outcome,
        "success": success,
        "arms": arms,
        "effect": {
            "estimate": None if math.isnan(effect) else effect,
            "low": None if math.isnan(strat.low) else strat.low,
            "high": None if math.isnan(strat.high) else strat.high,
            "level": level,
            "se": None if math.isnan(strat.se) else strat.se,
            "method": strat.method,
            "meaning": f"share {success}: treated − control",
            "strata_measured": strat.strata_measured,
            "strata": strat.strata,
            "unmeasured_treated": strat.unmeasured_treated,
        },
        "pooled": {
            "estimate": _nan_none(pooled.difference),
            "low": _nan_none(pooled.low),
            "high": _nan_none(pooled.high),
            "level": level,
            "method": "Newcombe hybrid score interval (Wilson), treated − control, strata ignored",
        },
        "saved_customers": saved,
        "saved_value": saved_value,
        "cost": cost,
        "roi": roi,
        "by_stratum": by_stratum,
        "by_tier": by_tier,
    }
    if kind == "winback":
        out["winback_rate_treated"] = arms[TREATMENT]["won_back_rate"]
        out["winback_rate_control"] = arms[CONTROL]["won_back_rate"]
    else:
        out["churn_rate_treated"] = arms[TREATMENT]["churned_rate"]
        out["churn_rate_control"] = arms[CONTROL]["churned_rate"]
    return out


def _nan_none(v: Any) -> float | None:
    v = float(v)
    return None if math.isnan(v) else v
