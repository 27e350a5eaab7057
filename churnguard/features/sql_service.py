"""Payment (bills), service (tickets) and experience (surveys) features, point in time.

Each joins the population ``(customer_id, as_of, spell_start, …)`` to the rows of one customer
that happened before the date; these tables are small next to the event log.

Bills (``transactions`` rows whose ``kind`` is ``bill``; needs the extra column ``paid_at``,
and uses ``due_date`` where present, else the bill day + 30)
    A bill is *overdue and unpaid at d* when it was issued before d, in the current spell, its
    due date is before d, and it was not paid before d (``paid_at`` empty or ``≥ d``: a payment
    made after d was not known at d); ``bills_unpaid_90d`` counts those issued in [d − 90, d).
    Only bills paid late or never can ever be overdue, so only those are joined.  Delay of a
    bill due on day u: ``paid day − u`` when paid before d, else ``d − u`` (the days so far);
    0 for a bill paid by its due date.

        payment_delay_days_90d = Σ delay / #bills issued in [d − 90, d) and due before d
        late_payments_365d     = #bills due in [d − 365, d), paid before d, after their due day

Tickets
    ``tickets_unresolved``: opened before d, ``resolved_at`` empty or ``≥ d``.  Resolution
    times and satisfaction count only tickets resolved before d (satisfaction is taken as
    known when the ticket is resolved).

Surveys
    Latest answer before d per kind (NPS, CSAT), its change from the answer before, days since.
"""

from __future__ import annotations

import numpy as np

from churnguard.features.context import Block, Context, Derived, Out

#: Survey kinds with their own features (any case in the data).
SURVEY_KINDS: tuple[str, ...] = ("NPS", "CSAT")


def bills_block(ctx: Context) -> Block | None:
    """Overdue unpaid bills, unpaid amount, delay sums and late payments, from the late or unpaid bills."""
    cols = ctx.columns("transactions")
    if not {"kind", "paid_at"} <= cols or not ctx.has_rows("transactions"):
        return None
    due = "TRY_CAST(t.due_date AS DATE)" if "due_date" in cols else "CAST(t.ts AS DATE) + 30"
    unpaid = "b.due < p.as_of AND (b.paid_at IS NULL OR b.paid_at >= p.as_of) AND b.ts >= p.spell_start"
    sql = f"""
    WITH b AS (
      SELECT * FROM (
        SELECT t.customer_id, t.ts, t.amount, {due} AS due, TRY_CAST(t.paid_at AS TIMESTAMP) AS paid_at
        FROM transactions t
        WHERE lower(trim(CAST(t.kind AS VARCHAR))) = 'bill' AND t.ts < $hi{ctx.only("t")}
      ) WHERE due IS NOT NULL AND (paid_at IS NULL OR CAST(paid_at AS DATE) > due)
    )
    SELECT p.rid,
      count(CASE WHEN {unpaid} THEN 1 END) AS bills_unpaid,
      count(CASE WHEN {unpaid} AND b.ts >= p.as_of - 90 THEN 1 END) AS bills_unpaid_90d,
      sum(CASE WHEN {unpaid} THEN b.amount END) AS unpaid_amount,
      sum(CASE WHEN b.ts >= p.as_of - 90 AND b.due < p.as_of
               THEN CASE WHEN b.paid_at < p.as_of THEN CAST(b.paid_at AS DATE) ELSE p.as_of END - b.due END)
        AS delay_sum_90d,
      count(CASE WHEN b.due >= p.as_of - 365 AND b.due < p.as_of AND b.paid_at < p.as_of THEN 1 END)
        AS late_365d
    FROM {ctx.table("pop")} p JOIN b ON b.customer_id = p.customer_id AND b.ts < p.as_of
    GROUP BY p.rid"""
    outs = [
        Out("bills_unpaid", "coalesce(a.bills_unpaid, 0)", "int"),
        Out("bills_unpaid_90d", "coalesce(a.bills_unpaid_90d, 0)", "int"),
        Out("unpaid_amount", "coalesce(a.unpaid_amount, 0)", fill=0.0),
        Out("_delay_sum_90d", "coalesce(a.delay_sum_90d, 0)", fill=0.0),
        Out("late_payments_365d", "coalesce(a.late_365d, 0)", "int"),
    ]
    # the bills issued in the last 90 days and due come from the purchases block (every bill)
    delay = Derived("payment_delay_days_90d", ("_delay_sum_90d", "_bills_due_90"), _mean_delay)
    return Block("bills", sql, {"hi": ctx.hi}, outs, key="direct", derived=(delay,))


def _mean_delay(delay_sum: np.ndarray, bills_due: np.ndarray) -> np.ndarray:
    """Σ delay / #bills due; NaN where no bill was due."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bills_due > 0, delay_sum / np.maximum(bills_due, 1), np.nan)


def tickets_block(ctx: Context) -> Block | None:
    """Tickets opened per window, unresolved at the date, resolution times, satisfaction, recency."""
    if not ctx.has_rows("tickets"):
        return None
    open_at = "(t.resolved_at IS NULL OR t.resolved_at >= p.as_of)"
    resolved_90 = "t.resolved_at < p.as_of AND t.resolved_at >= p.as_of - 90"
    hours = "epoch(t.resolved_at - t.opened_at) / 3600.0"
    per_window = ",\n      ".join(
        f"count(CASE WHEN t.opened_at >= p.as_of - {int(w)} THEN 1 END) AS n_{w}" for w in ctx.windows
    )
    sql = f"""
    SELECT p.rid, p.as_of AS p_as_of, p.spell_start AS p_spell_start,
      {per_window},
      count(CASE WHEN {open_at} THEN 1 END) AS unresolved,
      max(CASE WHEN {open_at} THEN epoch(CAST(p.as_of AS TIMESTAMP) - t.opened_at) / 86400.0 END) AS open_days_max,
      avg(CASE WHEN t.resolved_at < p.as_of THEN {hours} END) AS hours_mean,
      max(CASE WHEN {resolved_90} THEN {hours} END) AS hours_max_90,
      min(CASE WHEN {resolved_90} THEN t.satisfaction END) AS satisfaction_min_90,
      max(t.opened_at) AS last_opened,
      count(CASE WHEN t.opened_at >= p.spell_start THEN 1 END) AS in_spell
    FROM {ctx.table("pop")} p JOIN tickets t ON t.customer_id = p.customer_id AND t.opened_at < p.as_of
    GROUP BY p.rid, p.as_of, p.spell_start"""
    outs = [Out(f"tickets_{w}d", f"coalesce(a.n_{w}, 0)", "int") for w in ctx.windows]
    outs += [
        Out("tickets_unresolved", "coalesce(a.unresolved, 0)", "int"),
        Out("ticket_open_days_max", "a.open_days_max"),
        Out("ticket_resolution_hours_mean", "a.hours_mean"),
        Out("ticket_resolution_hours_max_90d", "a.hours_max_90"),
        Out("ticket_satisfaction_min_90d", "a.satisfaction_min_90"),
        Out("days_since_ticket", "p.as_of - CAST(a.last_opened AS DATE)"),
        Out(
            "tickets_per_tenure_month",
            "coalesce(a.in_spell, 0) / greatest((p.as_of - p.spell_start) / 30.4375, 1)",
            fill=0.0,
        ),
    ]
    return Block("tickets", sql, {}, outs, key="direct")


def surveys_block(ctx: Context) -> Block | None:
    """Latest NPS / CSAT answer before the date, its change from the one before, days since."""
    if not ctx.has_rows("surveys"):
        return None
    kinds = [
        r[0]
        for r in ctx.store.execute(
            "SELECT DISTINCT upper(trim(kind)) FROM surveys WHERE upper(trim(kind)) IN ('NPS', 'CSAT') AND ts < $hi",
            {"hi": ctx.hi},
        ).fetchall()
    ]
    kinds = [k for k in SURVEY_KINDS if k in kinds]
    if not kinds:
        return None
    aggs, outs = [], []
    for k in kinds:
        low = k.lower()
        cond = f"upper(trim(s.kind)) = '{k}'"  # one of our constants, not user input
        aggs.append(f"max_by(CASE WHEN {cond} THEN s.score END, CASE WHEN {cond} THEN s.ts END, 2) AS {low}_last2")
        aggs.append(f"max(CASE WHEN {cond} THEN s.ts END) AS {low}_ts")
        outs += [
            Out(f"{low}_latest", f"a.{low}_last2[1]"),
            Out(f"{low}_change", f"a.{low}_last2[1] - a.{low}_last2[2]"),
            Out(f"days_since_{low}", f"p.as_of - CAST(a.{low}_ts AS DATE)"),
        ]
    sql = f"""
    SELECT p.rid, p.as_of AS p_as_of, {", ".join(aggs)}
    FROM {ctx.table("pop")} p JOIN surveys s ON s.customer_id = p.customer_id AND s.ts < p.as_of
    GROUP BY p.rid, p.as_of"""
    return Block("surveys", sql, {}, outs, key="direct")
