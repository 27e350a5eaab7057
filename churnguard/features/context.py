"""What every feature block shares: the observation dates, the day map, the population, the store's columns.

The population table ``pop`` has one row per (customer, date) with an integer row id ``rid``
(0, 1, … in the order of ``as_of, customer_id``).  A *block* is one aggregate query ``a`` keyed
by ``(customer_id, as_of)``, by ``rid``, or by ``(branch_id, as_of)``; the builder reads

    SELECT p.rid, <output expressions over a and p> FROM pop p LEFT JOIN (<query>) a ON <key>

so every block gives exactly one value per population row, and the outputs (each an SQL
expression over ``a.column`` and ``p.column``) say what an absent ``a`` row means (0 events,
or unknown).  The frame is assembled by row id, without one join over all blocks.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from churnguard.store.connection import Store

#: Longest day range one bit mask of usage days covers (a BIGINT holds 63 bits).
MASK_DAYS = 62
#: The trend windows every build has: last 30 days vs the 30 before, and three 30-day buckets.
TREND_BOUNDS = (30, 60, 90)


@dataclass(frozen=True)
class Out:
    """One output column: ``expr`` (SQL; ``{b}`` is the block's alias) and its type.

    ``kind``: ``int`` (a count or flag, never empty), ``float`` (may be empty: NaN) or
    ``category`` (text, a pandas category).
    """

    name: str
    expr: str
    kind: str = "float"
    fill: float | None = None  # direct blocks: the value of a row the block has none for (None: 0 / NaN / missing)


@dataclass(frozen=True)
class Derived:
    """A column computed from other blocks' columns once they are read (numpy, per row)."""

    name: str
    inputs: tuple[str, ...]
    compute: Callable[..., Any]


@dataclass
class Block:
    """One aggregate query, the feature columns computed from it, and how it joins the population.

    ``key``: ``pair`` (``a.customer_id, a.as_of``), ``rid`` (``a.rid``), ``branch``
    (``a.branch_id, a.as_of``), or ``direct``: the query already has one row per population row
    it knows (``rid``, with ``p_<column>`` for the population columns the outputs use), and is
    read without joining the population again; rows it lacks take each output's ``fill``.
    ``materialize``: the aggregate is stored as the block's table for later blocks to read;
    ``joins``: further joins of the select (to an earlier block's table);
    ``derived``: columns computed from read columns (outputs named ``_…`` are such inputs only).
    """

    name: str
    sql: str
    params: dict[str, Any] = field(default_factory=dict)
    outputs: list[Out] = field(default_factory=list)
    key: str = "pair"
    joins: str = ""
    materialize: bool = False
    derived: tuple[Derived, ...] = ()


@dataclass
class Context:
    """The state of one build: options, temp-table names, the store's optional columns."""

    store: Store
    dates: list[dt.date]
    windows: tuple[int, ...]
    suffix: str
    data_end: dt.date
    restricted: bool = False  # the build covers only the customers of the staged id table (``ids``)
    _columns: dict[str, set[str]] = field(default_factory=dict)

    # -- names -----------------------------------------------------------------------------------
    def table(self, name: str) -> str:
        """The temp table of ``name`` (``dates``, ``days``, ``pop`` or a block's name) for this build."""
        return f"_cg_feat_{self.suffix}_{name}"

    @property
    def everyone(self) -> str:
        """The population of every customer active at the dates: ``pop_all`` in a restricted build
        (where ``pop`` holds only the given customers), else ``pop``.  Features that compare a
        customer with the others (value rank, the branch's churn rate) count over this one."""
        return self.table("pop_all" if self.restricted else "pop")

    def only(self, alias: str) -> str:
        """`` AND alias.customer_id IN (the staged ids)`` in a restricted build (else nothing): a
        semi-join that keeps an event scan to the given customers."""
        if not self.restricted:
            return ""
        return f" AND {alias}.customer_id IN (SELECT customer_id FROM {self.table('ids')})"

    @property
    def max_age(self) -> int:
        """The oldest day (days before the date) any window reaches."""
        return max(*self.windows, *TREND_BOUNDS)

    @property
    def chunks(self) -> list[tuple[int, int]]:
        """Consecutive day ranges ``(first, last)`` (days before the date, 1 = the day before) whose
        unions are every window and trend bucket; each at most :data:`MASK_DAYS` long."""
        out, lo = [], 1
        for bound in sorted({*self.windows, *TREND_BOUNDS}):
            while bound - lo + 1 > MASK_DAYS:
                out.append((lo, lo + MASK_DAYS - 1))
                lo += MASK_DAYS
            out.append((lo, bound))
            lo = bound + 1
        return out

    def chunk_ids(self, first: int, last: int) -> list[int]:
        """Indexes of the chunks that make up the day range ``[first, last]``."""
        return [i for i, (a, b) in enumerate(self.chunks) if a >= first and b <= last]

    # -- the store -----------------------------------------------------------------------------------
    def columns(self, table: str) -> set[str]:
        if table not in self._columns:
            self._columns[table] = {c for c, _ in self.store.columns(table)} if self.store.has_table(table) else set()
        return self._columns[table]

    def has_rows(self, table: str) -> bool:
        if not self.columns(table):
            return False
        return self.store.execute(f"SELECT count(*) > 0 FROM (SELECT 1 FROM {table} LIMIT 1)").fetchone()[0]

    @property
    def lo(self) -> dt.datetime:
        """The earliest moment a window reaches: the first date minus :attr:`max_age` days."""
        return dt.datetime.combine(min(self.dates) - dt.timedelta(days=self.max_age), dt.time())

    @property
    def hi(self) -> dt.datetime:
        """The last date (exclusive): nothing at or after it is read."""
        return dt.datetime.combine(max(self.dates), dt.time())


def safe_name(text: str, taken: set[str]) -> str:
    """A column-name part from a data value: lower case, ``[a-z0-9_]``, not reserved, not taken."""
    base = re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_") or "type"
    if base[0].isdigit() or base in ("events", "days"):
        base = f"type_{base}"
    name, i = base, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def window_sum(ctx: Context, column: str, first: int, last: int, alias: str = "a") -> str:
    """SQL summing the per-chunk columns ``{column}{i}`` over the chunks of days ``[first, last]``."""
    ids = ctx.chunk_ids(first, last)
    return " + ".join(f"coalesce({alias}.{column}{i}, 0)" for i in ids) or "0"
