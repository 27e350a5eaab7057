"""The app's state and the request dependencies: a store connection per request and the caller.

The app opens the store once; each request works on its own cursor of that connection (DuckDB
cursors are independent connections to the same database, safe to use from parallel threads).

The caller is found from, in order: an ``Authorization: Bearer cg_…`` API token, or the signed
session cookie of the dashboard.  Any state-changing request (POST, PUT, PATCH, DELETE) that is
authenticated by the cookie must also carry the session's CSRF token (form field ``csrf_token`` or
header ``X-CSRF-Token``); that check lives here, in the one dependency every route goes through,
so no route can forget it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from churnguard.api.cache import FigureCache
from churnguard.api.services.read_model import AtRiskModel, AtRiskModelHolder
from churnguard.auth.errors import AccessDeniedError, AuthenticationError
from churnguard.auth.scope import Scope
from churnguard.auth.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    SessionSigner,
    check_csrf,
    load_session,
)
from churnguard.auth.tokens import user_for_token
from churnguard.auth.users import READ_ROLES, User
from churnguard.store.connection import Store

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class AppContext:
    """What every request needs: the open store, the cookie signer, the figure cache and the at-risk read model."""

    store: Store
    signer: SessionSigner
    cache: FigureCache
    read_model: AtRiskModelHolder = field(default_factory=AtRiskModelHolder)
    demo: bool = False
    secure_cookies: bool = False

    def at_risk_model(self, store: Store) -> AtRiskModel | None:
        """The current at-risk read model (built on first use after the scores or the data change)."""
        return self.read_model.get(store)

    def cursor(self) -> Store:
        """A store on a fresh cursor of the app's connection (close it when done)."""
        return Store(self.store.url, self.store.raw.cursor())


@dataclass(frozen=True)
class Caller:
    """The authenticated user of a request, their scope and how they authenticated."""

    user: User
    scope: Scope
    via: str  # "token" or "session"
    ip: str | None
    csrf_token: str | None = None
    session_hash: str | None = None
    token_id: str | None = None

    @property
    def user_id(self) -> str:
        return self.user.user_id


def app_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.churnguard
    return ctx


def request_store(request: Request) -> Iterator[Store]:
    """A per-request store (a cursor of the app's connection), closed after the request."""
    store = app_context(request).cursor()
    try:
        yield store
    finally:
        store.close()


StoreDep = Annotated[Store, Depends(request_store)]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _resolve(request: Request, store: Store) -> Caller:
    ctx = app_context(request)
    ip = client_ip(request)
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("Authorization: expected 'Bearer <token>' (POST /api/auth/token gives one).")
        user, token_id = user_for_token(store, token.strip())
        return Caller(user, Scope.of(user), "token", ip, token_id=token_id)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        session_id = ctx.signer.session_id(cookie)
        if session_id is not None:
            session = load_session(store, session_id)
            return Caller(
                session.user,
                Scope.of(session.user),
                "session",
                ip,
                csrf_token=session.csrf_token,
                session_hash=session.session_hash,
            )
    raise AuthenticationError("log in first: send 'Authorization: Bearer <token>' (POST /api/auth/token) or log in.")


async def caller(request: Request, store: StoreDep) -> Caller:
    """The authenticated caller (401 otherwise); CSRF-checked for state-changing cookie requests."""
    found = await run_in_threadpool(_resolve, request, store)
    if found.via == "session" and request.method not in SAFE_METHODS:
        submitted = request.headers.get(CSRF_HEADER)
        if submitted is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            submitted = value if isinstance(value, str) else None
        check_csrf(found.csrf_token or "", submitted)
    return found


CallerDep = Annotated[Caller, Depends(caller)]


def figures_reader(who: CallerDep) -> Caller:
    """A caller who may read company figures (admin, analyst, branch manager)."""
    if who.user.role not in READ_ROLES:
        raise AccessDeniedError(
            "account managers see their worklist and their own customers, not company figures (role account_manager)."
        )
    return who


FiguresDep = Annotated[Caller, Depends(figures_reader)]


def jsonable(value: Any) -> Any:
    from churnguard.api.services.common import clean

    return clean(value)
