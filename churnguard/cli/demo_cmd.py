"""``churnguard demo``: the whole pipeline on simulated data, then the dashboard."""

from __future__ import annotations

from typing import Annotated

import typer

from churnguard.cli.app import FormatOption, settings_of
from churnguard.cli.render import OutputFormat, console, print_json


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    ctx: typer.Context,
    customers: Annotated[int, typer.Option("--customers", "-n", min=100, help="Simulated customers.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 7,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Run everything except serving the dashboard.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace a store that holds other data.")] = False,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port of the dashboard.")] = 8000,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Build a demo store from the seeded simulator, load it, summarise it (and serve the dashboard)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from churnguard.cli.data_cmds import render_branches, render_tables
    from churnguard.demo import demo_steps, run_demo
    from churnguard.store import connect
    from churnguard.store.inventory import branch_summaries, table_summaries

    settings = settings_of(ctx)
    steps = demo_steps()
    with connect(settings.db) as store:
        columns = [SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()]
        with Progress(*columns, console=console, disable=fmt == OutputFormat.json) as progress:
            task = progress.add_task("Starting", total=len(steps))

            def on_step(step: object) -> None:
                progress.update(task, description=step.title, advance=0)  # type: ignore[attr-defined]

            result = run_demo(store, customers=customers, seed=seed, force=force, on_step=on_step)
            progress.update(task, completed=len(steps), description="Done")
        summaries = table_summaries(store)
        tree = branch_summaries(store, max_level=1)
    churn = result.outputs.get("metrics")
    report = result.outputs.get("report")
    training, scoring = result.outputs.get("train"), result.outputs.get("score")
    campaign = result.outputs.get("campaign")
    if fmt == OutputFormat.json:
        print_json(
            {
                "store": str(store.url),
                "customers": customers,
                "seed": seed,
                "steps": [s.name for s in steps],
                "tables": [s.to_dict() for s in summaries],
                "branches": [b.to_dict() for b in tree],
                "churn": churn.to_dict() if churn is not None else None,
                "report": str(report) if report is not None else None,
                "model": training.to_dict() if training is not None else None,
                "scores": scoring.to_dict() if scoring is not None else None,
                "campaign": campaign,
            }
        )
    else:
        render_tables(summaries, settings.lang, title=f"Demo store {store.url}")
        render_branches(tree, settings.lang)
        if churn is not None:
            render_churn_summary(churn, settings.lang)
        if training is not None and scoring is not None:
            render_early_warning(training, scoring)
        if campaign is not None:
            console.print(
                f"Campaign {campaign['campaign_id']}: {campaign.get('cases_opened', 0):,} retention cases opened "
                "for the treated customers (a random 10 % control group gets none); "
                f"churnguard --db {settings.db} campaign report {campaign['campaign_id']} measures it "
                "after the horizon.",
                highlight=False,
                soft_wrap=True,
            )
        if report is not None:
            console.print(f"\nThe periodic churn report: {report}", highlight=False, soft_wrap=True)
    if not no_serve:
        serve_dashboard(settings.db, fmt, port=port)


def render_early_warning(training: object, scoring: object) -> None:
    """One paragraph: the model's quality on the month it never saw, and what the scoring found."""
    t, s = training.to_dict(), scoring.to_dict()  # type: ignore[attr-defined]
    test = t["test"]
    console.print(
        f"\nEarly warning: model {t['model_id']} ({t['horizon_days']}-day horizon) on {test['as_of']}, a month it "
        f"never saw: AUC {test['auc']:.3f}, top-decile lift {test['lift_at_10']:.2f}. Scored {s['customers']:,} "
        f"active customers on {s['as_of']}: {s['bands']['high']:,} high risk, value at risk "
        f"{(s['value_at_risk'] or 0):,.0f}.",
        highlight=False,
        soft_wrap=True,
    )


def render_churn_summary(churn: object, lang: str = "en") -> None:
    """The demo's headline: churn over the last twelve months, in total and by province."""
    from churnguard.cli.metrics_cmds import pct
    from churnguard.cli.render import print_table
    from churnguard.i18n import label

    t = churn.totals  # type: ignore[attr-defined]
    keys = ("start_customers", "new_customers", "churned_customers", "churned_from_start", "end_customers")
    rows = [[label("all", lang), *(t[k] for k in keys), pct(t["churn_rate"])]]
    rows += [[r["branch"], *(r[k] for k in keys), pct(r["churn_rate"])] for r in churn.rows]  # type: ignore[attr-defined]
    print_table(
        f"{label('churn_rate', lang)} {churn.start} → {churn.end}",  # type: ignore[attr-defined]
        [label(k, lang) for k in ("branch", *keys, "churn_rate")],
        rows,
        numeric={1, 2, 3, 4, 5, 6},
    )


def serve_dashboard(db: str, fmt: OutputFormat, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """The final demo step: the dashboard on http://127.0.0.1:8000 with the demo users (printed)."""
    import uvicorn

    from churnguard.api import create_app
    from churnguard.cli.serve_cmd import demo_credentials

    users = demo_credentials(db)
    app = create_app(db, secret=None, demo=True, warm_cache=True)
    if fmt != OutputFormat.json:
        console.print("\nDemo users (user / password / role / branch):", highlight=False)
        for user, password, role, branch in users:
            console.print(f"  {user:<14} {password:<14} {role:<16} {branch or '—'}", highlight=False)
        console.print(
            f"\nThe dashboard: http://{host}:{port}/  (API reference: /docs; Ctrl-C stops it)",
            highlight=False,
        )
    uvicorn.run(app, host=host, port=port, log_level="warning")
