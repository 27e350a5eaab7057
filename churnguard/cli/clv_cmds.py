"""``churnguard clv …``: fit CLV models, score customers into the store, check a holdout period."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from churnguard.cli.app import FormatOption, settings_of
from churnguard.cli.render import OutputFormat, console, print_json, print_table
from churnguard.errors import ConfigError

clv_app = typer.Typer(help="Customer lifetime value: BG/NBD, Gamma-Gamma, sBG (客户终身价值).", no_args_is_help=True)

MODELS = ("bgnbd", "gamma-gamma", "sbg")

#: Accepted spellings of the summary columns (ours, lifetimes', the CDNOW summary files').
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "customer_id": ("customer_id", "ID", "id", "cust", "customer"),
    "frequency": ("frequency", "x"),
    "recency": ("recency", "t_x"),
    "T": ("T",),
    "monetary_value": ("monetary_value", "zbar", "m_x", "monetary"),
}

TimeUnitOption = Annotated[str, typer.Option("--time-unit", help="day, week or month.")]


def register(app: typer.Typer) -> None:
    """Add the ``clv`` sub-app."""
    app.add_typer(clv_app, name="clv")


def _parse_date(text: str | None, option: str) -> Any:
    from churnguard.cli.metrics_cmds import parse_date

    return parse_date(text, option)


def read_summary(path: Path, needed: tuple[str, ...]) -> Any:
    """Read a summary CSV and rename known aliases to our column names."""
    import pandas as pd

    if not path.exists():
        raise ConfigError(f"--summary {path}: no such file.")
    df = pd.read_csv(path)
    rename = {}
    for ours, aliases in COLUMN_ALIASES.items():
        for a in aliases:
            if a in df.columns and ours not in df.columns:
                rename[a] = ours
                break
    df = df.rename(columns=rename)
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ConfigError(
            f"{path}: expected columns {', '.join(needed)} (or lifetimes' ID, x, t_x, T, zbar), "
            f"missing {', '.join(missing)}; found {', '.join(map(str, df.columns))}."
        )
    return df


@clv_app.command("fit")
def fit(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", help="bgnbd, gamma-gamma or sbg.")] = "bgnbd",
    summary: Annotated[
        Path | None, typer.Option("--summary", help="CSV: customer_id, frequency, recency, T [, monetary_value].")
    ] = None,
    transactions: Annotated[
        bool, typer.Option("--transactions", help="Build the summary from the store's transactions.")
    ] = False,
    calibration_end: Annotated[
        str | None, typer.Option("--calibration-end", help="With --transactions: last day fitted on (YYYY-MM-DD).")
    ] = None,
    time_unit: TimeUnitOption = "week",
    alive_counts: Annotated[
        str | None, typer.Option("--alive-counts", help="sbg: survivor counts, e.g. 1000,869,743,653.")
    ] = None,
    project: Annotated[int, typer.Option("--project", help="sbg: project this many further periods.")] = 5,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Fit one CLV model by maximum likelihood and print its parameters and convergence."""
    from churnguard.clv import BetaGeoModel, GammaGammaModel, ShiftedBetaGeoModel

    if model not in MODELS:
        raise ConfigError(f'--model: expected one of {", ".join(MODELS)}, got "{model}".')
    extra: dict[str, Any] = {}
    if model == "sbg":
        if alive_counts is None:
            raise ConfigError("--model sbg needs --alive-counts N0,N1,… (the survivors of one cohort).")
        try:
            counts = [float(v) for v in alive_counts.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f'--alive-counts: expected numbers separated by commas, got "{alive_counts}".') from None
        m: Any = ShiftedBetaGeoModel().fit(counts)
        extra["projection"] = m.project(project)
        extra["retention_rates"] = m.retention_rate(range(1, len(counts) + project)).tolist()
    else:
        needed = ("frequency", "recency", "T") if model == "bgnbd" else ("frequency", "monetary_value")
        df = _summary_frame(ctx, summary, transactions, calibration_end, time_unit, needed)
        if model == "bgnbd":
            m = BetaGeoModel().fit(df["frequency"], df["recency"], df["T"])
        else:
            m = GammaGammaModel().fit(df["frequency"], df["monetary_value"])
    result = m.result(**extra).to_dict()
    if fmt == OutputFormat.json:
        print_json(result)
        return
    console.print(f"[bold]{model}[/] · {m.summary()}")
    print_table("Parameters", ["Parameter", "Estimate"], [[k, f"{v:.6g}"] for k, v in result["params"].items()])
    if "projection" in result:
        n = len(m.alive_counts_)
        print_table(
            "Projection",
            ["Period", "Expected survivors"],
            [[n + i, round(v, 1)] for i, v in enumerate(result["projection"])],
            numeric={0, 1},
        )


def _summary_frame(
    ctx: typer.Context,
    summary: Path | None,
    transactions: bool,
    calibration_end: str | None,
    time_unit: str,
    needed: tuple[str, ...],
) -> Any:
    if (summary is None) == (not transactions):
        raise ConfigError("give either --summary FILE.csv or --transactions (from the store), not both or neither.")
    if summary is not None:
        return read_summary(summary, needed)
    from churnguard.clv.summary import rfm_summary
    from churnguard.store import connect

    with connect(settings_of(ctx).db) as store:
        return rfm_summary(
            store, calibration_end=_parse_date(calibration_end, "--calibration-end"), time_unit=time_unit
        )


@clv_app.command("score")
def score(
    ctx: typer.Context,
    horizon_months: Annotated[int, typer.Option("--horizon-months", help="Months of future value.")] = 12,
    discount: Annotated[float, typer.Option("--discount", help="Discount rate per month.")] = 0.01,
    margin: Annotated[float, typer.Option("--margin", help="Margin as a share of revenue.")] = 0.3,
    time_unit: TimeUnitOption = "week",
    approach: Annotated[
        str | None,
        typer.Option(
            "--approach",
            help="contractual (sBG on subscriptions) or non_contractual (BG/NBD × Gamma-Gamma); "
            "default: the store's churn definition.",
            show_default=False,
        ),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Fit on all data to the as-of date; write CLV, P(alive), expected transactions into customer_value."""
    from churnguard.clv.score import score_customers
    from churnguard.store import connect

    with connect(settings_of(ctx).db) as store:
        result = score_customers(
            store,
            horizon_months=horizon_months,
            discount=discount,
            margin=margin,
            time_unit=time_unit,
            approach=approach,
        )
    data = result.to_dict()
    if fmt == OutputFormat.json:
        print_json(data)
        return
    console.print(
        f"[bold]CLV as of {result.as_of}[/] · {result.model} · {horizon_months} months, "
        f"discount {discount:.2%}/month, margin {margin:.0%}"
    )
    print_table(
        "Summary",
        ["Customers", "Total CLV", "Mean CLV", "Mean P(alive)", "Expected transactions"],
        [[result.customers, result.total_clv, result.mean_clv, result.mean_p_alive, result.expected_transactions]],
        numeric={0, 1, 2, 3, 4},
    )
    for name, fit_ in result.fits.items():
        params = ", ".join(f"{k} = {v:.4g}" for k, v in fit_["params"].items())
        console.print(f"{name}: {params} (log-likelihood {fit_['log_likelihood']:.1f}, converged {fit_['converged']})")
    for note in result.notes:
        console.print(f"[yellow]{note}[/]")


@clv_app.command("holdout")
def holdout(
    ctx: typer.Context,
    calibration_end: Annotated[str, typer.Option("--calibration-end", help="Last day fitted on (YYYY-MM-DD).")],
    time_unit: TimeUnitOption = "week",
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Fit BG/NBD up to --calibration-end; predicted vs actual repeat purchases in the rest of the data."""
    from churnguard.clv.score import holdout_check
    from churnguard.store import connect

    with connect(settings_of(ctx).db) as store:
        check = holdout_check(
            store, calibration_end=_parse_date(calibration_end, "--calibration-end"), time_unit=time_unit
        )
    data = check.to_dict()
    if fmt == OutputFormat.json:
        print_json(data)
        return
    error = "" if data["error_pct"] is None else f" ({data['error_pct']:+.1f} %)"
    console.print(
        f"[bold]Holdout {check.calibration_end} → {check.observation_end}[/] · {check.customers:,} customers · "
        f"predicted {check.predicted_total:,.1f} vs actual {check.actual_total:,} repeat purchases{error}"
    )
    print_table(
        "By calibration frequency",
        ["Frequency", "Customers", "Actual mean", "Predicted mean", "Actual", "Predicted"],
        [
            [
                r["frequency"],
                r["customers"],
                r["actual_mean"],
                r["predicted_mean"],
                r["actual_total"],
                r["predicted_total"],
            ]
            for r in data["by_frequency"]
        ],
        numeric={1, 2, 3, 4, 5},
    )
