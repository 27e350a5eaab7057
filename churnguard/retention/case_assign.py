"""Assignment of pool cases to account managers (客户分配): by branch, round-robin or by load.

Candidates for a case are the active account managers of the case's branch; where that
branch has none, those of the nearest ancestor branch that has some (city → province → head
office).  Cases with no candidate anywhere stay in the pool (``open``).  Nobody is given more
than their claim limit (``users.max_claims``, else the default): held cases (claimed +
contacted, ``users.open_claims``) plus new ones never exceed it.

The plan is one query.  For each candidate branch ("pool branch") the cases are ranked by
priority (highest first, then age), and each manager's free places are listed as slots
``(manager, j)`` for ``j = 0 … free − 1``; case *k* goes to slot *k* in slot order:

- ``round_robin``: slots ordered by ``(j, user_id)`` — one case each in a stable order, again
  and again, skipping whoever is full;
- ``load``: slots ordered by ``(held + j, user_id)`` — each next case goes to the manager who
  would then hold the fewest (fewest open + claimed cases first).

Applying the plan is atomic: every case update is guarded by the case's status and version,
every counter update by the limit; if any guard fails nothing is assigned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from churnguard.errors import CaseConflictError, CaseForbiddenError, ConfigError
from churnguard.retention.case_db import (
    SUBTREE_SQL,
    Conflict,
    atomic,
    drop_temp,
    placeholders,
    query_frame,
    stage_frame,
    utc_now,
)
from churnguard.retention.cases import CLAIM_ROLE, DEFAULT_CLAIM_HOURS, DEFAULT_CLAIM_LIMIT
from churnguard.store.connection import Store

STRATEGIES: tuple[str, ...] = ("round_robin", "load")

NO_MANAGER = "no account manager in the branch or its ancestors"
AT_LIMIT = "every candidate is at their claim limit"

_CLOSURE = """closure(branch_id, ancestor_id, depth) AS (
  SELECT branch_id, branch_id, 0 FROM branches
  UNION ALL
  SELECT c.branch_id, b.parent_id, c.depth + 1
  FROM closure c JOIN branches b ON b.branch_id = c.ancestor_id
  WHERE b.parent_id IS NOT NULL AND c.depth < 64
)"""

_PLAN_SQL = f"""
WITH RECURSIVE
{_CLOSURE},
targets AS (
  SELECT k.case_id, k.branch_id, k.priority, k.created_at, coalesce(k.version, 0) AS version
  FROM cases k WHERE k.status = 'open' AND {{where}}
),
managers AS (
  SELECT user_id, branch_id, coalesce(open_claims, 0) AS held, coalesce(max_claims, ?) AS cap
  FROM users WHERE role = '{CLAIM_ROLE}' AND active AND branch_id IS NOT NULL
),
pick AS (  -- each case branch -> the nearest branch (itself or an ancestor) that has managers
  SELECT cl.branch_id, cl.ancestor_id AS pool_branch,
         row_number() OVER (PARTITION BY cl.branch_id ORDER BY cl.depth) AS rn
  FROM closure cl
  WHERE cl.ancestor_id IN (SELECT branch_id FROM managers)
    AND cl.branch_id IN (SELECT branch_id FROM targets)
),
ranked AS (
  SELECT t.case_id, t.branch_id, t.version, p.pool_branch,
         row_number() OVER (PARTITION BY p.pool_branch
                            ORDER BY t.priority DESC NULLS LAST, t.created_at, t.case_id) - 1 AS k
  FROM targets t LEFT JOIN pick p ON p.branch_id = t.branch_id AND p.rn = 1
),
numbers(j) AS (
  SELECT 0
  UNION ALL
  SELECT j + 1 FROM numbers
  WHERE j + 1 < (SELECT least(coalesce(max(cap - held), 0), (SELECT count(*) FROM targets)) FROM managers)
),
slots AS (
  SELECT m.user_id, m.branch_id AS pool_branch,
         row_number() OVER (PARTITION BY m.branch_id
                            ORDER BY CASE WHEN ? = 'load' THEN m.held + n.j ELSE n.j END, m.user_id) - 1 AS k
  FROM managers m JOIN numbers n ON n.j < m.cap - m.held
)
SELECT r.case_id, r.branch_id, r.version, r.pool_branch, s.user_id AS owner_id,
       CASE WHEN r.pool_branch IS NULL THEN '{NO_MANAGER}'
            WHEN s.user_id IS NULL THEN '{AT_LIMIT}' END AS reason
FROM ranked r LEFT JOIN slots s ON s.pool_branch = r.pool_branch AND s.k = r.k
ORDER BY r.pool_branch NULLS LAST, r.k
"""


class AssignmentResult(dict[str, int]):
    """Cases assigned per owner (``owner_id -> count``), plus what stayed in the pool and why.

    Attributes: ``no_manager`` (case ids with no account manager in their branch or any
    ancestor), ``at_limit`` (case ids whose candidates were all at their claim limit),
    ``skipped`` (case ids asked for that are not open or do not exist), ``strategy``.
    """

    def __init__(
        self,
        counts: dict[str, int] | None = None,
        *,
        no_manager: Sequence[str] = (),
        at_limit: Sequence[str] = (),
        skipped: Sequence[str] = (),
        strategy: str = "round_robin",
    ) -> None:
        super().__init__(counts or {})
        self.no_manager = list(no_manager)
        self.at_limit = list(at_limit)
        self.skipped = list(skipped)
        self.strategy = strategy

    @property
    def assigned(self) -> int:
        return sum(self.values())

    @property
    def unassigned(self) -> int:
        return len(self.no_manager) + len(self.at_limit)

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "assigned": self.assigned,
            "by_owner": dict(self),
            "unassigned": self.unassigned,
            "no_manager": self.no_manager,
            "at_limit": self.at_limit,
            "skipped": self.skipped,
        }


def _targets_where(
    campaign_id: str | None, case_ids: Sequence[str] | None, branch_ids: Sequence[str] | None
) -> tuple[str, list[Any]]:
    where, params = ["1 = 1"], []
    if campaign_id is not None:
        where.append("k.campaign_id = ?")
        params.append(campaign_id)
    if case_ids is not None:
        ids = list(case_ids)
        where.append(f"k.case_id IN ({placeholders(ids)})")
        params.extend(ids)
    if branch_ids is not None:
        roots = list(branch_ids)
        where.append(f"k.branch_id IN ({SUBTREE_SQL.format(roots=placeholders(roots))})")
        params.extend(roots)
    return " AND ".join(where), params


def plan_assignment(
    store: Store,
    *,
    campaign_id: str | None = None,
    case_ids: Sequence[str] | None = None,
    branch_ids: Sequence[str] | None = None,
    strategy: str = "round_robin",
    default_limit: int | None = None,
) -> Any:
    """Who would get which open case: a DataFrame ``case_id, branch_id, version, pool_branch,
    owner_id, reason`` (``owner_id`` empty and ``reason`` set for cases that stay in the pool).

    Targets: the open cases of ``campaign_id``, or ``case_ids``, within the ``branch_ids``
    subtrees — every open case when no filter is given.  Changes nothing.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy: expected one of {', '.join(STRATEGIES)}, got {strategy!r}.")
    limit = DEFAULT_CLAIM_LIMIT if default_limit is None else int(default_limit)
    where, params = _targets_where(campaign_id, case_ids, branch_ids)
    frame = query_frame(store, _PLAN_SQL.format(where=where), [*params, limit, strategy])
    frame["version"] = frame["version"].astype("int64")
    return frame


def apply_assignment(
    store: Store,
    plan: Any,
    *,
    actor: str,
    now: dt.datetime | None = None,
    claim_hours: float | None = None,
    default_limit: int | None = None,
    in_transaction: bool = False,
) -> AssignmentResult:
    """Assign the cases of ``plan`` (rows ``case_id, version, owner_id``; rows without an owner are ignored).

    All or nothing: if any case is no longer open at its planned version, any owner is not an
    active account manager whose branch subtree holds the case, or any owner would pass their
    claim limit, the transaction rolls back and :class:`CaseConflictError` (or
    :class:`CaseForbiddenError`) says which.  Each assigned case becomes ``claimed`` by its
    owner with the follow-up deadline ``now + claim_hours`` and an ``assign`` log row.
    """
    now = utc_now(now)

    def work() -> AssignmentResult:
        try:
            return _apply(store, plan, actor=actor, now=now, claim_hours=claim_hours, default_limit=default_limit)
        except _StalePlan as exc:
            raise CaseConflictError(
                f"{exc}; nothing was assigned. Fix: plan again (churnguard cases assign plans and applies at once)."
            ) from None

    return atomic(store, work, in_transaction=in_transaction, what="assigning cases")


class _StalePlan(Conflict):
    pass


def _apply(
    store: Store,
    plan: Any,
    *,
    actor: str,
    now: dt.datetime,
    claim_hours: float | None,
    default_limit: int | None,
) -> AssignmentResult:
    hours = DEFAULT_CLAIM_HOURS if claim_hours is None else float(claim_hours)
    limit = DEFAULT_CLAIM_LIMIT if default_limit is None else int(default_limit)
    rows = plan.loc[plan["owner_id"].notna(), ["case_id", "version", "owner_id"]]
    if rows["case_id"].duplicated().any():
        raise ConfigError("plan: a case appears more than once; each case has one owner.")
    if rows.empty:
        return AssignmentResult()
    stage_frame(store, "cg_case_plan", rows, (("case_id", "VARCHAR"), ("version", "INTEGER"), ("owner_id", "VARCHAR")))
    try:
        outside = store.execute(
            f"WITH RECURSIVE {_CLOSURE} "
            "SELECT p.case_id, p.owner_id, k.branch_id, u.branch_id FROM cg_case_plan p "
            "JOIN cases k ON k.case_id = p.case_id JOIN users u ON u.user_id = p.owner_id "
            "WHERE NOT EXISTS (SELECT 1 FROM closure cl WHERE cl.branch_id = k.branch_id "
            "AND cl.ancestor_id = u.branch_id) ORDER BY p.case_id LIMIT 5"
        ).fetchall()
        if outside:
            case_id, owner, branch, home = outside[0]
            raise CaseForbiddenError(
                f'case "{case_id}" (branch "{branch}") cannot go to "{owner}", whose branch "{home}" does not '
                f"hold it; nothing was assigned."
            )
        done = store.execute(
            "UPDATE cases SET status = 'claimed', owner_id = p.owner_id, deadline = ?, updated_at = ?, "
            "version = coalesce(cases.version, 0) + 1 FROM cg_case_plan p "
            "WHERE cases.case_id = p.case_id AND cases.status = 'open' AND coalesce(cases.version, 0) = p.version "
            "RETURNING cases.case_id",
            [now + dt.timedelta(hours=hours), now],
        ).fetchall()
        if len(done) != len(rows):
            changed = sorted(set(rows["case_id"]) - {r[0] for r in done})
            raise _StalePlan(
                f"{len(changed)} of {len(rows)} planned cases changed since the plan (no longer open at the "
                f"planned version): {', '.join(changed[:5])}"
            )
        need = store.execute("SELECT owner_id, count(*) FROM cg_case_plan GROUP BY owner_id").fetchall()
        counted = store.execute(
            "UPDATE users SET open_claims = coalesce(users.open_claims, 0) + p.n "
            "FROM (SELECT owner_id, count(*) AS n FROM cg_case_plan GROUP BY owner_id) p "
            f"WHERE users.user_id = p.owner_id AND users.active AND users.role = '{CLAIM_ROLE}' "
            "AND coalesce(users.open_claims, 0) + p.n <= coalesce(users.max_claims, ?) RETURNING users.user_id",
            [limit],
        ).fetchall()
        if len(counted) != len(need):
            bad = sorted({o for o, _ in need} - {r[0] for r in counted})
            raise _StalePlan(
                f"owner(s) {', '.join(bad[:5])} cannot take their planned cases: not an active account manager, "
                "or it would pass their claim limit"
            )
        store.execute(
            "INSERT INTO case_log (case_id, ts, actor, event, from_status, to_status, note) "
            "SELECT case_id, ?, ?, 'assign', 'open', 'claimed', 'assigned to ' || owner_id FROM cg_case_plan",
            [now, actor],
        )
        return AssignmentResult({str(o): int(n) for o, n in sorted(need)})
    finally:
        drop_temp(store, "cg_case_plan")


def assign_cases(
    store: Store,
    *,
    actor: str,
    campaign_id: str | None = None,
    case_ids: Sequence[str] | None = None,
    strategy: str = "round_robin",
    now: dt.datetime | None = None,
    in_transaction: bool = False,
    branch_ids: Sequence[str] | None = None,
    claim_hours: float | None = None,
    default_limit: int | None = None,
) -> AssignmentResult:
    """Assign open cases to account managers by branch (客户分配); plan and apply in one transaction.

    Targets as :func:`plan_assignment`; strategies ``round_robin`` and ``load`` (module
    docstring).  Returns ``{owner_id: cases}`` with ``.no_manager``, ``.at_limit`` (what stayed
    in the pool and why) and ``.skipped``.  Atomic: a failure part-way leaves no case assigned;
    a race with a concurrent claim is retried with a fresh plan.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy: expected one of {', '.join(STRATEGIES)}, got {strategy!r}.")
    now = utc_now(now)

    def work() -> AssignmentResult:
        plan = plan_assignment(
            store,
            campaign_id=campaign_id,
            case_ids=case_ids,
            branch_ids=branch_ids,
            strategy=strategy,
            default_limit=default_limit,
        )
        result = _apply(store, plan, actor=actor, now=now, claim_hours=claim_hours, default_limit=default_limit)
        result.strategy = strategy
        result.no_manager = plan.loc[plan["reason"] == NO_MANAGER, "case_id"].tolist()
        result.at_limit = plan.loc[plan["reason"] == AT_LIMIT, "case_id"].tolist()
        if case_ids is not None:
            result.skipped = sorted(set(case_ids) - set(plan["case_id"]))
        return result

    return atomic(store, work, in_transaction=in_transaction, what="assigning cases")
