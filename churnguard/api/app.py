"""The app factory: the REST API and the dashboard in one FastAPI app.

>>> app = create_app("duckdb:///churn.duckdb", secret=os.environ["CHURNGUARD_SECRET"])   # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8000)                                        # doctest: +SKIP

Several worker processes (a PostgreSQL store): each worker builds its own app, and with it its own
connection pool, from the environment (:func:`app_from_env`)::

    uvicorn.run("churnguard.api.app:app_from_env", factory=True, workers=4)              # doctest: +SKIP

The OpenAPI schema is published at ``/openapi.json``; ``/docs`` is a small page served by the app
itself that lists every endpoint from that schema (FastAPI's default Swagger page loads its
scripts from a CDN, which this app never does).  Static files (CSS, the dashboard's script and
Plotly's bundled ``plotly.min.js`` from the installed plotly package) come from the package.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from churnguard.api.cache import FigureCache
from churnguard.api.context import AppContext
from churnguard.api.errors import HTTP_CODES, churnguard_error_body, envelope, validation_body
from churnguard.auth.errors import AuthenticationError
from churnguard.auth.sessions import SessionSigner
from churnguard.errors import ChurnguardError, ConfigError

log = logging.getLogger("churnguard.api")

#: Secrets that are refused outside demo mode (besides empty and short ones).
WEAK_SECRETS = frozenset(
    {"secret", "changeme", "change-me", "default", "churnguard", "password", "dev", "development", "test", "demo"}
)
MIN_SECRET_LENGTH = 16
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        b"script-src 'self' 'unsafe-eval'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
]


def check_secret(secret: str | None, *, demo: bool) -> str:
    """The secret to sign cookies with: refused when empty, a known default or short (outside demo mode);
    in demo mode a missing secret is generated (sessions then end when the server stops)."""
    if demo and not secret:
        return secrets.token_urlsafe(32)
    if not secret:
        raise ConfigError(
            "the server needs a secret to sign sessions: pass --secret or set CHURNGUARD_SECRET "
            '(e.g. python -c "import secrets; print(secrets.token_urlsafe(32))"), or use --demo.'
        )
    if not demo and (secret.strip().lower() in WEAK_SECRETS or len(secret) < MIN_SECRET_LENGTH):
        raise ConfigError(
            f"the secret is a default or too short: expected at least {MIN_SECRET_LENGTH} random characters, "
            f'got {len(secret)}. Fix: generate one (python -c "import secrets; print(secrets.token_urlsafe(32))").'
        )
    return secret


class _Headers:
    """Pure ASGI middleware: security headers and ``Server-Timing: app;dur=<ms>`` on every response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()

        async def wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - t0) * 1000
                headers = list(message.get("headers", []))
                names = {h[0].lower() for h in headers}
                headers += [h for h in SECURITY_HEADERS if h[0] not in names]
                headers.append((b"server-timing", f"app;dur={ms:.1f}".encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/openapi.json")) or request.url.path == "/api"


def _install_error_handlers(app: FastAPI) -> None:
    from churnguard.web.pages import error_page

    @app.exception_handler(ChurnguardError)
    async def churnguard_error(request: Request, exc: ChurnguardError) -> Response:
        status, body = churnguard_error_body(exc)
        if _is_api(request):
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return JSONResponse(body, status_code=status, headers=headers)
        if isinstance(exc, AuthenticationError) and request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)
        return error_page(request, status, body["error"]["message"])

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        body = validation_body(list(exc.errors()))
        if _is_api(request):
            return JSONResponse(body, status_code=422)
        return error_page(request, 422, body["error"]["message"])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = HTTP_CODES.get(exc.status_code, "error")
        message = str(exc.detail) if exc.detail else code.replace("_", " ")
        if _is_api(request):
            return JSONResponse(envelope(code, message), status_code=exc.status_code, headers=exc.headers)
        return error_page(request, exc.status_code, message)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        message = "internal error; the server log has the details."
        if _is_api(request):
            return JSONResponse(envelope("internal_error", message), status_code=500)
        return error_page(request, 500, message)


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="/")


def _warm(ctx: AppContext) -> None:
    """Build the at-risk read model and the overviews of the whole company, the root and its children (the
    provinces) in the background, so that first visits are fast.  The first overview reads the spell facts of
    the data version; each period's figures then cover every branch, so deeper branches take milliseconds on
    first visit.  The other periods the pages offer (1, 3, 6 months) are computed too."""
    from churnguard.api.services import customers, figures
    from churnguard.auth.scope import Scope

    store = ctx.cursor()
    try:
        everyone = Scope("(warm-up)", "admin", None)
        customers.at_risk(store, everyone, ctx.at_risk_model(store), limit=1)  # first Arrow scan: about a second
        figures.overview(store, everyone, ctx.cache)
        roots = store.execute("SELECT branch_id FROM branches WHERE parent_id IS NULL").fetchall()
        children = store.execute(
            "SELECT b.branch_id FROM branches b JOIN branches r ON r.branch_id = b.parent_id AND r.parent_id IS NULL "
            "ORDER BY b.branch_id"
        ).fetchall()
        for (branch,) in [*roots, *children]:  # the pages head office drills into, and the provinces' own
            figures.overview(store, Scope("(warm-up)", "analyst", branch), ctx.cache)
        for months in figures.OVERVIEW_MONTHS:  # the other periods the pages offer: every branch's is then fast
            figures.overview(store, everyone, ctx.cache, months=months)
    except Exception:  # warming is an optimisation; the page computes (and reports) on its own
        log.warning("warming the overview cache failed", exc_info=True)
    finally:
        store.close()


def create_app(
    store_url: str | Path,
    *,
    secret: str | None,
    demo: bool = False,
    secure_cookies: bool = False,
    warm_cache: bool = False,
) -> FastAPI:
    """The churnguard web app (REST API under ``/api``, dashboard pages, static files) over one store.

    Parameters
    ----------
    store_url : the store (``duckdb:///PATH``); opened (and migrated) now, closed when the app stops.
    secret : signs the session and login cookies; refused when empty, a default or shorter than 16
        characters, unless ``demo`` (where a missing one is generated).
    demo : demo mode (a generated secret is allowed).
    secure_cookies : mark cookies ``Secure`` (serve behind HTTPS).
    warm_cache : compute the company overview in a background thread at start-up.
    """
    from churnguard.api.routes import auth, campaigns, cases, catalog, customers, docs, metrics, scoring
    from churnguard.store.connection import connect
    from churnguard.web import pages

    key = check_secret(secret, demo=demo)
    store = connect(store_url)
    ctx = AppContext(
        store=store, signer=SessionSigner(key), cache=FigureCache(), demo=demo, secure_cookies=secure_cookies
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm_cache:
            threading.Thread(target=_warm, args=(ctx,), name="churnguard-warm", daemon=True).start()
        try:
            yield
        finally:
            store.close()

    from churnguard import __version__

    app = FastAPI(
        title="churnguard",
        version=__version__,
        description="Customer churn management (客户流失管理系统): REST API. Every read is scoped to the "
        "caller's branch subtree. Authenticate with POST /api/auth/token, then send 'Authorization: Bearer <token>'.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.churnguard = ctx
    _install_error_handlers(app)
    for module in (auth, metrics, customers, scoring, catalog, cases, campaigns, docs):
        app.include_router(module.router)
    pages.install(app)
    app.add_middleware(_Headers)
    return app


#: The environment variables :func:`app_from_env` reads (``churnguard serve --workers N`` sets them).
ENV_DB = "CHURNGUARD_DB"
ENV_SECRET = "CHURNGUARD_SECRET"
ENV_DEMO = "CHURNGUARD_SERVE_DEMO"
ENV_SECURE_COOKIES = "CHURNGUARD_SERVE_SECURE_COOKIES"
ENV_WARM = "CHURNGUARD_SERVE_WARM"


def app_from_env() -> FastAPI:
    """The app of one worker process, its settings read from the environment (an app factory for
    ``uvicorn.run("churnguard.api.app:app_from_env", factory=True, workers=N)``).

    ``CHURNGUARD_DB`` (the store URL), ``CHURNGUARD_SECRET``, and ``CHURNGUARD_SERVE_DEMO`` /
    ``CHURNGUARD_SERVE_SECURE_COOKIES`` / ``CHURNGUARD_SERVE_WARM`` (``1`` for on).  Every worker opens
    the store itself, so each has its own PostgreSQL connection pool; all share the secret, so a
    session cookie signed by one worker is accepted by the others.
    """

    def flag(name: str) -> bool:
        return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}

    url = os.environ.get(ENV_DB)
    if not url:
        raise ConfigError(f"{ENV_DB} is not set: the app factory needs the store URL.")
    return create_app(
        url,
        secret=os.environ.get(ENV_SECRET),
        demo=flag(ENV_DEMO),
        secure_cookies=flag(ENV_SECURE_COOKIES),
        warm_cache=flag(ENV_WARM),
    )
