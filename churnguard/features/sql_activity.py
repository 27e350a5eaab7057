"""Usage (``events``) and purchase (``transactions``) features: windows, trends, recency, 12-month value.

Windows
    Every observation date ``d`` is joined to the days before it through a small day map
    (``as_of, day, age = d − day, chunk``; ages 1 … the longest window), so an event on day
    ``t`` meets exactly the dates with ``t < d ≤ t + max window``: one equality join, one
    group-by over ``(customer_id, as_of)`` for all dates at once.  An event at ``d`` itself
    (``ts ≥ d``, age 0) is never read.  The days are cut into *chunks* whose unions are every
    window (7 = [1, 7], 30 = [1, 7] ∪ [8, 30], …), and each chunk is aggregated once:

        count_w   = Σ_{chunks ⊆ [1, w]} count_chunk
        days_w    = Σ_{chunks ⊆ [1, w]} popcount(bit_or(1 << (age − chunk start)))   (distinct days)
        change_30 = (last30 − prev30) / max(prev30, 1)          last30 = days [1, 30], prev30 = [31, 60]
                    (sums of values: (last30 − prev30) / prev30, unknown when prev30 = 0)
        slope_90  = ((b1 − b3) / 2) / max((b1 + b2 + b3) / 3, 1)

    where b1, b2, b3 are the totals of days [1, 30], [31, 60], [61, 90]: the least-squares slope
    of three equally spaced points (x = 0, 1, 2 for b3, b2, b1) is (b1 − b3) / 2, per month,
    divided by their mean.  Trends are empty (NaN) while the current spell is younger than the
    window they compare (60 or 90 days): the customer was not a customer before.

Recency
    "Days since the last event / purchase" (``d − day of the last one``) come from the window
    aggregate when there was one inside the longest window; only the rows without one look
    further back, by a join of those few (customer, date) rows to the older events.

12-month value
    The 12-month revenue spans 365 days; a day map that long would repeat each row for every
    date, so it is one per-customer aggregate with one column per date
    (``sum(amount · [d_k − 365 ≤ ts < d_k])``), unnested into rows — one scan of the revenue
    rows of the period for up to :data:`WIDE_BATCH` dates.
"""

from __future__ import annotations

import datetime as dt

from churnguard.features.context import Block, Context, Out, safe_name, window_sum
from churnguard.metrics.loss import purchase_condition, revenue_condition

#: Event types that get their own columns (the most frequent ones before the last date).
TOP_EVENT_TYPES = 5
#: Dates per wide (one column per date) aggregate; more dates run as further scans in one statement.
WIDE_BATCH = 12
#: ABC tiers by count (as in churnguard.segments.abc): A = top 15 %, B = the next 25 %.
TIER_A, TIER_B = 0.15, 0.25


def _chunk_aggs(ctx: Context, measures: list[tuple[str, str]]) -> list[str]:
    """``{template} AS {prefix}{i}`` for every chunk i and measure; ``{i}`` in a template is the chunk.

    The day map carries per-chunk indicators (``m.i{i}`` integer, ``m.f{i}`` double, 1 inside
    chunk i, else 0) and ``m.bit`` (1 << the day's place in its chunk), so every aggregate is
    plain arithmetic (``sum(v * m.f0)``) rather than a CASE per row and aggregate.
    """
    return [template.format(i=i) + f" AS {prefix}{i}" for i in range(len(ctx.chunks)) for prefix, template in measures]


def _trend_outputs(ctx: Context, name: str, column: str, *, count: bool) -> list[Out]:
    """``{name}_change_30d`` and ``{name}_slope_90d`` from the per-chunk ``column``.

    Counts change by (last − prev) / max(prev, 1); sums of values (MB, money) by
    (last − prev) / prev, unknown when prev is 0 (a change from nothing is no percentage).
    """
    last, prev = window_sum(ctx, column, 1, 30), window_sum(ctx, column, 31, 60)
    b1, b2, b3 = last, prev, window_sum(ctx, column, 61, 90)
    if count:
        ratio = f"(({last}) - ({prev})) / greatest(({prev}), 1)"
    else:
        ratio = f"CASE WHEN ({prev}) > 0 THEN (({last}) - ({prev})) / ({prev}) END"
    change = f"CASE WHEN p.spell_start <= p.as_of - 60 THEN {ratio} END"
    slope = (
        f"CASE WHEN p.spell_start <= p.as_of - 90 THEN "
        f"((({b1}) - ({b3})) / 2.0) / greatest((({b1}) + ({b2}) + ({b3})) / 3.0, 1) END"
    )
    return [Out(f"{name}_change_30d", change), Out(f"{name}_slope_90d", slope)]


def event_types(ctx: Context) -> list[tuple[str, str]]:
    """``(event_type, column-safe name)`` of the store's :data:`TOP_EVENT_TYPES` most frequent types.

    Counted over the whole table, so that every build on a store has the same columns (a model
    trained on earlier dates finds its columns when scoring a later one); a type first seen
    after a date only adds columns that are 0 at that date.
    """
    rows = ctx.store.execute(
        "SELECT event_type FROM events WHERE event_type IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT $n",
        {"n": TOP_EVENT_TYPES},
    ).fetchall()
    taken: set[str] = set()
    return [(r[0], safe_name(r[0], taken)) for r in rows]


def usage_block(ctx: Context) -> Block | None:
    """Events: counts, usage days and per-type value sums per window; trends; per-active-day ratios."""
    if not ctx.has_rows("events"):
        return None
    types = event_types(ctx)
    params: dict[str, object] = {"lo": ctx.lo, "hi": ctx.hi}
    params.update({f"et{j}": raw for j, (raw, _) in enumerate(types)})
    measures = [("n", "sum(m.i{i})"), ("d", "bit_count(bit_or(m.bit * m.i{i}))")]
    measures += [(f"s{j}_", f"sum(e.v{j} * m.f{{i}})") for j in range(len(types))]
    aggs = ",\n      ".join(_chunk_aggs(ctx, measures))
    values = "".join(
        f", CASE WHEN event_type = $et{j} THEN coalesce(value, 1) ELSE 0 END AS v{j}" for j in range(len(types))
    )
    sql = f"""
    SELECT e.customer_id, m.as_of, min(m.age) AS last_age,
      {aggs}
    FROM (SELECT customer_id, ts{values} FROM events WHERE ts >= $lo AND ts < $hi{ctx.only("events")}) e
    JOIN {ctx.table("days")} m ON CAST(e.ts AS DATE) = m.day
    GROUP BY e.customer_id, m.as_of"""
    outs: list[Out] = []
    for w in ctx.windows:
        outs.append(Out(f"usage_events_{w}d", window_sum(ctx, "n", 1, w), "int"))
        outs.append(Out(f"usage_days_{w}d", window_sum(ctx, "d", 1, w), "int"))
    outs += _trend_outputs(ctx, "usage_events", "n", count=True)[:1]
    outs += _trend_outputs(ctx, "usage_days", "d", count=True)
    days30, events30 = window_sum(ctx, "d", 1, 30), window_sum(ctx, "n", 1, 30)
    outs.append(Out("usage_events_per_day_30d", f"CASE WHEN ({days30}) > 0 THEN ({events30}) / ({days30}) END"))
    for j, (_, safe) in enumerate(types):
        for w in ctx.windows:
            outs.append(Out(f"usage_{safe}_{w}d", window_sum(ctx, f"s{j}_", 1, w)))
        outs += _trend_outputs(ctx, f"usage_{safe}", f"s{j}_", count=False)
        value30 = window_sum(ctx, f"s{j}_", 1, 30)
        outs.append(Out(f"usage_{safe}_per_day_30d", f"CASE WHEN ({days30}) > 0 THEN ({value30}) / ({days30}) END"))
    return Block("usage", sql, params, outs, materialize=True)


def _bill_columns(ctx: Context) -> tuple[str, str] | None:
    """SQL for (is a bill, due date) on ``transactions`` aliased t, where the store has ``kind``."""
    cols = ctx.columns("transactions")
    if "kind" not in cols:
        return None
    due = "TRY_CAST(t.due_date AS DATE)" if "due_date" in cols else "CAST(t.ts AS DATE) + 30"
    return "lower(trim(CAST(t.kind AS VARCHAR))) = 'bill'", due


def purchases_block(ctx: Context) -> Block | None:
    """Transactions that are purchases (bills, top-ups, sales; not payments): count and amount per window.

    The trend compares the purchases other than bills where transactions have a ``kind``: a
    monthly bill falls in or out of a 30-day window with the length of the month, while top-ups
    and sales follow the customer's behaviour.
    """
    if not ctx.has_rows("transactions"):
        return None
    bills = _bill_columns(ctx)
    measures = [("n", "sum(m.i{i})"), ("a", "sum(t.amount * m.f{i})"), ("b", "sum(t.other * m.f{i})")]
    aggs = _chunk_aggs(ctx, measures)
    extra = "false AS is_bill, NULL AS due, coalesce(t.amount, 0) AS other"
    if bills:
        extra = (
            f"coalesce({bills[0]}, false) AS is_bill, {bills[1]} AS due, "
            f"CASE WHEN coalesce({bills[0]}, false) THEN 0 ELSE coalesce(t.amount, 0) END AS other"
        )
        aggs.append("count(CASE WHEN m.age <= 90 AND t.is_bill AND t.due < m.as_of THEN 1 END) AS bills_due_90")
    sql = f"""
    SELECT t.customer_id, m.as_of, min(m.age) AS last_age,
      {", ".join(aggs)}
    FROM (SELECT t.customer_id, t.ts, t.amount, {extra}
          FROM transactions t
          WHERE t.ts >= $lo AND t.ts < $hi AND {purchase_condition(ctx.store, "t")}{ctx.only("t")}) t
    JOIN {ctx.table("days")} m ON CAST(t.ts AS DATE) = m.day
    GROUP BY t.customer_id, m.as_of"""
    outs = []
    for w in ctx.windows:
        outs.append(Out(f"purchases_{w}d", window_sum(ctx, "n", 1, w), "int"))
        outs.append(Out(f"purchase_amount_{w}d", window_sum(ctx, "a", 1, w)))
    outs.append(_trend_outputs(ctx, "purchase_amount", "b", count=False)[0])
    if bills:
        outs.append(Out("_bills_due_90", "coalesce(a.bills_due_90, 0)", "int"))
    return Block("purchases", sql, {"lo": ctx.lo, "hi": ctx.hi}, outs, materialize=True)


def recency_block(ctx: Context, window: Block | None) -> Block | None:
    """Days since the last event (``window`` = the usage block) or purchase (the purchases block).

    ``d − day(last row before d)``: from the window aggregate's ``last_age`` where there was a
    row in the longest window, else from the rows before it, joined only for the (customer,
    date) rows that had none.
    """
    if window is None:
        return None
    if window.name == "usage":
        name, source, cond = "days_since_usage", "events", "TRUE"
    else:
        name, source, cond = "days_since_purchase", "transactions", purchase_condition(ctx.store, "e")
    agg = ctx.table(window.name)
    sql = f"""
    SELECT p.rid, max(e.ts) AS last_ts
    FROM (SELECT p.rid, p.customer_id, p.as_of FROM {ctx.table("pop")} p
          ANTI JOIN {agg} w ON w.customer_id = p.customer_id AND w.as_of = p.as_of) p
    JOIN {source} e ON e.customer_id = p.customer_id AND e.ts < p.as_of
    WHERE e.ts < $hi AND {cond}
    GROUP BY p.rid"""
    w = f"last_{window.name}"  # an alias of its own: several blocks are read in one select
    joins = f"LEFT JOIN {agg} {w} ON {w}.customer_id = p.customer_id AND {w}.as_of = p.as_of"
    outs = [Out(name, f"coalesce({w}.last_age, p.as_of - CAST(a.last_ts AS DATE))")]
    return Block(f"recency_{window.name}", sql, {"hi": ctx.hi}, outs, key="rid", joins=joins)


def _wide_sql(ctx: Context, source: str, measures: dict[str, str], offsets: set[int]) -> tuple[str, dict[str, object]]:
    """One row per (customer, date) from per-customer aggregates with one column per date.

    ``measures``: name → aggregate template using ``{d}`` (the date, a timestamp parameter) and
    ``{d_N}`` (the date minus N days, N in ``offsets``).  The dates run in batches of
    :data:`WIDE_BATCH`, one scan of ``source`` each, joined by UNION ALL.
    """
    params: dict[str, object] = {}
    parts = []
    for b in range(0, len(ctx.dates), WIDE_BATCH):
        batch = ctx.dates[b : b + WIDE_BATCH]
        aggs, lists = [], {name: [] for name in measures}
        for k, day in enumerate(batch, start=b):
            names = {"d": f"$w{k}"}
            params[f"w{k}"] = dt.datetime.combine(day, dt.time())
            for n in offsets:
                names[f"d_{n}"] = f"$w{k}_{n}"
                params[f"w{k}_{n}"] = dt.datetime.combine(day - dt.timedelta(days=n), dt.time())
            for name, template in measures.items():
                aggs.append(f"{template.format(**names)} AS {name}_{k}")
                lists[name].append(f"{name}_{k}")
        dates = ", ".join(f"CAST($w{k} AS DATE)" for k in range(b, b + len(batch)))
        unnest = ", ".join(f"unnest([{', '.join(cols)}]) AS {name}" for name, cols in lists.items())
        parts.append(
            f"SELECT customer_id, unnest([{dates}]) AS as_of, {unnest} "
            f"FROM (SELECT customer_id, {', '.join(aggs)} FROM ({source}) GROUP BY customer_id)"
        )
    return "\nUNION ALL\n".join(parts), params


def money_block(ctx: Context) -> Block | None:
    """Per date: 12-month revenue and margin, and the smallest recent and earlier bills."""
    if not ctx.has_rows("transactions"):
        return None
    has_margin = ctx.store.execute("SELECT count(margin) > 0 FROM transactions").fetchone()[0]
    bills = _bill_columns(ctx)
    inside = "CAST(ts >= {d_365} AND ts < {d} AS INTEGER)"
    measures = {"n": f"sum({inside})", "revenue": f"sum(amount * {inside})"}
    offsets = {365}
    if has_margin:
        measures["margin"] = f"sum(margin * {inside})"
    if bills:
        measures["bill_now"] = "min(CASE WHEN is_bill AND ts >= {d_62} AND ts < {d} THEN amount END)"
        measures["bill_then"] = "min(CASE WHEN is_bill AND ts >= {d_152} AND ts < {d_90} THEN amount END)"
        offsets |= {62, 90, 152}
    lo = dt.datetime.combine(min(ctx.dates) - dt.timedelta(days=365), dt.time())
    source = (
        "SELECT t.customer_id, t.ts, t.amount, t.margin, "
        f"{bills[0] if bills else 'false'} AS is_bill "
        f"FROM transactions t WHERE t.ts >= $lo365 AND t.ts < $hi AND {revenue_condition(ctx.store, 't')}"
    )
    sql, params = _wide_sql(ctx, source, measures, offsets)
    outs = [Out("revenue_12m", "coalesce(a.revenue, 0)")]
    if has_margin:
        outs.append(Out("margin_12m", "CASE WHEN coalesce(a.n, 0) = 0 THEN 0 ELSE a.margin END"))
    if bills:
        outs.append(
            Out(
                "bill_amount_change_90d",
                "CASE WHEN a.bill_then > 0 THEN (a.bill_now - a.bill_then) / a.bill_then END",
            )
        )
    return Block("money", sql, {**params, "hi": ctx.hi, "lo365": lo}, outs, materialize=True)


def value_rank_block(ctx: Context, money: Block | None) -> Block | None:
    """ABC tier and percentile of the 12-month margin (or revenue) among the customers active at each date."""
    if money is None:
        return None
    basis = "w.margin" if any(o.name == "margin_12m" for o in money.outputs) else "w.revenue"
    # Rounded to a millionth: a parallel sum of doubles can differ in its last bit from run to run, and
    # two equal values would then swap places; equal to a millionth, the row id decides.
    ranked = f"""
      SELECT p.rid, p.customer_id, p.as_of,
             row_number() OVER (PARTITION BY p.as_of ORDER BY round(coalesce({basis}, 0), 6) DESC, p.rid) AS k,
             count(*) OVER (PARTITION BY p.as_of) AS n
      FROM {ctx.everyone} p LEFT JOIN {ctx.table("money")} w ON w.customer_id = p.customer_id AND w.as_of = p.as_of"""
    if ctx.restricted:  # ranked among every active customer, kept for the given ones (under their row ids)
        ranked = f"""
      SELECT q.rid, r.k, r.n FROM ({ranked}) r
      JOIN {ctx.table("pop")} q ON q.customer_id = r.customer_id AND q.as_of = r.as_of"""
    sql = f"""
    SELECT rid, 1 - (k - 1) / greatest(n - 1, 1) AS value_percentile,
      CASE WHEN k <= round($a * n) THEN 'A' WHEN k <= round(($a + $b) * n) THEN 'B' ELSE 'C' END AS value_tier
    FROM ({ranked}
    ) v"""
    outs = [Out("value_percentile", "a.value_percentile"), Out("value_tier", "a.value_tier", "category")]
    return Block("value_rank", sql, {"a": TIER_A, "b": TIER_B}, outs, key="direct")
