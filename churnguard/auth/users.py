"""Users and roles: who may see and do what (rows of the ``users`` table, schema v4).

Roles
    ``admin`` — head office: everything, every branch; manages users.
    ``analyst`` — reads everything in their branch's subtree (metrics, customers, scores, cases); writes nothing.
    ``branch_manager`` — their branch's subtree: reads it, assigns and recycles cases, starts campaigns.
    ``account_manager`` — their own cases and their own customers (``customers.owner_id`` = them, or a case
    they own); claims cases from the pool of their branch subtree and records contacts and outcomes.

Passwords are hashed with Argon2id (argon2-cffi's defaults: 64 MiB, 3 passes); the plain text is
never stored or logged.  The user's name (``user_id``) is the login name.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from churnguard.auth.errors import AuthenticationError, UnknownUserError, UserError
from churnguard.store.connection import Store

ROLES: tuple[str, ...] = ("admin", "analyst", "branch_manager", "account_manager")
#: Roles that may read company figures (metrics, segments, models) of their subtree.
READ_ROLES: frozenset[str] = frozenset({"admin", "analyst", "branch_manager"})
#: Roles that may manage cases of their subtree (assign, recycle) and start campaigns.
MANAGE_ROLES: frozenset[str] = frozenset({"admin", "branch_manager"})
MIN_PASSWORD_LENGTH = 8
DEFAULT_MAX_CLAIMS = 20
USER_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")

_USER_COLUMNS = "user_id, display_name, role, branch_id, active, max_claims, open_claims, created_at"


@dataclass(frozen=True)
class User:
    """One user (no password hash: it never leaves :mod:`churnguard.auth.users`)."""

    user_id: str
    display_name: str
    role: str
    branch_id: str | None
    active: bool
    max_claims: int | None
    open_claims: int
    created_at: dt.datetime | None = None

    @property
    def can_read_figures(self) -> bool:
        return self.role in READ_ROLES

    @property
    def can_manage(self) -> bool:
        return self.role in MANAGE_ROLES

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "display_name": self.display_name,
            "role": self.role,
            "branch_id": self.branch_id,
            "active": self.active,
            "max_claims": self.max_claims,
            "open_claims": self.open_claims,
            "created_at": self.created_at.isoformat(sep=" ", timespec="seconds") if self.created_at else None,
        }


def _user(row: tuple[Any, ...]) -> User:
    return User(
        user_id=row[0],
        display_name=row[1] or row[0],
        role=row[2],
        branch_id=row[3],
        active=bool(row[4]),
        max_claims=row[5],
        open_claims=int(row[6] or 0),
        created_at=row[7],
    )


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_password(password: str) -> str:
    """The Argon2id hash of ``password`` (salted; the encoded string carries its parameters)."""
    return str(_hasher().hash(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (constant-time; ``False`` for a missing or malformed hash)."""
    if not password_hash:
        return False
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return bool(_hasher().verify(password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_password(password: str) -> None:
    """Refuse passwords shorter than :data:`MIN_PASSWORD_LENGTH` characters."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(
            f"password: expected at least {MIN_PASSWORD_LENGTH} characters, got {len(password)}.", field="password"
        )


def _check_user_id(user_id: str) -> None:
    if not user_id or len(user_id) > 64 or not set(user_id) <= USER_ID_CHARS:
        raise UserError(
            f'user name "{user_id}": expected 1–64 letters, digits or . _ - @ (it is the login name).', field="name"
        )


def _check_branch(store: Store, branch_id: str | None, role: str) -> None:
    if branch_id is None:
        if role == "admin":
            return
        raise UserError(f"--branch: a {role} needs a branch (their scope); give a branch id.", field="branch")
    if not store.execute("SELECT count(*) FROM branches WHERE branch_id = ?", [branch_id]).fetchone()[0]:
        known = [
            r[0] for r in store.execute("SELECT branch_id FROM branches ORDER BY level, branch_id LIMIT 6").fetchall()
        ]
        hint = f"such as {', '.join(known)}" if known else "(the branches table is empty: load it first)"
        raise UserError(f'--branch "{branch_id}": expected a branch id {hint}.', field="branch")


def add_user(
    store: Store,
    user_id: str,
    *,
    role: str,
    branch_id: str | None,
    password: str,
    display_name: str | None = None,
    max_claims: int | None = None,
    now: dt.datetime | None = None,
) -> User:
    """Create an active user with an Argon2id-hashed password.

    ``max_claims`` is the account manager's claim limit (限制认领数量; default
    :data:`DEFAULT_MAX_CLAIMS` for account managers, none for the other roles).
    """
    _check_user_id(user_id)
    if role not in ROLES:
        raise UserError(f'--role: expected one of {", ".join(ROLES)}, got "{role}".', field="role")
    _check_branch(store, branch_id, role)
    check_password(password)
    if max_claims is not None and max_claims < 0:
        raise UserError(f"--max-claims: expected 0 or more, got {max_claims}.", field="max_claims")
    if max_claims is None and role == "account_manager":
        max_claims = DEFAULT_MAX_CLAIMS
    if get_user(store, user_id, active_only=False) is not None:
        raise UserError(f'user "{user_id}" already exists; choose another name or disable the old one.', field="name")
    created = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    store.execute(
        "INSERT INTO users (user_id, display_name, role, branch_id, password_hash, active, max_claims, open_claims,"
        " created_at) VALUES (?, ?, ?, ?, ?, TRUE, ?, 0, ?)",
        [user_id, display_name or user_id, role, branch_id, hash_password(password), max_claims, created],
    )
    user = get_user(store, user_id)
    assert user is not None
    return user


def get_user(store: Store, user_id: str, *, active_only: bool = True) -> User | None:
    """The user named ``user_id`` (``None`` when there is none, or it is disabled and ``active_only``)."""
    row = store.execute(
        f"SELECT {_USER_COLUMNS} FROM users WHERE user_id = ? {'AND active' if active_only else ''} LIMIT 1",
        [user_id],
    ).fetchone()
    return _user(row) if row else None


def list_users(store: Store, *, branch_ids: list[str] | None = None, role: str | None = None) -> list[User]:
    """Every user (disabled ones included), by role then name; only those in ``branch_ids`` when given."""
    where, params = [], []
    if branch_ids is not None:
        ids = list(branch_ids)
        where.append(f"branch_id IN ({', '.join('?' for _ in ids)})" if ids else "FALSE")
        params.extend(ids)
    if role is not None:
        where.append("role = ?")
        params.append(role)
    sql = f"SELECT {_USER_COLUMNS} FROM users {'WHERE ' + ' AND '.join(where) if where else ''}"
    order = " ".join(f"WHEN '{r}' THEN {i}" for i, r in enumerate(ROLES))
    rows = store.execute(f"{sql} ORDER BY CASE role {order} END, user_id", params).fetchall()
    return [_user(r) for r in rows]


def disable_user(store: Store, user_id: str, *, now: dt.datetime | None = None) -> User:
    """Disable a user: they can no longer log in, and their API tokens and sessions are revoked at once."""
    user = get_user(store, user_id, active_only=False)
    if user is None:
        raise UnknownUserError(f'user "{user_id}": no such user (see churnguard users list).')
    stamp = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with store.transaction():
        store.execute("UPDATE users SET active = FALSE WHERE user_id = ?", [user_id])
        store.execute("UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", [stamp, user_id])
        store.execute(
            "UPDATE web_sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", [stamp, user_id]
        )
    found = get_user(store, user_id, active_only=False)
    assert found is not None
    return found


def set_password(store: Store, user_id: str, password: str) -> None:
    """Replace a user's password (hashed)."""
    check_password(password)
    if get_user(store, user_id, active_only=False) is None:
        raise UnknownUserError(f'user "{user_id}": no such user (see churnguard users list).')
    store.execute("UPDATE users SET password_hash = ? WHERE user_id = ?", [hash_password(password), user_id])


#: A hash that no password matches, verified for unknown names so that a failed login takes
#: as long for a missing user as for a wrong password (no user enumeration by timing).
_DUMMY_HASH: list[str] = []


def authenticate(store: Store, user_id: str, password: str) -> User:
    """The active user whose name and password match; else :class:`AuthenticationError` (same message either way)."""
    row = store.execute("SELECT password_hash FROM users WHERE user_id = ? AND active LIMIT 1", [user_id]).fetchone()
    if row is None:
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(hash_password("not a password of anyone"))
        verify_password(_DUMMY_HASH[0], password)
        raise AuthenticationError("wrong user name or password (or the user is disabled).")
    if not verify_password(row[0], password):
        raise AuthenticationError("wrong user name or password (or the user is disabled).")
    user = get_user(store, user_id)
    assert user is not None
    return user


# -- demo users ---------------------------------------------------------------------------------

#: Fixed demo passwords (the demo store is public by nature; never use these names elsewhere).
DEMO_PASSWORDS: dict[str, str] = {
    "admin": "admin-demo",
    "analyst": "analyst-demo",
    "branch_manager": "manager-demo",
    "account_manager": "agent-demo",
}


def _demo_province(store: Store) -> str | None:
    row = store.execute(
        """
        SELECT b.branch_id FROM branches b
        WHERE b.parent_id IN (SELECT branch_id FROM branches WHERE parent_id IS NULL)
        ORDER BY b.branch_id = 'GD' DESC,
                 (SELECT count(*) FROM branches k WHERE k.parent_id = b.branch_id) >= 2 DESC, b.branch_id
        LIMIT 1
        """
    ).fetchone()
    return row[0] if row else None


def ensure_demo_users(store: Store) -> list[tuple[str, str, str, str | None]]:
    """Create (or reset) the demo users; return ``(user, password, role, branch)`` for each.

    One ``admin`` and one ``analyst`` at the root, one ``branch_manager`` of a province (GD where it
    exists) and two ``account_manager`` of two cities under it.  An account manager is named after
    the ``customers.owner_id`` with the most customers in their city (``AM-GZ-01`` in the demo), so
    they own customers; without owners, ``am-<city>``.  Idempotent: existing demo users get their
    demo password and role back and are re-activated.
    """
    root_row = store.execute("SELECT branch_id FROM branches WHERE parent_id IS NULL ORDER BY branch_id").fetchone()
    root = root_row[0] if root_row else None
    province = _demo_province(store)
    wanted: list[tuple[str, str, str | None, str]] = [("admin", "admin", root, "Demo admin (head office)")]
    if root is not None:
        wanted.append(("analyst", "analyst", root, "Demo analyst (head office)"))
    if province is not None:
        wanted.append((f"{province.lower()}-manager", "branch_manager", province, f"Demo manager {province}"))
        cities = [
            r[0]
            for r in store.execute(
                "SELECT branch_id FROM branches WHERE parent_id = ? ORDER BY "
                "(SELECT count(*) FROM customers c WHERE c.branch_id = branches.branch_id) DESC, branch_id LIMIT 2",
                [province],
            ).fetchall()
        ]
        for city in cities:
            owner = store.execute(
                "SELECT owner_id FROM customers WHERE branch_id = ? AND owner_id IS NOT NULL "
                "GROUP BY owner_id ORDER BY count(*) DESC, owner_id LIMIT 1",
                [city],
            ).fetchone()
            name = owner[0] if owner and set(owner[0]) <= USER_ID_CHARS else f"am-{city.lower()}"
            wanted.append((name, "account_manager", city, f"Demo account manager {city}"))
    out: list[tuple[str, str, str, str | None]] = []
    for user_id, role, branch, display in wanted:
        password = DEMO_PASSWORDS[role]
        existing = get_user(store, user_id, active_only=False)
        if existing is None:
            add_user(store, user_id, role=role, branch_id=branch, password=password, display_name=display)
        else:
            store.execute(
                "UPDATE users SET role = ?, branch_id = ?, active = TRUE, password_hash = ? WHERE user_id = ?",
                [role, branch, hash_password(password), user_id],
            )
        out.append((user_id, password, role, branch))
    return out
