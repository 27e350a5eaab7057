"""The demo pipeline: what ``churnguard demo`` runs, as a list of steps.

Each step reads what earlier steps wrote to the store and writes its own tables, so later
capabilities (metrics, the report, the model, the worklist) join by appending a
:class:`DemoStep` to :func:`demo_steps`.  The CLI runs the steps with a progress display and
then serves the dashboard (the final step, skipped with ``--no-serve``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from churnguard.errors import ConfigError
from churnguard.store.connection import Store

DEMO_DATASET = "demo"


@dataclass
class DemoContext:
    store: Store
    customers: int
    seed: int
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoStep:
    name: str
    title: str
    run: Callable[[DemoContext], Any]


def _simulate(ctx: DemoContext) -> Any:
    from churnguard.datasets.simulator import simulate

    sim = simulate(ctx.customers, seed=ctx.seed)
    ctx.outputs["simulation"] = sim
    return {name: t.num_rows for name, t in sim.tables.items()}


def _load(ctx: DemoContext) -> Any:
    from churnguard.ingest import LoadSpec, ingest_tables

    sim = ctx.outputs["simulation"]
    results = ingest_tables(
        ctx.store,
        [LoadSpec(name, table) for name, table in sim.tables.items()],
        mode="replace",
        clear_all=True,
        as_of=sim.end,
    )
    ctx.store.set_meta("dataset", DEMO_DATASET)
    ctx.store.set_meta("churn_definition", "contractual")
    ctx.store.set_meta("demo_seed", str(ctx.seed))
    ctx.store.set_meta("dataset_as_of", sim.end.isoformat())
    return results


def _metrics(ctx: DemoContext) -> Any:
    """Churn over the last full 12 months of the demo data, in total and by province."""
    import datetime as dt

    from churnguard.metrics import churn_report, rules_for
    from churnguard.metrics.churn import last_twelve_months

    rules = rules_for(ctx.store)
    start, end = last_twelve_months(rules.as_of or dt.date.today())
    return churn_report(ctx.store, start=start, end=end, rules=rules, by="branch")


def _report(ctx: DemoContext) -> Any:
    """The periodic churn report of the last 12 full months, written next to the store; its path.

    In-memory stores have no folder to write to: the step is skipped (``None``).
    """
    from pathlib import Path

    from churnguard.metrics import rules_for
    from churnguard.reports import default_range, write_churn_report

    folder = ctx.store.folder
    if folder is None:
        return None
    rules = rules_for(ctx.store)
    start, end = default_range(rules)
    out = Path(folder) / f"{ctx.store.name}-report.html"
    return write_churn_report(ctx.store, out, start=start, end=end, rules=rules).path


def _segments(ctx: DemoContext) -> Any:
    """RFM, ABC value tiers and lifecycle stages, stored per customer (customer_value)."""
    from churnguard.segments import segment_customers

    return segment_customers(ctx.store)


def _clv(ctx: DemoContext) -> Any:
    """Customer lifetime value, P(alive) and expected transactions per customer (customer_value)."""
    from churnguard.clv.score import score_customers

    return score_customers(ctx.store)


def _train(ctx: DemoContext) -> Any:
    """The early-warning model: point-in-time features at 12 month starts, a 30-day horizon, time backtest."""
    from churnguard.predict.events import train_from_store

    return train_from_store(ctx.store, horizon_days=30, count=12)


def _score(ctx: DemoContext) -> Any:
    """Churn probability, reasons and value at risk for every active customer (scores)."""
    from churnguard.predict.events import score_store

    return score_store(ctx.store)


def _users(ctx: DemoContext) -> Any:
    """Demo users: an admin, an analyst, a branch manager (Guangdong) and two account managers."""
    from churnguard.auth.users import ensure_demo_users

    return ensure_demo_users(ctx.store)


def _campaign(ctx: DemoContext) -> Any:
    """A retention campaign on the scores (budget 20,000, 10 % control), its cases assigned by load."""
    from churnguard.retention.campaigns import create_campaign
    from churnguard.retention.case_assign import assign_cases

    campaign = create_campaign(
        ctx.store, name="Demo retention", kind="retain", budget=20_000, control_share=0.1, seed=ctx.seed, actor="demo"
    )
    assign_cases(ctx.store, actor="demo", campaign_id=campaign["campaign_id"], strategy="load")
    return campaign


def demo_steps() -> list[DemoStep]:
    """The demo's steps in order (serving the dashboard is the CLI's last step)."""
    return [
        DemoStep("simulate", "Simulating a telecom operator", _simulate),
        DemoStep("load", "Loading the canonical tables", _load),
        DemoStep("metrics", "Measuring churn", _metrics),
        DemoStep("segments", "Valuing customers (RFM, ABC tiers, lifecycle)", _segments),
        DemoStep("clv", "Customer lifetime value", _clv),
        DemoStep("train", "Training the early-warning model", _train),
        DemoStep("score", "Scoring every active customer", _score),
        DemoStep("users", "Creating the demo users", _users),
        DemoStep("campaign", "Planning a retention campaign and assigning its cases", _campaign),
        DemoStep("report", "Writing the churn report", _report),
    ]


def check_demo_target(store: Store, *, force: bool) -> None:
    """Refuse to overwrite a store that holds data other than a previous demo."""
    dataset = store.get_meta("dataset")
    has_rows = store.execute("SELECT count(*) FROM customers").fetchone()[0] > 0
    if has_rows and dataset != DEMO_DATASET and not force:
        raise ConfigError(
            f"{store.url} already holds data ({dataset or 'loaded by hand'}); the demo would replace it. "
            "Fix: pass --db with another file (e.g. --db demo.duckdb), or --force to replace it."
        )


def run_demo(
    store: Store,
    *,
    customers: int = 20_000,
    seed: int = 7,
    force: bool = False,
    on_step: Callable[[DemoStep], None] | None = None,
) -> DemoContext:
    """Run every demo step against ``store``; return the context with each step's output."""
    check_demo_target(store, force=force)
    ctx = DemoContext(store, customers, seed)
    for step in demo_steps():
        if on_step is not None:
            on_step(step)
        ctx.outputs[step.name] = step.run(ctx)
    return ctx
