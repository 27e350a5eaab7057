"""Customers: the at-risk list (latest scores), its CSV export, and the customer 360.

Every query starts from the caller's scope (:class:`churnguard.auth.Scope`): the customer rows
are joined to the scope's subtree inside the SQL, before counting, sorting and paging; a customer
outside the scope is "not found" (404), exactly like one that does not exist.

At-risk list
    The customers of the latest scoring run (the newest ``scores.as_of`` and, on that date, the model
    scored last), one row each, with their branch, plan and value tier (``customers.tier_override``,
    else ``customer_value.tier``), from the in-memory read model of
    :mod:`churnguard.api.services.read_model`; filters on branch (subtree), tier, driver category
    (``top_reason``) and risk band; sorted by ``value_at_risk`` (default) or ``probability``, largest
    first; ``total`` counts every row that matches.

Customer 360
    The profile (``customers`` row, branch path), the value row (``customer_value``), the latest
    score with its reasons, activity by month (events and revenue aggregated per month in the
    engine: never every raw event), subscriptions, tickets, surveys, churn events, cases with
    their log, and a timeline merging the dated items.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any, Literal

from churnguard.api.services.common import branch_names, clean, has_rows, one, parse_json, rows
from churnguard.api.services.read_model import NAME, RANKS, AtRiskModel, Registered
from churnguard.auth.errors import NotFoundError
from churnguard.auth.scope import Scope
from churnguard.store.connection import Store

AT_RISK_SORTS: tuple[str, ...] = ("value_at_risk", "probability")
RISK_BANDS: tuple[str, ...] = ("high", "medium", "low")
#: Months of activity history in the customer 360.
HISTORY_MONTHS = 24
#: Most items per list in the customer 360 (tickets, surveys, case log).
LIST_LIMIT = 50
EXPORT_MAX_ROWS = 1_000_000
EXPORT_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "branch_id",
    "plan",
    "tier",
    "probability",
    "risk_band",
    "value_at_risk",
    "clv",
    "top_reason",
    "expected_days_to_churn",
    "as_of",
    "model_id",
    "owner_id",
)


def _where(scope: Scope, *, tier: str | None, reason: str | None, band: str | None) -> str:
    """The at-risk rows (``r``, the read model) the scope may see, with the filters."""
    where = [scope.customer_filter("r")]
    if tier is not None:
        where.append("r.tier = $tier")
    if reason is not None:
        where.append("r.top_reason = $reason")
    if band is not None:
        where.append("r.risk_band = $band")
    return " AND ".join(where)


def at_risk(
    store: Store,
    scope: Scope,
    model: AtRiskModel | None,
    *,
    tier: str | None = None,
    reason: str | None = None,
    band: str | None = None,
    sort: Literal["value_at_risk", "probability"] = "value_at_risk",
    limit: int = 50,
    offset: int = 0,
    with_total: bool = True,
) -> dict[str, Any]:
    """One page of the at-risk list of ``scope`` (module docstring), with ``total`` and the open case of each row.

    ``model`` is the read model of the latest scoring run (:mod:`churnguard.api.services.read_model`);
    ``None`` when nothing is scored.  The page's row numbers and the total are selected with the scope's
    condition in the SQL; the rows are then taken from the model.  ``with_total=False`` skips the count
    (``total`` is then ``None``), for a short list that shows no total.
    """
    empty = {"as_of": None, "model_id": None, "total": 0, "limit": limit, "offset": offset, "sort": sort, "rows": []}
    if model is None:
        return empty
    where = _where(scope, tier=tier, reason=reason, band=band)
    params = {"tier": tier, "reason": reason, "band": band, "limit": int(limit), "offset": int(offset)}
    with Registered(store, model):
        page_sql = f"""
        {scope.with_()}
        SELECT r.vrank FROM {NAME} r WHERE {where} ORDER BY r.{RANKS[sort]} LIMIT $limit OFFSET $offset
        """
        positions = [r[0] for r in scope.run(store, page_sql, params).fetchall()]
        total = None
        if with_total:
            count_sql = f"{scope.with_()} SELECT count(*) FROM {NAME} r WHERE {where}"
            total = int(scope.run(store, count_sql, params).fetchone()[0])
    page = [{k: clean(v) for k, v in row.items()} for row in model.table.take(positions).to_pylist()]
    cases = open_cases_of(store, scope, [r["customer_id"] for r in page])
    for r in page:
        r.pop("vrank", None)
        r.pop("prank", None)
        r["reasons"] = parse_json(r.get("reasons")) or []
        r["case"] = cases.get(r["customer_id"])
    return {**empty, "as_of": model.as_of, "model_id": model.model_id, "total": total, "rows": page}


def open_cases_of(store: Store, scope: Scope, customer_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The latest open case of each of ``customer_ids`` that the scope may see."""
    if not customer_ids:
        return {}
    sql = f"""
    {scope.with_()}
    SELECT k.customer_id, k.case_id, k.kind, k.status, k.owner_id, k.deadline
    FROM cases k
    WHERE k.customer_id IN (SELECT unnest($ids)) AND k.closed_at IS NULL AND {scope.case_filter("k")}
    QUALIFY row_number() OVER (PARTITION BY k.customer_id ORDER BY k.created_at DESC) = 1
    """
    return {r["customer_id"]: r for r in rows(scope.run(store, sql, {"ids": customer_ids}))}


def at_risk_csv(
    store: Store,
    scope: Scope,
    model: AtRiskModel | None,
    *,
    tier: str | None = None,
    reason: str | None = None,
    band: str | None = None,
    sort: Literal["value_at_risk", "probability"] = "value_at_risk",
    limit: int = EXPORT_MAX_ROWS,
) -> Iterator[str]:
    """The at-risk list as CSV text chunks (header first), streamed from the engine in batches.

    ``store`` should be a connection of its own: the rows are fetched while the response is sent.
    """
    head = io.StringIO()
    csv.writer(head).writerow(EXPORT_COLUMNS)
    yield head.getvalue()
    if model is None:
        return
    where = _where(scope, tier=tier, reason=reason, band=band)
    columns = ", ".join(f"r.{c}" for c in EXPORT_COLUMNS)
    sql = f"{scope.with_()} SELECT {columns} FROM {NAME} r WHERE {where} ORDER BY r.{RANKS[sort]} LIMIT $limit"
    with Registered(store, model):
        cur = scope.run(store, sql, {"tier": tier, "reason": reason, "band": band, "limit": int(limit)})
        while True:
            batch = cur.fetchmany(10_000)
            if not batch:
                break
            buf = io.StringIO()
            writer = csv.writer(buf)
            for r in batch:
                writer.writerow(["" if v is None else clean(v) for v in r])
            yield buf.getvalue()


def score_summary(store: Store, scope: Scope, model: AtRiskModel | None) -> dict[str, Any]:
    """Counts of the latest scoring run in scope: customers per risk band, Σ value at risk of each band."""
    if model is None:
        return {"as_of": None, "scored": 0, "bands": {}, "value_at_risk_high": None}
    sql = f"""
    {scope.with_()}
    SELECT r.risk_band, count(*) AS customers, sum(r.value_at_risk) AS value_at_risk
    FROM {NAME} r WHERE {scope.customer_filter("r")} GROUP BY ALL
    """
    with Registered(store, model):
        found = rows(scope.run(store, sql))
    bands = {
        r["risk_band"] or "(none)": {"customers": r["customers"], "value_at_risk": r["value_at_risk"]} for r in found
    }
    return {
        "as_of": model.as_of,
        "scored": sum(b["customers"] for b in bands.values()),
        "bands": bands,
        "value_at_risk_high": (bands.get("high") or {}).get("value_at_risk"),
    }


# -- customer 360 ---------------------------------------------------------------------------------


def find_customer(store: Store, scope: Scope, customer_id: str) -> dict[str, Any]:
    """The ``customers`` row of ``customer_id`` if the scope may see it; else :class:`NotFoundError` (404)."""
    cond = scope.customer_filter("c")
    sql = f"{scope.with_()} SELECT c.* FROM customers c WHERE c.customer_id = $customer_id AND {cond}"
    found = one(scope.run(store, sql, {"customer_id": customer_id}))
    if found is None:
        raise NotFoundError(f'customer "{customer_id}": not found.')
    return found


def _branch_path(names: dict[str, dict[str, Any]], branch_id: str | None) -> list[dict[str, Any]]:
    path: list[dict[str, Any]] = []
    seen: set[str] = set()
    while branch_id is not None and branch_id in names and branch_id not in seen:
        seen.add(branch_id)
        path.append(names[branch_id])
        branch_id = names[branch_id]["parent_id"]
    return path[::-1]


def _scores(store: Store, customer_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The customer's latest score (with its reasons) and one score per as-of date, newest first (one scan)."""
    if not store.has_table("scores"):
        return None, []
    found = rows(
        store.execute(
            "SELECT * FROM scores WHERE customer_id = ? ORDER BY as_of DESC, scored_at DESC NULLS LAST LIMIT 200",
            [customer_id],
        )
    )
    if not found:
        return None, []
    latest = dict(found[0])
    latest["reasons"] = parse_json(latest.get("reasons")) or []
    history: list[dict[str, Any]] = []
    for r in found:  # newest scoring of each as-of date
        if not history or history[-1]["as_of"] != r["as_of"]:
            history.append({"as_of": r["as_of"], "probability": r["probability"], "risk_band": r["risk_band"]})
    return latest, history[:24]


def _activity_by_month(store: Store, customer_id: str, months: int) -> dict[str, Any]:
    """Events per month and type, and revenue per month, over the customer's last ``months`` months of data."""
    from churnguard.metrics.loss import revenue_condition

    events = rows(
        store.execute(
            """
            WITH e AS (SELECT ts, event_type, value FROM events WHERE customer_id = ?),
            last AS (SELECT date_trunc('month', max(ts)) AS m FROM e)
            SELECT strftime(date_trunc('month', ts), '%Y-%m') AS month, event_type,
                   count(*) AS events, sum(value) AS value
            FROM e, last WHERE ts >= last.m - to_months(CAST(? AS INTEGER) - 1)
            GROUP BY ALL ORDER BY month, event_type
            """,
            [customer_id, months],
        )
    )
    cond = revenue_condition(store, "t")
    revenue = rows(
        store.execute(
            f"""
            WITH t AS (SELECT * FROM transactions t WHERE t.customer_id = ? AND {cond}),
            last AS (SELECT date_trunc('month', max(ts)) AS m FROM t)
            SELECT strftime(date_trunc('month', ts), '%Y-%m') AS month, count(*) AS transactions,
                   sum(amount) AS amount, sum(margin) AS margin
            FROM t, last WHERE ts >= last.m - to_months(CAST(? AS INTEGER) - 1)
            GROUP BY ALL ORDER BY month
            """,
            [customer_id, months],
        )
    )
    return {"events": events, "revenue": revenue}


def _cases(store: Store, scope: Scope, customer_id: str) -> list[dict[str, Any]]:
    sql = f"""
    {scope.with_()}
    SELECT k.* FROM cases k WHERE k.customer_id = $customer_id AND {scope.case_filter("k")}
    ORDER BY k.created_at DESC LIMIT {LIST_LIMIT}
    """
    found = rows(scope.run(store, sql, {"customer_id": customer_id}))
    if found:
        ids = [k["case_id"] for k in found]
        log = rows(
            store.execute(
                "SELECT * FROM case_log WHERE list_contains(?, case_id) ORDER BY ts DESC LIMIT ?", [ids, LIST_LIMIT * 4]
            )
        )
        for k in found:
            k["log"] = [e for e in log if e["case_id"] == k["case_id"]]
    return found


def _recommended_action(store: Store, cases: list[dict[str, Any]], customer_id: str) -> dict[str, Any] | None:
    """The action of the customer's open case, else of their latest campaign membership."""
    for k in cases:
        if k.get("closed_at") is None and k.get("action"):
            return {
                "action": k["action"],
                "source": "case",
                "case_id": k["case_id"],
                "expected_gain": k["expected_gain"],
            }
    if has_rows(store, "campaign_members"):
        found = one(
            store.execute(
                """
                SELECT m.action, m.why, m.expected_gain, m.campaign_id, m.arm FROM campaign_members m
                LEFT JOIN campaigns g ON g.campaign_id = m.campaign_id
                WHERE m.customer_id = ? AND m.action IS NOT NULL
                ORDER BY g.created_at DESC NULLS LAST LIMIT 1
                """,
                [customer_id],
            )
        )
        if found is not None:
            return {**found, "source": "campaign"}
    return None


def _timeline(
    subscriptions: list[dict[str, Any]],
    tickets: list[dict[str, Any]],
    surveys: list[dict[str, Any]],
    churn: list[dict[str, Any]],
    cases: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for s in subscriptions:
        items.append({"ts": s["start_date"], "kind": "subscription_start", "detail": s.get("plan")})
        if s.get("end_date"):
            items.append({"ts": s["end_date"], "kind": "subscription_end", "detail": s.get("plan")})
    for t in tickets:
        items.append({"ts": t["opened_at"], "kind": "ticket", "detail": t.get("category")})
    for s in surveys:
        items.append({"ts": s["ts"], "kind": "survey", "detail": f"{s.get('kind')} {s.get('score')}"})
    for e in churn:
        items.append({"ts": e["churn_date"], "kind": "churn", "detail": e.get("reason_code")})
    for k in cases:
        for entry in k.get("log", []):
            items.append(
                {
                    "ts": entry["ts"],
                    "kind": "case",
                    "detail": f"{entry.get('event')} {entry.get('to_status') or ''}".strip(),
                }
            )
    items.sort(key=lambda x: str(x["ts"] or ""), reverse=True)
    return items[:200]


def customer_360(store: Store, scope: Scope, customer_id: str) -> dict[str, Any]:
    """Everything the customer page shows (module docstring); 404 when out of scope or unknown.

    The scope check is the first query (the customer row joined to the scope's subtree); the
    detail queries that follow read only this customer's rows, by id, so each stays a narrow scan.
    """
    profile = find_customer(store, scope, customer_id)
    names = branch_names(store)
    value = (
        one(store.execute("SELECT * FROM customer_value WHERE customer_id = ? LIMIT 1", [customer_id]))
        if store.has_table("customer_value")
        else None
    )
    subscriptions = rows(
        store.execute(
            "SELECT * FROM subscriptions WHERE customer_id = ? ORDER BY start_date DESC LIMIT ?",
            [customer_id, LIST_LIMIT],
        )
    )
    tickets = rows(
        store.execute(
            "SELECT * FROM tickets WHERE customer_id = ? ORDER BY opened_at DESC LIMIT ?", [customer_id, LIST_LIMIT]
        )
    )
    surveys = rows(
        store.execute("SELECT * FROM surveys WHERE customer_id = ? ORDER BY ts DESC LIMIT ?", [customer_id, LIST_LIMIT])
    )
    churn = rows(
        store.execute("SELECT * FROM churn_events WHERE customer_id = ? ORDER BY churn_date DESC", [customer_id])
    )
    cases = _cases(store, scope, customer_id)
    score, score_history = _scores(store, customer_id)
    tier = profile.get("tier_override") or (value or {}).get("tier")
    return {
        "customer_id": customer_id,
        "profile": profile,
        "branch": names.get(profile.get("branch_id") or ""),
        "branch_path": _branch_path(names, profile.get("branch_id")),
        "tier": tier,
        "value": value,
        "score": score,
        "score_history": score_history,
        "activity": _activity_by_month(store, customer_id, HISTORY_MONTHS),
        "subscriptions": subscriptions,
        "tickets": tickets,
        "surveys": surveys,
        "churn_events": churn,
        "cases": cases,
        "recommended_action": _recommended_action(store, cases, customer_id),
        "timeline": _timeline(subscriptions, tickets, surveys, churn, cases),
    }
