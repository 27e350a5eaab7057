"""API tokens: long random bearer tokens, of which only a SHA-256 hash is stored (``api_tokens``, schema v5).

A token is ``cg_`` + 43 URL-safe characters (256 random bits), shown once when issued.  Being
random and long, it needs no slow hash: SHA-256 of the token is the lookup key, so a stolen
copy of the database gives no usable token.  Tokens end when they expire, when revoked, or when
their user is disabled.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from churnguard.auth.errors import AuthenticationError, UnknownUserError
from churnguard.auth.users import User, get_user
from churnguard.store.connection import Store

TOKEN_PREFIX = "cg_"
#: Tokens issued by ``POST /api/auth/token`` last this long unless asked otherwise.
DEFAULT_TTL = dt.timedelta(hours=12)
MAX_TTL = dt.timedelta(days=365)
#: ``last_used_at`` is written at most this often per token (a write per request would cost more than the read).
TOUCH_EVERY = dt.timedelta(minutes=5)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: str
    token_id: str
    user_id: str
    expires_at: dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "token_type": "bearer",
            "token_id": self.token_id,
            "user_id": self.user_id,
            "expires_at": self.expires_at.isoformat(timespec="seconds") + "Z" if self.expires_at else None,
        }


def issue_token(
    store: Store,
    user_id: str,
    *,
    name: str | None = None,
    ttl: dt.timedelta | None = DEFAULT_TTL,
    now: dt.datetime | None = None,
) -> IssuedToken:
    """A new API token for the active user ``user_id`` (``ttl=None``: it does not expire)."""
    if get_user(store, user_id) is None:
        raise UnknownUserError(f'user "{user_id}": no such active user (see churnguard users list).')
    if ttl is not None and (ttl <= dt.timedelta(0) or ttl > MAX_TTL):
        raise AuthenticationError(f"token lifetime: expected up to {MAX_TTL.days} days, got {ttl}.")
    stamp = now or _now()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = secrets.token_hex(6)
    expires = stamp + ttl if ttl is not None else None
    store.execute(
        "INSERT INTO api_tokens (token_id, user_id, token_hash, name, created_at, expires_at, last_used_at, revoked_at)"
        " VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)",
        [token_id, user_id, token_hash(token), name, stamp, expires],
    )
    return IssuedToken(token, token_id, user_id, expires)


def user_for_token(store: Store, token: str, *, now: dt.datetime | None = None) -> tuple[User, str]:
    """The active user a valid token belongs to, and the token's id; else :class:`AuthenticationError`."""
    stamp = now or _now()
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise AuthenticationError("the bearer token is not a churnguard API token.")
    row = store.execute(
        """
        SELECT t.token_id, t.user_id, t.last_used_at FROM api_tokens t JOIN users u ON u.user_id = t.user_id
        WHERE t.token_hash = ? AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ?) AND u.active
        LIMIT 1
        """,
        [token_hash(token), stamp],
    ).fetchone()
    if row is None:
        raise AuthenticationError("the bearer token is unknown, expired or revoked; ask for a new one.")
    token_id, user_id, last_used = row
    if last_used is None or stamp - last_used > TOUCH_EVERY:
        store.execute("UPDATE api_tokens SET last_used_at = ? WHERE token_id = ?", [stamp, token_id])
    user = get_user(store, user_id)
    if user is None:  # disabled between the two reads
        raise AuthenticationError("the bearer token is unknown, expired or revoked; ask for a new one.")
    return user, token_id


def revoke_token(store: Store, token_id: str, *, now: dt.datetime | None = None) -> bool:
    """Revoke one token by its id; whether one was revoked."""
    cur = store.execute(
        "UPDATE api_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL RETURNING token_id",
        [now or _now(), token_id],
    )
    return bool(cur.fetchall())
