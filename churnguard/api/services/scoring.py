"""Scoring single customers or a batch on request, inside the caller's scope (audited).

The ids a caller sends are first matched against ``customers`` **with the caller's scope in the same
SQL** (:meth:`churnguard.auth.Scope.customer_filter`: their branch subtree; an account manager only
the customers they own or hold a case on).  An id outside the scope answers exactly like an id that
does not exist (``not_found``; 404 for the one-customer endpoint): it is never scored, and nothing
about it comes back.  The others are scored by
:func:`churnguard.predict.events.score_customers` with the active early-warning model, on the
default day of :func:`churnguard.predict.events.score_store` (the data's as-of date + 1 day), and
with ``write`` their rows of that day in ``scores`` are replaced.  Every call is audited as
``score.run`` (the model, the day, how many were asked and scored, whether written).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import pandas as pd

from churnguard.api.services.common import clean, parse_json
from churnguard.auth import audit
from churnguard.auth.errors import NotFoundError
from churnguard.auth.scope import Scope
from churnguard.predict.events import NOT_FOUND_MESSAGE  # unknown or outside the scope: the same words
from churnguard.store.connection import Store

#: Most customer ids one request may score.
MAX_IDS = 1000


def in_scope(store: Store, scope: Scope, customer_ids: Sequence[str]) -> set[str]:
    """The ids among ``customer_ids`` of customers the scope may see (one query, the ids staged as a table)."""
    if not customer_ids:
        return set()
    name = f"_cg_ask_{uuid.uuid4().hex[:8]}"
    frame = pd.DataFrame({"customer_id": pd.Series([str(c) for c in customer_ids], dtype=object)})
    store.execute("SELECT 1").fetchall()  # ends a result left open by an earlier fetchone(): register needs that
    store.raw.register(f"{name}_df", frame)
    try:
        store.execute(
            f"CREATE TEMP TABLE {name} AS SELECT DISTINCT CAST(customer_id AS VARCHAR) AS customer_id FROM {name}_df"
        )
    finally:
        store.raw.unregister(f"{name}_df")
    try:
        sql = f"""
        {scope.with_()}
        SELECT c.customer_id FROM customers c JOIN {name} a ON a.customer_id = c.customer_id
        WHERE {scope.customer_filter("c")}
        """
        return {r[0] for r in scope.run(store, sql).fetchall()}
    finally:
        store.execute(f"DROP TABLE IF EXISTS {name}")


def has_active_model(store: Store) -> bool:
    """Whether an active early-warning model is registered (the customer page then offers "Rescore now")."""
    if not store.has_table("model_runs"):
        return False
    return bool(store.execute("SELECT count(*) FROM model_runs WHERE mode = 'events' AND active").fetchone()[0])


def _row(record: dict[str, Any]) -> dict[str, Any]:
    out = {k: clean(v) for k, v in record.items()}
    out["reasons"] = parse_json(out.get("reasons"))
    return out


def score_in_scope(
    store: Store,
    scope: Scope,
    customer_ids: Sequence[str],
    *,
    write: bool = True,
    ip: str | None = None,
) -> dict[str, Any]:
    """Score the customers of ``customer_ids`` that the scope may see (module docstring).

    Returns ``as_of``, ``model_id``, ``written``, the counts (``requested`` distinct ids, ``scored``,
    ``not_active``, ``not_found``) and ``results``: one row per distinct id, in the order given, with
    ``status`` ``scored`` / ``not_active`` / ``not_found``, a ``message`` for the last two, and the
    score (probability, risk band, value at risk, top reason, reasons in en and zh, expected days).
    """
    from churnguard.metrics.activity import data_as_of
    from churnguard.predict.events import resolve_model, score_customers

    ids = list(dict.fromkeys(str(c) for c in customer_ids))
    model_id, _ = resolve_model(store, None)  # the active model (404 when none is trained)
    as_of = data_as_of(store) + dt.timedelta(days=1)
    visible = in_scope(store, scope, ids)
    asked = [c for c in ids if c in visible]
    scored = score_customers(store, asked, as_of=as_of, model=model_id, write=write) if asked else None
    by_id = {} if scored is None else {r["customer_id"]: r for r in scored.to_dict("records")}
    results = []
    for customer_id in ids:  # at most MAX_IDS rows, already computed: only their order is set here
        found = by_id.get(customer_id)
        if found is None or found["status"] == "not_found":
            results.append(
                {
                    "customer_id": customer_id,
                    "status": "not_found",
                    "message": NOT_FOUND_MESSAGE,
                    "as_of": as_of.isoformat(),
                    "model_id": model_id,
                }
            )
        else:
            results.append(_row(found))
    counts = {s: sum(1 for r in results if r["status"] == s) for s in ("scored", "not_active", "not_found")}
    audit.record(
        store,
        "score.run",
        user_id=scope.user_id,
        target=model_id,
        ip=ip,
        detail={"as_of": as_of.isoformat(), "requested": len(ids), "customers": counts["scored"], "written": write},
    )
    return {
        "as_of": as_of.isoformat(),
        "model_id": model_id,
        "written": bool(write and counts["scored"]),
        "requested": len(ids),
        **counts,
        "results": results,
    }


def score_one(store: Store, scope: Scope, customer_id: str, *, write: bool = True, ip: str | None = None) -> dict:
    """One customer's score (``score_in_scope`` of one id); 404 when unknown or outside the scope."""
    if not in_scope(store, scope, [customer_id]):
        raise NotFoundError(f'customer "{customer_id}": not found.')
    found = score_in_scope(store, scope, [customer_id], write=write, ip=ip)
    return {**found["results"][0], "written": found["written"]}
