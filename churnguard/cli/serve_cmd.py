"""``churnguard serve``: the REST API and the dashboard on one port (uvicorn)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from churnguard.cli.app import settings_of
from churnguard.cli.render import console


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def demo_credentials(store_url: str) -> list[tuple[str, str, str, str | None]]:
    """Create (or reset) the demo users of a demo store; refuse any other store."""
    from churnguard.auth.users import ensure_demo_users
    from churnguard.errors import ConfigError
    from churnguard.store import connect

    with connect(store_url) as store:
        if store.get_meta("dataset") != "demo":
            raise ConfigError(
                f"--demo serves demo stores only (made by churnguard demo), and {store.url} is not one: "
                "demo users have published passwords. Fix: drop --demo and pass --secret (or CHURNGUARD_SECRET)."
            )
        return ensure_demo_users(store)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            help="Signs the session cookies (16+ random characters). Env: CHURNGUARD_SECRET.",
            show_default=False,
        ),
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Demo store: a generated secret, and the demo users (printed).")
    ] = False,
    secure_cookies: Annotated[
        bool, typer.Option("--secure-cookies", help="Mark cookies Secure (when served behind HTTPS).")
    ] = False,
    no_warm: Annotated[bool, typer.Option("--no-warm", help="Do not precompute the overview at start-up.")] = False,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="Worker processes (PostgreSQL stores; each has its own connection pool). "
            "A DuckDB file has one writer: 1 only.",
        ),
    ] = 1,
) -> None:
    """Serve the REST API (/api, schema at /openapi.json, reference at /docs) and the dashboard.

    Refuses to start with an empty, default or short secret unless --demo, and more than one
    worker on a DuckDB store.
    """
    import uvicorn

    from churnguard.api import create_app
    from churnguard.api.app import ENV_DB, ENV_DEMO, ENV_SECRET, ENV_SECURE_COOKIES, ENV_WARM, check_secret
    from churnguard.store import connect

    settings = settings_of(ctx)
    check_workers(settings.db, workers)
    key = secret if secret is not None else os.environ.get("CHURNGUARD_SECRET")
    users = demo_credentials(settings.db) if demo else []
    if workers == 1:
        app = create_app(settings.db, secret=key, demo=demo, secure_cookies=secure_cookies, warm_cache=not no_warm)
    else:  # each worker process builds its app (and its connection pool) from the environment
        key = check_secret(key, demo=demo)  # refused here, once; a generated demo secret is shared by all
        connect(settings.db).close()  # a wrong URL is reported once, and migrations run here, not in N workers at once
        os.environ.update(
            {
                ENV_DB: str(settings.db),
                ENV_SECRET: key,
                ENV_DEMO: "1" if demo else "0",
                ENV_SECURE_COOKIES: "1" if secure_cookies else "0",
                ENV_WARM: "0" if no_warm else "1",
            }
        )
    if demo:
        console.print("Demo users (user / password / role / branch):", highlight=False)
        for user, password, role, branch in users:
            console.print(f"  {user:<14} {password:<14} {role:<16} {branch or '—'}", highlight=False)
    more = f", {workers} workers" if workers > 1 else ""
    console.print(f"Dashboard and API on http://{host}:{port}/ (API reference: /docs{more})", highlight=False)
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    else:
        uvicorn.run(
            "churnguard.api.app:app_from_env", factory=True, workers=workers, host=host, port=port, log_level="warning"
        )


def check_workers(store_url: str | None, workers: int) -> None:
    """Refuse several worker processes on a DuckDB store (one process may write a DuckDB file)."""
    from churnguard.errors import ConfigError
    from churnguard.store.connection import parse_url

    if workers > 1 and parse_url(store_url).backend != "postgresql":
        raise ConfigError(
            f"--workers {workers}: a DuckDB store is one file that one process writes, so it is served by one "
            "worker. Fix: drop --workers, or move the store to PostgreSQL (--db postgresql://…) to serve it "
            "with several worker processes."
        )
