"""Point-in-time feature tables: one row per customer active at each observation date (docs/features.md).

For an observation date ``d`` (``as_of``):

- **rows**: the customers with an activity spell (:mod:`churnguard.metrics.activity`) that began
  before ``d`` and had not ended before it (``start < d ≤ end`` or no end): active at ``d``;
  customers who churned earlier are not rows.
- **features** read only data dated before ``d``: rows with ``ts < d`` (an event at ``d``
  00:00 is not read; one a second earlier is).  See the feature blocks' modules for each formula
  and :data:`churnguard.features.CATALOG` for every column's meaning.
- **labels** (``labels=True``): with ``c`` the spell's churn date (its last active day; the
  customer is gone from ``c + 1``), lead ``L`` and horizon ``H`` days:

      label         = 1 if d + L ≤ c ≤ d + L + H − 1, else 0    (churned inside (d + L, d + L + H])
      churned       = 1 if the spell has ended by the data's as-of date, else 0
      days_to_churn = c + 1 − d if churned, else data_end + 1 − d   (the survival time, censored at the data end)

  A date whose horizon runs past the data's as-of date (``d + L + H − 1 > data_end``) has no
  complete label and its rows are dropped.  ``L > 0`` leaves customers who churn inside the lead
  gap with label 0 (they churned before the horizon began; ``days_to_churn`` still says when).

Several dates run as one set of statements over a table of dates (joined, never looped in
Python): each block of features is one engine statement into a temporary table with one row per
population row (:mod:`churnguard.features.context`); the frame is assembled by row id.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnguard.errors import ConfigError
from churnguard.features import sql_account, sql_activity, sql_service
from churnguard.features.context import Block, Context, Out
from churnguard.metrics.activity import ActivityRules, data_as_of, rules_for, spells_sql
from churnguard.store.connection import Store

EVERY: tuple[str, ...] = ("monthly", "weekly", "quarterly")
LABEL_COLUMNS: tuple[str, ...] = ("label", "days_to_churn", "churned")
DEFAULT_WINDOWS: tuple[int, ...] = (7, 30, 90)
_SQL_TYPES: dict[str, str] = {"int": "INTEGER", "float": "DOUBLE", "category": "VARCHAR"}


# -- observation dates -------------------------------------------------------------------------------


def _data_start(store: Store) -> dt.date | None:
    """The first day of activity data (events, transactions), else the first subscription start."""
    row = store.execute(
        "SELECT least((SELECT min(ts) FROM events), (SELECT min(ts) FROM transactions)),"
        " (SELECT min(start_date) FROM subscriptions)"
    ).fetchone()
    first = row[0] if row[0] is not None else row[1]
    if first is None:
        return None
    return first.date() if isinstance(first, dt.datetime) else first


def _period_starts(start: dt.date, end: dt.date, every: str) -> list[dt.date]:
    if every == "weekly":
        first = start + dt.timedelta(days=(7 - start.weekday()) % 7)
        return [first + dt.timedelta(weeks=i) for i in range(max(0, (end - first).days // 7 + 1))]
    if every.endswith("d") and every[:-1].isdigit() and int(every[:-1]) > 0:
        step = int(every[:-1])
        return [start + dt.timedelta(days=i) for i in range(0, (end - start).days + 1, step)]
    step = {"monthly": 1, "quarterly": 3}.get(every)
    if step is None:
        raise ConfigError(f'every: expected monthly, weekly, quarterly or a number of days like 14d, got "{every}".')
    month = ((start.month - 1) // step) * step
    cursor = dt.date(start.year + month // 12, month % 12 + 1, 1)
    out = []
    while cursor <= end:
        if cursor >= start:
            out.append(cursor)
        y, m = divmod(cursor.month - 1 + step, 12)
        cursor = dt.date(cursor.year + y, m + 1, 1)
    return out


def observation_dates(
    store: Store,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    every: str = "monthly",
    count: int | None = None,
) -> list[dt.date]:
    """Observation dates from ``start`` to ``end`` (both included), oldest first.

    ``every``: ``monthly`` (the first of each month), ``quarterly`` (1 January, April, July,
    October), ``weekly`` (Mondays) or ``Nd`` (every N days from ``start``).  ``start`` defaults
    to 90 days after the data begin (so that the 90-day windows have data), ``end`` to the data's
    as-of date.  ``count`` keeps the last ``count`` dates.  A date whose label horizon runs past
    the data end gives no labelled rows: pass ``end = data_as_of − horizon`` to train.
    """
    if end is None:
        end = data_as_of(store)
    if start is None:
        first = _data_start(store)
        start = (first or end) + dt.timedelta(days=max(DEFAULT_WINDOWS))
    if start > end:
        raise ConfigError(f"observation dates: start {start} is after end {end}. Fix: an earlier --from or later --to.")
    dates = _period_starts(start, end, every)
    if count is not None:
        if count < 1:
            raise ConfigError(f"count: expected a whole number ≥ 1, got {count}.")
        dates = dates[-count:]
    return dates


# -- the build -------------------------------------------------------------------------------------


@dataclass
class FeatureBuild:
    """What :func:`build_features` ran: the dates kept, the columns, and seconds per step."""

    dates: list[dt.date]
    outputs: list[Out] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (JSON-ready, as pandas requires of ``DataFrame.attrs`` when writing Parquet)."""
        return {
            "dates": [d.isoformat() for d in self.dates],
            "features": [o.name for o in self.outputs],
            "seconds": {k: round(v, 3) for k, v in self.timings.items()},
            "cpu_seconds": {k: round(v, 3) for k, v in self.cpu.items()},
        }


def _as_dates(as_of: Any) -> list[dt.date]:
    values = as_of if isinstance(as_of, list | tuple | set) else [as_of]
    out = set()
    for v in values:
        if isinstance(v, str):
            try:
                v = dt.date.fromisoformat(v)
            except ValueError:
                raise ConfigError(f'as_of: expected a date like 2024-01-31, got "{v}".') from None
        if hasattr(v, "to_pydatetime"):  # pandas Timestamp
            v = v.to_pydatetime()
        if isinstance(v, dt.datetime):
            v = v.date()
        if not isinstance(v, dt.date):
            raise ConfigError(f"as_of: expected a date or a list of dates, got {type(v).__name__}.")
        out.add(v)
    if not out:
        raise ConfigError("as_of: expected at least one observation date, got none.")
    return sorted(out)


def _check_options(horizon_days: int, lead_days: int, windows: Sequence[int]) -> tuple[int, ...]:
    if int(horizon_days) < 1 or int(lead_days) < 0:
        raise ConfigError(f"horizon_days must be ≥ 1 and lead_days ≥ 0, got {horizon_days} and {lead_days}.")
    ws = tuple(sorted({int(w) for w in windows}))
    if not ws or ws[0] < 1 or ws[-1] > 365:
        raise ConfigError(f"windows: expected whole numbers of days from 1 to 365, got {tuple(windows)}.")
    return ws


#: The blocks, in the order they run; a block may read the table of an earlier one (recency and
#: bills read the window aggregates, value_rank reads money).
_MAKERS: tuple[tuple[str, Any], ...] = (
    ("usage", sql_activity.usage_block),
    ("recency_usage", None),
    ("purchases", sql_activity.purchases_block),
    ("recency_purchases", None),
    ("money", sql_activity.money_block),
    ("value_rank", None),
    ("bills", sql_service.bills_block),
    ("tickets", sql_service.tickets_block),
    ("surveys", sql_service.surveys_block),
    ("subscriptions", sql_account.subscriptions_block),
    ("stored_value", sql_account.stored_value_block),
    ("competitor", sql_account.competitor_block),
    ("customers", None),
)


def _setup(ctx: Context, rules: ActivityRules) -> int:
    """The dates table, the day map and the population (with its row ids); returns the population's size."""
    ctx.store.execute(f"CREATE TEMP TABLE {ctx.table('dates')} (as_of DATE)")
    ctx.store.raw.executemany(f"INSERT INTO {ctx.table('dates')} VALUES (?)", [[d] for d in ctx.dates])
    chunk = " ".join(f"WHEN age BETWEEN {a} AND {b} THEN {i}" for i, (a, b) in enumerate(ctx.chunks))
    first = " ".join(f"WHEN age BETWEEN {a} AND {b} THEN {a}" for a, b in ctx.chunks)
    flags = "".join(
        f", CAST(g.chunk = {i} AS INTEGER) AS i{i}, CAST(g.chunk = {i} AS DOUBLE) AS f{i}"
        for i in range(len(ctx.chunks))
    )
    ctx.store.execute(
        f"""CREATE TEMP TABLE {ctx.table("days")} AS
        SELECT d.as_of, d.as_of - g.age AS day, g.age, g.chunk, CAST(1 AS BIGINT) << (g.age - g.first) AS bit{flags}
        FROM {ctx.table("dates")} d, (
          SELECT age, CASE {chunk} END AS chunk, CASE {first} END AS first
          FROM (SELECT CAST(range AS INTEGER) AS age FROM range(1, {ctx.max_age + 1}))) g"""
    )
    spells, params = spells_sql(rules)
    ctx.store.execute(
        f"""CREATE TEMP TABLE {ctx.everyone} AS
        SELECT CAST(row_number() OVER (ORDER BY d.as_of, s.customer_id) - 1 AS INTEGER) AS rid,
               s.customer_id, d.as_of, s.start_date AS spell_start, s.end_date AS spell_end,
               CAST(s.spell_no AS INTEGER) AS spell_no, c.branch_id
        FROM ({spells}) s
        JOIN {ctx.table("dates")} d ON s.start_date < d.as_of AND (s.end_date IS NULL OR s.end_date >= d.as_of)
        JOIN customers c ON c.customer_id = s.customer_id
        ORDER BY rid""",
        params,
    )
    if ctx.restricted:  # the given customers' rows, numbered 0 … n − 1 in the same (as_of, customer_id) order
        ctx.store.execute(
            f"""CREATE TEMP TABLE {ctx.table("pop")} AS
            SELECT CAST(row_number() OVER (ORDER BY p.as_of, p.customer_id) - 1 AS INTEGER) AS rid,
                   p.customer_id, p.as_of, p.spell_start, p.spell_end, p.spell_no, p.branch_id
            FROM {ctx.everyone} p JOIN {ctx.table("ids")} i ON i.customer_id = p.customer_id
            ORDER BY rid"""
        )
    return ctx.store.execute(f"SELECT count(*) FROM {ctx.table('pop')}").fetchone()[0]


def _stage_ids(ctx: Context, customers: Sequence[str]) -> None:
    """The given customer ids as the build's temp table ``ids`` (distinct; joined by the population and
    the event scans, so that the engine reads only those customers' rows)."""
    frame = pd.DataFrame({"customer_id": pd.Series([str(c) for c in customers], dtype=object)})
    view = ctx.table("ids_df")
    ctx.store.execute("SELECT 1").fetchall()  # ends a result left open by an earlier fetchone(): register needs that
    ctx.store.raw.register(view, frame)
    try:
        ctx.store.execute(
            f"CREATE TEMP TABLE {ctx.table('ids')} AS SELECT DISTINCT CAST(customer_id AS VARCHAR) AS customer_id "
            f"FROM {view}"
        )
    finally:
        ctx.store.raw.unregister(view)


_ON = {
    "pair": "a.customer_id = p.customer_id AND a.as_of = p.as_of",
    "rid": "a.rid = p.rid",
    "branch": "a.branch_id = p.branch_id AND a.as_of = p.as_of",
}


def _direct(expr: str) -> str:
    """An output expression of a direct block: the population's ``p.x`` is the query's ``a.p_x``."""
    return re.sub(r"\bp\.(\w+)", r"a.p_\1", expr)


def _block_select(ctx: Context, b: Block) -> tuple[str, dict[str, Any]]:
    """The select of a block's outputs (``a`` is the block's aggregate): one row per population row,
    or, for a ``direct`` block, one per row of its query."""
    source = ctx.table(b.name) if b.materialize else f"({b.sql})"
    params = {} if b.materialize else b.params
    if b.key == "direct":
        cols = ["a.rid"] + [f"CAST({_direct(o.expr)} AS {_SQL_TYPES[o.kind]}) AS {o.name}" for o in b.outputs]
        return f"SELECT {', '.join(cols)}\nFROM {source} a", params
    cols = ["p.rid"] + [f"CAST({o.expr} AS {_SQL_TYPES[o.kind]}) AS {o.name}" for o in b.outputs]
    sql = f"SELECT {', '.join(cols)}\nFROM {ctx.table('pop')} p LEFT JOIN {source} a ON {_ON[b.key]}\n{b.joins}"
    return sql, params


def _make(ctx: Context, name: str, make: Any, made: dict[str, Block]) -> Block | None:
    if name.startswith("recency_"):
        return sql_activity.recency_block(ctx, made.get(name.removeprefix("recency_")))
    if name == "value_rank":
        return sql_activity.value_rank_block(ctx, made.get("money"))
    if name == "customers":
        return sql_account.customers_block(ctx, "subscriptions" in made)
    return make(ctx)


def _column(col: pa.ChunkedArray, kind: str, rid: np.ndarray | None, n: int, fill: float | None = None) -> Any:
    """An arrow column as a numpy array (``kind`` int / float), pandas Categorical (``category``),
    object array of strings (``id``) or of dates (``date``), placed at its row ids.

    Text goes through a dictionary (one Python object per distinct value, not per row).
    ``rid`` is ``None`` when the rows came in row-id order; rows not given take ``fill``
    (default 0 for integers, NaN for floats, missing for text).
    """
    if kind in ("category", "id", "date"):
        enc = pc.dictionary_encode(col).combine_chunks()
        codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
        if rid is not None:
            placed = np.full(n, -1, dtype=np.int32)
            placed[rid] = codes
            codes = placed
        levels = enc.dictionary.to_pylist()
        if kind == "category":
            return pd.Categorical.from_codes(codes, categories=[str(v) for v in levels])
        return np.array([*levels, None], dtype=object)[codes]
    arr = col.to_numpy()
    if rid is None:
        return arr
    default = np.nan if arr.dtype.kind == "f" else 0
    out = np.full(n, default if fill is None else fill, dtype=arr.dtype)
    out[rid] = arr
    return out


def _read(store: Store, sql: str, params: dict[str, Any] | None, n: int) -> tuple[pa.Table, np.ndarray | None]:
    """Run ``sql`` (first column ``rid``) into arrow; the row ids, or ``None`` when they are 0 … n − 1 in order."""
    store.raw.complete()  # a result left open by an earlier execute() would block sql()
    table = store.raw.sql(sql, params=params or None).to_arrow_table()
    rid = table.column("rid").to_numpy()
    in_order = len(rid) == n and bool((rid == np.arange(n, dtype=rid.dtype)).all())
    return table, None if in_order else rid


def _frame(columns: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(columns, copy=False)


def build_features(
    store: Store,
    as_of: dt.date | list[dt.date],
    *,
    horizon_days: int = 30,
    lead_days: int = 0,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    labels: bool = True,
    rules: ActivityRules | None = None,
    customers: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Point-in-time features (and labels) for every customer active at each date in ``as_of``.

    Returns a DataFrame with ``customer_id``, ``as_of`` (a ``datetime.date``), then with
    ``labels`` ``label``, ``days_to_churn``, ``churned`` (module docstring), then the feature
    columns: counts as integers, other numbers as floats (NaN where unknown), categories (plan,
    tiers, attributes) as pandas ``category``.  Rows are sorted by ``as_of``, ``customer_id``.
    ``df.attrs["build"]`` says what ran: the dates kept, the feature names, and the seconds (wall
    and CPU) each block took.

    ``customers`` restricts the rows to those customer ids (the ones active at a date; others give
    no row): they are staged in a temp table that the population and the event, purchase and bill
    scans join, so the engine reads only their rows.  Each row is identical to the same customer's
    row of the full build: the features that compare a customer with every other active customer
    (``value_percentile``, ``value_tier``, ``branch_competitor_share_90d``, ``branch_churn_rate_90d``)
    are still computed over the whole population (its spells and 12-month values).

    Examples
    --------
    >>> frame = build_features(store, observation_dates(store, count=6), horizon_days=30)  # doctest: +SKIP
    >>> frame.groupby("as_of")["label"].mean()                                             # doctest: +SKIP
    """
    ws = _check_options(horizon_days, lead_days, windows)
    dates = _as_dates(as_of)
    rules = rules or rules_for(store)
    data_end = rules.as_of or data_as_of(store)
    if rules.as_of is None:
        rules = ActivityRules(rules.definition, rules.grace_days, rules.inactivity_days, rules.activity_table, data_end)
    if labels:
        last_ok = data_end - dt.timedelta(days=lead_days + horizon_days - 1)
        dates = [d for d in dates if d <= last_ok]
    build = FeatureBuild(dates)
    base_cols = ["customer_id", "as_of", *(LABEL_COLUMNS if labels else ())]
    if customers is not None and isinstance(customers, str):
        raise ConfigError(f'customers: expected a list of customer ids, got the text "{customers}".')
    if not dates or (customers is not None and len(customers) == 0):
        empty = _frame({c: np.array([], dtype=object if c in base_cols[:2] else np.int32) for c in base_cols})
        empty.attrs["build"] = build.to_dict()
        return empty
    ctx = Context(store, dates, ws, uuid.uuid4().hex[:8], data_end, restricted=customers is not None)
    created: list[str] = []
    try:
        t0 = time.perf_counter()
        if customers is not None:
            created.append(ctx.table("ids"))
            _stage_ids(ctx, customers)
        created += dict.fromkeys([ctx.table("dates"), ctx.table("days"), ctx.everyone, ctx.table("pop")])
        n = _setup(ctx, rules)
        label_sql = ""
        if labels:
            label_sql = (
                ", CAST(CASE WHEN spell_end BETWEEN as_of + $lead AND as_of + $lead + $horizon - 1 THEN 1 ELSE 0 END "
                "AS INTEGER) AS label, CAST(coalesce(spell_end, $data_end) + 1 - as_of AS INTEGER) AS days_to_churn, "
                "CAST(CASE WHEN spell_end IS NOT NULL THEN 1 ELSE 0 END AS INTEGER) AS churned"
            )
        base, rid = _read(
            store,
            f"SELECT rid, customer_id, as_of{label_sql} FROM {ctx.table('pop')}",
            {"lead": int(lead_days), "horizon": int(horizon_days), "data_end": data_end} if labels else None,
            n,
        )
        kinds = {"customer_id": "id", "as_of": "date"}
        columns: dict[str, Any] = {c: _column(base.column(c), kinds.get(c, "int"), rid, n) for c in base_cols}
        del base
        build.timings["population"] = time.perf_counter() - t0
        blocks: list[Block] = []
        for name, make in _MAKERS:
            t0, c0 = time.perf_counter(), time.process_time()
            block = _make(ctx, name, make, {b.name: b for b in blocks})
            if block is None:
                continue
            blocks.append(block)
            if block.materialize:
                created.append(ctx.table(block.name))
                store.execute(f"CREATE TEMP TABLE {ctx.table(block.name)} AS {block.sql}", block.params)
                build.timings[f"{block.name} (aggregate)"] = time.perf_counter() - t0
                build.cpu[f"{block.name} (aggregate)"] = time.process_time() - c0
        for b in blocks:
            t0, c0 = time.perf_counter(), time.process_time()
            got, rid = _read(store, *_block_select(ctx, b), n)
            for o in b.outputs:
                columns[o.name] = _column(got.column(o.name), o.kind, rid, n, o.fill)
            del got
            for d in b.derived:
                columns[d.name] = d.compute(*(columns[i] for i in d.inputs))
            build.outputs += [o for o in b.outputs if not o.name.startswith("_")]
            build.outputs += [Out(d.name, "", "float") for d in b.derived]
            build.timings[b.name] = time.perf_counter() - t0
            build.cpu[b.name] = time.process_time() - c0
        for hidden in [c for c in columns if c.startswith("_")]:
            del columns[hidden]
    finally:
        for name in reversed(created):
            with contextlib.suppress(Exception):
                store.execute(f"DROP TABLE IF EXISTS {name}")
    t0 = time.perf_counter()
    df = _frame(columns)
    build.timings["frame"] = time.perf_counter() - t0
    df.attrs["build"] = build.to_dict()
    return df
