"""The at-risk read model: the latest scoring run, joined once with customers and values, kept in memory.

The at-risk list, its count, its CSV export and the risk-band summary all read the same rows: the
customers of the latest scoring run (the newest ``scores.as_of`` and, on that date, the model scored
last: :func:`latest_run`) with their branch, owner, plan, segment and value tier.  Joining ``scores``
with ``customers`` and ``customer_value`` (a million rows each) on every page costs about a second;
so the join runs once, into an Arrow table held by the server process, and is rebuilt when the
scores or the data change (the key: the count and newest dates of ``scores``, and the data version
of :func:`churnguard.api.cache.data_version`).

The table is sorted by value at risk (largest first, then customer id) and carries two ranks:
``vrank`` (its row number in that order) and ``prank`` (the row's place in the order by probability).
A request registers the table on its own cursor under :data:`NAME` and selects from it **with the
caller's scope in the same SQL** (``r.branch_id IN (SELECT branch_id FROM scope_branches)`` and, for an
account manager, their own customers), before counting, ordering and paging: only one page of row
numbers comes back, and those rows are then taken from the table.  Cases are not in the read model
(they change every minute): they are read live for the page's rows.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from churnguard.api.cache import data_version
from churnguard.api.services.common import has_rows
from churnguard.store.connection import Store

#: The name the table is registered under on a request's cursor.
NAME = "cg_at_risk"
RANKS = {"value_at_risk": "vrank", "probability": "prank"}


@dataclass(frozen=True)
class AtRiskModel:
    """The rows of the latest scoring run (module docstring), as an Arrow table."""

    key: tuple[Any, ...]
    table: Any  # pyarrow.Table
    as_of: str | None
    model_id: str | None

    @property
    def rows(self) -> int:
        return int(self.table.num_rows)


def scores_version(store: Store) -> tuple[Any, ...]:
    row = store.execute("SELECT count(*), max(as_of), max(scored_at) FROM scores").fetchone()
    return (int(row[0]), str(row[1]), str(row[2]))


def latest_run(store: Store) -> tuple[Any, str | None] | None:
    """``(as_of, model_id)`` of the latest scoring run: the newest as-of date, then the newest scoring."""
    found = store.execute(
        "SELECT as_of, model_id FROM scores ORDER BY as_of DESC, scored_at DESC NULLS LAST, model_id LIMIT 1"
    ).fetchall()  # fetched to the end: the connection then takes the relational query below
    return (found[0][0], found[0][1]) if found else None


def build_at_risk_model(store: Store, key: tuple[Any, ...] | None = None) -> AtRiskModel | None:
    """Join the latest scoring run with customers and values (one row per customer); ``None`` without scores."""
    if not has_rows(store, "scores"):
        return None
    run = latest_run(store)
    assert run is not None
    has_value = store.has_table("customer_value")
    tier = "coalesce(c.tier_override, v.tier)" if has_value else "c.tier_override"
    clv = "v.clv" if has_value else "CAST(NULL AS DOUBLE)"
    join = "LEFT JOIN customer_value v ON v.customer_id = s.customer_id" if has_value else ""
    sql = f"""
    WITH picked AS (
      SELECT s.customer_id, c.branch_id, c.owner_id, c.plan, c.segment, {tier} AS tier, {clv} AS clv,
             s.probability, s.risk_band, s.value_at_risk, s.top_reason, s.expected_days_to_churn,
             s.as_of, s.model_id, s.scored_at, s.reasons
      FROM scores s JOIN customers c ON c.customer_id = s.customer_id {join}
      WHERE s.as_of = $as_of AND s.model_id IS NOT DISTINCT FROM $model_id
      QUALIFY row_number() OVER (PARTITION BY s.customer_id ORDER BY s.scored_at DESC NULLS LAST) = 1
    )
    SELECT *,
           CAST(row_number() OVER (ORDER BY value_at_risk DESC NULLS LAST, customer_id) - 1 AS INTEGER) AS vrank,
           CAST(row_number() OVER (ORDER BY probability DESC NULLS LAST, customer_id) - 1 AS INTEGER) AS prank
    FROM picked
    ORDER BY vrank
    """
    _finish_pending(store)
    table = store.raw.sql(sql, params={"as_of": run[0], "model_id": run[1]}).to_arrow_table()
    return AtRiskModel(
        key=key or (),
        table=table,
        as_of=str(run[0]) if run[0] is not None else None,
        model_id=run[1],
    )


def _finish_pending(store: Store) -> None:
    """End any unfinished result on the connection (a ``fetchone``): relational calls refuse to start otherwise."""
    store.execute("SELECT 1").fetchall()


class AtRiskModelHolder:
    """Keeps the current read model (one: an old one is dropped when the scores or the data change)."""

    def __init__(self) -> None:
        self._current: AtRiskModel | None = None
        self._empty_key: tuple[Any, ...] | None = None
        self._lock = threading.Lock()

    def get(self, store: Store) -> AtRiskModel | None:
        key = (*scores_version(store), *data_version(store))
        current = self._current
        if current is not None and current.key == key:
            return current
        if self._empty_key == key:
            return None
        with self._lock:
            current = self._current
            if current is not None and current.key == key:
                return current
            built = build_at_risk_model(store, key)
            self._current = built
            self._empty_key = key if built is None else None
            return built


class Registered:
    """``with Registered(store, model):`` the model's table is visible to ``store``'s SQL as :data:`NAME`."""

    def __init__(self, store: Store, model: AtRiskModel) -> None:
        self.store, self.model = store, model

    def __enter__(self) -> Store:
        _finish_pending(self.store)
        self.store.raw.register(NAME, self.model.table)
        return self.store

    def __exit__(self, *exc: object) -> None:
        _finish_pending(self.store)
        self.store.raw.unregister(NAME)
