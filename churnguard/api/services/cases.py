"""Retention and win-back cases for the API and the dashboard: scoped reads, and writes through the
case workflow (:mod:`churnguard.retention.cases`), each recorded in the audit log.

Reads come from the ``cases`` and ``case_log`` tables (schema v4) with the scope's condition in the
SQL (:meth:`churnguard.auth.Scope.case_filter`).  Before any write the case is looked up the same
way, so a case outside the caller's scope is "not found" (404) and the workflow never sees it.

Who may do what: ``analyst`` reads only; ``account_manager`` claims from the pool of their subtree
and updates their own cases; ``branch_manager`` and ``admin`` assign (and update) the cases of their
subtree and recycle its overdue cases.
The workflow itself enforces claim limits, ownership and status transitions (its errors carry
their HTTP status: 409 conflict, 403 not allowed, 404 unknown).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from churnguard.api.services.common import rows
from churnguard.api.services.read_model import AtRiskModel
from churnguard.auth import audit
from churnguard.auth.errors import AccessDeniedError, NotFoundError
from churnguard.auth.scope import Scope
from churnguard.errors import ChurnguardError
from churnguard.store.connection import Store

CASE_COLUMNS = (
    "k.case_id, k.campaign_id, k.customer_id, k.branch_id, k.kind, k.status, k.owner_id, k.priority, k.action, "
    "k.expected_gain, k.deadline, k.created_at, k.updated_at, k.closed_at, k.version"
)


class WorkflowUnavailableError(ChurnguardError):
    """The case workflow module is not installed in this version."""

    http_status = 501
    exit_code = 1


def workflow() -> Any:
    """The case workflow module (:mod:`churnguard.retention.cases`), or a 501 error while it is absent."""
    try:
        from churnguard.retention import cases
    except ImportError as exc:
        raise WorkflowUnavailableError(
            f"the case workflow (churnguard.retention.cases) is not in this version: {exc}"
        ) from None
    return cases


def list_cases(
    store: Store,
    scope: Scope,
    *,
    status: str | None = None,
    owner: str | None = None,
    pool: bool = False,
    open_only: bool = False,
    campaign_id: str | None = None,
    customer_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
    model: AtRiskModel | None = None,
) -> dict[str, Any]:
    """A page of the cases the scope may see, open ones first, highest priority first, with ``total``.

    ``pool``: only unowned open cases (the pool to claim from); ``owner``: only that owner's;
    ``open_only``: only cases not closed.  Each row of the page then gets the customer's value tier
    and latest probability, risk band and driver: from the at-risk read ``model`` when given (the
    customers of the latest scoring), else (and for the others) from the store, by id.
    """
    where = [scope.case_filter("k")]
    if status is not None:
        where.append("k.status = $status")
    if owner is not None:
        where.append("k.owner_id = $owner")
    if pool:
        where.append("k.owner_id IS NULL AND k.closed_at IS NULL")
    if open_only:
        where.append("k.closed_at IS NULL")
    if campaign_id is not None:
        where.append("k.campaign_id = $campaign_id")
    if customer_id is not None:
        where.append("k.customer_id = $customer_id")
    sql = f"""
    {scope.with_()}
    SELECT {CASE_COLUMNS}, count(*) OVER () AS total_rows
    FROM cases k
    WHERE {" AND ".join(where)}
    ORDER BY k.closed_at IS NOT NULL, k.priority DESC NULLS LAST, k.deadline NULLS LAST, k.case_id
    LIMIT $limit OFFSET $offset
    """
    params = {
        "status": status,
        "owner": owner,
        "campaign_id": campaign_id,
        "customer_id": customer_id,
        "limit": int(limit),
        "offset": int(offset),
    }
    page = rows(scope.run(store, sql, params))
    total = int(page[0]["total_rows"]) if page else 0
    if not page and offset:
        count_sql = f"{scope.with_()} SELECT count(*) FROM cases k WHERE {' AND '.join(where)}"
        total = int(scope.run(store, count_sql, params).fetchone()[0])
    details = customer_details(store, [r["customer_id"] for r in page], model)
    for r in page:
        r.pop("total_rows", None)
        r.update(details.get(r["customer_id"], dict.fromkeys(DETAIL_KEYS)))
    return {"total": total, "limit": limit, "offset": offset, "rows": page}


DETAIL_KEYS = ("tier", "probability", "risk_band", "top_reason")


def customer_details(
    store: Store, customer_ids: list[str], model: AtRiskModel | None = None
) -> dict[str, dict[str, Any]]:
    """Value tier and latest probability, risk band and driver of each of ``customer_ids`` (already in scope)."""
    wanted = sorted(set(customer_ids))
    out: dict[str, dict[str, Any]] = {}
    if not wanted:
        return out
    if model is not None:
        import pyarrow as pa
        import pyarrow.compute as pc

        table = model.table.select(["customer_id", *DETAIL_KEYS])
        found = table.filter(pc.is_in(table["customer_id"], value_set=pa.array(wanted)))
        out = {r.pop("customer_id"): r for r in found.to_pylist()}
    rest = [c for c in wanted if c not in out]
    if not rest:
        return out
    has_value = store.has_table("customer_value")
    tier = "coalesce(c.tier_override, v.tier)" if has_value else "c.tier_override"
    value_join = "LEFT JOIN customer_value v ON v.customer_id = c.customer_id" if has_value else ""
    tiers = dict(
        store.execute(
            f"SELECT c.customer_id, {tier} FROM customers c {value_join} WHERE c.customer_id IN (SELECT unnest(?))",
            [rest],
        ).fetchall()
    )
    scores = latest_scores(store, rest)
    for c in rest:
        out[c] = {"tier": tiers.get(c), **scores.get(c, {"probability": None, "risk_band": None, "top_reason": None})}
    return out


def latest_scores(store: Store, customer_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The latest probability, risk band and top reason of each of ``customer_ids`` (already in scope)."""
    if not customer_ids or not store.has_table("scores"):
        return {}
    found = rows(
        store.execute(
            """
            SELECT customer_id, arg_max(probability, (as_of, scored_at)) AS probability,
                   arg_max(risk_band, (as_of, scored_at)) AS risk_band,
                   arg_max(top_reason, (as_of, scored_at)) AS top_reason
            FROM scores WHERE customer_id IN (SELECT unnest(?)) GROUP BY customer_id
            """,
            [customer_ids],
        )
    )
    return {r.pop("customer_id"): r for r in found}


def get_case(store: Store, scope: Scope, case_id: str, *, with_log: bool = True) -> dict[str, Any]:
    """One case the scope may see, with its log (newest first); else :class:`NotFoundError` (404)."""
    sql = f"{scope.with_()} SELECT {CASE_COLUMNS} FROM cases k WHERE k.case_id = $case_id AND {scope.case_filter('k')}"
    found = rows(scope.run(store, sql, {"case_id": case_id}))
    if not found:
        raise NotFoundError(f'case "{case_id}": not found.')
    case = found[0]
    if with_log:
        case["log"] = rows(store.execute("SELECT * FROM case_log WHERE case_id = ? ORDER BY ts DESC", [case_id]))
    return case


def _refuse_readers(scope: Scope, what: str) -> None:
    if scope.role == "analyst":
        raise AccessDeniedError(f"analysts read cases; they cannot {what} them.")


def claim(store: Store, scope: Scope, case_id: str, *, ip: str | None = None) -> dict[str, Any]:
    """The caller claims a case of the pool (account managers; the workflow checks their claim limit)."""
    _refuse_readers(scope, "claim")
    if scope.role != "account_manager":
        raise AccessDeniedError("only account managers claim cases; managers assign them.")
    get_case(store, scope, case_id, with_log=False)
    result = workflow().claim_case(store, case_id, scope.user_id)
    audit.record(store, "case.claim", user_id=scope.user_id, target=case_id, ip=ip)
    return result


def update(
    store: Store, scope: Scope, case_id: str, *, status: str | None, note: str, ip: str | None = None
) -> dict[str, Any]:
    """Record a contact or an outcome on a case (its owner, or a manager of its branch)."""
    _refuse_readers(scope, "update")
    get_case(store, scope, case_id, with_log=False)
    result = workflow().update_case(store, case_id, scope.user_id, status=status, note=note)
    audit.record(store, "case.update", user_id=scope.user_id, target=case_id, detail={"status": status}, ip=ip)
    return result


def assign(
    store: Store,
    scope: Scope,
    *,
    case_ids: Sequence[str] | None = None,
    strategy: str = "round_robin",
    ip: str | None = None,
) -> dict[str, Any]:
    """Assign unowned open cases of the scope (all of them, or ``case_ids``) to its account managers."""
    if scope.role not in ("admin", "branch_manager"):
        raise AccessDeniedError("only branch managers and admins assign cases.")
    if case_ids is not None:
        for case_id in case_ids:
            get_case(store, scope, case_id, with_log=False)
    branch_ids = None if scope.branch_id is None else scope.branch_ids(store)
    assign_cases = getattr(workflow(), "assign_cases", None)
    if assign_cases is None:  # the workflow keeps assignment in its own module
        from churnguard.retention.case_assign import assign_cases
    result = assign_cases(
        store,
        actor=scope.user_id,
        case_ids=list(case_ids) if case_ids is not None else None,
        strategy=strategy,
        branch_ids=branch_ids,
    )
    assigned = {str(k): int(v) for k, v in dict(result).items()}
    audit.record(
        store,
        "case.assign",
        user_id=scope.user_id,
        target=f"{sum(assigned.values())} cases",
        detail={"strategy": strategy, "owners": assigned},
        ip=ip,
    )
    out: dict[str, Any] = {"assigned": assigned}
    for extra in ("no_manager", "at_limit", "skipped"):
        value = getattr(result, extra, None)
        if value is not None:
            out[extra] = value
    return out


def recycle(store: Store, scope: Scope, *, ip: str | None = None) -> list[str]:
    """Return the scope's overdue cases to the pool (超时自动回收; admins and branch managers)."""
    if scope.role not in ("admin", "branch_manager"):
        raise AccessDeniedError("only branch managers and admins recycle overdue cases.")
    branch_ids = None if scope.branch_id is None else scope.branch_ids(store)
    recycled = list(workflow().recycle_overdue(store, actor=scope.user_id, branch_ids=branch_ids))
    audit.record(store, "case.recycle", user_id=scope.user_id, target=f"{len(recycled)} cases", ip=ip)
    return recycled
