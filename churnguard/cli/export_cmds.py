"""``churnguard export``: write the store's tables to a lake folder (Parquet) for the Spark engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnguard.cli.app import FormatOption, settings_of
from churnguard.cli.render import OutputFormat, console, print_json, print_table
from churnguard.i18n import label


def register(app: typer.Typer) -> None:
    app.command("export")(export)


def export(
    ctx: typer.Context,
    to: Annotated[Path, typer.Option("--to", help="The lake folder to write (one sub-folder per table).")],
    file_format: Annotated[
        str, typer.Option("--file-format", help="File format of the lake: parquet (what Spark reads).")
    ] = "parquet",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the tables of a folder that already holds files.")
    ] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Export the canonical tables, customer_value and churnguard_meta to a Parquet lake, for Spark."""
    from churnguard.engines.lake import export_lake
    from churnguard.store import connect

    settings = settings_of(ctx)
    with connect(settings.db, migrate=False, read_only=True) as store:
        if fmt == OutputFormat.table:
            with console.status(f"Exporting to {to} …", spinner="dots"):
                result = export_lake(store, to, file_format=file_format, overwrite=overwrite)
        else:
            result = export_lake(store, to, file_format=file_format, overwrite=overwrite)
    if fmt == OutputFormat.json:
        print_json(result.to_dict())
        return
    lang = settings.lang
    print_table(
        f"{result.folder} (parquet)",
        [label("table", lang), label("rows", lang), "files", "MB", label("seconds", lang)],
        [[t.table, t.rows, t.files, round(t.bytes / 1e6, 2), round(t.seconds, 2)] for t in result.tables],
        numeric={1, 2, 3, 4},
    )
