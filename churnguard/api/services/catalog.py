"""Branches in scope, value segments (tiers, RFM, lifecycle) of a scope, model runs, scoring, users in scope."""

from __future__ import annotations

import datetime as dt
from typing import Any

from churnguard.api.services.common import branch_names, has_rows, parse_json, rows
from churnguard.auth import audit
from churnguard.auth.errors import AccessDeniedError, NotFoundError
from churnguard.auth.scope import Scope
from churnguard.errors import ChurnguardError
from churnguard.store.connection import Store


def branches(store: Store, scope: Scope) -> list[dict[str, Any]]:
    """The branches of the scope (tree order by level, then id), each with its own customers and its subtree's."""
    sql = f"""
    {scope.with_()},
    own AS (
      SELECT c.branch_id, count(*) AS customers FROM customers c WHERE {scope.customer_filter("c")} GROUP BY ALL
    )
    SELECT b.branch_id, b.parent_id, b.level, coalesce(own.customers, 0) AS customers
    FROM branches b JOIN scope_branches s ON s.branch_id = b.branch_id LEFT JOIN own ON own.branch_id = b.branch_id
    ORDER BY b.level NULLS LAST, b.branch_id
    """
    found = rows(scope.run(store, sql))
    names = branch_names(store)
    by_id = {r["branch_id"]: r for r in found}
    for r in found:
        r["name"] = names[r["branch_id"]]["name"]
        r["name_zh"] = names[r["branch_id"]]["name_zh"]
        r["subtree_customers"] = r["customers"]
        r["children"] = []
    for r in sorted(found, key=lambda x: -(x["level"] or 0)):  # deepest first: roll customers up
        parent = by_id.get(r["parent_id"])
        if parent is not None:
            parent["subtree_customers"] += r["subtree_customers"]
            parent["children"].insert(0, r["branch_id"])
    for r in found:
        r["children"].sort()
    return found


def segments(store: Store, scope: Scope) -> dict[str, Any]:
    """Customers, Σ value and CLV per value tier, RFM segment and lifecycle stage, in the scope."""
    if not has_rows(store, "customer_value"):
        return {"as_of": None, "tiers": [], "rfm": [], "lifecycle": []}
    out: dict[str, Any] = {}
    for key, column, measure in (
        ("tiers", "coalesce(c.tier_override, v.tier)", "v.value"),
        ("rfm", "v.rfm_segment", "v.monetary"),
        ("lifecycle", "v.lifecycle_stage", "v.value"),
    ):
        sql = f"""
        {scope.with_()}
        SELECT {column} AS key, count(*) AS customers, sum({measure}) AS value,
               sum(v.clv) AS clv_total, avg(v.clv) AS clv_mean
        FROM customer_value v JOIN customers c ON c.customer_id = v.customer_id
        WHERE {scope.customer_filter("c")} AND {column} IS NOT NULL
        GROUP BY ALL ORDER BY key
        """
        found = rows(scope.run(store, sql))
        n = sum(r["customers"] for r in found)
        total = sum(r["value"] or 0 for r in found)
        for r in found:
            r["share_customers"] = r["customers"] / n if n else None
            r["share_value"] = (r["value"] or 0) / total if total else None
        out[key] = found
    out["as_of"] = store.execute("SELECT CAST(max(as_of) AS VARCHAR) FROM customer_value").fetchone()[0]
    return out


def model_runs(store: Store) -> list[dict[str, Any]]:
    """Every model run, newest first, with its metrics and features parsed."""
    if not store.has_table("model_runs"):
        return []
    found = rows(store.execute("SELECT * FROM model_runs ORDER BY created_at DESC NULLS LAST, model_id"))
    for r in found:
        r["metrics"] = parse_json(r.get("metrics"))
        r["features"] = parse_json(r.get("features"))
        r.pop("path", None)  # a server path is nobody's business over the API
    return found


def users_in_scope(store: Store, scope: Scope) -> list[dict[str, Any]]:
    """The users of the scope's subtree (a branch manager assigns cases to them); no hashes."""
    sql = f"""
    {scope.with_()}
    SELECT u.user_id, u.display_name, u.role, u.branch_id, u.active, u.max_claims, u.open_claims
    FROM users u WHERE u.branch_id IN (SELECT branch_id FROM scope_branches)
       OR (CAST($scope_branch AS VARCHAR) IS NULL AND u.branch_id IS NULL)
    ORDER BY u.role, u.user_id
    """
    return rows(scope.run(store, sql))


class ScoringUnavailableError(ChurnguardError):
    """The scoring glue (churnguard.predict.events) is not installed in this version."""

    http_status = 501
    exit_code = 1


def run_scoring(
    store: Store, scope: Scope, *, as_of: dt.date | None, model_id: str | None, ip: str | None = None
) -> dict[str, Any]:
    """Score every active customer into ``scores`` (the admin's: it writes the whole company's scores).

    ``model_id`` must name a row of ``model_runs`` (never a path); without it the active events model.
    """
    if scope.role != "admin":
        raise AccessDeniedError("scoring writes every branch's scores; only an admin runs it.")
    if model_id is not None:
        known = store.execute("SELECT count(*) FROM model_runs WHERE model_id = ?", [model_id]).fetchone()[0]
        if not known:
            raise NotFoundError(f'model "{model_id}": not found in model_runs.')
    try:
        from churnguard.predict.events import score_store
    except ImportError as exc:
        raise ScoringUnavailableError(f"scoring (churnguard.predict.events) is not in this version: {exc}") from None
    run = score_store(store, as_of=as_of, model=model_id)
    result = run.to_dict()
    audit.record(
        store,
        "score.run",
        user_id=scope.user_id,
        target=str(result.get("model_id")),
        ip=ip,
        detail={"as_of": result.get("as_of"), "customers": result.get("customers")},
    )
    return result
