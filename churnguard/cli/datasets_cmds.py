"""Data set commands: the bundled real data sets and the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnguard.cli.app import FormatOption, settings_of
from churnguard.cli.render import OutputFormat, console, print_json, print_table
from churnguard.i18n import label

datasets_app = typer.Typer(help="The bundled real data sets (IBM Telco, CDNOW, grocery, …).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(datasets_app, name="datasets")
    app.command("simulate")(simulate)


@datasets_app.command("list")
def list_cmd(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
    """List the bundled data sets."""
    from dataclasses import asdict

    from churnguard.datasets.real import list_datasets

    infos = list_datasets()
    if fmt == OutputFormat.json:
        print_json([asdict(i) for i in infos])
        return
    lang = settings_of(ctx).lang
    print_table(
        label("dataset", lang),
        ["name", label("description", lang), label("churn_definition", lang), "tables"],
        [[i.name, i.title, label(i.churn_definition, lang), ", ".join(i.tables)] for i in infos],
    )


@datasets_app.command("load")
def load_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name from `churnguard datasets list`.")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Load a bundled data set into the store (replacing the store's canonical tables), atomically."""
    from churnguard.datasets.real import load_dataset
    from churnguard.store import connect

    settings = settings_of(ctx)
    with connect(settings.db) as store:
        if fmt == OutputFormat.table:
            with console.status(f"Loading {name} …", spinner="dots"):
                results = load_dataset(store, name)
        else:
            results = load_dataset(store, name)
    if fmt == OutputFormat.json:
        print_json({"dataset": name, "loads": [r.to_dict() for r in results]})
        return
    render_loads(results, settings.lang, title=f"{label('dataset', settings.lang)}: {name}")


def render_loads(results: list, lang: str, *, title: str) -> None:
    print_table(
        title,
        [label("table", lang), label("loaded", lang), label("added", lang), label("seconds", lang)],
        [[r.table, r.rows_read, r.rows_added, r.seconds] for r in results],
        numeric={1, 2, 3},
    )


def simulate(
    customers: Annotated[int, typer.Option("--customers", "-n", min=1, help="Number of customers.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, same data.")] = 7,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (one sub-folder per table).")] = Path(
        "demo-data"
    ),
    file_format: Annotated[str, typer.Option("--file-format", help="parquet or csv.")] = "parquet",
    chunk: Annotated[
        int, typer.Option("--chunk", min=1000, help="Customers generated per chunk (memory bound).")
    ] = 100_000,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Write the seeded demo operator's tables as files (scales to 1M customers / 100M events)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from churnguard.datasets.simulator import simulate_to_dir
    from churnguard.errors import ConfigError

    if file_format not in ("parquet", "csv"):
        raise ConfigError(f'--file-format: expected parquet or csv, got "{file_format}".')
    out.mkdir(parents=True, exist_ok=True)
    columns = [TextColumn("Simulating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, disable=fmt == OutputFormat.json) as progress:
        task = progress.add_task("customers", total=customers)
        files = simulate_to_dir(
            out,
            customers,
            seed=seed,
            fmt=file_format,  # type: ignore[arg-type]
            chunk_customers=chunk,
            progress=lambda done, total: progress.update(task, completed=done),
        )
    summary = {t: [str(p) for p in paths] for t, paths in files.items()}
    if fmt == OutputFormat.json:
        print_json({"out": str(out), "customers": customers, "seed": seed, "files": summary})
        return
    print_table(
        f"Simulated {customers:,} customers (seed {seed}) → {out}",
        ["table", "files"],
        [[t, len(p)] for t, p in files.items()],
        numeric={1},
    )
    console.print(f"Load them with: churnguard ingest TABLE {out}/TABLE")
