"""``churnguard campaign …``: retention and win-back campaigns (挽留/挽回活动).

Thin handlers: parse, call :mod:`churnguard.retention.campaigns` (and ``cases.assign_cases``),
render a table (labels in ``--lang``) or JSON (codes, not labels).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from churnguard.cli.app import FormatOption, settings_of
from churnguard.cli.render import OutputFormat, console, print_json, print_table
from churnguard.errors import ConfigError

campaign_app = typer.Typer(
    help="Retention and win-back campaigns: playbook, budget, control group, cases, measured effect (挽留/挽回活动).",
    no_args_is_help=True,
)

#: Labels of the campaign tables: key -> (en, zh).
LABELS: dict[str, tuple[str, str]] = {
    "campaign": ("Campaign", "活动"),
    "name": ("Name", "名称"),
    "kind": ("Kind", "类型"),
    "retain": ("retention", "挽留"),
    "winback": ("win-back", "挽回"),
    "status": ("Status", "状态"),
    "branch": ("Branch", "分支机构"),
    "as_of": ("As of", "基准日"),
    "ready_on": ("Measurable on", "可评估日期"),
    "treatment": ("Treated", "干预组"),
    "control": ("Control", "对照组"),
    "excluded": ("Excluded", "未干预"),
    "cases": ("Cases", "工单"),
    "cost": ("Cost", "成本"),
    "expected_gain": ("Expected gain", "预期收益"),
    "tier": ("Tier", "价值等级"),
    "action": ("Action", "挽留措施"),
    "customers": ("Customers", "客户数"),
    "reason": ("Reason", "原因"),
    "created_title": ("Campaign created", "活动已创建"),
    "list_title": ("Campaigns", "挽留/挽回活动"),
    "by_tier_title": ("By value tier", "按价值等级"),
    "by_action_title": ("By action", "按措施"),
    "exclusions_title": ("Not treated, and why", "未干预原因"),
    "arms_title": ("Treated vs control", "干预组与对照组"),
    "strata_title": ("By tier", "按价值等级"),
    "churn_rate": ("Churn rate", "流失率"),
    "won_back_rate": ("Win-back rate", "挽回成功率"),
    "effect": ("Effect", "效果"),
    "saved_customers": ("Customers saved", "挽留客户数"),
    "saved_value": ("Value saved", "挽留价值"),
    "roi": ("ROI", "投资回报率"),
    "too_early": ("Too early to measure", "尚未到评估期"),
    "days_left": ("days left", "天后可评估"),
    "abusive": ("abusive (flagged)", "恶意客户(已标记)"),
    "arrears": ("malicious arrears", "恶意欠费"),
    "no_value": ("value unknown", "价值未知"),
    "no_gain": ("expected gain does not cover the cost", "预期收益不足以覆盖成本"),
    "not_selected": ("budget / capacity used by others", "预算或人力已用完"),
    "assigned_title": ("Cases assigned", "工单已分配"),
    "owner": ("Account manager", "客户经理"),
    "members_title": ("Members", "活动客户"),
    "probability": ("P(churn)", "流失概率"),
    "value_at_risk": ("Value at risk", "风险价值"),
    "arm": ("Arm", "组别"),
    "uplift_title": ("Uplift by group (highest predicted first)", "按预测增益分组(由高到低)"),
    "predicted": ("Predicted uplift", "预测增益"),
    "observed": ("Observed uplift", "实际增益"),
}


def t(key: str, lang: str) -> str:
    pair = LABELS.get(key)
    if pair is None:
        return key
    return pair[1] if lang.startswith("zh") else pair[0]


def register(app: typer.Typer) -> None:
    """Add the ``campaign`` sub-app."""
    app.add_typer(campaign_app, name="campaign")


def _date(text: str | None, option: str = "--as-of") -> dt.date | None:
    from churnguard.cli.metrics_cmds import parse_date

    return parse_date(text, option)


def _open_store(ctx: typer.Context) -> Any:
    from churnguard.store import connect

    return connect(settings_of(ctx).db)


def _pct(x: float | None) -> str | None:
    return None if x is None else f"{x * 100:.2f} %"


def _pp(x: float | None) -> str | None:
    return None if x is None else f"{x * 100:+.2f} pp"


def parse_capacity_per_branch(text: str, branches: list[str]) -> dict[str, int]:
    """``"50"`` (every branch) or ``"GD-GZ=50,GD-SZ=40"`` → branch → contacts."""
    text = text.strip()
    try:
        if "=" not in text:
            n = int(text)
            return dict.fromkeys(branches, n)
        out = {}
        for part in text.split(","):
            key, _, value = part.partition("=")
            out[key.strip()] = int(value)
        return out
    except ValueError:
        raise ConfigError(
            f'--capacity-per-branch: expected a whole number or BRANCH=N,BRANCH=N, got "{text}".'
        ) from None


@campaign_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="The campaign's name.")],
    kind: Annotated[str, typer.Option("--kind", help="retain (at-risk active customers) or winback (churned).")] = (
        "retain"
    ),
    budget: Annotated[
        float | None, typer.Option("--budget", help="Money for the actions' costs (default: no limit).")
    ] = None,
    capacity: Annotated[
        int | None, typer.Option("--capacity", help="Contacts (cases) in total (default: no limit).")
    ] = None,
    capacity_per_branch: Annotated[
        str | None,
        typer.Option("--capacity-per-branch", help="Contacts per branch: N for each, or BRANCH=N,BRANCH=N."),
    ] = None,
    control_share: Annotated[
        float, typer.Option("--control-share", help="Share held out as a control group, per tier × branch.")
    ] = 0.1,
    branch: Annotated[str | None, typer.Option("--branch", help="Only this branch's subtree.")] = None,
    playbook: Annotated[
        Path | None, typer.Option("--playbook", help="Playbook YAML (default: the shipped one).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the control-group split.")] = 0,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Campaign date (default: latest scores / data).", show_default=False)
    ] = None,
    horizon_days: Annotated[
        int | None,
        typer.Option("--horizon-days", help="Days after --as-of the effect is measured over (default: the scores')."),
    ] = None,
    winback_days: Annotated[
        int, typer.Option("--winback-days", help="Win-back: customers who churned in the last N days.")
    ] = 90,
    min_value_at_risk: Annotated[
        float, typer.Option("--min-value-at-risk", help="Leave out customers with less value at risk.")
    ] = 0.0,
    method: Annotated[str, typer.Option("--method", help="Budget allocation: auto, dp or greedy.")] = "auto",
    deadline_days: Annotated[int, typer.Option("--deadline-days", help="Days to work each case.")] = 7,
    actor: Annotated[str, typer.Option("--actor", help="Who creates it (recorded).")] = "cli",
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Choose customers and actions with the playbook and budget, hold out a control group, open cases."""
    from churnguard.retention.campaigns import create_campaign

    if capacity is not None and capacity_per_branch is not None:
        raise ConfigError("give --capacity (in total) or --capacity-per-branch, not both.")
    settings = settings_of(ctx)
    with _open_store(ctx) as store:
        cap: Any = capacity
        if capacity_per_branch is not None:
            branches = [r[0] for r in store.execute("SELECT DISTINCT branch_id FROM customers").fetchall()]
            cap = parse_capacity_per_branch(capacity_per_branch, branches)
        result = create_campaign(
            store,
            name=name,
            kind=kind,
            as_of=_date(as_of),
            branch=branch,
            budget=budget,
            capacity=cap,
            control_share=control_share,
            seed=seed,
            playbook=playbook,
            min_value_at_risk=min_value_at_risk,
            actor=actor,
            horizon_days=horizon_days,
            winback_days=winback_days,
            method=method,
            deadline_days=deadline_days,
        )
    if fmt == OutputFormat.json:
        print_json(result)
        return
    lang = settings.lang
    console.print(
        f"[bold]{t('created_title', lang)}: {result['campaign_id']}[/] · {result['name']} · "
        f"{t(result['kind'], lang)} · {t('as_of', lang)} {result['as_of']} · horizon {result['horizon_days']} days"
    )
    console.print(
        f"{t('treatment', lang)} {result['treatment']:,} · {t('control', lang)} {result['control']:,} · "
        f"{t('excluded', lang)} {result['excluded']:,} · {t('cases', lang)} {result['cases_opened']:,} · "
        f"{t('cost', lang)} {result['cost']:,.2f} · {t('expected_gain', lang)} {result['expected_gain']:,.2f} "
        f"({result['allocation']['method']})"
    )
    _created_tables(result, lang)
    for note in result["notes"]:
        console.print(f"[yellow]{note}[/]")


def _label(row: dict[str, Any], lang: str) -> str | None:
    """An action's label from a row with ``action``, ``label_en``, ``label_zh`` (or a why dict)."""
    if not row.get("action"):
        return None
    en = row.get("label_en") or row.get("action_label_en")
    zh = row.get("label_zh") or row.get("action_label_zh")
    return (zh if lang.startswith("zh") else en) or row["action"]


def _created_tables(result: dict[str, Any], lang: str) -> None:
    print_table(
        t("by_tier_title", lang),
        [t(k, lang) for k in ("tier", "treatment", "control", "excluded", "cost", "expected_gain")],
        [
            [r["tier"], r["treatment"], r["control"], r["excluded"], r["cost"], r["expected_gain"]]
            for r in result["by_tier"]
        ],
        numeric={1, 2, 3, 4, 5},
    )
    print_table(
        t("by_action_title", lang),
        [t(k, lang) for k in ("action", "treatment", "cost", "expected_gain")],
        [[_label(r, lang), r["treatment"], r["cost"], r["expected_gain"]] for r in result["by_action"]],
        numeric={1, 2, 3},
    )
    if result["exclusions"]:
        print_table(
            t("exclusions_title", lang),
            [t("reason", lang), t("customers", lang)],
            [[t(k, lang), v] for k, v in result["exclusions"].items()],
            numeric={1},
        )


@campaign_app.command("assign")
def assign(
    ctx: typer.Context,
    campaign_id: Annotated[str, typer.Argument(help="The campaign (CMP-…).")],
    strategy: Annotated[str, typer.Option("--strategy", help="round_robin or load.")] = "round_robin",
    actor: Annotated[str, typer.Option("--actor", help="Who assigns (recorded in the case log).")] = "cli",
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Assign the campaign's open cases to the account managers of their branches."""
    from churnguard.retention import assign_cases
    from churnguard.retention.campaigns import get_campaign

    settings = settings_of(ctx)
    with _open_store(ctx) as store:
        get_campaign(store, campaign_id)  # a clear error for an unknown id
        result = assign_cases(store, actor=actor, campaign_id=campaign_id, strategy=strategy)
    data = {
        "campaign_id": campaign_id,
        "strategy": strategy,
        "assigned": dict(result),
        "assigned_total": sum(result.values()),
        "no_manager": list(getattr(result, "no_manager", [])),
        "at_limit": list(getattr(result, "at_limit", [])),
    }
    if fmt == OutputFormat.json:
        print_json(data)
        return
    lang = settings.lang
    console.print(f"[bold]{t('assigned_title', lang)}[/] · {campaign_id} · {strategy}: {data['assigned_total']:,}")
    print_table(
        t("assigned_title", lang),
        [t("owner", lang), t("cases", lang)],
        sorted(data["assigned"].items()),
        numeric={1},
    )
    if data["no_manager"] or data["at_limit"]:
        console.print(
            f"[yellow]{len(data['no_manager'])} cases have no account manager in their branch; "
            f"{len(data['at_limit'])} stayed in the pool (claim limits).[/]"
        )


@campaign_app.command("report")
def report(
    ctx: typer.Context,
    campaign_id: Annotated[str, typer.Argument(help="The campaign (CMP-…).")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Measure with the data up to this day (default: all).")
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Measured effect after the horizon: treated vs control, saved customers and value, cost, ROI."""
    from churnguard.retention.campaigns import campaign_report

    settings = settings_of(ctx)
    with _open_store(ctx) as store:
        result = campaign_report(store, campaign_id, as_of=_date(as_of))
    if fmt == OutputFormat.json:
        print_json(result)
        return
    lang = settings.lang
    console.print(
        f"[bold]{result['campaign_id']}[/] · {result['name']} · {t(result['kind'], lang)} · "
        f"{t('as_of', lang)} {result['as_of']} + {result['horizon_days']} days"
    )
    if result["status"] == "too_early":
        console.print(
            f"[yellow]{t('too_early', lang)}: {result['days_left']} {t('days_left', lang)} "
            f"({t('ready_on', lang)} {result['ready_on']}).[/]"
        )
        return
    rate_key = "won_back_rate" if result["kind"] == "winback" else "churned_rate"
    arms = result["arms"]
    print_table(
        t("arms_title", lang),
        [
            t("arm", lang),
            t("customers", lang),
            t("won_back_rate" if result["kind"] == "winback" else "churn_rate", lang),
            t("cost", lang),
        ],
        [
            [t(a, lang), arms[a]["customers"], _pct(arms[a][rate_key]), arms[a]["cost"]]
            for a in ("treatment", "control")
        ],
        numeric={1, 2, 3},
    )
    e = result["effect"]
    level = round(e["level"] * 100)
    console.print(
        f"{t('effect', lang)} ({e['meaning']}): {_pp(e['estimate'])}, {level} % CI [{_pp(e['low'])}, {_pp(e['high'])}]"
        f" — {e['method']}"
    )
    saved, value, roi = result["saved_customers"], result["saved_value"], result["roi"]
    console.print(
        f"{t('saved_customers', lang)} {'—' if saved is None else f'{saved:,.1f}'} · "
        f"{t('saved_value', lang)} {'—' if value is None else f'{value:,.2f}'} · "
        f"{t('cost', lang)} {result['cost']:,.2f} · {t('roi', lang)} {'—' if roi is None else f'{roi:.2f}'}"
    )
    print_table(
        t("strata_title", lang),
        [t("tier", lang), t("treatment", lang), t("control", lang), t("effect", lang), "CI"],
        [
            [
                r["tier"],
                r["treatment"],
                r["control"],
                _pp(r["effect"]),
                None if r["low"] is None else f"[{_pp(r['low'])}, {_pp(r['high'])}]",
            ]
            for r in result["by_tier"]
        ],
        numeric={1, 2, 3},
    )
    for note in result["notes"]:
        console.print(f"[yellow]{note}[/]")


@campaign_app.command("uplift")
def uplift(
    ctx: typer.Context,
    campaign_id: Annotated[str, typer.Argument(help="A measured campaign (CMP-…), with a control group.")],
    algorithm: Annotated[str, typer.Option("--algorithm", help="logistic or lightgbm.")] = "logistic",
    groups: Annotated[int, typer.Option("--groups", help="Groups of customers by predicted uplift.")] = 5,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Outcomes from the data up to this day (default: all).")
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Who responded: a two-model uplift fitted on the campaign's members, by group of predicted uplift."""
    from churnguard.retention.uplift import campaign_uplift, uplift_by_group

    settings = settings_of(ctx)
    with _open_store(ctx) as store:
        model, frame = campaign_uplift(store, campaign_id, algorithm=algorithm, as_of=_date(as_of))
    table = uplift_by_group(frame["uplift"], frame["success"], frame["arm"] == "treatment", groups=groups)
    data = {
        "campaign_id": campaign_id,
        "algorithm": algorithm,
        "treated": model.n_treated_,
        "control": model.n_control_,
        "mean_uplift": float(frame["uplift"].mean()),
        "groups": _records(table),
        "note": "groups are measured on the customers the model was fitted on (in-sample).",
    }
    if fmt == OutputFormat.json:
        print_json(data)
        return
    lang = settings.lang
    console.print(
        f"[bold]{campaign_id}[/] · {algorithm} · {t('treatment', lang)} {model.n_treated_:,} · "
        f"{t('control', lang)} {model.n_control_:,} · mean predicted uplift {_pp(data['mean_uplift'])}"
    )
    print_table(
        t("uplift_title", lang),
        [
            "#",
            t("customers", lang),
            t("treatment", lang),
            t("control", lang),
            t("predicted", lang),
            t("observed", lang),
        ],
        [
            [
                r["group"],
                r["customers"],
                r["treated"],
                r["control"],
                _pp(r["predicted_uplift"]),
                _pp(r["observed_uplift"]),
            ]
            for r in data["groups"]
        ],
        numeric={0, 1, 2, 3, 4, 5},
    )
    console.print(f"[yellow]{data['note']}[/]")


@campaign_app.command("list")
def list_(
    ctx: typer.Context,
    branch: Annotated[str | None, typer.Option("--branch", help="Campaigns of this branch's subtree.")] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """The campaigns, newest first, with their members, cases, cost and expected gain."""
    from churnguard.retention.campaigns import list_campaigns

    settings = settings_of(ctx)
    with _open_store(ctx) as store:
        scope = None
        if branch is not None:
            from churnguard.metrics.scope import CLOSURE_SQL, check_branch

            check_branch(store, branch)
            scope = [
                r[0]
                for r in store.execute(
                    f"SELECT branch_id FROM ({CLOSURE_SQL}) WHERE ancestor_id = ?", [branch]
                ).fetchall()
            ]
        frame = list_campaigns(store, branch_ids=scope)
    records = _records(frame)
    if fmt == OutputFormat.json:
        print_json(records)
        return
    lang = settings.lang
    print_table(
        t("list_title", lang),
        [
            t(k, lang)
            for k in (
                "campaign",
                "name",
                "kind",
                "branch",
                "as_of",
                "ready_on",
                "treatment",
                "control",
                "cases",
                "cost",
                "expected_gain",
            )
        ],
        [
            [
                r["campaign_id"],
                r["name"],
                t(r["kind"], lang),
                r["branch_id"],
                r["as_of"],
                r["ready_on"],
                r["treatment"],
                r["control"],
                r["cases"],
                r["cost"],
                r["expected_gain"],
            ]
            for r in records
        ],
        numeric={6, 7, 8, 9, 10},
    )


@campaign_app.command("members")
def members(
    ctx: typer.Context,
    campaign_id: Annotated[str, typer.Argument(help="The campaign (CMP-…).")],
    arm: Annotated[str | None, typer.Option("--arm", help="treatment, control or excluded.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many (largest expected gain first).")] = 20,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """The campaign's customers with their arm, action and why (the recorded reasoning)."""
    from churnguard.retention.campaigns import campaign_members

    settings = settings_of(ctx)
    with _open_store(ctx) as store:
        frame = campaign_members(store, campaign_id, arm=arm, limit=limit)
    records = _records(frame)
    for r in records:
        r["why"] = json.loads(r["why"]) if r.get("why") else None
    if fmt == OutputFormat.json:
        print_json(records)
        return
    lang = settings.lang
    print_table(
        t("members_title", lang),
        [
            "Customer",
            t("tier", lang),
            t("arm", lang),
            t("probability", lang),
            t("value_at_risk", lang),
            t("reason", lang),
            t("action", lang),
            t("cost", lang),
            t("expected_gain", lang),
            "Why",
        ],
        [
            [
                r["customer_id"],
                r["tier"],
                t(r["arm"], lang),
                r["probability"],
                r["value_at_risk"],
                r["top_reason"],
                _label({**(r["why"] or {}), "action": r["action"]}, lang),
                r["action_cost"],
                r["expected_gain"],
                _why_text(r["why"], lang),
            ]
            for r in records
        ],
        numeric={3, 4, 7, 8},
    )


def _why_text(why: dict[str, Any] | None, lang: str) -> str:
    if not why:
        return ""
    if why.get("abandon_rule"):
        return f"{t(why['abandon_rule'], lang)}: {why.get('abandon_detail') or ''}"
    if why.get("decision") == "not_selected":
        return t("not_selected", lang)
    return why.get("decision") or ""


@campaign_app.command("playbook")
def playbook_cmd(
    show: Annotated[
        bool, typer.Option("--show", help="Print the shipped default playbook (YAML) to copy; the default.")
    ] = True,
    check: Annotated[Path | None, typer.Option("--check", help="Validate this playbook file.")] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Print the default playbook (--show), or check a playbook file (--check FILE)."""
    from churnguard.retention.playbook import default_playbook, default_playbook_text, load_playbook

    if check is not None:
        pb = load_playbook(check)
        if fmt == OutputFormat.json:
            print_json({"ok": True, **pb.to_dict()})
        else:
            console.print(
                f"[green]{check}: valid[/] · {len(pb.actions)} actions · tiers {', '.join(pb.tiers)} · "
                f"sections {', '.join(pb.matrices)}"
            )
        return
    if fmt == OutputFormat.json:
        print_json(default_playbook().to_dict())
        return
    typer.echo(default_playbook_text(), nl=False)


def _records(frame: Any) -> list[dict[str, Any]]:
    clean = frame.astype(object).where(frame.notna(), None)
    return clean.to_dict("records")
