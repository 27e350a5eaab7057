"""The churnguard command line: parse, call a service function, render.

Every command that reports something takes ``--format json``.  ``--db URL`` (or the
``CHURNGUARD_DB`` environment variable) chooses the store; the default is
``./churnguard.duckdb``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Annotated

import typer

from churnguard.cli.render import OutputFormat, print_error
from churnguard.config import LANGS, Settings, load_settings
from churnguard.errors import ChurnguardError

app = typer.Typer(
    name="churnguard",
    help="Customer churn management (客户流失管理系统): measure churn, value customers, warn early, act.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class State:
    settings: Settings


def _version(value: bool) -> None:
    if value:
        from churnguard import __version__

        typer.echo(f"churnguard {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Store URL (duckdb:///PATH or a path). Env: CHURNGUARD_DB.", show_default=False),
    ] = None,
    lang: Annotated[
        str | None, typer.Option("--lang", help=f"Label language: {', '.join(LANGS)}. Env: CHURNGUARD_LANG.")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Customer churn management (客户流失管理系统)."""
    settings = load_settings().with_overrides(db=db, lang=lang)
    ctx.obj = State(settings)


def settings_of(ctx: typer.Context) -> Settings:
    return ctx.find_root().obj.settings


FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output: a readable table or JSON.")]


#: The command modules, in help order; each has ``register(app)``.  A new command group is one line here.
COMMAND_MODULES: tuple[str, ...] = (
    "data_cmds",
    "datasets_cmds",
    "metrics_cmds",
    "segment_cmds",
    "clv_cmds",
    "features_cmds",
    "model_cmds",
    "score_cmd",
    "report_cmd",
    "campaign_cmds",
    "cases_cmds",
    "users_cmds",
    "serve_cmd",
    "demo_cmd",
    "export_cmds",
    "spark_cmds",
)


def _register() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"churnguard.cli.{name}").register(app)


_register()


def main() -> None:
    """Console entry point: run the app, turning churnguard errors into messages and exit codes.

    Usage errors, ``--help`` and exit codes are Typer's (standalone mode); a churnguard error
    raised by a command is reported here, as text or (with ``--format json``) a JSON envelope.
    """
    try:
        app()
    except ChurnguardError as exc:
        print_error(exc, OutputFormat.json if _wants_json(sys.argv[1:]) else None)
        sys.exit(exc.exit_code)


def _wants_json(argv: list[str]) -> bool:
    for i, a in enumerate(argv):
        if a in ("--format", "-f") and i + 1 < len(argv) and argv[i + 1] == "json":
            return True
        if a in ("--format=json", "-fjson"):
            return True
    return False
