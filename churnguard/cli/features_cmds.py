"""``churnguard features build``: point-in-time features (and labels) at observation dates."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from churnguard.cli.app import FormatOption, settings_of
from churnguard.cli.render import OutputFormat, console, print_json, print_table
from churnguard.errors import ConfigError

features_app = typer.Typer(help="Point-in-time features for the early warning (流失预警特征).", no_args_is_help=True)

HEADINGS: dict[str, tuple[str, str]] = {
    "title": ("Features", "特征"),
    "feature": ("Feature", "特征"),
    "category": ("Category", "类别"),
    "mean": ("Mean", "均值"),
    "missing": ("Missing", "缺失"),
    "rows": ("rows", "行"),
    "label_rate": ("label rate", "标签比例(流失)"),
}


def register(app: typer.Typer) -> None:
    """Add ``features`` and its commands to the app."""
    app.add_typer(features_app, name="features")


def parse_days(text: str, option: str) -> int:
    """``30d``, ``30`` (days), ``4w`` (weeks) or ``3m`` (months of 30 days) as a whole number of days."""
    m = re.fullmatch(r"\s*(\d+)\s*([dwm]?)\s*", text)
    if not m:
        raise ConfigError(f'{option}: expected a number of days like 30d (or 4w, 3m), got "{text}".')
    return int(m[1]) * {"": 1, "d": 1, "w": 7, "m": 30}[m[2]]


def parse_dates(text: str) -> list[dt.date]:
    out = []
    for part in text.split(","):
        try:
            out.append(dt.date.fromisoformat(part.strip()))
        except ValueError:
            raise ConfigError(f'--as-of: expected dates like 2025-01-01 (comma-separated), got "{part}".') from None
    return out


def summary(frame: Any, lang: str) -> list[dict[str, Any]]:
    """Per feature: name, category, description, mean (numbers) or top value (categories), missing share."""
    from churnguard.features import CATALOG

    rows = []
    for name in frame.columns[2:]:
        spec = CATALOG.get(name)
        if spec is None:
            continue
        col = frame[name]
        entry: dict[str, Any] = {
            "name": name,
            "category": spec.category,
            "description": spec.description_zh if lang.startswith("zh") else spec.description_en,
            "missing_share": round(float(col.isna().mean()), 4) if len(col) else None,
        }
        if str(col.dtype) == "category":
            counts = col.value_counts()
            entry["top"] = None if counts.empty else str(counts.index[0])
        else:
            values = col.dropna().astype(float)
            entry["mean"] = round(float(values.mean()), 4) if len(values) else None
            entry["min"] = float(values.min()) if len(values) else None
            entry["max"] = float(values.max()) if len(values) else None
        rows.append(entry)
    return rows


@features_app.command("build")
def build(
    ctx: typer.Context,
    as_of: Annotated[str, typer.Option("--as-of", help="Observation date(s): YYYY-MM-DD[,YYYY-MM-DD…].")],
    horizon: Annotated[str, typer.Option("--horizon", help="Label horizon after each date (30d, 4w, 3m).")] = "30d",
    lead: Annotated[str, typer.Option("--lead", help="Gap between the date and the horizon.")] = "0d",
    labels: Annotated[bool, typer.Option("--labels/--no-labels", help="Add label, days_to_churn, churned.")] = True,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the table: .parquet or .csv.", show_default=False)
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Build point-in-time features (data before each date only) for every customer active at it."""
    from churnguard.features import CATALOG, build_features
    from churnguard.reasons import driver
    from churnguard.store import connect

    settings = settings_of(ctx)
    lang = settings.lang
    dates = parse_dates(as_of)
    horizon_days, lead_days = parse_days(horizon, "--horizon"), parse_days(lead, "--lead")
    if out is not None and out.suffix.lower() not in (".parquet", ".csv"):
        raise ConfigError(f"--out {out}: expected a .parquet or .csv file name.")
    started = time.perf_counter()
    with connect(settings.db) as store:
        frame = build_features(store, dates, horizon_days=horizon_days, lead_days=lead_days, labels=labels)
    if out is not None:
        written = frame.copy()
        written["as_of"] = written["as_of"].astype(str)
        if out.suffix.lower() == ".parquet":
            written.to_parquet(out, index=False)
        else:
            written.to_csv(out, index=False)
    data = {
        "as_of": frame.attrs.get("build", {}).get("dates", []),
        "horizon_days": horizon_days,
        "lead_days": lead_days,
        "rows": len(frame),
        "customers": int(frame["customer_id"].nunique()),
        "label_rate": round(float(frame["label"].mean()), 6) if labels and len(frame) else None,
        "features": summary(frame, lang),
        "out": str(out) if out is not None else None,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if fmt == OutputFormat.json:
        print_json(data)
        return

    def h(key: str) -> str:
        en, zh = HEADINGS[key]
        return zh if lang.startswith("zh") else en

    rate = "" if data["label_rate"] is None else f" · {h('label_rate')} {data['label_rate']:.2%}"
    console.print(f"[bold]{h('title')}[/] · {', '.join(data['as_of'])} · {data['rows']:,} {h('rows')}{rate}")
    print_table(  # descriptions: --format json, or docs/features.md
        h("title"),
        [h("feature"), h("category"), h("mean"), h("missing")],
        [
            [
                f["name"],
                driver(CATALOG[f["name"]].category).label(lang),
                f.get("mean", f.get("top")),
                f"{f['missing_share']:.0%}" if f["missing_share"] is not None else None,
            ]
            for f in data["features"]
        ],
        numeric={2, 3},
    )
    if out is not None:
        console.print(str(out))
