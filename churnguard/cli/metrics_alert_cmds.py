"""``churnguard metrics alerts | change | reasons``: churn-rate alerts, a change's impact, the reason mix.

Handlers parse, call :mod:`churnguard.metrics.alerts` / :mod:`churnguard.metrics.changes` and
render: Rich tables for people (labels in ``--lang en|zh``), JSON for scripts.
"""

from __future__ import annotations

import warnings
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
    pp,
    rules_from_options,
    store_with_rules,
)
from churnguard.cli.render import OutputFormat, console, err_console, print_json, print_table

#: Labels of this module's tables: key -> (en, zh), GLOSSARY terms.
LABELS: dict[str, tuple[str, str]] = {
    "alerts_title": ("Churn-rate alerts", "客户流失率预警"),
    "no_alerts": ("No alerts: every group is within the thresholds.", "无预警:各分组均在阈值之内。"),
    "thresholds": ("Thresholds", "阈值"),
    "ceiling_param": ("ceiling", "流失率最低标准"),
    "ceiling": ("over ceiling", "超标"),
    "jump": ("jump", "突增"),
    "jump_param": ("jump", "突增阈值"),
    "both": ("over ceiling + jump", "超标且突增"),
    "off": ("off", "未设置"),
    "severity": ("Severity", "严重程度"),
    "high": ("high", "高"),
    "medium": ("medium", "中"),
    "low": ("low", "低"),
    "kind": ("Alert", "预警类型"),
    "period": ("Period", "期间"),
    "group": ("Group", "分组"),
    "start": ("Start", "期初客户数"),
    "churned": ("Churned", "流失客户数"),
    "churn_rate": ("Churn rate", "客户流失率"),
    "previous": ("Previous", "上期流失率"),
    "change": ("Change", "流失变动率"),
    "message": ("Message", "说明"),
    "skipped": ("groups skipped (fewer customers at the start than", "个分组因期初客户数少于"),
    "change_title": ("Churn around the change on", "变更前后的客户流失:变更日期"),
    "touched": ("touched", "受影响客户"),
    "untouched": ("untouched", "未受影响客户"),
    "before": ("before", "变更前"),
    "after": ("after", "变更后"),
    "did": ("Difference-in-differences", "双重差分"),
    "reason": ("Reason", "流失原因"),
    "share": ("share", "占比"),
    "share_change": ("Share change", "占比变化"),
    "rates_title": ("Churn rate before and after", "变更前后的客户流失率"),
    "reasons_title": ("Churn reasons over time: share of churned customers", "流失原因构成的变化:占流失客户的比例"),
    "incomplete": ("Warning", "警告"),
}


def _t(key: str, lang: str) -> str:
    en, zh = LABELS.get(key, (key, key))
    return zh if lang.startswith("zh") else en


def register(metrics_app: typer.Typer) -> None:
    """Add this topic's commands to ``churnguard metrics``."""
    metrics_app.command("alerts")(alerts)
    metrics_app.command("change")(change)
    metrics_app.command("reasons")(reasons)


def alerts(
    ctx: typer.Context,
    start: FromOption,
    end: ToOption,
    period: Annotated[str, typer.Option("--period", help="month, quarter or year: the length of each rate.")] = "month",
    by: Annotated[str, typer.Option("--by", help="branch (children of --branch), segment or plan.")] = "branch",
    ceiling: Annotated[
        float | None,
        typer.Option(
            "--ceiling",
            help="Highest acceptable churn rate per period (流失率最低标准), e.g. 0.05; a monthly ceiling "
            "for --period month. Default: off.",
            show_default=False,
        ),
    ] = None,
    jump_pp: Annotated[
        float, typer.Option("--jump-pp", help="A jump: the rate rose by more than this (0.02 = 2 percentage points)…")
    ] = 0.02,
    jump_relative: Annotated[
        float,
        typer.Option("--jump-relative", help="…and by more than this relative to the previous period (0.5 = +50 %)."),
    ] = 0.5,
    no_jump: Annotated[bool, typer.Option("--no-jump", help="Raise ceiling alerts only.")] = False,
    min_start_customers: Annotated[
        int, typer.Option("--min-start-customers", help="Skip groups with fewer customers at the period's start.")
    ] = 50,
    branch: BranchOption = None,
    churn_definition: ChurnDefinitionOption = None,
    grace_days: GraceOption = None,
    inactivity_days: InactivityOption = None,
    as_of: AsOfOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Groups whose churn rate is over the ceiling or jumped against the previous period (exit code 0 either way)."""
    from churnguard.metrics.alerts import churn_alerts

    settings = settings_of(ctx)
    with store_with_rules(settings, churn_definition, grace_days, inactivity_days, as_of) as (store, rules):
        report = churn_alerts(
            store,
            start=parse_date(start, "--from"),  # type: ignore[arg-type]
            end=parse_date(end, "--to"),  # type: ignore[arg-type]
            rules=rules,
            period=period,  # type: ignore[arg-type]
            by=by,  # type: ignore[arg-type]
            ceiling=ceiling,
            jump_pp=None if no_jump else jump_pp,
            jump_relative=None if no_jump else jump_relative,
            min_start_customers=min_start_customers,
            branch=branch,
        )
    if fmt == OutputFormat.json:
        print_json(report.to_dict())
        return
    lang = settings.lang
    scope = f" · {branch}" if branch else ""
    jump = (
        _t("off", lang)
        if report.jump_pp is None and report.jump_relative is None
        else f"> {pp(report.jump_pp)} & > {report.jump_relative:.0%}"
    )
    console.print(
        f"[bold]{_t('alerts_title', lang)} {report.start} → {report.end}[/]{scope} · {period} · {by} · "
        f"{_t('ceiling_param', lang)}: {pct(report.ceiling) or _t('off', lang)} · {_t('jump_param', lang)}: {jump}",
        highlight=False,
    )
    if not report.alerts:
        console.print(_t("no_alerts", lang))
    else:
        print_table(
            _t("alerts_title", lang),
            [
                _t(k, lang)
                for k in ("severity", "kind", "period", "group", "start", "churned", "churn_rate", "previous", "change")
            ],
            [
                [
                    _t(a.severity, lang),
                    _t(a.kind, lang),
                    a.period,
                    a.group_name_zh if lang.startswith("zh") else a.group_name,
                    a.start_customers,
                    a.churned_from_start,
                    pct(a.churn_rate),
                    pct(a.previous_rate),
                    pp(a.change_pp),
                ]
                for a in report.alerts
            ],
            numeric={4, 5, 6, 7, 8},
        )
        for a in report.alerts:
            console.print(f"• {a.message(lang)}", highlight=False)
    if report.skipped_small:
        console.print(f"{report.skipped_small} {_t('skipped', lang)} {report.min_start_customers}).", highlight=False)


def change(
    ctx: typer.Context,
    date: Annotated[str, typer.Option("--date", help="The day the change applied (YYYY-MM-DD), e.g. 2024-07-01.")],
    plan: Annotated[
        str | None, typer.Option("--plan", help="The plan that changed: its customers are the touched ones.")
    ] = None,
    branch: Annotated[
        str | None, typer.Option("--branch", help="Instead of --plan: the branch the change applied to.")
    ] = None,
    window_days: Annotated[int, typer.Option("--window-days", help="Days in each window, before and after.")] = 180,
    churn_definition: ChurnDefinitionOption = None,
    grace_days: GraceOption = None,
    inactivity_days: InactivityOption = None,
    as_of: AsOfOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Churn before vs after a dated plan or price change, touched vs untouched customers (diff-in-diff)."""
    from churnguard.metrics.alerts import reason_label
    from churnguard.metrics.changes import change_impact
    from churnguard.store import connect

    settings = settings_of(ctx)
    with connect(settings.db) as store, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rules = rules_from_options(store, churn_definition, grace_days, inactivity_days, as_of)
        impact = change_impact(
            store,
            rules=rules,
            change_date=parse_date(date, "--date"),  # type: ignore[arg-type]
            plan=plan,
            branch=branch,
            window_days=window_days,
        )
    lang = settings.lang
    for w in caught:
        err_console.print(f"[bold yellow]{_t('incomplete', lang)}:[/] {w.message}", highlight=False, soft_wrap=True)
    if fmt == OutputFormat.json:
        print_json(impact.to_dict())
        return
    what = f"plan {plan}" if plan else f"branch {branch}"
    console.print(
        f"[bold]{_t('change_title', lang)} {impact.change_date}[/] · {what} · "
        f"{_t('before', lang)} {impact.before[0]} → {impact.before[1]} · "
        f"{_t('after', lang)} {impact.after[0]} → {impact.after[1]}",
        highlight=False,
    )
    b, a = _t("before", lang), _t("after", lang)
    rows: list[list[Any]] = []
    for g in ("touched", "untouched"):
        d = impact.groups[g]
        rows.append(
            [
                _t(g, lang),
                d["before"]["start_customers"],
                d["before"]["churned_customers"],
                pct(d["before"]["churn_rate"]),
                d["after"]["start_customers"],
                d["after"]["churned_customers"],
                pct(d["after"]["churn_rate"]),
                pp(d["change_pp"]),
            ]
        )
    start, churned, rate = _t("start", lang), _t("churned", lang), _t("churn_rate", lang)
    print_table(
        _t("rates_title", lang),
        [
            _t("group", lang),
            f"{start} ({b})",
            f"{churned} ({b})",
            f"{rate} ({b})",
            f"{start} ({a})",
            f"{churned} ({a})",
            f"{rate} ({a})",
            _t("change", lang),
        ],
        rows,
        numeric=set(range(1, 8)),
    )
    ci = f" (95 %: {pp(impact.did_ci95[0])} … {pp(impact.did_ci95[1])})" if impact.did_ci95 else ""
    console.print(f"[bold]{_t('did', lang)}:[/] {pp(impact.did)}{ci}", highlight=False)
    print_table(
        f"{_t('reason', lang)} · {_t('touched', lang)}",
        [
            _t("reason", lang),
            f"{churned} ({b})",
            f"{churned} ({a})",
            f"{_t('share', lang)} ({b})",
            f"{_t('share', lang)} ({a})",
            _t("share_change", lang),
        ],
        [
            [
                reason_label(r["reason"], lang),
                r["before"],
                r["after"],
                pct(r["before_share"]),
                pct(r["after_share"]),
                pp(r["share_change"]),
            ]
            for r in impact.reasons["touched"]
        ],
        numeric=set(range(1, 6)),
    )


def reasons(
    ctx: typer.Context,
    start: FromOption,
    end: ToOption,
    period: Annotated[str, typer.Option("--period", help="month, quarter or year: one row each.")] = "quarter",
    branch: BranchOption = None,
    churn_definition: ChurnDefinitionOption = None,
    grace_days: GraceOption = None,
    inactivity_days: InactivityOption = None,
    as_of: AsOfOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Each churn reason's share of the churned customers per period, and its change (流失原因构成)."""
    from churnguard.metrics.alerts import reason_label, reason_mix

    settings = settings_of(ctx)
    with store_with_rules(settings, churn_definition, grace_days, inactivity_days, as_of) as (store, rules):
        mix = reason_mix(
            store,
            start=parse_date(start, "--from"),  # type: ignore[arg-type]
            end=parse_date(end, "--to"),  # type: ignore[arg-type]
            rules=rules,
            period=period,  # type: ignore[arg-type]
            branch=branch,
        )
    if fmt == OutputFormat.json:
        print_json(mix)
        return
    lang = settings.lang
    codes = [r["reason"] for r in mix["reasons"]]
    print_table(
        f"{_t('reasons_title', lang)} · {mix['from']} → {mix['to']}" + (f" · {branch}" if branch else ""),
        [_t("period", lang), _t("churned", lang), *[reason_label(c, lang) for c in codes]],
        [[p["period"], p["churned_customers"], *[pct(m["share"]) for m in p["mix"]]] for p in mix["periods"]]
        + [["Σ", mix["churned_customers"], *[pct(r["share"]) for r in mix["reasons"]]]],
        numeric=set(range(1, len(codes) + 2)),
    )
