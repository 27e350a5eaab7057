"""``churnguard metrics loss | key-accounts | revenue``: what churn cost, key accounts, MRR retention.

Formulas and conventions: docs/metrics-loss.md.  Handlers parse, call the metric, render.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from churnguard.cli.app import FormatOption, settings_of
from churnguard.cli.metrics_cmds import (
    AsOfOption,
    BranchOption,
    ChurnDefinitionOption,
    FromOption,
    GraceOption,
    InactivityOption,
    ToOption,
    parse_date,
    pct,
    store_with_rules,
)
from churnguard.cli.render import OutputFormat, console, print_json, print_table

# key: (en, zh-CN), from the glossary's terms.
LABELS: dict[str, tuple[str, str]] = {
    "loss_title": ("Churn loss", "客户流失损失"),
    "key_title": ("Key-account churn", "大客户流失"),
    "revenue_title": ("Revenue retention (MRR)", "收入留存(月经常性收入)"),
    "totals": ("Totals", "合计"),
    "by": ("By", "按"),
    "top": ("Largest losses", "损失最大的客户"),
    "lost_accounts": ("Key accounts lost", "流失的大客户"),
    "churned": ("Churned", "流失客户数"),
    "lost_revenue": ("Lost revenue", "流失收入"),
    "profit_loss": ("Profit lost", "流失利润"),
    "margin": ("Margin", "利润率"),
    "average": ("Average per customer", "户均流失收入"),
    "share": ("Share of loss", "损失占比"),
    "customer": ("Customer", "客户"),
    "branch": ("Branch", "分支机构"),
    "churn_date": ("Churn date", "流失日期"),
    "reason": ("Reason", "流失原因"),
    "tier": ("Tier", "等级"),
    "group": ("Group", "客户组"),
    "key_accounts": ("Key accounts", "大客户"),
    "others": ("Other customers", "其他客户"),
    "start": ("At start", "期初客户数"),
    "churn_rate": ("Churn rate", "客户流失率"),
    "selection": ("Chosen by", "认定方式"),
    "period": ("Period", "期间"),
    "start_mrr": ("Start MRR", "期初MRR"),
    "new_mrr": ("New", "新增"),
    "reactivation_mrr": ("Reactivation", "回流"),
    "expansion_mrr": ("Expansion", "扩展"),
    "contraction_mrr": ("Contraction", "收缩"),
    "churned_mrr": ("Churned", "流失"),
    "end_mrr": ("End MRR", "期末MRR"),
    "grr": ("GRR", "总收入留存率"),
    "nrr": ("NRR", "净收入留存率"),
    "source_option": ("--margin", "--margin 参数"),
    "source_transactions": ("transactions' margin", "交易利润字段"),
    "no_margin": ("no margin: give --margin", "无利润率:请指定 --margin"),
    "window": ("revenue of the {n} months before each churn", "流失前 {n} 个月的收入"),
}

ByOption = Annotated[
    str | None,
    typer.Option("--by", help="branch, plan, segment, tier, reason, destination or cohort: one row each."),
]
MarginOption = Annotated[
    float | None,
    typer.Option(
        "--margin",
        help="Profit margin as a fraction (0.05 for 5 %); default: the transactions' margin column.",
        show_default=False,
    ),
]
WindowOption = Annotated[
    int, typer.Option("--window-months", help="Months of revenue before each churn that count as lost.")
]


def _l(key: str, lang: str, **kw: Any) -> str:
    en, zh = LABELS.get(key, (key, key))
    return (zh if lang.startswith("zh") else en).format(**kw)


def money(x: float | None) -> str | None:
    """Money with thousands separators and two decimals: 30,000,000.00."""
    return None if x is None else f"{x:,.2f}"


def _margin_note(margin: float | None, source: str | None, lang: str) -> str:
    if source is None:
        return _l("no_margin", lang)
    return f"{_l('margin', lang)} {pct(margin) or '—'} ({_l('source_' + source, lang)})"


def loss(
    ctx: typer.Context,
    start: FromOption,
    end: ToOption,
    margin: MarginOption = None,
    window_months: WindowOption = 12,
    by: ByOption = None,
    branch: BranchOption = None,
    churn_definition: ChurnDefinitionOption = None,
    grace_days: GraceOption = None,
    inactivity_days: InactivityOption = None,
    as_of: AsOfOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Revenue and profit lost with the customers who churned (客户流失损失)."""
    from churnguard.metrics.loss import churn_loss

    settings = settings_of(ctx)
    lang = settings.lang
    with store_with_rules(settings, churn_definition, grace_days, inactivity_days, as_of) as (store, rules):
        report = churn_loss(
            store,
            start=parse_date(start, "--from"),  # type: ignore[arg-type]
            end=parse_date(end, "--to"),  # type: ignore[arg-type]
            rules=rules,
            window_months=window_months,
            margin=margin,
            branch=branch,
            by=by,
        )
    if fmt == OutputFormat.json:
        print_json(report.to_dict())
        return
    t = report.totals
    scope = f" · {_l('branch', lang)} {branch}" if branch else ""
    console.print(
        f"[bold]{_l('loss_title', lang)} {report.start} → {report.end}[/]{scope} · "
        f"{_l('window', lang, n=report.window_months)} · {_margin_note(report.margin, report.margin_source, lang)}"
    )
    print_table(
        _l("totals", lang),
        [_l(k, lang) for k in ("churned", "lost_revenue", "profit_loss", "average")],
        [[t["churned_customers"], money(t["lost_revenue"]), money(t["profit_loss"]), money(t["average_lost_revenue"])]],
        numeric={0, 1, 2, 3},
    )
    if by is not None and report.rows:
        print_table(
            f"{_l('by', lang)} {by}",
            [by, *[_l(k, lang) for k in ("churned", "lost_revenue", "profit_loss", "share")]],
            [
                [
                    r[by],
                    r["churned_customers"],
                    money(r["lost_revenue"]),
                    money(r["profit_loss"]),
                    pct(r["share_of_loss"]),
                ]
                for r in report.rows
            ],
            numeric={1, 2, 3, 4},
        )
    if report.top_customers:
        print_table(
            _l("top", lang),
            [_l(k, lang) for k in ("customer", "branch", "churn_date", "lost_revenue", "profit_loss", "reason")],
            [
                [
                    r["customer_id"],
                    r["branch_id"],
                    r["churn_date"],
                    money(r["lost_revenue"]),
                    money(r["profit_loss"]),
                    r["reason_code"],
                ]
                for r in report.top_customers
            ],
            numeric={3, 4},
        )


def key_accounts(
    ctx: typer.Context,
    start: FromOption,
    end: ToOption,
    top_share: Annotated[
        float,
        typer.Option("--top-share", help="Without flagged VIP / A customers: the top share by revenue (0.1 = 10 %)."),
    ] = 0.1,
    margin: MarginOption = None,
    window_months: WindowOption = 12,
    branch: BranchOption = None,
    churn_definition: ChurnDefinitionOption = None,
    grace_days: GraceOption = None,
    inactivity_days: InactivityOption = None,
    as_of: AsOfOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Churn and loss among key accounts (大客户 / VIP), apart from the other customers."""
    from churnguard.metrics.loss import key_account_churn

    settings = settings_of(ctx)
    lang = settings.lang
    with store_with_rules(settings, churn_definition, grace_days, inactivity_days, as_of) as (store, rules):
        report = key_account_churn(
            store,
            start=parse_date(start, "--from"),  # type: ignore[arg-type]
            end=parse_date(end, "--to"),  # type: ignore[arg-type]
            rules=rules,
            top_share=top_share,
            branch=branch,
            margin=margin,
            window_months=window_months,
        )
    if fmt == OutputFormat.json:
        print_json(report)
        return
    scope = f" · {_l('branch', lang)} {branch}" if branch else ""
    sel = report["selection"]
    console.print(
        f"[bold]{_l('key_title', lang)} {report['from']} → {report['to']}[/]{scope} · "
        f"{_l('selection', lang)}: {sel['rule']} ({sel['key_accounts']:,}) · "
        f"{_margin_note(report['margin'], report['margin_source'], lang)}"
    )
    groups = [("key_accounts", report), ("others", report["others"])]
    print_table(
        _l("totals", lang),
        [_l(k, lang) for k in ("group", "start", "churned", "churn_rate", "lost_revenue", "profit_loss")],
        [
            [
                _l(name, lang),
                g["start_customers"],
                g["churned_customers"],
                pct(g["churn_rate"]),
                money(g["lost_revenue"]),
                money(g["profit_loss"]),
            ]
            for name, g in groups
        ],
        numeric={1, 2, 3, 4, 5},
    )
    if report["lost_accounts"]:
        print_table(
            _l("lost_accounts", lang),
            [
                _l(k, lang)
                for k in ("customer", "branch", "churn_date", "lost_revenue", "profit_loss", "reason", "tier")
            ],
            [
                [
                    r["customer_id"],
                    r["branch_id"],
                    r["churn_date"],
                    money(r["lost_revenue"]),
                    money(r["profit_loss"]),
                    r["reason_code"],
                    r["tier"],
                ]
                for r in report["lost_accounts"]
            ],
            numeric={3, 4},
        )


def revenue(
    ctx: typer.Context,
    start: FromOption,
    end: ToOption,
    period: Annotated[str | None, typer.Option("--period", help="month, quarter or year: one row each.")] = None,
    branch: BranchOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """MRR movements and gross / net revenue retention (GRR, NRR) from subscriptions."""
    from churnguard.metrics.revenue import revenue_retention
    from churnguard.store import connect

    settings = settings_of(ctx)
    lang = settings.lang
    with connect(settings.db) as store:
        report = revenue_retention(
            store,
            start=parse_date(start, "--from"),  # type: ignore[arg-type]
            end=parse_date(end, "--to"),  # type: ignore[arg-type]
            period=period,
            branch=branch,
        )
    if fmt == OutputFormat.json:
        print_json(report.to_dict())
        return
    scope = f" · {_l('branch', lang)} {branch}" if branch else ""
    console.print(f"[bold]{_l('revenue_title', lang)} {report.start} → {report.end}[/]{scope}")
    keys = ("start_mrr", "new_mrr", "reactivation_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "end_mrr")

    def line(r: dict[str, Any]) -> list[Any]:
        return [*[money(r[k]) for k in keys], pct(r["grr"]), pct(r["nrr"])]

    headers = [_l(k, lang) for k in (*keys, "grr", "nrr")]
    print_table(_l("totals", lang), headers, [line(report.totals)], numeric=set(range(len(headers))))
    if report.rows:
        print_table(
            f"{_l('by', lang)} {period}",
            [_l("period", lang), *headers],
            [[r["period"], *line(r)] for r in report.rows],
            numeric=set(range(1, len(headers) + 1)),
        )


def register(metrics_app: typer.Typer) -> None:
    """Add ``loss``, ``key-accounts`` and ``revenue`` to ``churnguard metrics``."""
    metrics_app.command("loss")(loss)
    metrics_app.command("key-accounts")(key_accounts)
    metrics_app.command("revenue")(revenue)
