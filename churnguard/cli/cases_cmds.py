"""``churnguard cases …``: the retention and win-back case workflow (挽留/挽回线索).

Thin handlers: parse, call :mod:`churnguard.retention.cases` / ``case_assign`` /
``case_outcomes``, render a table (labels in ``--lang``) or JSON (codes, not labels).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer

from churnguard.cli.app import FormatOption, settings_of
from churnguard.cli.render import OutputFormat, console, print_json, print_table
from churnguard.errors import ConfigError
from churnguard.i18n import label

cases_app = typer.Typer(
    help="Retention and win-back cases: open, assign, claim, follow up, recycle (挽留/挽回线索).",
    no_args_is_help=True,
)

NowOption = Annotated[
    str | None,
    typer.Option("--now", help="The time to act at (YYYY-MM-DDTHH:MM, UTC); default: now.", show_default=False),
]
UserOption = Annotated[str, typer.Option("--user", "-u", help="The user acting (users.user_id).")]


def register(app: typer.Typer) -> None:
    """Add the ``cases`` sub-app."""
    app.add_typer(cases_app, name="cases")


def parse_time(text: str | None, option: str = "--now") -> dt.datetime | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f'{option}: expected a time like 2024-07-01T09:30 (or a date), got "{text}".') from None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _records(frame: Any) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-ready dicts (missing values as null)."""
    clean = frame.astype(object).where(frame.notna(), None)
    return clean.to_dict("records")


def _status(code: str | None, lang: str) -> str | None:
    return None if code is None else label(f"case_status_{code}", lang)


def _kind(code: str | None, lang: str) -> str | None:
    return None if code is None else label(f"case_kind_{code}", lang)


def _open_store(ctx: typer.Context) -> Any:
    from churnguard.store import connect

    return connect(settings_of(ctx).db)


def _scope(store: Any, branch: str | None) -> list[str] | None:
    if branch is None:
        return None
    from churnguard.metrics.scope import check_branch

    check_branch(store, branch)
    return [branch]


def _print_case(case: dict[str, Any], lang: str, *, title: str) -> None:
    owner = case.get("owner_id")
    if owner and case.get("owner_name") and case["owner_name"] != owner:
        owner = f"{owner} ({case['owner_name']})"
    rows = [
        [label("case_id", lang), case["case_id"]],
        [label("case_customer", lang), case["customer_id"]],
        [label("case_branch", lang), case["branch_id"]],
        [label("case_kind", lang), _kind(case["kind"], lang)],
        [label("case_status", lang), _status(case["status"], lang)],
        [label("case_owner", lang), owner],
        [label("case_priority", lang), case.get("priority")],
        [label("case_action", lang), case.get("action")],
        [label("case_expected_gain", lang), case.get("expected_gain")],
        [label("case_deadline", lang), case.get("deadline")],
        [label("case_campaign", lang), case.get("campaign_id")],
        [label("case_opened_at", lang), case.get("created_at")],
        [label("case_closed_at", lang), case.get("closed_at")],
    ]
    print_table(title, [label("case_field", lang), label("case_value", lang)], [[k, _na(v)] for k, v in rows])


def _na(v: Any) -> Any:
    try:
        return None if v is None or v != v else v
    except (TypeError, ValueError):
        return v


@cases_app.command("list")
def list_command(
    ctx: typer.Context,
    branch: Annotated[str | None, typer.Option("--branch", help="Only cases in this branch's subtree.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Only cases held by this user.")] = None,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help="open, claimed, contacted, retained, lost, won_back, abandoned (repeatable)."),
    ] = None,
    campaign: Annotated[str | None, typer.Option("--campaign", help="Only cases of this campaign.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="retain or winback.")] = None,
    customer: Annotated[str | None, typer.Option("--customer", help="Only this customer's cases.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many rows.")] = 50,
    offset: Annotated[int, typer.Option("--offset", help="Skip this many rows first.")] = 0,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """List cases, highest priority first."""
    from churnguard.retention.cases import count_cases, list_cases

    lang = settings_of(ctx).lang
    with _open_store(ctx) as store:
        filters = {
            "branch_ids": _scope(store, branch),
            "owner_id": owner,
            "status": status or None,
            "campaign_id": campaign,
            "kind": kind,
            "customer_id": customer,
        }
        frame = list_cases(store, limit=limit, offset=offset, **filters)
        total = count_cases(store, **filters)
    if fmt == OutputFormat.json:
        print_json({"total": total, "limit": limit, "offset": offset, "cases": _records(frame)})
        return
    rows = [
        [
            r["case_id"],
            r["customer_id"],
            r["branch_id"],
            _kind(r["kind"], lang),
            _status(r["status"], lang),
            r["owner_id"],
            r["priority"],
            r["action"],
            r["deadline"],
        ]
        for r in _records(frame)
    ]
    print_table(
        f"{label('cases_title', lang)} ({len(rows)} / {total})",
        [
            label("case_id", lang),
            label("case_customer", lang),
            label("case_branch", lang),
            label("case_kind", lang),
            label("case_status", lang),
            label("case_owner", lang),
            label("case_priority", lang),
            label("case_action", lang),
            label("case_deadline", lang),
        ],
        rows,
        numeric={6},
    )


def _print_history(history: Any, lang: str) -> None:
    rows = []
    for r in _records(history):
        change = r["to_status"] if r["from_status"] == r["to_status"] else None
        if r["from_status"] != r["to_status"]:
            change = f"{_status(r['from_status'], lang) or '—'} → {_status(r['to_status'], lang)}"
        rows.append([r["ts"], r["actor"], label(f"case_event_{r['event']}", lang), change, r["note"]])
    print_table(
        label("case_history_title", lang),
        [
            label("case_time", lang),
            label("case_actor", lang),
            label("case_event", lang),
            label("case_change", lang),
            label("case_note", lang),
        ],
        rows,
    )


@cases_app.command("show")
def show(
    ctx: typer.Context,
    case_id: Annotated[str, typer.Argument(help="The case id.", show_default=False)],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """One case with its follow-up history."""
    from churnguard.retention.cases import case_history, get_case

    lang = settings_of(ctx).lang
    with _open_store(ctx) as store:
        case = get_case(store, case_id)
        history = case_history(store, case_id)
    if fmt == OutputFormat.json:
        print_json({"case": case, "history": _records(history)})
        return
    _print_case(case, lang, title=f"{label('case_id', lang)} {case_id}")
    _print_history(history, lang)


@cases_app.command("open")
def open_command(
    ctx: typer.Context,
    customer: Annotated[list[str], typer.Option("--customer", help="Customer id (repeatable).")],
    kind: Annotated[str, typer.Option("--kind", help="retain (still active) or winback (already churned).")],
    priority: Annotated[float | None, typer.Option("--priority", help="Higher is worked first.")] = None,
    action: Annotated[str | None, typer.Option("--action", help="The recommended action.")] = None,
    note: Annotated[str | None, typer.Option("--note", help="A note for the history.")] = None,
    campaign: Annotated[str | None, typer.Option("--campaign", help="The campaign the case belongs to.")] = None,
    deadline_days: Annotated[int, typer.Option("--deadline-days", help="Work the case within this many days.")] = 7,
    actor: Annotated[str, typer.Option("--actor", help="Who opens it (for the history).")] = "cli",
    now: NowOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Open cases by hand; a customer with an active case of the kind is skipped."""
    import pandas as pd

    from churnguard.retention.cases import open_cases

    rows = pd.DataFrame({"customer_id": customer, "kind": kind, "priority": priority, "action": action, "note": note})
    with _open_store(ctx) as store:
        result = open_cases(
            store, rows, actor=actor, campaign_id=campaign, deadline_days=deadline_days, now=parse_time(now)
        )
    if fmt == OutputFormat.json:
        print_json(result.to_dict())
        return
    for case_id in result:
        console.print(f"opened {case_id}")
    for s in result.skipped:
        where = f" ({s['existing_case_id']})" if s["existing_case_id"] else ""
        console.print(f"[yellow]skipped {s['customer_id']} {s['kind']}: {s['reason']}{where}[/]")


@cases_app.command("claim")
def claim(
    ctx: typer.Context,
    case_id: Annotated[str, typer.Argument(help="The case id.", show_default=False)],
    user: UserOption,
    note: Annotated[str, typer.Option("--note", help="A note for the history.")] = "",
    now: NowOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Claim an open case from your branch pool (线索领取), within your claim limit."""
    from churnguard.retention.cases import claim_case

    settings = settings_of(ctx)
    with _open_store(ctx) as store:
        case = claim_case(
            store,
            case_id,
            user,
            now=parse_time(now),
            note=note,
            claim_hours=settings.claim_hours,
            default_limit=settings.claim_limit,
        )
    if fmt == OutputFormat.json:
        print_json(case)
        return
    _print_case(case, settings.lang, title=f"{label('case_event_claim', settings.lang)}: {case_id}")


@cases_app.command("update")
def update(
    ctx: typer.Context,
    case_id: Annotated[str, typer.Argument(help="The case id.", show_default=False)],
    user: UserOption,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="contacted, retained, lost, won_back, abandoned, or open (release to the pool).",
            show_default=False,
        ),
    ] = None,
    note: Annotated[str, typer.Option("--note", help="What happened (a note alone records a contact attempt).")] = "",
    now: NowOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Record a follow-up: a new status, a note, or both."""
    from churnguard.retention.cases import update_case

    settings = settings_of(ctx)
    with _open_store(ctx) as store:
        case = update_case(
            store, case_id, user, status=status, note=note, now=parse_time(now), claim_hours=settings.claim_hours
        )
    if fmt == OutputFormat.json:
        print_json(case)
        return
    _print_case(case, settings.lang, title=case_id)


@cases_app.command("recycle")
def recycle(
    ctx: typer.Context,
    now: NowOption = None,
    actor: Annotated[str, typer.Option("--actor", help="Who recycles (for the history).")] = "system",
    branch: Annotated[str | None, typer.Option("--branch", help="Only cases in this branch's subtree.")] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Return claimed cases with no follow-up before their deadline to the pool (超时自动回收)."""
    from churnguard.retention.cases import recycle_overdue

    lang = settings_of(ctx).lang
    with _open_store(ctx) as store:
        ids = recycle_overdue(store, now=parse_time(now), actor=actor, branch_ids=_scope(store, branch))
    if fmt == OutputFormat.json:
        print_json({"recycled": ids, "count": len(ids)})
        return
    console.print(f"{label('case_recycled', lang)}: {len(ids)}")
    for case_id in ids:
        console.print(f"  {case_id}")


@cases_app.command("assign")
def assign(
    ctx: typer.Context,
    campaign: Annotated[str | None, typer.Option("--campaign", help="Assign this campaign's open cases.")] = None,
    case: Annotated[list[str] | None, typer.Option("--case", help="Assign these cases (repeatable).")] = None,
    branch: Annotated[str | None, typer.Option("--branch", help="Only cases in this branch's subtree.")] = None,
    strategy: Annotated[str, typer.Option("--strategy", help="round_robin or load (fewest held cases first).")] = (
        "round_robin"
    ),
    actor: Annotated[str, typer.Option("--actor", help="Who assigns (for the history).")] = "cli",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan; change nothing.")] = False,
    now: NowOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Assign open cases to account managers of their branch (or the nearest ancestor), within claim limits."""
    from churnguard.retention.case_assign import AT_LIMIT, NO_MANAGER, AssignmentResult, assign_cases, plan_assignment

    settings = settings_of(ctx)
    lang = settings.lang
    with _open_store(ctx) as store:
        scope = _scope(store, branch)
        if dry_run:
            plan = plan_assignment(
                store,
                campaign_id=campaign,
                case_ids=case,
                branch_ids=scope,
                strategy=strategy,
                default_limit=settings.claim_limit,
            )
            counts = plan["owner_id"].dropna().value_counts().sort_index()
            result = AssignmentResult(
                {str(k): int(v) for k, v in counts.items()},
                no_manager=plan.loc[plan["reason"] == NO_MANAGER, "case_id"].tolist(),
                at_limit=plan.loc[plan["reason"] == AT_LIMIT, "case_id"].tolist(),
                strategy=strategy,
            )
        else:
            result = assign_cases(
                store,
                actor=actor,
                campaign_id=campaign,
                case_ids=case,
                branch_ids=scope,
                strategy=strategy,
                now=parse_time(now),
                claim_hours=settings.claim_hours,
                default_limit=settings.claim_limit,
            )
    if fmt == OutputFormat.json:
        print_json({**result.to_dict(), "dry_run": dry_run})
        return
    title = label("case_assign_title", lang) + (" (dry run)" if dry_run else "") + f" · {strategy}"
    print_table(
        title,
        [label("case_owner", lang), label("case_count", lang)],
        [[o, n] for o, n in result.items()],
        numeric={1},
    )
    if result.unassigned:
        console.print(
            f"[yellow]{label('case_unassigned', lang)}: {result.unassigned} "
            f"({len(result.no_manager)}: {NO_MANAGER}; {len(result.at_limit)}: {AT_LIMIT})[/]"
        )
    if result.skipped:
        console.print(f"[yellow]not open or unknown: {', '.join(result.skipped)}[/]")


@cases_app.command("outcomes")
def outcomes(
    ctx: typer.Context,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Count cases closed up to this day (YYYY-MM-DD).")
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Outcomes of the cases: counts by status, precision at the contact threshold, win-back success rate."""
    from churnguard.cli.metrics_cmds import parse_date
    from churnguard.retention.case_outcomes import case_outcomes

    lang = settings_of(ctx).lang
    with _open_store(ctx) as store:
        data = case_outcomes(store, as_of=parse_date(as_of, "--as-of"))
    if fmt == OutputFormat.json:
        print_json(data)
        return
    rows = [
        [_kind(kind, lang), _status(status, lang), n]
        for kind, counts in data["by_status"].items()
        for status, n in counts.items()
    ]
    print_table(
        label("case_outcomes_title", lang),
        [label("case_kind", lang), label("case_status", lang), label("case_count", lang)],
        rows,
        numeric={2},
    )
    r, w = data["retain"], data["winback"]
    console.print(
        f"{label('case_kind_retain', lang)}: {label('case_precision', lang)} {_pct(r['precision'])} "
        f"({r['lost']} {_status('lost', lang)} + {r['retained']} {_status('retained', lang)} "
        f"/ {r['contacted_closed']}); threshold {_num(r['threshold'])}, mean probability {_num(r['mean_probability'])}"
    )
    console.print(
        f"{label('case_kind_winback', lang)}: {label('case_won_back_rate', lang)} {_pct(w['won_back_rate'])} "
        f"({w['won_back']} / {w['closed']})"
    )


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.1%}"


def _num(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"
