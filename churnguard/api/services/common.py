"""Small helpers shared by the services: rows as dicts, JSON-ready values, branch names."""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from typing import Any

from churnguard.store.connection import Store


def clean(value: Any) -> Any:
    """A JSON-ready value: dates as ISO text, decimals as floats, NaN as ``None``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if hasattr(value, "item"):
        return clean(value.item())
    return str(value)


def rows(cur: Any) -> list[dict[str, Any]]:
    """Every row of a cursor as a dict of JSON-ready values."""
    names = [d[0] for d in cur.description]
    return [{n: clean(v) for n, v in zip(names, r, strict=True)} for r in cur.fetchall()]


def one(cur: Any) -> dict[str, Any] | None:
    found = rows(cur)
    return found[0] if found else None


def parse_json(text: Any) -> Any:
    """A JSON column's value (``None`` for empty or unreadable text, which is shown as missing, not as an error)."""
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return None


def branch_names(store: Store) -> dict[str, dict[str, Any]]:
    """Every branch: ``{id: {name, name_zh, parent_id, level}}`` (the table is small; read whole)."""
    has_zh = any(name == "name_zh" for name, _ in store.columns("branches"))
    zh = "coalesce(name_zh, name)" if has_zh else "name"
    cur = store.execute(f"SELECT branch_id, name, {zh} AS name_zh, parent_id, level FROM branches ORDER BY branch_id")
    return {
        r[0]: {
            "branch_id": r[0],
            "name": r[1] or r[0],
            "name_zh": r[2] or r[1] or r[0],
            "parent_id": r[3],
            "level": r[4],
        }
        for r in cur.fetchall()
    }


def has_rows(store: Store, table: str) -> bool:
    return store.has_table(table) and bool(store.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0])
