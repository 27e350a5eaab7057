"""``churnguard segment …``: RFM segments, ABC value tiers, lifecycle stages; ``segment run`` stores them."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from churnguard.cli.app import FormatOption, settings_of
from churnguard.cli.render import OutputFormat, console, print_json, print_table

segment_app = typer.Typer(
    help="Customer value (客户价值): RFM segments, ABC tiers, lifecycle stages.", no_args_is_help=True
)

AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="The day the values describe (default: the data set's).", show_default=False),
]
BranchOption = Annotated[
    str | None, typer.Option("--branch", help="Limit to this branch's subtree (default: the whole company).")
]
WindowOption = Annotated[int, typer.Option("--window-days", help="Trailing window of frequency, revenue and margin.")]
BasisOption = Annotated[str, typer.Option("--basis", help="ABC value: margin, revenue or clv.")]
AShareOption = Annotated[
    float | None,
    typer.Option("--a-share", help="A tier: share of customers (--by count, 0.15) or of value (--by value, 0.70)."),
]
BShareOption = Annotated[
    float | None,
    typer.Option("--b-share", help="B tier: share of customers (--by count, 0.25) or of value (--by value, 0.20)."),
]
ByOption = Annotated[str, typer.Option("--by", help="Cut the tiers by customer count or by cumulative value share.")]


def register(app: typer.Typer) -> None:
    """Add ``segment`` and its commands to the app."""
    app.add_typer(segment_app, name="segment")


def _date(text: str | None) -> Any:
    from churnguard.cli.metrics_cmds import parse_date

    return parse_date(text, "--as-of")


def _pct(x: float | None) -> str | None:
    return None if x is None else f"{x * 100:.1f} %"


def _rfm_table(report: Any, lang: str) -> None:
    from churnguard.segments.labels import heading as h
    from churnguard.segments.labels import segment_label

    print_table(
        f"{h('rfm_title', lang)} · {report.as_of}",
        [h(k, lang) for k in ("segment", "customers", "share_customers", "churned", "revenue", "share_value")],
        [
            [
                segment_label(r["segment"], lang),
                r["customers"],
                _pct(r["share_customers"]),
                r["churned"],
                r["monetary"],
                _pct(r["share_value"]),
            ]
            for r in report.rows
        ],
        numeric={1, 2, 3, 4, 5},
    )


def _abc_table(report: Any, lang: str) -> None:
    from churnguard.segments.labels import heading as h
    from churnguard.segments.labels import tier_label

    print_table(
        f"{h('abc_title', lang)} · {report.as_of} · {report.basis}, by {report.by} "
        f"(A {report.a_share:g}, B {report.b_share:g})",
        [h(k, lang) for k in ("tier", "customers", "share_customers", "active", "value", "share_value")],
        [
            [
                tier_label(r["tier"], lang),
                r["customers"],
                _pct(r["share_customers"]),
                r["active"],
                r["value"],
                _pct(r["share_value"]),
            ]
            for r in report.rows
        ],
        numeric={1, 2, 3, 4, 5},
    )
    if report.overrides:
        print_table(
            h("overrides_title", lang),
            [h("override", lang), h("customers", lang), h("value", lang)],
            [[o["tier"], o["customers"], o["value"]] for o in report.overrides],
            numeric={1, 2},
        )


def _lifecycle_table(report: Any, lang: str) -> None:
    from churnguard.segments.labels import heading as h
    from churnguard.segments.labels import stage_label

    print_table(
        f"{h('lifecycle_title', lang)} · {report.as_of}",
        [h("stage", lang), h("customers", lang), h("share_customers", lang)],
        [[stage_label(r["stage"], lang), r["customers"], _pct(r["share"])] for r in report.rows],
        numeric={1, 2},
    )


@segment_app.command("run")
def run(
    ctx: typer.Context,
    as_of: AsOfOption = None,
    window_days: WindowOption = 365,
    basis: BasisOption = "margin",
    a_share: AShareOption = None,
    b_share: BShareOption = None,
    by: ByOption = "count",
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Compute RFM, ABC tiers and lifecycle stages for every customer and store them in customer_value."""
    from churnguard.segments import segment_customers
    from churnguard.store import connect

    settings = settings_of(ctx)
    with connect(settings.db) as store:
        result = segment_customers(
            store, as_of=_date(as_of), window_days=window_days, basis=basis, a_share=a_share, b_share=b_share, by=by
        )
    if fmt == OutputFormat.json:
        print_json(result.to_dict())
        return
    from churnguard.segments.labels import heading

    w = result.written
    console.print(
        f"[bold]{heading('run_title', settings.lang)}[/] · as of {result.as_of}: "
        f"{w['inserted']:,} inserted, {w['updated']:,} updated, {w['cleared']:,} cleared"
    )
    _rfm_table(result.rfm, settings.lang)
    _abc_table(result.abc, settings.lang)
    _lifecycle_table(result.lifecycle, settings.lang)


@segment_app.command("rfm")
def rfm(
    ctx: typer.Context,
    as_of: AsOfOption = None,
    window_days: WindowOption = 365,
    branch: BranchOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """RFM scores 1–5 by quintile and the named segments: sizes and value shares (nothing is stored)."""
    from churnguard.segments import rfm_scores
    from churnguard.store import connect

    settings = settings_of(ctx)
    with connect(settings.db) as store:
        report = rfm_scores(store, as_of=_date(as_of), window_days=window_days, branch=branch)
    if fmt == OutputFormat.json:
        print_json(report.to_dict())
        return
    _rfm_table(report, settings.lang)


@segment_app.command("abc")
def abc(
    ctx: typer.Context,
    as_of: AsOfOption = None,
    basis: BasisOption = "margin",
    a_share: AShareOption = None,
    b_share: BShareOption = None,
    by: ByOption = "count",
    window_days: WindowOption = 365,
    branch: BranchOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """ABC value tiers (ABC 分类): each tier's share of customers and of value (nothing is stored)."""
    from churnguard.segments import abc_tiers
    from churnguard.store import connect

    settings = settings_of(ctx)
    with connect(settings.db) as store:
        report = abc_tiers(
            store,
            as_of=_date(as_of),
            basis=basis,
            a_share=a_share,
            b_share=b_share,
            by=by,
            window_days=window_days,
            branch=branch,
        )
    if fmt == OutputFormat.json:
        print_json(report.to_dict())
        return
    _abc_table(report, settings.lang)


@segment_app.command("lifecycle")
def lifecycle(
    ctx: typer.Context,
    as_of: AsOfOption = None,
    new_months: Annotated[int, typer.Option("--new-months", help="Tenure below which a customer is new.")] = 3,
    trend_months: Annotated[
        int, typer.Option("--trend-months", help="Length of the recent and prior windows compared.")
    ] = 3,
    threshold: Annotated[float, typer.Option("--threshold", help="Relative change that is growth or decline.")] = 0.2,
    branch: BranchOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Lifecycle stages (培养期/成长期/成熟期/衰退期/已流失): customers per stage (nothing is stored)."""
    from churnguard.segments import lifecycle_stages
    from churnguard.store import connect

    settings = settings_of(ctx)
    with connect(settings.db) as store:
        report = lifecycle_stages(
            store,
            as_of=_date(as_of),
            new_months=new_months,
            trend_months=trend_months,
            threshold=threshold,
            branch=branch,
        )
    if fmt == OutputFormat.json:
        print_json(report.to_dict())
        return
    _lifecycle_table(report, settings.lang)
