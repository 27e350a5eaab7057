"""Retention and win-back cases (挽留/挽回工单): open, claim, follow up, close, recycle.

A **case** is one customer's piece of retention work.  Its kind is ``retain`` (at risk and
still active: act before the churn) or ``winback`` (already churned: re-acquire).  Its life::

    open ──claim/assign──▶ claimed ──contact──▶ contacted ──▶ retained | lost | abandoned   (retain)
      │                      │  ▲                  │     └──▶ won_back | lost | abandoned   (winback)
      └─▶ abandoned          │  └──release/recycle─┘
                             └─▶ abandoned, open (release; recycle when the deadline passes)

Every change writes one ``case_log`` row (who, when, event, from → to, note): the follow-up
history.  A note without a status change is a ``note`` event (a contact attempt).

Concurrency.  Each change is one transaction of conditional updates (``UPDATE … WHERE
case_id = ? AND status = 'open' … RETURNING``) plus the owner's counter row
(``users.open_claims``) in the same transaction, so two sessions that touch the same case, or
the same person's counter, conflict: on DuckDB the later writer gets a write-write conflict
and the whole transaction is retried (it then sees the winner's commit and answers clearly);
on PostgreSQL the later writer waits for the row lock and re-checks the condition.  See
docs/cases.md.

All functions take the ``store`` first and an injectable clock ``now`` (naive UTC).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from churnguard.errors import (
    CaseConflictError,
    CaseForbiddenError,
    CaseNotFoundError,
    CaseUserNotFoundError,
    ClaimLimitError,
    ConfigError,
    InvalidTransitionError,
    Problem,
    ValidationError,
)
from churnguard.retention.case_db import (
    ACTIVE_STATUSES,
    HELD_STATUSES,
    SUBTREE_SQL,
    Conflict,
    atomic,
    drop_temp,
    in_subtree,
    lock,
    placeholders,
    query_frame,
    stage_frame,
    utc_now,
)
from churnguard.store.connection import Store

KINDS: tuple[str, ...] = ("retain", "winback")
STATUSES: tuple[str, ...] = ("open", "claimed", "contacted", "retained", "lost", "won_back", "abandoned")
#: The statuses a case of each kind may end in.
OUTCOMES: dict[str, tuple[str, ...]] = {
    "retain": ("retained", "lost", "abandoned"),
    "winback": ("won_back", "lost", "abandoned"),
}
CLOSED_STATUSES: tuple[str, ...] = ("retained", "lost", "won_back", "abandoned")

#: Roles that may claim cases and be assigned them.
CLAIM_ROLE = "account_manager"
#: Roles that may change any case in their branch subtree (admin: everywhere).
MANAGER_ROLES: frozenset[str] = frozenset({"admin", "branch_manager"})

DEFAULT_CLAIM_HOURS = 72.0
DEFAULT_CLAIM_LIMIT = 20

CASE_COLUMNS: tuple[str, ...] = (
    "case_id",
    "campaign_id",
    "customer_id",
    "branch_id",
    "kind",
    "status",
    "owner_id",
    "priority",
    "action",
    "expected_gain",
    "deadline",
    "created_at",
    "updated_at",
    "closed_at",
    "version",
)
HISTORY_COLUMNS: tuple[str, ...] = ("case_id", "ts", "actor", "event", "from_status", "to_status", "note")

#: Events in the order they happen within one instant (history ties are broken by it).
_EVENT_ORDER = ("open", "assign", "claim", "contact", "note", "release", "recycle", "close")


def allowed_next(kind: str, status: str) -> tuple[str, ...]:
    """The statuses ``update_case`` may move a case of ``kind`` to from ``status``.

    ``claimed`` is reached only through :func:`claim_case` or assignment, never by an update.
    ``open`` from ``claimed``/``contacted`` releases the case to the pool.
    """
    if status == "open":
        return ("abandoned",)
    if status == "claimed":
        return ("contacted", "open", "abandoned")
    if status == "contacted":
        return ("contacted", *OUTCOMES.get(kind, ()), "open")
    return ()


def _describe_next(kind: str, status: str) -> str:
    nxt = list(allowed_next(kind, status))
    if status == "open":
        nxt = ["claimed (by claiming or assignment)", *nxt]
    words = [("open (release to the pool)" if s == "open" else s) for s in nxt]
    words = [("contacted (another contact)" if s == "contacted" and status == "contacted" else s) for s in words]
    return ", ".join(words) if words else "none (the case is closed; notes are still accepted)"


# -- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _User:
    user_id: str
    role: str | None
    branch_id: str | None
    active: bool
    max_claims: int | None
    open_claims: int


def _user(store: Store, user_id: str) -> _User:
    row = store.execute(
        "SELECT user_id, role, branch_id, active, max_claims, open_claims FROM users WHERE user_id = ? LIMIT 1",
        [user_id],
    ).fetchone()
    if row is None:
        raise CaseUserNotFoundError(
            f'user "{user_id}" is not in users. Fix: check the name, or add the user (churnguard users add).'
        )
    user = _User(row[0], row[1], row[2], bool(row[3]), row[4], int(row[5] or 0))
    if not user.active:
        raise CaseForbiddenError(f'user "{user_id}" is disabled; a disabled user cannot act on cases.')
    return user


_SELECT_CASE = (
    "SELECT "
    + ", ".join(f"k.{c}" for c in CASE_COLUMNS)
    + ", u.display_name AS owner_name FROM cases k LEFT JOIN users u ON u.user_id = k.owner_id"
)


def _row_dict(cursor: Any, row: tuple[Any, ...]) -> dict[str, Any]:
    names = [d[0] for d in cursor.description]
    out = dict(zip(names, row, strict=True))
    out["version"] = int(out.get("version") or 0)
    return out


def get_case(store: Store, case_id: str, *, branch_ids: Sequence[str] | None = None) -> dict[str, Any]:
    """One case as a dict (the ``cases`` columns plus ``owner_name``).

    :class:`CaseNotFoundError` (404) for an unknown case — and, with ``branch_ids``, for a case
    outside those branches' subtrees, so that a scoped caller cannot tell the two apart.
    """
    sql, params = _SELECT_CASE + " WHERE k.case_id = ?", [case_id]
    if branch_ids is not None:
        roots = list(branch_ids)
        sql += f" AND k.branch_id IN ({SUBTREE_SQL.format(roots=placeholders(roots))})"
        params += roots
    cur = store.execute(sql + " LIMIT 1", params)
    row = cur.fetchone()
    if row is None:
        raise CaseNotFoundError(f'case "{case_id}" does not exist. Fix: list cases with `churnguard cases list`.')
    return _row_dict(cur, row)


def case_history(store: Store, case_id: str, *, branch_ids: Sequence[str] | None = None) -> Any:
    """The follow-up history of a case, oldest first: a DataFrame of the ``case_log`` columns.

    404 as :func:`get_case` (unknown, or outside ``branch_ids``).
    """
    get_case(store, case_id, branch_ids=branch_ids)
    order = " ".join(f"WHEN '{e}' THEN {i}" for i, e in enumerate(_EVENT_ORDER))
    cols = ", ".join(HISTORY_COLUMNS)
    return query_frame(
        store,
        f"SELECT {cols} FROM case_log WHERE case_id = ? ORDER BY ts, CASE event {order} ELSE 99 END",
        [case_id],
    )


def _filters(
    *,
    branch_ids: Sequence[str] | None,
    owner_id: str | None,
    status: str | Sequence[str] | None,
    campaign_id: str | None,
    kind: str | None,
    customer_id: str | None,
) -> tuple[str, list[Any]]:
    where, params = ["1 = 1"], []
    if branch_ids is not None:
        roots = list(branch_ids)
        where.append(f"k.branch_id IN ({SUBTREE_SQL.format(roots=placeholders(roots))})")
        params.extend(roots)
    if owner_id is not None:
        where.append("k.owner_id = ?")
        params.append(owner_id)
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        unknown = [s for s in statuses if s not in STATUSES]
        if unknown:
            raise ConfigError(f"status: expected one of {', '.join(STATUSES)}, got {', '.join(unknown)}.")
        where.append(f"k.status IN ({placeholders(statuses)})")
        params.extend(statuses)
    if campaign_id is not None:
        where.append("k.campaign_id = ?")
        params.append(campaign_id)
    if kind is not None:
        if kind not in KINDS:
            raise ConfigError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}.")
        where.append("k.kind = ?")
        params.append(kind)
    if customer_id is not None:
        where.append("k.customer_id = ?")
        params.append(customer_id)
    return " AND ".join(where), params


def list_cases(
    store: Store,
    *,
    branch_ids: Sequence[str] | None = None,
    owner_id: str | None = None,
    status: str | Sequence[str] | None = None,
    campaign_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
    kind: str | None = None,
    customer_id: str | None = None,
) -> Any:
    """Cases matching every filter given, highest priority first: a DataFrame of the ``cases`` columns + ``owner_name``.

    ``branch_ids`` limits the list to the cases in those branches' subtrees (the caller's
    scope, applied in the query); ``status`` is one status or several.
    """
    if limit < 0 or offset < 0:
        raise ConfigError(f"limit and offset: expected 0 or more, got {limit} and {offset}.")
    where, params = _filters(
        branch_ids=branch_ids,
        owner_id=owner_id,
        status=status,
        campaign_id=campaign_id,
        kind=kind,
        customer_id=customer_id,
    )
    sql = f"{_SELECT_CASE} WHERE {where} ORDER BY k.priority DESC NULLS LAST, k.created_at, k.case_id LIMIT ? OFFSET ?"
    frame = query_frame(store, sql, [*params, int(limit), int(offset)])
    frame["version"] = frame["version"].fillna(0).astype("int64")
    return frame


def count_cases(
    store: Store,
    *,
    branch_ids: Sequence[str] | None = None,
    owner_id: str | None = None,
    status: str | Sequence[str] | None = None,
    campaign_id: str | None = None,
    kind: str | None = None,
    customer_id: str | None = None,
) -> int:
    """How many cases :func:`list_cases` would list without ``limit`` (for paging)."""
    where, params = _filters(
        branch_ids=branch_ids,
        owner_id=owner_id,
        status=status,
        campaign_id=campaign_id,
        kind=kind,
        customer_id=customer_id,
    )
    return int(store.execute(f"SELECT count(*) FROM cases k WHERE {where}", params).fetchone()[0])


# -- opening ------------------------------------------------------------------------------------


class OpenedCases(list[str]):
    """The case ids opened (in the order of the input rows), with what was skipped and why.

    ``skipped`` holds one dict per input row not opened: ``customer_id``, ``kind``,
    ``reason`` (``"active case"``: the customer already has an open/claimed/contacted case of
    that kind, whose id is ``existing_case_id``; ``"duplicate row"``: the same customer and kind
    appeared earlier in the input).
    """

    def __init__(self, ids: Sequence[str] = (), skipped: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(ids)
        self.skipped: list[dict[str, Any]] = list(skipped)

    def to_dict(self) -> dict[str, Any]:
        return {"opened": list(self), "skipped": self.skipped, "skipped_count": len(self.skipped)}


_NEW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("seq", "BIGINT"),
    ("case_id", "VARCHAR"),
    ("customer_id", "VARCHAR"),
    ("kind", "VARCHAR"),
    ("priority", "DOUBLE PRECISION"),
    ("action", "VARCHAR"),
    ("expected_gain", "DOUBLE PRECISION"),
    ("branch_id", "VARCHAR"),
    ("note", "VARCHAR"),
)


def new_case_ids(n: int, now: dt.datetime) -> list[str]:
    """``n`` readable, random case ids: ``K-<yyyymmdd>-<8 hex digits>`` (uniqueness is checked on insert)."""
    import numpy as np

    if n == 0:
        return []
    digits = np.char.mod("%08X", np.frombuffer(os.urandom(4 * n), dtype=">u4"))
    return [f"K-{now:%Y%m%d}-" + d for d in digits.tolist()]


def _normalise_rows(rows: Any) -> Any:
    import pandas as pd

    if not isinstance(rows, pd.DataFrame):
        raise ConfigError(f"rows: expected a pandas DataFrame, got {type(rows).__name__}.")
    missing = [c for c in ("customer_id", "kind") if c not in rows.columns]
    if missing:
        raise ConfigError(
            f"rows: expected columns customer_id, kind (and optionally priority, action, expected_gain, "
            f"branch_id, note); missing {', '.join(missing)}."
        )
    frame = pd.DataFrame(
        {
            "seq": range(len(rows)),
            "customer_id": rows["customer_id"].astype("string").to_numpy(),
            "kind": rows["kind"].astype("string").to_numpy(),
        }
    )
    for col, kind in (("priority", "float"), ("expected_gain", "float")):
        frame[col] = pd.to_numeric(rows[col], errors="raise").to_numpy() if col in rows.columns else float("nan")
        frame[col] = frame[col].astype(kind)
    for col in ("action", "branch_id", "note"):
        frame[col] = rows[col].astype("string").to_numpy() if col in rows.columns else pd.NA
        frame[col] = frame[col].astype("string")
    problems = []
    bad_id = frame["customer_id"].isna() | (frame["customer_id"].str.strip() == "")
    for seq in frame.loc[bad_id, "seq"].head(20):
        problems.append(
            Problem("cases to open", int(seq) + 1, "customer_id", "a customer id", "nothing", location_word="row")
        )
    bad_kind = ~frame["kind"].isin(KINDS).fillna(False).astype(bool)
    for seq, k in frame.loc[bad_kind, ["seq", "kind"]].head(20).itertuples(index=False):
        problems.append(
            Problem(
                "cases to open",
                int(seq) + 1,
                "kind",
                "retain or winback",
                "nothing" if k is pd.NA else f'"{k}"',
                None,
                "row",
            )
        )
    if problems:
        raise ValidationError(problems, total=int(bad_id.sum() + bad_kind.sum()))
    return frame


def open_cases(
    store: Store,
    rows: Any,
    *,
    actor: str,
    campaign_id: str | None = None,
    deadline_days: int = 7,
    now: dt.datetime | None = None,
    in_transaction: bool = False,
) -> OpenedCases:
    """Open one case per row of ``rows`` (columns ``customer_id``, ``kind`` and optionally
    ``priority``, ``action``, ``expected_gain``, ``branch_id`` (default: the customer's), ``note``).

    A customer holds at most one active (open, claimed or contacted) case of each kind: a row
    for a customer who already has one is skipped and reported in ``result.skipped``, as is a
    repeated row.  New cases are ``open`` in the branch pool, with ``deadline = now +
    deadline_days`` (the date they should be worked by), and each gets an ``open`` log row.
    With ``campaign_id``, ``campaign_members.case_id`` of that campaign's members is filled in.

    With ``in_transaction=True`` the caller's open transaction is used (so a campaign, its
    members and its cases commit together); otherwise the call is its own transaction.
    Openers are serialised by a lock row, so two concurrent calls cannot both open a case for
    the same customer and kind.  Unknown customers are a :class:`ValidationError`; nothing is
    opened then.
    """
    frame = _normalise_rows(rows)
    now = utc_now(now)
    dup = frame.duplicated(["customer_id", "kind"], keep="first")
    skipped_dups = [
        {"customer_id": c, "kind": k, "reason": "duplicate row", "existing_case_id": None}
        for c, k in frame.loc[dup, ["customer_id", "kind"]].itertuples(index=False)
    ]
    frame = frame.loc[~dup].reset_index(drop=True)
    deadline = now + dt.timedelta(days=deadline_days)

    def work() -> OpenedCases:
        lock(store, "open_cases", now)
        staged = frame.copy()
        staged["case_id"] = new_case_ids(len(staged), now)
        for _ in range(10):
            stage_frame(store, "cg_case_new", staged, _NEW_COLUMNS)
            clash = {
                r[0]
                for r in store.execute(
                    "SELECT case_id FROM cg_case_new WHERE case_id IN (SELECT case_id FROM cases) "
                    "UNION SELECT case_id FROM cg_case_new GROUP BY case_id HAVING count(*) > 1"
                ).fetchall()
            }
            if not clash:
                break
            redo = staged["case_id"].isin(clash)
            staged.loc[redo, "case_id"] = new_case_ids(int(redo.sum()), now)
        else:  # pragma: no cover - 32 random bits colliding ten times over
            raise CaseConflictError("could not draw unique case ids; try again.")
        try:
            return _insert_staged(store, actor=actor, campaign_id=campaign_id, deadline=deadline, now=now)
        finally:
            drop_temp(store, "cg_case_new")

    result = atomic(store, work, in_transaction=in_transaction, what="opening cases")
    result.skipped = skipped_dups + result.skipped
    return result


def _insert_staged(
    store: Store, *, actor: str, campaign_id: str | None, deadline: dt.datetime, now: dt.datetime
) -> OpenedCases:
    unknown = store.execute(
        "SELECT s.seq, s.customer_id FROM cg_case_new s "
        "WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.customer_id = s.customer_id) ORDER BY s.seq"
    ).fetchall()
    if unknown:
        raise ValidationError(
            [
                Problem(
                    "cases to open",
                    int(seq) + 1,
                    "customer_id",
                    "a customer in the customers table",
                    f'"{cid}"',
                    location_word="row",
                )
                for seq, cid in unknown[:20]
            ],
            total=len(unknown),
        )
    active = placeholders(ACTIVE_STATUSES)
    existing = store.execute(
        f"SELECT s.seq, s.customer_id, s.kind, min(k.case_id) FROM cg_case_new s JOIN cases k "
        f"ON k.customer_id = s.customer_id AND k.kind = s.kind AND k.status IN ({active}) "
        "GROUP BY s.seq, s.customer_id, s.kind ORDER BY s.seq",
        list(ACTIVE_STATUSES),
    ).fetchall()
    skipped = [
        {"customer_id": cid, "kind": kind, "reason": "active case", "existing_case_id": case_id}
        for _, cid, kind, case_id in existing
    ]
    if existing:
        store.execute(f"DELETE FROM cg_case_new WHERE seq IN ({placeholders(existing)})", [r[0] for r in existing])
    store.execute(
        "INSERT INTO cases (case_id, campaign_id, customer_id, branch_id, kind, status, owner_id, priority, action, "
        "expected_gain, deadline, created_at, updated_at, closed_at, version) "
        "SELECT s.case_id, ?, s.customer_id, coalesce(s.branch_id, c.branch_id), s.kind, 'open', NULL, s.priority, "
        "s.action, s.expected_gain, ?, ?, ?, NULL, 0 "
        "FROM cg_case_new s JOIN customers c ON c.customer_id = s.customer_id",
        [campaign_id, deadline, now, now],
    )
    store.execute(
        "INSERT INTO case_log (case_id, ts, actor, event, from_status, to_status, note) "
        "SELECT case_id, ?, ?, 'open', NULL, 'open', note FROM cg_case_new",
        [now, actor],
    )
    if campaign_id is not None:
        store.execute(
            "UPDATE campaign_members SET case_id = s.case_id FROM cg_case_new s "
            "WHERE campaign_members.campaign_id = ? AND campaign_members.customer_id = s.customer_id",
            [campaign_id],
        )
    ids = [r[0] for r in store.execute("SELECT case_id FROM cg_case_new ORDER BY seq").fetchall()]
    return OpenedCases(ids, skipped)


# -- claiming and updating ------------------------------------------------------------------------


def _check_not_closed_or_taken(case: dict[str, Any]) -> None:
    status = case["status"]
    if status in ("claimed", "contacted"):
        raise CaseConflictError(
            f'case "{case["case_id"]}" is already {status} by "{case["owner_id"]}"; '
            "only open cases in the pool can be claimed."
        )
    if status != "open":
        raise InvalidTransitionError(
            f'case "{case["case_id"]}" is {status}; it cannot be claimed. '
            f"Allowed next: {_describe_next(case['kind'], status)}."
        )


def claim_case(
    store: Store,
    case_id: str,
    user_id: str,
    *,
    now: dt.datetime | None = None,
    note: str = "",
    claim_hours: float | None = None,
    default_limit: int | None = None,
) -> dict[str, Any]:
    """Claim an open case from the pool (线索领取): it becomes ``claimed`` by ``user_id``.

    Only an active account manager may claim, and only a case in their branch subtree
    (:class:`CaseForbiddenError`, 403).  The claim limit (限制认领数量) is ``users.max_claims``
    (``default_limit`` when empty) held cases (claimed + contacted); at the limit the claim is
    refused (:class:`ClaimLimitError`, 409).  A case already claimed is refused
    (:class:`CaseConflictError`, 409).  The follow-up deadline becomes ``now + claim_hours``.

    Race-free: the case row and the user's counter are changed by conditional updates in one
    transaction, so of two simultaneous claims of a case exactly one wins, and simultaneous
    claims by one person never take them past their limit.  Returns the case after the claim.
    """
    now = utc_now(now)
    hours = DEFAULT_CLAIM_HOURS if claim_hours is None else float(claim_hours)
    limit = DEFAULT_CLAIM_LIMIT if default_limit is None else int(default_limit)

    def work() -> dict[str, Any]:
        case = get_case(store, case_id)
        user = _user(store, user_id)
        if user.role != CLAIM_ROLE:
            raise CaseForbiddenError(
                f'user "{user_id}" is a {user.role}; only account managers claim cases '
                "(managers assign them: churnguard cases assign)."
            )
        if not in_subtree(store, case["branch_id"], user.branch_id):
            raise CaseForbiddenError(
                f'case "{case_id}" belongs to branch "{case["branch_id"]}", outside the subtree of '
                f'"{user_id}"\'s branch "{user.branch_id}"; claim cases of your own branches.'
            )
        _check_not_closed_or_taken(case)
        counted = store.execute(
            "UPDATE users SET open_claims = coalesce(open_claims, 0) + 1 "
            "WHERE user_id = ? AND coalesce(open_claims, 0) < coalesce(max_claims, ?) RETURNING open_claims",
            [user_id, limit],
        ).fetchall()
        if not counted:
            held, cap = store.execute(
                "SELECT coalesce(open_claims, 0), coalesce(max_claims, ?) FROM users WHERE user_id = ? LIMIT 1",
                [limit, user_id],
            ).fetchone()
            raise ClaimLimitError(
                f'user "{user_id}" already holds {held} cases, their claim limit ({cap}); '
                "close or release one before claiming another."
            )
        taken = store.execute(
            "UPDATE cases SET status = 'claimed', owner_id = ?, deadline = ?, updated_at = ?, "
            "version = coalesce(version, 0) + 1 WHERE case_id = ? AND status = 'open' RETURNING case_id",
            [user_id, now + dt.timedelta(hours=hours), now, case_id],
        ).fetchall()
        if not taken:
            raise Conflict()  # changed since we read it: retry, and the re-read explains
        _log(store, case_id, now, user_id, "claim", "open", "claimed", note)
        return get_case(store, case_id)

    return atomic(store, work, what=f'claiming case "{case_id}"')


def _log(
    store: Store, case_id: str, ts: dt.datetime, actor: str, event: str, old: str | None, new: str | None, note: str
) -> None:
    store.execute(
        "INSERT INTO case_log (case_id, ts, actor, event, from_status, to_status, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [case_id, ts, actor, event, old, new, note or None],
    )


def _may_update(store: Store, case: dict[str, Any], user: _User) -> None:
    if case["owner_id"] is not None and case["owner_id"] == user.user_id:
        return
    if user.role == "admin":
        return
    if user.role == "branch_manager" and in_subtree(store, case["branch_id"], user.branch_id):
        return
    if user.role == "branch_manager":
        why = f'outside the subtree of their branch "{user.branch_id}"'
    elif case["owner_id"] is None:
        why = "not claimed by them (claim it first)"
    else:
        why = f'owned by "{case["owner_id"]}"'
    raise CaseForbiddenError(f'user "{user.user_id}" ({user.role}) may not change case "{case["case_id"]}": {why}.')


def update_case(
    store: Store,
    case_id: str,
    user_id: str,
    *,
    status: str | None = None,
    note: str = "",
    now: dt.datetime | None = None,
    claim_hours: float | None = None,
) -> dict[str, Any]:
    """Record a follow-up on a case: a status change, a note, or both.

    - ``status=None`` with a note: a ``note`` event (a contact attempt); on a held case it
      extends the deadline to ``now + claim_hours``.
    - ``contacted``: a ``contact`` event; the deadline becomes ``now + claim_hours``
      (also from ``contacted`` again: another contact).
    - an outcome (retain: retained, lost, abandoned; winback: won_back, lost, abandoned):
      ``close``; ``closed_at = now``; the owner's claim is freed.
    - ``open`` from claimed/contacted: ``release`` back to the pool (owner cleared, claim freed).

    Who may: the case's owner, an admin, or a branch manager whose subtree holds the case
    (:class:`CaseForbiddenError` otherwise).  A status the current one does not allow is an
    :class:`InvalidTransitionError` naming the allowed next statuses.  Returns the case after.
    """
    note = (note or "").strip()
    if status is None and not note:
        raise ConfigError("update: give a new status, a note, or both.")
    if status is not None and status not in STATUSES:
        raise ConfigError(f"status: expected one of {', '.join(STATUSES)}, got {status!r}.")
    now = utc_now(now)
    hours = DEFAULT_CLAIM_HOURS if claim_hours is None else float(claim_hours)

    def work() -> dict[str, Any]:
        case = get_case(store, case_id)
        user = _user(store, user_id)
        _may_update(store, case, user)
        old, kind = case["status"], case["kind"]
        new = old if status is None else status
        if status is None:
            event = "note"
        else:
            if status not in allowed_next(kind, old):
                what = "closed" if old in CLOSED_STATUSES else old
                raise InvalidTransitionError(
                    f'case "{case_id}" ({kind}) is {what}; it cannot become "{status}". '
                    f"Allowed next: {_describe_next(kind, old)}."
                )
            event = {"contacted": "contact", "open": "release"}.get(status, "close")
        sets, params = ["status = ?", "updated_at = ?", "version = coalesce(version, 0) + 1"], [new, now]
        if new in HELD_STATUSES:
            sets.append("deadline = ?")
            params.append(now + dt.timedelta(hours=hours))
        elif event == "release":
            sets += ["owner_id = NULL", "deadline = NULL"]
        if event == "close":
            sets.append("closed_at = ?")
            params.append(now)
        changed = store.execute(
            f"UPDATE cases SET {', '.join(sets)} WHERE case_id = ? AND status = ? AND coalesce(version, 0) = ? "
            "RETURNING case_id",
            [*params, case_id, old, case["version"]],
        ).fetchall()
        if not changed:
            raise Conflict()
        if old in HELD_STATUSES and new not in HELD_STATUSES and case["owner_id"] is not None:
            _free_claim(store, case["owner_id"])
        _log(store, case_id, now, user_id, event, old, new, note)
        return get_case(store, case_id)

    return atomic(store, work, what=f'updating case "{case_id}"')


def _free_claim(store: Store, owner_id: str) -> None:
    store.execute(
        "UPDATE users SET open_claims = CASE WHEN coalesce(open_claims, 0) > 0 THEN open_claims - 1 ELSE 0 END "
        "WHERE user_id = ?",
        [owner_id],
    )


# -- recycling ------------------------------------------------------------------------------------


def recycle_overdue(
    store: Store,
    *,
    now: dt.datetime | None = None,
    actor: str = "system",
    branch_ids: Sequence[str] | None = None,
) -> list[str]:
    """Timeout recycling (超时自动回收): return overdue claimed cases to the pool.

    A case is overdue when it is ``claimed`` (no contact recorded since the claim) and its
    deadline — set at the claim to ``now + claim_hours`` and extended by every note — is
    before ``now``.  Each becomes ``open`` again (owner and deadline cleared), its owner's
    claim is freed, and a ``recycle`` event is logged by ``actor`` naming the former owner.
    ``branch_ids`` limits recycling to those subtrees.  All in one transaction.  Returns the
    recycled case ids.
    """
    now = utc_now(now)
    scope, params = "", []
    if branch_ids is not None:
        roots = list(branch_ids)
        scope = f" AND branch_id IN ({SUBTREE_SQL.format(roots=placeholders(roots))})"
        params = roots

    def work() -> list[str]:
        drop_temp(store, "cg_case_recycle")
        store.execute(
            "CREATE TEMPORARY TABLE cg_case_recycle AS "
            "SELECT case_id, owner_id, deadline, coalesce(version, 0) AS version FROM cases "
            f"WHERE status = 'claimed' AND deadline < ?{scope}",
            [now, *params],
        )
        try:
            planned = store.execute("SELECT count(*) FROM cg_case_recycle").fetchone()[0]
            if not planned:
                return []
            done = store.execute(
                "UPDATE cases SET status = 'open', owner_id = NULL, deadline = NULL, updated_at = ?, "
                "version = coalesce(cases.version, 0) + 1 FROM cg_case_recycle r "
                "WHERE cases.case_id = r.case_id AND cases.status = 'claimed' "
                "AND coalesce(cases.version, 0) = r.version RETURNING cases.case_id",
                [now],
            ).fetchall()
            if len(done) != planned:
                raise Conflict()
            store.execute(
                "UPDATE users SET open_claims = CASE WHEN coalesce(users.open_claims, 0) > r.n "
                "THEN users.open_claims - r.n ELSE 0 END "
                "FROM (SELECT owner_id, count(*) AS n FROM cg_case_recycle GROUP BY owner_id) r "
                "WHERE users.user_id = r.owner_id"
            )
            store.execute(
                "INSERT INTO case_log (case_id, ts, actor, event, from_status, to_status, note) "
                "SELECT case_id, ?, ?, 'recycle', 'claimed', 'open', "
                "'no follow-up by ' || coalesce(owner_id, '?') || ' before the deadline ' "
                "|| CAST(deadline AS VARCHAR) FROM cg_case_recycle",
                [now, actor],
            )
            return [r[0] for r in store.execute("SELECT case_id FROM cg_case_recycle ORDER BY case_id").fetchall()]
        finally:
            drop_temp(store, "cg_case_recycle")

    return atomic(store, work, what="recycling overdue cases")


def recount_claims(store: Store) -> int:
    """Set every user's ``open_claims`` to the number of cases they hold (claimed + contacted).

    The counter is kept exact by every workflow function; this repairs it after rows were
    changed by hand.  Returns how many users' counters changed.
    """
    held = placeholders(HELD_STATUSES)
    count_sql = f"SELECT count(*) FROM cases k WHERE k.owner_id = users.user_id AND k.status IN ({held})"

    def work() -> int:
        changed = store.execute(
            f"UPDATE users SET open_claims = ({count_sql}) "
            f"WHERE coalesce(open_claims, -1) <> ({count_sql}) RETURNING user_id",
            [*HELD_STATUSES, *HELD_STATUSES],
        ).fetchall()
        return len(changed)

    return atomic(store, work, what="recounting claims")
