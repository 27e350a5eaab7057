"""Commands over the store itself: ingest, tables, branches, schema, migrate, copy-store."""

from __future__ import annotations

import contextlib
import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from churnguard.cli.app import FormatOption, settings_of
from churnguard.cli.render import OutputFormat, console, print_json, print_table
from churnguard.i18n import label


class IngestMode(StrEnum):
    append = "append"
    upsert = "upsert"
    replace = "replace"


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("ingest-all")(ingest_all)
    app.command("tables")(tables)
    app.command("branches")(branches)
    app.command("schema")(schema)
    app.command("migrate")(migrate)
    app.command("copy-store")(copy_store)


def ingest(
    ctx: typer.Context,
    table: Annotated[
        str,
        typer.Argument(
            help="Canonical table: branches, customers, subscriptions, transactions, "
            "events, tickets, surveys, churn_events."
        ),
    ],
    file: Annotated[Path, typer.Argument(help="CSV/TSV (.gz), Parquet (file or folder), JSON lines or Excel.")],
    mapping: Annotated[
        Path | None, typer.Option("--mapping", "-m", help="Mapping YAML: renames and converts your columns.")
    ] = None,
    mode: Annotated[
        IngestMode,
        typer.Option(
            "--mode",
            help="append (skip rows already stored), upsert (replace rows with the same "
            "key) or replace (replace the table).",
        ),
    ] = IngestMode.append,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Reject dates after this day (default: today).", show_default=False)
    ] = None,
    memory_limit: Annotated[
        str, typer.Option("--memory-limit", help="Engine memory during the load; beyond it, it spills to disk.")
    ] = "1GB",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and report what would change, but change nothing.")
    ] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Load FILE into TABLE: validate every row, then write all of it or nothing.

    FILE may be a folder of parts (Parquet, CSV or JSON lines), loaded as one.
    """
    from churnguard.ingest import LoadSpec

    _run_loads(ctx, [LoadSpec(table, file, mapping)], mode, as_of, memory_limit, dry_run, fmt)


def ingest_all(
    ctx: typer.Context,
    folder: Annotated[
        Path,
        typer.Argument(
            help="A folder holding TABLE.csv / TABLE.parquet / TABLE.jsonl / TABLE.xlsx files or TABLE/ part folders, "
            "e.g. the output of `churnguard simulate`.",
        ),
    ],
    mode: Annotated[IngestMode, typer.Option("--mode", help="append, upsert or replace (see ingest).")] = (
        IngestMode.append
    ),
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Reject dates after this day (default: today).", show_default=False)
    ] = None,
    memory_limit: Annotated[str, typer.Option("--memory-limit", help="Engine memory during the load.")] = "1GB",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only; change nothing.")] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Load every canonical table found in FOLDER, parents first, in one transaction: all or nothing.

    A mapping file FOLDER/TABLE.yaml, when present, is used for that table.
    """
    from churnguard.errors import ConfigError
    from churnguard.ingest import LoadSpec
    from churnguard.store.schema import TABLES

    if not folder.is_dir():
        raise ConfigError(f"{folder}: expected a folder, got {'a file' if folder.exists() else 'nothing'}.")
    loads = []
    for schema in TABLES:
        candidates = [folder / schema.name, *sorted(folder.glob(f"{schema.name}.*"))]
        found = [p for p in candidates if p.exists() and p.suffix not in (".yaml", ".yml")]
        if not found:
            continue
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise ConfigError(f"{folder}: more than one source for {schema.name} ({names}); keep one.")
        mapping = folder / f"{schema.name}.yaml"
        loads.append(LoadSpec(schema.name, found[0], mapping if mapping.exists() else None))
    if not loads:
        raise ConfigError(
            f"{folder}: expected files named after the tables (customers.csv, events/, …), found none. "
            "Fix: run `churnguard schema` for the table names."
        )
    _run_loads(ctx, loads, mode, as_of, memory_limit, dry_run, fmt)


def _run_loads(
    ctx: typer.Context,
    loads: list,
    mode: IngestMode,
    as_of: str | None,
    memory_limit: str,
    dry_run: bool,
    fmt: OutputFormat,
) -> None:
    from churnguard.errors import ConfigError
    from churnguard.ingest import ingest_tables, validate_tables
    from churnguard.store import connect

    settings = settings_of(ctx)
    as_of_date = None
    if as_of is not None:
        try:
            as_of_date = dt.date.fromisoformat(as_of)
        except ValueError:
            raise ConfigError(f'--as-of: expected a date like 2024-01-31, got "{as_of}".') from None
    run = validate_tables if dry_run else ingest_tables
    what = ", ".join(spec.table for spec in loads)
    with connect(settings.db) as store:
        status = (
            console.status(f"{'Checking' if dry_run else 'Loading'} {what} …", spinner="dots")
            if fmt == OutputFormat.table
            else contextlib.nullcontext()
        )
        with status:
            results = run(store, loads, mode=mode.value, as_of=as_of_date, memory_limit=memory_limit)
    if fmt == OutputFormat.json:
        payload = [r.to_dict() for r in results]
        print_json({"dry_run": dry_run, "loads": payload} if len(loads) > 1 or dry_run else payload[0])
        return
    lang = settings.lang
    title = "Dry run: nothing was changed" if dry_run else f"Loaded ({mode.value})"
    print_table(
        title,
        [
            label("table", lang),
            "Source",
            label("loaded", lang),
            label("added", lang),
            label("replaced", lang),
            label("skipped", lang),
            label("seconds", lang),
        ],
        [[r.table, r.source, r.rows_read, r.rows_added, r.rows_replaced, r.rows_skipped, r.seconds] for r in results],
        numeric={2, 3, 4, 5, 6},
    )
    for r in results:
        if r.extra_columns:
            console.print(f"{r.table}: extra columns kept: {', '.join(r.extra_columns)}")


def tables(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
    """List the canonical tables with row counts and date ranges."""
    from churnguard.store import connect
    from churnguard.store.inventory import table_summaries

    settings = settings_of(ctx)
    with connect(settings.db) as store:
        summaries = table_summaries(store)
        meta = {k: store.get_meta(k) for k in ("dataset", "churn_definition")}
        version = store.schema_version
    if fmt == OutputFormat.json:
        print_json(
            {"store": str(store.url), "schema_version": version, **meta, "tables": [s.to_dict() for s in summaries]}
        )
        return
    render_tables(summaries, settings.lang, title=f"{label('tables_title', settings.lang)} — {store.url}")
    if meta["dataset"]:
        console.print(
            f"{label('dataset', settings.lang)}: {meta['dataset']}  ·  "
            f"{label('churn_definition', settings.lang)}: {meta['churn_definition'] or '—'}"
        )


def render_tables(summaries: list, lang: str, *, title: str) -> None:
    print_table(
        title,
        [
            label("table", lang),
            label("rows", lang),
            label("time_column", lang),
            label("from", lang),
            label("to", lang),
            label("extra_columns", lang),
        ],
        [[s.table, s.rows, s.time_column, s.first, s.last, ", ".join(s.extra_columns) or None] for s in summaries],
        numeric={1},
    )


def branches(
    ctx: typer.Context,
    max_level: Annotated[
        int | None, typer.Option("--max-level", help="Show levels up to this (0 = head office).")
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Show the branch tree with customers per branch (each branch counts its whole subtree)."""
    from churnguard.store import connect
    from churnguard.store.inventory import branch_summaries

    settings = settings_of(ctx)
    with connect(settings.db) as store:
        rows = branch_summaries(store, max_level=max_level)
    if fmt == OutputFormat.json:
        print_json([r.to_dict() for r in rows])
        return
    render_branches(rows, settings.lang)


def render_branches(rows: list, lang: str) -> None:
    print_table(
        label("branches_title", lang),
        [label("branch", lang), "ID", label("level", lang), label("customers", lang)],
        [["  " * (r.level or 0) + r.name, r.branch_id, r.level, r.customers] for r in rows],
        numeric={2, 3},
    )


def schema(
    table: Annotated[str | None, typer.Argument(help="One table (default: all).", show_default=False)] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Show the canonical data model: tables, columns, types and rules (what a mapping maps onto)."""
    from churnguard.store.schema import TABLES, table_schema

    chosen = [table_schema(table)] if table else list(TABLES)
    if fmt == OutputFormat.json:
        print_json(
            [
                {
                    "table": t.name,
                    "description": t.description,
                    "key": list(t.key),
                    "columns": [
                        {"name": c.name, "type": c.sql_type, "required": c.required, "description": c.description}
                        for c in t.columns
                    ],
                }
                for t in chosen
            ]
        )
        return
    for t in chosen:
        print_table(
            f"{t.name} — {t.description}" + (f"  key: ({', '.join(t.key)})" if t.key else ""),
            ["column", "type", "required", "meaning"],
            [[c.name, c.sql_type, c.required, c.description] for c in t.columns],
        )


def migrate(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
    """Create the store, or upgrade an older one to this version's schema."""
    from churnguard.store import connect
    from churnguard.store.migrations import LATEST_VERSION, current_version
    from churnguard.store.migrations import migrate as run_migrations

    settings = settings_of(ctx)
    with connect(settings.db, migrate=False) as store:
        before = current_version(store.raw)
        applied = run_migrations(store.raw, source=f'store "{store.url}"')
    if fmt == OutputFormat.json:
        print_json(
            {
                "store": str(store.url),
                "from_version": before,
                "to_version": LATEST_VERSION,
                "applied": [{"version": m.version, "description": m.description} for m in applied],
            }
        )
        return
    if not applied:
        console.print(f"{store.url}: schema version {before}, up to date.")
    for m in applied:
        console.print(f"applied migration {m.version}: {m.description}")


def copy_store(
    ctx: typer.Context,
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="Target store URL (e.g. postgresql://user:pw@host/db); its contents are replaced.",
            show_default=False,
        ),
    ],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Copy every table and the metadata of --db into another store (one transaction on the target)."""
    from churnguard.store import connect
    from churnguard.store.transfer import copy_store as run_copy

    settings = settings_of(ctx)
    with connect(settings.db) as source, connect(to) as target:
        copied = run_copy(source, target)
        src, dst = str(source.url), str(target.url)
    if fmt == OutputFormat.json:
        print_json({"from": src, "to": dst, "tables": [{"table": c.table, "rows": c.rows} for c in copied]})
        return
    print_table(
        f"{src} → {dst}",
        ["table", "rows"],
        [[c.table, f"{c.rows:,}"] for c in copied],
    )
