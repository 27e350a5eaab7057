"""``churnguard users …``: add, list and disable users; issue an API token."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from churnguard.cli.app import FormatOption, settings_of
from churnguard.cli.render import OutputFormat, console, print_json, print_table

users_app = typer.Typer(
    help="Users and roles (admin, analyst, branch_manager, account_manager) of the API and the dashboard.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add ``users`` and its commands to the app."""
    app.add_typer(users_app, name="users")


def _read_password(password: str | None, password_stdin: bool) -> str:
    from churnguard.errors import ConfigError

    if password is not None and password_stdin:
        raise ConfigError("--password and --password-stdin: give one of them, not both.")
    if password_stdin:
        text = sys.stdin.readline().rstrip("\r\n")
        if not text:
            raise ConfigError(
                "--password-stdin: expected the password on the first line of standard input, got nothing."
            )
        return text
    if password is not None:
        return password
    if not sys.stdin.isatty():
        raise ConfigError("give the password with --password-stdin (or --password); there is no terminal to ask on.")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user name (login name).")],
    role: Annotated[str, typer.Option("--role", help="admin, analyst, branch_manager or account_manager.")],
    branch: Annotated[
        str | None, typer.Option("--branch", help="The user's branch: their scope is its subtree (admin: optional).")
    ] = None,
    password: Annotated[
        str | None, typer.Option("--password", help="The password (visible in the shell history: prefer stdin).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input.")
    ] = False,
    max_claims: Annotated[
        int | None, typer.Option("--max-claims", help="Claim limit (限制认领数量) of an account manager (default 20).")
    ] = None,
    display_name: Annotated[str | None, typer.Option("--display-name", help="The name shown in the dashboard.")] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Add a user with an Argon2-hashed password."""
    from churnguard.auth import audit
    from churnguard.auth.users import add_user
    from churnguard.store import connect

    secret = _read_password(password, password_stdin)
    with connect(settings_of(ctx).db) as store:
        user = add_user(
            store, name, role=role, branch_id=branch, password=secret, display_name=display_name, max_claims=max_claims
        )
        audit.record(store, "user.add", user_id="cli", target=name, detail={"role": role, "branch": branch})
    if fmt == OutputFormat.json:
        print_json(user.to_dict())
        return
    console.print(f"Added {user.role} [bold]{user.user_id}[/] (branch {user.branch_id or '—'}).", highlight=False)


@users_app.command("list")
def list_(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
    """Every user: role, branch, active, claims."""
    from churnguard.auth.users import list_users
    from churnguard.store import connect

    with connect(settings_of(ctx).db) as store:
        found = list_users(store)
    if fmt == OutputFormat.json:
        print_json([u.to_dict() for u in found])
        return
    print_table(
        "Users",
        ["User", "Name", "Role", "Branch", "Active", "Open claims", "Max claims", "Created"],
        [
            [u.user_id, u.display_name, u.role, u.branch_id, u.active, u.open_claims, u.max_claims, u.created_at]
            for u in found
        ],
        numeric={5, 6},
    )


@users_app.command("disable")
def disable(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user name.")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Disable a user: no more logins; their API tokens and sessions end at once."""
    from churnguard.auth import audit
    from churnguard.auth.users import disable_user
    from churnguard.store import connect

    with connect(settings_of(ctx).db) as store:
        user = disable_user(store, name)
        audit.record(store, "user.disable", user_id="cli", target=name)
    if fmt == OutputFormat.json:
        print_json(user.to_dict())
        return
    console.print(f"Disabled [bold]{user.user_id}[/]; their tokens and sessions are revoked.", highlight=False)


@users_app.command("token")
def token(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user name.")],
    label: Annotated[str | None, typer.Option("--name", help="A label for the token (which script uses it).")] = None,
    days: Annotated[int, typer.Option("--days", min=1, max=365, help="Lifetime in days.")] = 30,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Issue an API token for a user (shown once; only its hash is stored)."""
    import datetime as dt

    from churnguard.auth import audit
    from churnguard.auth.tokens import issue_token
    from churnguard.store import connect

    with connect(settings_of(ctx).db) as store:
        issued = issue_token(store, name, name=label, ttl=dt.timedelta(days=days))
        audit.record(store, "token.issue", user_id="cli", target=issued.token_id, detail={"for": name})
    if fmt == OutputFormat.json:
        print_json(issued.to_dict())
        return
    console.print(issued.token, highlight=False, soft_wrap=True)
