"""``churnguard score``: score every active customer with the store's early-warning model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnguard.cli.app import FormatOption, settings_of
from churnguard.cli.render import OutputFormat, console, print_json, print_table


def register(app: typer.Typer) -> None:
    app.command("score")(score)


def score(
    ctx: typer.Context,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Score the customers active on this day (default: the day after the data end)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="A model directory or model id (default: the store's active model)."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the scores to a CSV or Parquet file.")] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Score every active customer: churn probability, risk band, value at risk and the top reasons (流失预警评分)."""
    from churnguard.cli.metrics_cmds import parse_date
    from churnguard.i18n import label
    from churnguard.predict.events import score_store
    from churnguard.reasons import driver
    from churnguard.store import connect

    settings = settings_of(ctx)
    lang = settings.lang
    with connect(settings.db) as store:
        with console.status("Scoring", spinner="dots") if fmt != OutputFormat.json else _null():
            run = score_store(store, as_of=parse_date(as_of, "--as-of"), model=model, keep_frame=out is not None)
        if out is not None:
            _write(run.frame, out)
    data = run.to_dict()
    if out is not None:
        data["out"] = str(out)
    if fmt == OutputFormat.json:
        print_json(data)
        return
    rate = run.customers / run.seconds if run.seconds else 0
    console.print(
        f"{label('scored_customers', lang)}: {run.customers:,} ({run.as_of}, {run.model_id}; "
        f"{run.seconds:.1f} s, {rate:,.0f}/s)",
        highlight=False,
    )
    print_table(
        label("risk_bands", lang),
        [label("risk_band", lang), label("customers", lang)],
        [[label(f"risk_{b}", lang), f"{n:,}"] for b, n in run.bands.items()],
        numeric={1},
    )
    print_table(
        label("top_reasons", lang),
        [label("driver_category", lang), label("customers", lang)],
        [[driver(k).label(lang) if k else "—", f"{n:,}"] for k, n in run.top_reasons.items()],
        numeric={1},
    )
    if run.value_at_risk is not None:
        console.print(f"{label('value_at_risk', lang)}: {run.value_at_risk:,.0f}", highlight=False)


def _write(frame: object, out: Path) -> None:
    if out.suffix.lower() == ".parquet":
        frame.to_parquet(out, index=False)  # type: ignore[attr-defined]
    else:
        frame.to_csv(out, index=False)  # type: ignore[attr-defined]


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
