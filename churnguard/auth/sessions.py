"""Dashboard sessions and CSRF tokens.

A login creates a row in ``web_sessions`` (schema v5) holding the SHA-256 of a random session id,
the user, a random CSRF token and the expiry.  The browser keeps the session id in a cookie
signed with the server's secret (itsdangerous, with a timestamp), ``HttpOnly`` and
``SameSite=Lax``.  A request's session is valid when the signature checks, the signed time is
within :data:`SESSION_TTL`, and the row is neither expired nor revoked and its user is active —
so logging out, or disabling the user, ends it at once.

CSRF: every form POST (and every state-changing request authenticated by the cookie) must carry
the session's CSRF token, in the form field ``csrf_token`` or the ``X-CSRF-Token`` header; it is
compared in constant time.  The login form itself, before any session, uses a double-submit
token: a signed cookie whose value the form repeats.  Requests with a bearer token need none
(a browser never adds a bearer token on its own).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from churnguard.auth.errors import AuthenticationError, CsrfError
from churnguard.auth.users import User, get_user
from churnguard.store.connection import Store

SESSION_COOKIE = "cg_session"
LOGIN_CSRF_COOKIE = "cg_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_TTL = dt.timedelta(hours=12)
LOGIN_CSRF_TTL = dt.timedelta(hours=2)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str
    session_hash: str


class SessionSigner:
    """Signs and checks cookie values with the server's secret (one salt per purpose)."""

    def __init__(self, secret: str) -> None:
        from itsdangerous import URLSafeTimedSerializer

        self._session = URLSafeTimedSerializer(secret, salt="churnguard.session")
        self._login = URLSafeTimedSerializer(secret, salt="churnguard.login-csrf")

    def sign_session(self, session_id: str) -> str:
        return str(self._session.dumps(session_id))

    def session_id(self, cookie: str) -> str | None:
        from itsdangerous import BadSignature

        try:
            value = self._session.loads(cookie, max_age=int(SESSION_TTL.total_seconds()))
        except BadSignature:
            return None
        return value if isinstance(value, str) else None

    def new_login_csrf(self) -> tuple[str, str]:
        """A fresh login CSRF token and the signed cookie value that carries it."""
        token = secrets.token_urlsafe(24)
        return token, str(self._login.dumps(token))

    def check_login_csrf(self, cookie: str | None, submitted: str | None) -> None:
        from itsdangerous import BadSignature

        if not cookie or not submitted:
            raise CsrfError("the login form was sent without its CSRF token; reload the login page and try again.")
        try:
            expected = self._login.loads(cookie, max_age=int(LOGIN_CSRF_TTL.total_seconds()))
        except BadSignature:
            raise CsrfError("the login form's CSRF token is invalid or old; reload the login page.") from None
        if not isinstance(expected, str) or not hmac.compare_digest(expected, submitted):
            raise CsrfError("the login form's CSRF token does not match; reload the login page.")


def create_session(
    store: Store, user: User, *, ip: str | None = None, now: dt.datetime | None = None
) -> tuple[str, str]:
    """Start a session for ``user``; return ``(session_id, csrf_token)`` (the id goes into the signed cookie)."""
    stamp = now or _now()
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    store.execute(
        "INSERT INTO web_sessions (session_hash, user_id, csrf_token, created_at, expires_at, revoked_at, ip)"
        " VALUES (?, ?, ?, ?, ?, NULL, ?)",
        [_hash(session_id), user.user_id, csrf, stamp, stamp + SESSION_TTL, ip],
    )
    return session_id, csrf


def load_session(store: Store, session_id: str, *, now: dt.datetime | None = None) -> Session:
    """The live session with this id; else :class:`AuthenticationError`."""
    row = store.execute(
        """
        SELECT s.user_id, s.csrf_token, s.session_hash FROM web_sessions s JOIN users u ON u.user_id = s.user_id
        WHERE s.session_hash = ? AND s.revoked_at IS NULL AND s.expires_at > ? AND u.active LIMIT 1
        """,
        [_hash(session_id), now or _now()],
    ).fetchone()
    user = get_user(store, row[0]) if row else None
    if row is None or user is None:
        raise AuthenticationError("the session has ended (logged out, expired or the user was disabled); log in again.")
    return Session(user=user, csrf_token=row[1], session_hash=row[2])


def end_session(store: Store, session_hash: str, *, now: dt.datetime | None = None) -> None:
    store.execute(
        "UPDATE web_sessions SET revoked_at = ? WHERE session_hash = ? AND revoked_at IS NULL",
        [now or _now(), session_hash],
    )


def check_csrf(expected: str, submitted: str | None) -> None:
    """Refuse a state-changing request whose CSRF token is missing or wrong (:class:`CsrfError`, 403)."""
    if not submitted:
        raise CsrfError(
            "CSRF token missing: a form must send the csrf_token field (or the X-CSRF-Token header). Reload the page."
        )
    if not hmac.compare_digest(expected, submitted):
        raise CsrfError("CSRF token does not match this session; reload the page and try again.")
