"""``churnguard report``: the periodic churn report (阶段性客户流失情况总结与分析报告) as one HTML file."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from churnguard.cli.app import FormatOption, settings_of
from churnguard.cli.metrics_cmds import (
    AsOfOption,
    BranchOption,
    ChurnDefinitionOption,
    GraceOption,
    InactivityOption,
    parse_date,
    store_with_rules,
)
from churnguard.cli.render import OutputFormat, console, print_json


def register(app: typer.Typer) -> None:
    """Add ``churnguard report`` to the app."""
    app.command("report")(report)


def report(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path("churn-report.html"),
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="First day of the report period (YYYY-MM-DD). Default: the last 12 full months up to the as-of date.",
            show_default=False,
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="Last day of the report period (YYYY-MM-DD), included.", show_default=False),
    ] = None,
    branch: BranchOption = None,
    lang: Annotated[
        str | None, typer.Option("--lang", help="Report language: en or zh (default: the --lang setting).")
    ] = None,
    period: Annotated[
        str, typer.Option("--period", help="month or quarter: the step of the trend, the cohorts and the alerts.")
    ] = "month",
    churn_definition: ChurnDefinitionOption = None,
    grace_days: GraceOption = None,
    inactivity_days: InactivityOption = None,
    as_of: AsOfOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Write the periodic churn report: headline figures and their change, churn by branch (drill-down),
    reasons and destinations, key accounts, loss in money, cohorts, survival, implicit churn, alerts.

    One self-contained HTML file (charts embedded, no network), in English or Chinese, printable.
    Without --from/--to: the last 12 full calendar months up to the data's as-of date.
    """
    from churnguard.errors import ConfigError
    from churnguard.reports import default_range, write_churn_report

    settings = settings_of(ctx)
    language = lang or settings.lang
    with store_with_rules(settings, churn_definition, grace_days, inactivity_days, as_of) as (store, rules):
        first, last = default_range(rules)
        s, e = parse_date(start, "--from"), parse_date(end, "--to")
        if s is None and e is None:
            s, e = first, last
        elif s is None or e is None:
            raise ConfigError("--from and --to: give both (or neither, for the last 12 full months).")
        busy = console.status("Writing the churn report…") if fmt != OutputFormat.json else nullcontext()
        with busy:
            result = write_churn_report(
                store, out, start=s, end=e, branch=branch, lang=language, period=period, rules=rules
            )
    if fmt == OutputFormat.json:
        print_json(result.to_dict())
        return
    missing = [x["title"] for x in result.sections if x["status"] == "not_computed"]
    h = result.headline
    console.print(
        f"Churn {h.get('from')} → {h.get('to')}: {h.get('churned_customers', 0):,} churned, "
        f"churn rate {(h.get('churn_rate') or 0) * 100:.2f} %"
        + (f"; not in this report yet: {', '.join(missing)}" if missing else ""),
        highlight=False,
    )
    console.print(str(result.path), highlight=False, soft_wrap=True)
