"""What is in the store: row counts, date ranges and the branch tree (Ibis expressions)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from churnguard.store.connection import Store
from churnguard.store.schema import TABLES


@dataclass(frozen=True)
class TableSummary:
    table: str
    rows: int
    time_column: str | None
    first: dt.date | dt.datetime | None
    last: dt.date | dt.datetime | None
    extra_columns: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("first", "last"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        d["extra_columns"] = list(self.extra_columns)
        return d


def table_summaries(store: Store) -> list[TableSummary]:
    """One summary per canonical table: rows, first/last date of its time column, extra columns."""
    out = []
    for schema in TABLES:
        t = store.table(schema.name)
        if schema.time_column:
            col = t[schema.time_column]
            row = t.aggregate(rows=t.count(), first=col.min(), last=col.max()).execute().iloc[0]
            first, last = _py(row["first"]), _py(row["last"])
            rows = int(row["rows"])
        else:
            rows = int(t.count().execute())
            first = last = None
        extras = tuple(c for c in t.columns if c not in schema.column_names)
        out.append(TableSummary(schema.name, rows, schema.time_column, first, last, extras))
    return out


def _py(v: Any) -> Any:
    if v is None:
        return None
    try:
        import pandas as pd

        if pd.isna(v):
            return None
        if isinstance(v, pd.Timestamp):
            return v.date() if v == v.normalize() and v.tz is None and v.hour == 0 else v.to_pydatetime()
    except (TypeError, ValueError):
        pass
    return v


@dataclass(frozen=True)
class BranchSummary:
    branch_id: str
    name: str
    parent_id: str | None
    level: int | None
    customers: int  # customers in this branch and its whole subtree

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def branch_summaries(store: Store, *, max_level: int | None = None) -> list[BranchSummary]:
    """Branches with the number of customers in each one's subtree (a roll-up), in tree order."""
    rows = store.execute(
        """
        WITH RECURSIVE up(branch_id, ancestor) AS (
          SELECT branch_id, branch_id FROM branches
          UNION ALL
          SELECT u.branch_id, b.parent_id FROM up u JOIN branches b ON b.branch_id = u.ancestor
          WHERE b.parent_id IS NOT NULL
        ),
        direct AS (SELECT branch_id, count(*) AS n FROM customers GROUP BY branch_id),
        rolled AS (
          SELECT u.ancestor AS branch_id, sum(coalesce(d.n, 0)) AS n
          FROM up u LEFT JOIN direct d ON d.branch_id = u.branch_id GROUP BY u.ancestor
        )
        SELECT b.branch_id, b.name, b.parent_id, b.level, coalesce(r.n, 0)::BIGINT
        FROM branches b LEFT JOIN rolled r USING (branch_id)
        WHERE $max_level IS NULL OR b.level <= $max_level
        ORDER BY b.level, b.parent_id NULLS FIRST, b.branch_id
        """,
        {"max_level": max_level},
    ).fetchall()
    return [BranchSummary(r[0], r[1], r[2], r[3], int(r[4])) for r in rows]
