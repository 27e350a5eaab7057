"""Engine plumbing shared by the case-workflow modules: clocks, atomic retries, staging, branch walks.

Every statement here is plain SQL that DuckDB and PostgreSQL both run (``UPDATE … FROM``,
``… RETURNING``, ``WITH RECURSIVE``, window functions, ``INSERT … ON CONFLICT``).  Staging a pandas
frame (:func:`stage_frame`) goes through the connection's ``register`` (DuckDB scans the frame in
place; PostgreSQL copies it into a temporary table with ``COPY``).
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from churnguard.errors import CaseConflictError
from churnguard.store.connection import Store

T = TypeVar("T")

#: Statuses of a case that is still being worked (it holds a place in the pool or a claim).
ACTIVE_STATUSES: tuple[str, ...] = ("open", "claimed", "contacted")
#: Statuses that count against the owner's claim limit (``users.open_claims``).
HELD_STATUSES: tuple[str, ...] = ("claimed", "contacted")

#: How often a transaction that lost a write-write race is retried before the caller hears "busy".
RETRY_ATTEMPTS = 40


_retries = 0
_retries_lock = threading.Lock()


def conflict_retries() -> int:
    """How many transactions this process has retried after losing a write-write race (a diagnostic)."""
    return _retries


def _count_retry() -> None:
    global _retries
    with _retries_lock:
        _retries += 1


class Conflict(Exception):
    """Raised inside an atomic block when a guarded statement touched fewer rows than planned.

    The block rolls back; :func:`atomic` retries it like an engine-reported write conflict.
    """


def utc_now(now: dt.datetime | None = None) -> dt.datetime:
    """``now`` as a naive UTC timestamp (the store's convention); the wall clock when ``None``."""
    if now is None:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if isinstance(now, dt.datetime):
        if now.tzinfo is not None:
            return now.astimezone(dt.UTC).replace(tzinfo=None)
        return now
    if isinstance(now, dt.date):
        return dt.datetime.combine(now, dt.time())
    raise TypeError(f"now: expected a datetime, got {type(now).__name__}")


def is_write_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is the engine saying "another transaction wrote these rows first".

    DuckDB (optimistic concurrency control) raises ``TransactionException`` ("Conflict on
    update!", or a failed commit).  PostgreSQL at READ COMMITTED makes a later writer wait for
    the row lock and re-check its ``WHERE`` (a guarded update then touches no row:
    :class:`Conflict`); it raises ``SerializationFailure`` (40001) under stricter isolation
    levels and ``DeadlockDetected`` (40P01) when two transactions lock rows in opposite orders
    (a claim locks the claimer's counter, then the case; an assignment the cases, then the
    counters): the victim is rolled back and retried.
    """
    if isinstance(exc, Conflict):
        return True
    try:
        import duckdb

        if isinstance(exc, duckdb.TransactionException):
            return True
    except ImportError:  # pragma: no cover - duckdb is a hard dependency
        pass
    try:
        from psycopg import errors as pg_errors

        if isinstance(exc, pg_errors.SerializationFailure | pg_errors.DeadlockDetected):
            return True
    except ImportError:  # psycopg is only needed for PostgreSQL stores
        pass
    return getattr(exc, "sqlstate", None) in {"40001", "40P01"}


def atomic(
    store: Store,
    work: Callable[[], T],
    *,
    in_transaction: bool = False,
    attempts: int = RETRY_ATTEMPTS,
    what: str = "the change",
) -> T:
    """Run ``work`` in one transaction, retrying it when it loses a write-write race.

    With ``in_transaction=True`` (or inside the store's open transaction) the caller owns the
    transaction: ``work`` runs once, and a lost race is reported as :class:`CaseConflictError`
    (the caller's transaction is then spoiled and must be rolled back).  Every retry re-reads the
    rows, so a retried claim sees the winner's commit and answers "already claimed" rather than
    trying again blindly.
    """
    if in_transaction or store.in_transaction:
        try:
            return work()
        except Exception as exc:
            if is_write_conflict(exc):
                raise CaseConflictError(
                    f"{what}: another session changed the same cases at the same time; roll back and try again."
                ) from exc
            raise
    for attempt in range(attempts):
        try:
            with store.transaction():
                return work()
        except Exception as exc:
            if not is_write_conflict(exc):
                raise
            if attempt + 1 == attempts:
                raise CaseConflictError(
                    f"{what}: other sessions kept changing the same cases ({attempts} attempts); "
                    "nothing was saved. Try again."
                ) from exc
            _count_retry()
            # Jittered back-off so that racing sessions do not collide in lock-step again.
            time.sleep(random.uniform(0.0005, 0.002) * min(attempt + 1, 10))
    raise AssertionError("unreachable")  # pragma: no cover


def placeholders(values: Sequence[Any]) -> str:
    """``?, ?, ?`` for binding a list of values (an empty list binds one NULL, matching nothing)."""
    return ", ".join("?" for _ in values) or "NULL"


def stage_frame(store: Store, table: str, frame: Any, columns: Sequence[tuple[str, str]]) -> None:
    """Copy ``frame`` (pandas) into a new temporary table ``table`` with the given ``(name, type)`` columns.

    The frame is registered with the engine (DuckDB scans it in place, PostgreSQL copies it with
    ``COPY``); a connection without ``register`` gets the rows through ``executemany``.
    The table lives until :func:`drop_temp` or the end of the connection, and disappears with
    a rolled-back transaction.
    """
    store.execute(f"DROP TABLE IF EXISTS {table}")
    cols = ", ".join(f"{name} {kind}" for name, kind in columns)
    store.execute(f"CREATE TEMPORARY TABLE {table} ({cols})")
    names = [name for name, _ in columns]
    data = frame[names]
    if len(data) == 0:
        return
    if hasattr(store.raw, "register"):
        view = f"{table}_frame"
        store.raw.register(view, data)
        try:
            casts = ", ".join(f"CAST({n} AS {k})" for n, k in columns)
            store.execute(f"INSERT INTO {table} SELECT {casts} FROM {view}")
        finally:
            try:
                store.raw.unregister(view)
            except Exception as exc:  # an aborted PostgreSQL transaction: the rollback drops the copy
                if "transaction is aborted" not in str(exc).lower():
                    raise
        return
    rows = [tuple(None if _missing(v) else v for v in r) for r in data.itertuples(index=False, name=None)]
    store.raw.executemany(f"INSERT INTO {table} VALUES ({placeholders(names)})", rows)


def query_frame(store: Store, sql: str, params: Sequence[Any] | None = None) -> Any:
    """The result of a query as a pandas DataFrame (DuckDB's own conversion where available)."""
    cur = store.execute(sql, list(params or []))
    if hasattr(cur, "df"):
        return cur.df()
    import pandas as pd

    names = [d[0] for d in cur.description]
    return pd.DataFrame(cur.fetchall(), columns=names)


def _missing(v: Any) -> bool:
    try:
        return v is None or v != v  # NaN
    except (TypeError, ValueError):
        return False


def drop_temp(store: Store, table: str) -> None:
    """Drop a staging table; a no-op in an aborted transaction.

    An aborted transaction refuses every statement, and the table (created inside it) goes with
    its rollback: the clean-up must never replace the error that aborted the transaction.
    """
    try:
        store.execute(f"DROP TABLE IF EXISTS {table}")
    except Exception as exc:
        if "transaction is aborted" not in str(exc).lower():
            raise


#: The ancestors of one branch (itself at depth 0), walking up ``branches.parent_id``.
ANCESTORS_SQL = """
WITH RECURSIVE up(branch_id, depth) AS (
  SELECT CAST(? AS VARCHAR), 0
  UNION ALL
  SELECT b.parent_id, up.depth + 1
  FROM up JOIN branches b ON b.branch_id = up.branch_id
  WHERE b.parent_id IS NOT NULL AND up.depth < 64
)
SELECT branch_id, depth FROM up ORDER BY depth
"""

#: Every branch in the subtrees of a list of branches (``{roots}``: placeholders).
SUBTREE_SQL = """
WITH RECURSIVE down(branch_id, depth) AS (
  SELECT branch_id, 0 FROM branches WHERE branch_id IN ({roots})
  UNION ALL
  SELECT b.branch_id, down.depth + 1
  FROM down JOIN branches b ON b.parent_id = down.branch_id
  WHERE down.depth < 64
)
SELECT DISTINCT branch_id FROM down
"""


def ancestors(store: Store, branch_id: str) -> list[str]:
    """``branch_id`` and its ancestors, nearest first."""
    return [r[0] for r in store.execute(ANCESTORS_SQL, [branch_id]).fetchall() if r[0] is not None]


def in_subtree(store: Store, branch_id: str | None, root: str | None) -> bool:
    """Whether ``branch_id`` lies in ``root``'s subtree (``root`` itself included)."""
    if branch_id is None or root is None:
        return False
    return root in ancestors(store, branch_id)


def lock(store: Store, name: str, now: dt.datetime) -> None:
    """Take a named write lock for the rest of the transaction (a row of ``churnguard_meta``).

    Two transactions that both take it conflict: on DuckDB the later one fails and
    :func:`atomic` retries it; on PostgreSQL the later one waits for the first to commit.
    """
    key = f"lock:{name}"
    # ON CONFLICT: two first-ever takers must not both insert the row (the loser would fail on the key).
    store.execute("INSERT INTO churnguard_meta (key, value) VALUES (?, '') ON CONFLICT (key) DO NOTHING", [key])
    # The value must differ every time: DuckDB skips an update that changes nothing, and a
    # skipped update takes no lock (two sessions writing the same value do not conflict).
    token = f"{now.isoformat()} {uuid.uuid4().hex}"
    store.execute("UPDATE churnguard_meta SET value = ? WHERE key = ?", [token, key])
