"""``churnguard metrics cohorts | survival | implicit``: cohort retention, lifetimes, implicit churn.

Handlers parse options, call :mod:`churnguard.metrics.cohorts`, :mod:`~churnguard.metrics.survival`
or :mod:`~churnguard.metrics.implicit`, and render: a Rich table for people, JSON for scripts.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from churnguard.cli.app import FormatOption, settings_of
from churnguard.cli.metrics_cmds import (
    AsOfOption,
    BranchOption,
    ChurnDefinitionOption,
    GraceOption,
    InactivityOption,
    parse_date,
    pct,
    store_with_rules,
)
from churnguard.cli.render import OutputFormat, console, print_json, print_table
from churnguard.i18n import label

#: This topic's labels: key -> (en, zh-CN).
LABELS: dict[str, tuple[str, str]] = {
    "cohort": ("Cohort", "客户群(首次开户)"),
    "group": ("Group", "分组"),
    "size": ("Size", "人数"),
    "average": ("Average", "加权平均"),
    "cohort_title": ("Cohort retention (客户保留率)", "客户群保留率"),
    "cohort_note": (
        "share of each signup cohort still a customer at the end of each {unit} after its signup {unit}",
        "各开户{unit}客户群在开户后第 k 个{unit}末仍为客户的比例",
    ),
    "cohort_rules": ("{definition}, as of {as_of}; ages 0 … {max_age}", "{definition},截至 {as_of};账龄 0 … {max_age}"),
    "survival_rules": (
        "{definition}, as of {as_of}; first spells, observed from {observed}",
        "{definition},截至 {as_of};首段在网期,观测起点 {observed}",
    ),
    "implicit_rules": (
        "as of {as_of}: {source} rows per 30 days, {recent} against {baseline}; a fall of more than {drop}",
        "截至 {as_of}:{source} 每30天记录数,{recent} 对比 {baseline};降幅超过 {drop}",
    ),
    "month": ("month", "月"),
    "quarter": ("quarter", "季度"),
    "survival_title": ("Customer lifetime (平均生命周期), Kaplan–Meier", "客户生命周期(Kaplan–Meier 生存分析)"),
    "customers_n": ("Customers", "客户数"),
    "churned": ("Churned", "已流失"),
    "median_days": ("Median (days)", "中位生命周期(天)"),
    "rmst_days": ("Mean to {h} d", "{h} 天内平均(天)"),
    "survival_at": ("S({d} d)", "S({d}天)"),
    "logrank": ("Log-rank test between groups", "组间 log-rank 检验"),
    "implicit_title": ("Implicit churn (隐性流失)", "隐性流失客户"),
    "active": ("Active customers", "在网客户"),
    "judged": ("Judged", "参与判定"),
    "implicit": ("Implicit churners", "隐性流失"),
    "share": ("Share of judged", "占判定客户比例"),
    "customer": ("Customer", "客户"),
    "plan": ("Plan", "套餐"),
    "baseline_rate": ("Baseline / 30 d", "基线(每30天)"),
    "recent_rate": ("Recent / 30 d", "近期(每30天)"),
    "change": ("Change", "变化"),
}


def _t(key: str, lang: str, **values: Any) -> str:
    pair = LABELS.get(key)
    text = (pair[1] if lang.startswith("zh") else pair[0]) if pair else label(key, lang)
    return text.format(**values) if values else text


def register(metrics_app: typer.Typer) -> None:
    """Add this topic's commands to ``churnguard metrics``."""
    metrics_app.command("cohorts")(cohorts)
    metrics_app.command("survival")(survival)
    metrics_app.command("implicit")(implicit)


def cohorts(
    ctx: typer.Context,
    start: Annotated[
        str | None,
        typer.Option("--from", help="First signup day of the cohorts (default: the first day the data observe)."),
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last signup day of the cohorts (default: as of).")] = None,
    period: Annotated[str, typer.Option("--period", help="month or quarter: the cohort and age unit.")] = "month",
    max_age: Annotated[int, typer.Option("--max-age", help="Last age shown, in periods after signup.")] = 24,
    by: Annotated[str | None, typer.Option("--by", help="branch, plan or segment: one matrix per group.")] = None,
    branch: BranchOption = None,
    churn_definition: ChurnDefinitionOption = None,
    grace_days: GraceOption = None,
    inactivity_days: InactivityOption = None,
    as_of: AsOfOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Cohort retention matrix (客户保留率): signup cohort × periods since signup."""
    from churnguard.metrics.cohorts import cohort_retention

    settings = settings_of(ctx)
    with store_with_rules(settings, churn_definition, grace_days, inactivity_days, as_of) as (store, rules):
        matrix = cohort_retention(
            store,
            rules=rules,
            start=parse_date(start, "--from"),
            end=parse_date(end, "--to"),
            period=period,
            max_age=max_age,
            branch=branch,
            by=by,
        )
    if fmt == OutputFormat.json:
        print_json(matrix.to_dict())
        return
    lang = settings.lang
    unit = _t(matrix.period, lang)
    scope = f" · {label('branch', lang)} {branch}" if branch else ""
    console.print(f"[bold]{_t('cohort_title', lang)}[/]{scope} — {_t('cohort_note', lang, unit=unit)}")
    console.print(
        _t("cohort_rules", lang, definition=label(rules.definition, lang), as_of=matrix.as_of, max_age=matrix.max_age),
        highlight=False,
    )
    # Show ages up to the oldest one any cohort reached.
    reached = [k for k, v in enumerate(matrix.average_retention) if v is not None]
    ages = list(range((reached[-1] + 1) if reached else 1))
    keys = [_t("cohort", lang)] + ([_t("group", lang)] if by else []) + [_t("size", lang)]
    rows = [
        [c["cohort"], *([c["group"]] if by else []), c["size"], *[_pct0(c["retention"][k]) for k in ages]]
        for c in matrix.cohorts
    ]
    rows.append(
        [
            _t("average", lang),
            *([""] if by else []),
            sum(c["size"] for c in matrix.cohorts),
            *[_pct0(matrix.average_retention[k]) for k in ages],
        ]
    )
    print_table("", [*keys, *[str(k) for k in ages]], rows, numeric=set(range(len(keys) - 1, len(keys) + len(ages))))


def survival(
    ctx: typer.Context,
    by: Annotated[
        str | None,
        typer.Option("--by", help="segment, plan, branch or cohort (first year as a customer); 'none' for all."),
    ] = "segment",
    start: Annotated[
        str | None, typer.Option("--from", help="Only customers who first started on or after this day.")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Only customers who first started on or before it.")] = None,
    horizon: Annotated[
        float | None,
        typer.Option("--horizon-days", help="Horizon of the restricted mean (default: longest common follow-up)."),
    ] = None,
    branch: BranchOption = None,
    churn_definition: ChurnDefinitionOption = None,
    grace_days: GraceOption = None,
    inactivity_days: InactivityOption = None,
    as_of: AsOfOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Kaplan–Meier customer lifetime (平均生命周期) by group: median, restricted mean, survival at 90 … 730 days."""
    from churnguard.metrics.survival import SURVIVAL_DAYS, survival_curves

    settings = settings_of(ctx)
    with store_with_rules(settings, churn_definition, grace_days, inactivity_days, as_of) as (store, rules):
        report = survival_curves(
            store,
            rules=rules,
            by=None if by in (None, "none", "all") else by,
            branch=branch,
            start=parse_date(start, "--from"),
            end=parse_date(end, "--to"),
            horizon_days=horizon,
        )
    if fmt == OutputFormat.json:
        print_json(report.to_dict())
        return
    lang = settings.lang
    scope = f" · {label('branch', lang)} {branch}" if branch else ""
    console.print(f"[bold]{_t('survival_title', lang)}[/]{scope}")
    console.print(
        _t(
            "survival_rules",
            lang,
            definition=label(rules.definition, lang),
            as_of=report.as_of,
            observed=report.observed_from or "—",
        ),
        highlight=False,
    )
    h = f"{report.horizon_days:,.0f}" if report.horizon_days else "—"
    headers = [
        _t("group", lang),
        _t("customers_n", lang),
        _t("churned", lang),
        _t("median_days", lang),
        _t("rmst_days", lang, h=h),
        *[_t("survival_at", lang, d=d) for d in SURVIVAL_DAYS],
    ]
    rows = [
        [
            g["group"],
            g["n"],
            g["events"],
            _days(g["median_lifetime_days"]),
            _days(g["restricted_mean_lifetime_days"]),
            *[pct(g["survival_at"][str(d)]) for d in SURVIVAL_DAYS],
        ]
        for g in report.groups
    ]
    print_table("", headers, rows, numeric=set(range(1, len(headers))))
    if report.logrank:
        lr = report.logrank
        console.print(
            f"{_t('logrank', lang)}: χ² = {lr['test_statistic']:.2f}, df = {lr['degrees_of_freedom']}, "
            f"p = {lr['p_value']:.3g}",
            highlight=False,
        )


def implicit(
    ctx: typer.Context,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Day judged (default: the data set's as-of date).")
    ] = None,
    recent_days: Annotated[int, typer.Option("--recent-days", help="Length of the recent window.")] = 30,
    baseline_days: Annotated[int, typer.Option("--baseline-days", help="Length of the baseline before it.")] = 90,
    drop: Annotated[float, typer.Option("--drop", help="Fall against the baseline that counts (0.5 = 50 %).")] = 0.5,
    source: Annotated[
        str, typer.Option("--source", help="Activity: events or transactions (rows counted).")
    ] = "events",
    min_baseline: Annotated[
        float, typer.Option("--min-baseline", help="Least baseline activity per 30 days of a judged customer.")
    ] = 1.0,
    measure: Annotated[
        str, typer.Option("--measure", help="rows (how often) or value (how much: events' value, amounts).")
    ] = "rows",
    event_type: Annotated[
        str | None, typer.Option("--event-type", help="Only events of this type, e.g. data_mb.", show_default=False)
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Most customers listed (largest falls first).")] = 100,
    branch: BranchOption = None,
    churn_definition: ChurnDefinitionOption = None,
    grace_days: GraceOption = None,
    inactivity_days: InactivityOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Implicit churn (隐性流失): active customers whose activity fell sharply against their own baseline."""
    from churnguard.metrics.implicit import implicit_churn

    settings = settings_of(ctx)
    with store_with_rules(settings, churn_definition, grace_days, inactivity_days, as_of) as (store, rules):
        report = implicit_churn(
            store,
            rules=rules,
            recent_days=recent_days,
            baseline_days=baseline_days,
            drop=drop,
            source=source,
            min_baseline=min_baseline,
            branch=branch,
            limit=limit,
            measure=measure,
            event_type=event_type,
        )
    if fmt == OutputFormat.json:
        print_json(report.to_dict())
        return
    lang = settings.lang
    w = report.windows
    scope = f" · {label('branch', lang)} {branch}" if branch else ""
    console.print(f"[bold]{_t('implicit_title', lang)}[/]{scope}")
    console.print(
        _t(
            "implicit_rules",
            lang,
            as_of=report.as_of,
            source=source,
            recent=f"{w['recent_from']} … {w['recent_to']}",
            baseline=f"{w['baseline_from']} … {w['baseline_to']}",
            drop=f"{drop:.0%}",
        ),
        highlight=False,
    )
    print_table(
        "",
        [_t("active", lang), _t("judged", lang), _t("implicit", lang), _t("share", lang)],
        [[report.active_customers, report.judged_customers, report.implicit_churners, pct(report.share)]],
        numeric={0, 1, 2, 3},
    )
    if report.customers:
        print_table(
            "",
            [
                _t("customer", lang),
                label("branch", lang),
                _t("plan", lang),
                _t("baseline_rate", lang),
                _t("recent_rate", lang),
                _t("change", lang),
            ],
            [
                [c["customer_id"], c["branch_id"], c["plan"], c["baseline_rate"], c["recent_rate"], pct(c["change"])]
                for c in report.customers
            ],
            numeric={3, 4, 5},
        )


def _days(x: float | None) -> str | None:
    return None if x is None else f"{x:,.0f}"


def _pct0(x: float | None) -> str | None:
    return None if x is None else f"{x * 100:.0f}%"
