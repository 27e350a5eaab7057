"""Rendering for the CLI: Rich tables for people, JSON for scripts."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from churnguard.errors import ChurnguardError, ValidationError

console = Console()
err_console = Console(stderr=True)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


def _default(o: Any) -> Any:
    if isinstance(o, dt.date | dt.datetime):
        return o.isoformat()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def print_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (no colours, no wrapping)."""
    sys.stdout.write(json.dumps(data, default=_default, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def print_table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], *, numeric: set[int] | None = None
) -> None:
    """Print a Rich table; columns whose index is in ``numeric`` are right-aligned."""
    table = Table(title=title, title_justify="left", header_style="bold")
    numeric = numeric or set()
    for i, h in enumerate(headers):
        table.add_column(h, justify="right" if i in numeric else "left")
    for r in rows:
        table.add_row(*[_cell(v) for v in r])
    console.print(table)


def _cell(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.2f}"
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ", timespec="seconds")
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v)


def print_error(exc: ChurnguardError, fmt: OutputFormat | None) -> None:
    """Report an error on stderr: a readable message, or a JSON envelope with ``--format json``."""
    if fmt == OutputFormat.json:
        body: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
        if isinstance(exc, ValidationError):
            body["problems"] = [
                {
                    "source": p.source,
                    "line": p.line,
                    "column": p.column,
                    "expected": p.expected,
                    "got": p.got,
                    "fix": p.fix,
                }
                for p in exc.problems
            ]
            body["total"] = exc.total
        sys.stderr.write(json.dumps({"error": body}, ensure_ascii=False, indent=2) + "\n")
        return
    err_console.print(f"[bold red]Error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
