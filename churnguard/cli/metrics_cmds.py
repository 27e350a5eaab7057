"""``churnguard metrics …``: churn measurement commands.

Each topic lives in its own module (``metrics_*_cmds.py``) with a ``register(metrics_app)``
function; this module holds the sub-app, the options they share and ``metrics churn``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from churnguard.cli.app import FormatOption, settings_of
from churnguard.cli.render import OutputFormat, console, print_json, print_table
from churnguard.errors import ConfigError
from churnguard.i18n import label

metrics_app = typer.Typer(help="Churn measurement: rates, loss, cohorts, survival, alerts.", no_args_is_help=True)

#: Topic modules that add commands to ``metrics_app``.
TOPIC_MODULES = ("metrics_loss_cmds", "metrics_cohort_cmds", "metrics_alert_cmds")

FromOption = Annotated[str, typer.Option("--from", help="First day of the period (YYYY-MM-DD).")]
ToOption = Annotated[str, typer.Option("--to", help="Last day of the period (YYYY-MM-DD), included.")]
BranchOption = Annotated[
    str | None, typer.Option("--branch", help="Limit to this branch's subtree (default: the whole company).")
]
ChurnDefinitionOption = Annotated[
    str | None,
    typer.Option(
        "--churn-definition",
        help="contractual (subscriptions end) or non_contractual (inactivity); default: the data set's.",
        show_default=False,
    ),
]
GraceOption = Annotated[
    int | None, typer.Option("--grace-days", help="Contractual: days to renew before churn counts (default 30).")
]
InactivityOption = Annotated[
    int | None,
    typer.Option("--inactivity-days", help="Non-contractual: days without activity that make churn (default 90)."),
]
AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="Last day the data describe (default: the data set's).", show_default=False),
]


def register(app: typer.Typer) -> None:
    import importlib

    app.add_typer(metrics_app, name="metrics")
    for name in TOPIC_MODULES:
        importlib.import_module(f"churnguard.cli.{name}").register(metrics_app)


def parse_date(text: str | None, option: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f'{option}: expected a date like 2024-01-31, got "{text}".') from None


def rules_from_options(
    store: Any,
    churn_definition: str | None,
    grace_days: int | None,
    inactivity_days: int | None,
    as_of: str | None,
) -> Any:
    from churnguard.metrics import rules_for

    return rules_for(
        store,
        definition=churn_definition,
        grace_days=grace_days,
        inactivity_days=inactivity_days,
        as_of=parse_date(as_of, "--as-of"),
    )


@contextlib.contextmanager
def store_with_rules(
    settings: Any,
    churn_definition: str | None,
    grace_days: int | None,
    inactivity_days: int | None,
    as_of: str | None,
) -> Iterator[tuple[Any, Any]]:
    """Open the settings' store and build its churn rules from the shared options: ``(store, rules)``."""
    from churnguard.store import connect

    with connect(settings.db) as store:
        yield store, rules_from_options(store, churn_definition, grace_days, inactivity_days, as_of)


def pct(x: float | None) -> str | None:
    return None if x is None else f"{x * 100:.2f} %"


def pp(x: float | None) -> str | None:
    return None if x is None else f"{x * 100:+.2f} pp"


def _shown(key: str, value: Any, lang: str) -> Any:
    """A row's group value as shown: churn reasons by their label in the chosen language."""
    if key == "reason":
        from churnguard.reasons import REASON_CODES, reason

        return reason(value).label(lang) if value in REASON_CODES else value
    return value


@metrics_app.command("churn")
def churn(
    ctx: typer.Context,
    start: FromOption,
    end: ToOption,
    period: Annotated[str | None, typer.Option("--period", help="month, quarter or year: one row each.")] = None,
    by: Annotated[
        str | None,
        typer.Option("--by", help="branch, plan, segment, tier, cohort, reason or destination: one row each."),
    ] = None,
    branch: BranchOption = None,
    definition: Annotated[
        str, typer.Option("--definition", help="Churn-rate definition: standard, end_count, average or daily.")
    ] = "standard",
    churn_definition: ChurnDefinitionOption = None,
    grace_days: GraceOption = None,
    inactivity_days: InactivityOption = None,
    as_of: AsOfOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Customers at the start, new, churned, at the end, and the churn and retention rates (客户流失率)."""
    from churnguard.metrics import churn_report

    settings = settings_of(ctx)
    with store_with_rules(settings, churn_definition, grace_days, inactivity_days, as_of) as (store, rules):
        report = churn_report(
            store,
            start=parse_date(start, "--from"),  # type: ignore[arg-type]
            end=parse_date(end, "--to"),  # type: ignore[arg-type]
            rules=rules,
            period=period,  # type: ignore[arg-type]
            by=by,
            branch=branch,
            definition=definition,  # type: ignore[arg-type]
        )
    if fmt == OutputFormat.json:
        print_json(report.to_dict())
        return
    t = report.totals
    scope = f" · branch {branch}" if branch else ""
    console.print(
        f"[bold]Churn {report.start} → {report.end}[/]{scope} ({report.definition} rate; "
        f"{rules.definition}, as of {rules.as_of})"
    )
    lang = settings.lang
    print_table(
        label("totals", lang),
        [
            label(k, lang)
            for k in (
                "start_customers",
                "new_customers",
                "reactivated_customers",
                "churned_customers",
                "end_customers",
                "churn_rate",
                "retention_rate",
            )
        ],
        [
            [
                t["start_customers"],
                t["new_customers"],
                t["reactivated_customers"],
                t["churned_customers"],
                t["end_customers"],
                pct(t["churn_rate"]),
                pct(t["retention_rate"]),
            ]
        ],
        numeric=set(range(7)),
    )
    if report.rows:
        keys = [k for k in ("period", by) if k and k in report.rows[0]]
        print_table(
            " × ".join(label(k, lang) for k in keys),
            [
                *(label(k, lang) for k in keys),
                *(
                    label(k, lang)
                    for k in (
                        "start_customers",
                        "new_customers",
                        "churned_customers",
                        "end_customers",
                        "churn_rate",
                        "churn_rate_change",
                    )
                ),
            ],
            [
                [
                    *[_shown(k, r[k], lang) for k in keys],
                    r["start_customers"],
                    r["new_customers"],
                    r["churned_customers"],
                    r["end_customers"],
                    pct(r["churn_rate"]),
                    pp(r.get("churn_rate_change")),
                ]
                for r in report.rows
            ],
            numeric=set(range(len(keys), len(keys) + 6)),
        )
