"""The overview's read model: every spell with its branch, churn reason and lost revenue, kept in memory.

Every figure of the overview (:func:`churnguard.api.services.figures.overview`) is a sum over spells
(:mod:`churnguard.metrics.activity`): the churn counts of a period, the lost revenue of the spells that
churned in it, the churn per reason.  Computing the spells from the subscriptions is what costs (seconds
at a million customers), and they change only when data are loaded.  So, once per data version, one
query on the store (:func:`churnguard.metrics.loss.spell_facts_sql`, portable SQL) returns one row per
spell with everything that does not depend on a period: the customer's branch, the spell's dates, and for
churned spells the churn reason and the revenue lost with them (12-month window).  The rows go into a
private in-memory DuckDB database held by the server process, beside the closure of the branch tree, so
the figures of **every branch** for a period are then two small grouped queries over it (the spells
counted per branch and dates, and the churned spells one by one):

- :meth:`OverviewFacts.counts`: the churn counts of :func:`churnguard.metrics.churn_report` for the
  period, the previous one and each month (the alerts' month before included), per customer's own branch
  and per branch subtree;
- :meth:`OverviewFacts.churned`: the loss of :func:`churnguard.metrics.churn_loss` and the churn per
  reason of :func:`churnguard.metrics.reason_mix` of every branch subtree
  (:func:`churnguard.metrics.loss.churned_by_branch`).

The private database is DuckDB whatever the store's backend is: the store is read once per data version.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any

from churnguard.metrics.activity import ActivityRules
from churnguard.metrics.churn import COUNT_KEYS
from churnguard.store.connection import Store

#: The loss window of the overview (months of revenue before each churn that count as lost).
LOSS_WINDOW_MONTHS = 12


@dataclass
class OverviewFacts:
    """The spell facts of one data version in a private in-memory DuckDB database (module docstring)."""

    engine: Store
    rules: ActivityRules
    money: Any  # churnguard.metrics.loss._Money
    root: str | None
    children: dict[str | None, list[str]]
    first_churn: dt.date | None
    spells: int
    build_s: float
    window_months: int = LOSS_WINDOW_MONTHS
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _cursor(self) -> Store:
        with self._lock:
            return Store(self.engine.url, self.engine.raw.cursor())

    def counts(self, p: dict[str, Any]) -> dict[str, Any]:
        """Churn counts of every branch for the period ``p`` (``cur``), the previous one (``prev``) and each month.

        The counts of :func:`churnguard.metrics.churn.churn_report` per customer's own branch, then summed
        over the branch tree (every count is a sum over spells).  Returns ``tree`` (branch with its subtree)
        and ``own`` (customers attached to the branch itself), each keyed by (span label, branch id); the
        month spans (``months``; ``alert_months`` adds the month before the period when it starts on the
        first of a month, as :func:`churnguard.metrics.churn_alerts` reads it); and each branch's children.
        """
        from churnguard.metrics.alerts import alert_start
        from churnguard.metrics.churn import periods_between

        months = periods_between(p["start"], p["end"], "month")
        alert_months = periods_between(alert_start(p["start"], "month"), p["end"], "month")
        spans = [("cur", p["start"], p["end"]), ("prev", p["prev_start"], p["prev_end"])]
        spans += [(f"m:{label}", a, b) for label, a, b in alert_months]  # the months, and the one before
        values = ", ".join(f"($l{i}, CAST($f{i} AS DATE), CAST($t{i} AS DATE))" for i in range(len(spans)))
        params: dict[str, Any] = {}
        for i, (label, a, b) in enumerate(spans):
            params.update({f"l{i}": label, f"f{i}": a, f"t{i}": b})
        sums = ", ".join(f"CAST(sum({k}) AS BIGINT) AS {k}" for k in COUNT_KEYS)
        sql = f"""
        WITH p AS (
          SELECT period, p_from, p_to FROM (VALUES {values}) AS v(period, p_from, p_to)
        ), leaf AS (
          SELECT p.period, sp.branch_id,
            sum(sp.n) FILTER (WHERE sp.start_date < p.p_from) AS start_customers,
            sum(sp.n) FILTER (WHERE sp.start_date >= p.p_from AND sp.first_spell) AS new_customers,
            sum(sp.n) FILTER (WHERE sp.start_date >= p.p_from AND NOT sp.first_spell) AS reactivated_customers,
            sum(sp.n) FILTER (WHERE sp.end_date <= p.p_to) AS churned_customers,
            sum(sp.n) FILTER (WHERE sp.end_date <= p.p_to AND sp.start_date < p.p_from) AS churned_from_start,
            sum(sp.n) FILTER (WHERE sp.end_date IS NULL OR sp.end_date > p.p_to) AS end_customers,
            sum(sp.n * (least(coalesce(sp.end_date, p.p_to), p.p_to) - greatest(sp.start_date, p.p_from) + 1))
              AS customer_days
          FROM p JOIN spells sp ON sp.start_date <= p.p_to AND (sp.end_date IS NULL OR sp.end_date >= p.p_from)
          GROUP BY p.period, sp.branch_id
        )
        SELECT 'tree' AS kind, leaf.period, cl.ancestor_id AS branch, {sums}
        FROM leaf JOIN closure cl ON cl.branch_id = leaf.branch_id GROUP BY leaf.period, cl.ancestor_id
        UNION ALL
        SELECT 'own', period, branch_id, {sums} FROM leaf GROUP BY period, branch_id
        """
        out: dict[str, Any] = {
            "tree": {},
            "own": {},
            "months": months,
            "alert_months": alert_months,
            "children": self.children,
        }
        cur = self._cursor()
        try:
            for kind, period, branch, *row in cur.execute(sql, params).fetchall():
                out[kind][(period, branch)] = {k: int(v or 0) for k, v in zip(COUNT_KEYS, row, strict=True)}
        finally:
            cur.close()
        return out

    def churned(self, start: dt.date, end: dt.date) -> Any:
        """Loss and churn per reason of every branch subtree for ``[start, end]`` (a ``ChurnedByBranch``)."""
        from churnguard.metrics.loss import churned_by_branch

        cur = self._cursor()
        try:
            return churned_by_branch(
                cur,
                facts="churned",
                closure="closure",
                start=start,
                end=end,
                rules=self.rules,
                money=self.money,
                window_months=self.window_months,
            )
        finally:
            cur.close()


def build_overview_facts(store: Store, rules: ActivityRules, window_months: int = LOSS_WINDOW_MONTHS) -> OverviewFacts:
    """Read the spell facts of ``store`` (one query) and the branch tree into a private in-memory database."""
    import time

    import duckdb

    from churnguard.metrics.loss import money_rule, spell_facts_sql
    from churnguard.metrics.scope import CLOSURE_SQL, root_branch
    from churnguard.store.connection import StoreURL

    t0 = time.perf_counter()
    sql, params = spell_facts_sql(store, rules, window_months)
    store.execute("SELECT 1").fetchall()  # end any unfinished result: a relational call refuses to start otherwise
    facts = store.raw.sql(sql, params=params).to_arrow_table()
    closure = store.raw.sql(f"SELECT branch_id, ancestor_id FROM ({CLOSURE_SQL}) c").to_arrow_table()
    children: dict[str | None, list[str]] = {}
    for branch, parent in store.execute("SELECT branch_id, parent_id FROM branches ORDER BY branch_id").fetchall():
        children.setdefault(parent, []).append(branch)
    money = money_rule(store)
    root = root_branch(store)
    spells = int(facts.num_rows)
    raw = duckdb.connect(":memory:")
    raw.register("facts_in", facts)
    raw.register("closure_in", closure)
    first_churn = raw.execute("SELECT min(end_date) FROM facts_in").fetchone()[0]  # every spell: as churn_alerts
    # the spells of customers in a branch, counted per branch and dates (every count is a sum over them)
    raw.execute(
        "CREATE TABLE spells AS SELECT branch_id, start_date, end_date, first_spell, count(*) AS n FROM facts_in "
        "WHERE branch_id IS NOT NULL GROUP BY branch_id, start_date, end_date, first_spell"
    )
    # the churned ones, one row each, with their reason and lost revenue
    raw.execute("CREATE TABLE churned AS SELECT * FROM facts_in WHERE branch_id IS NOT NULL AND end_date IS NOT NULL")
    raw.execute("CREATE TABLE closure AS SELECT * FROM closure_in")
    raw.unregister("facts_in")
    raw.unregister("closure_in")
    del facts
    return OverviewFacts(
        engine=Store(StoreURL("duckdb", ":memory:"), raw),
        rules=rules,
        money=money,
        root=root,
        children=children,
        first_churn=first_churn,
        spells=spells,
        build_s=round(time.perf_counter() - t0, 3),
        window_months=window_months,
    )
