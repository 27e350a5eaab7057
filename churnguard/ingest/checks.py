"""Validation of a staged load against the canonical rules, all as queries in the engine.

Each check returns the :class:`~churnguard.errors.Problem` rows it found (the first few,
located by line) and how many rows it found in all.  Nothing here writes to the store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from churnguard.errors import Problem
from churnguard.ingest.convert import STAGE_TABLE, Target, bad_column
from churnguard.store.schema import KIND_EXAMPLES, TableSchema
from churnguard.store.sql import ident

SHOW_PER_CHECK = 5


@dataclass(frozen=True)
class Context:
    con: Any
    schema: TableSchema
    targets: list[Target]
    stage_cols: set[str]
    source: str
    word: str  # "line" or "row"
    mode: str
    as_of: dt.date
    stored_cols: frozenset[str] = frozenset()

    def problem(self, line: int | None, column: str | None, expected: str, got: str | None, fix: str | None) -> Problem:
        return Problem(self.source, line, column, expected, got, fix, self.word)

    def target(self, name: str) -> Target | None:
        return next((t for t in self.targets if t.name == name), None)


@dataclass(frozen=True)
class Found:
    problems: list[Problem]
    total: int


def _q(v: Any) -> str:
    if isinstance(v, dt.datetime):
        return f'"{v.isoformat(sep=" ")}"'
    if isinstance(v, float):
        return f"{v:g}"
    return f'"{v}"'


def _found(ctx: Context, where: str, params: dict[str, Any], make: Any, cols: str) -> Found:
    con = ctx.con
    total = con.execute(f"SELECT count(*) FROM {STAGE_TABLE} WHERE {where}", params).fetchone()[0]
    if not total:
        return Found([], 0)
    rows = con.execute(
        f"SELECT _line, {cols} FROM {STAGE_TABLE} WHERE {where} ORDER BY _line LIMIT {SHOW_PER_CHECK}", params
    ).fetchall()
    return Found([make(r) for r in rows], total)


def _fix_for(t: Target) -> str:
    if t.kind == "date" or t.kind == "timestamp":
        return (
            f"if the file uses another format, map the column with a format, e.g. {t.name}: "
            f'{{from: {t.spec.source if t.spec and t.spec.source else t.name}, format: "%d/%m/%Y"}} (--mapping).'
        )
    if t.kind == "integer":
        return "use a whole number, without decimals, currency signs, units or thousands separators."
    if t.kind == "number":
        return "remove currency signs, units and thousands separators (or convert units with scale: in a mapping)."
    if t.kind == "bool":
        return f"map the words used with true_values: [...] and false_values: [...] for {t.name} in a mapping."
    return "correct the value."


def check_conversions(ctx: Context) -> Iterator[Found]:
    for t in ctx.targets:
        bad = bad_column(t.name)
        if bad not in ctx.stage_cols:
            continue
        expected = KIND_EXAMPLES[t.kind] if t.kind in KIND_EXAMPLES else t.sql_type.lower()
        if t.kind in ("id", "text") and t.sql_type != "VARCHAR":  # a stored column of another engine type
            expected = f"a value of type {t.sql_type}"
        if t.spec is not None and t.spec.format:
            expected = f'a {t.kind} in the format "{t.spec.format}"'
        yield _found(
            ctx,
            f"{ident(bad)} IS NOT NULL",
            {},
            lambda r, t=t, expected=expected: ctx.problem(r[0], t.name, expected, _q(r[1]), _fix_for(t)),
            ident(bad),
        )


def check_required(ctx: Context) -> Iterator[Found]:
    for col in ctx.schema.columns:
        if not col.required or ctx.target(col.name) is None:
            continue
        bad = bad_column(col.name)
        cond = f"{ident(col.name)} IS NULL"
        if bad in ctx.stage_cols:
            cond += f" AND {ident(bad)} IS NULL"
        yield _found(
            ctx,
            cond,
            {},
            lambda r, c=col: ctx.problem(
                r[0],
                c.name,
                f"a value ({c.description})",
                "an empty cell",
                "fill the cell, or give a default in the mapping (default: VALUE).",
            ),
            "1",
        )


def check_ranges(ctx: Context) -> Iterator[Found]:
    for col in ctx.schema.columns:
        if ctx.target(col.name) is None:
            continue
        c = ident(col.name)
        if col.min_value is not None:
            fix = (
                "amounts must not be negative: load refunds and credits as their own rows (e.g. product: refund) "
                "with a positive amount, or correct the sign."
                if col.kind == "number" and col.min_value == 0 and col.max_value is None
                else f"correct the value; {col.name} ranges from {col.min_value:g}"
                + (f" to {col.max_value:g}." if col.max_value is not None else ".")
            )
            yield _found(
                ctx,
                f"{c} < $v",
                {"v": col.min_value},
                lambda r, col=col, fix=fix: ctx.problem(r[0], col.name, f"a number ≥ {col.min_value:g}", _q(r[1]), fix),
                c,
            )
        if col.max_value is not None:
            yield _found(
                ctx,
                f"{c} > $v",
                {"v": col.max_value},
                lambda r, col=col: ctx.problem(
                    r[0],
                    col.name,
                    f"a number ≤ {col.max_value:g}",
                    _q(r[1]),
                    f"{col.name} ranges from {col.min_value or 0:g} to {col.max_value:g}; rescale or correct it.",
                ),
                c,
            )


def check_ranges_when(ctx: Context) -> Iterator[Found]:
    for rule in ctx.schema.ranges_when:
        if ctx.target(rule.column) is None or ctx.target(rule.when_column) is None:
            continue
        c, w = ident(rule.column), ident(rule.when_column)
        yield _found(
            ctx,
            f"upper({w}) = upper($when) AND ({c} < $low OR {c} > $high)",
            {"when": rule.when_value, "low": rule.low, "high": rule.high},
            lambda r, rule=rule: ctx.problem(
                r[0],
                rule.column,
                f"a {rule.when_value} {rule.column} from {rule.low:g} to {rule.high:g}",
                _q(r[1]),
                f"correct the value, or check that {rule.when_column} is right for this row.",
            ),
            c,
        )


def check_future(ctx: Context) -> Iterator[Found]:
    limit = ctx.as_of + dt.timedelta(days=1)
    for col in ctx.schema.columns:
        if not col.not_in_future or ctx.target(col.name) is None:
            continue
        c = ident(col.name)
        yield _found(
            ctx,
            f"CAST({c} AS TIMESTAMP) >= $limit",
            {"limit": dt.datetime.combine(limit, dt.time())},
            lambda r, col=col: ctx.problem(
                r[0],
                col.name,
                f"a date not after {ctx.as_of.isoformat()} (today)",
                _q(r[1]),
                "correct the date; a date in the future usually means a wrong format (day and month swapped) "
                "or a wrong year.",
            ),
            c,
        )


def check_allowed(ctx: Context) -> Iterator[Found]:
    for col in ctx.schema.columns:
        if not col.allowed or ctx.target(col.name) is None:
            continue
        allowed = sorted(col.allowed)
        c = ident(col.name)
        yield _found(
            ctx,
            f"{c} IS NOT NULL AND NOT list_contains($allowed, {c})",
            {"allowed": allowed},
            lambda r, col=col, allowed=allowed: ctx.problem(
                r[0],
                col.name,
                f"one of {', '.join(allowed)}",
                _q(r[1]),
                f'recode the file\'s values in a mapping: {col.name}: {{from: COLUMN, values: {{"{r[1]}": '
                f"{allowed[0]}}}}}.",
            ),
            c,
        )


def check_order(ctx: Context) -> Iterator[Found]:
    for earlier, later in ctx.schema.ordered:
        if ctx.target(earlier) is None or ctx.target(later) is None:
            continue
        a, b = ident(earlier), ident(later)
        yield _found(
            ctx,
            f"{b} < {a}",
            {},
            lambda r, earlier=earlier, later=later: ctx.problem(
                r[0],
                later,
                f"{later} on or after {earlier} ({_q(r[2])})",
                _q(r[1]),
                f"correct the dates; {later} cannot come before {earlier}.",
            ),
            f"{b}, {a}",
        )


def check_duplicate_keys(ctx: Context) -> Iterator[Found]:
    key = ctx.schema.key
    if not key:
        return
    cols = ", ".join(ident(k) for k in key)
    con = ctx.con
    total = con.execute(
        f"SELECT count(*) FROM (SELECT {cols} FROM {STAGE_TABLE} GROUP BY ALL HAVING count(*) > 1)"
    ).fetchone()[0]
    if not total:
        return
    rows = con.execute(
        f"SELECT list(_line ORDER BY _line), {cols} FROM {STAGE_TABLE} GROUP BY ALL HAVING count(*) > 1 "
        f"ORDER BY min(_line) LIMIT {SHOW_PER_CHECK}"
    ).fetchall()
    problems = []
    for r in rows:
        lines = r[0]
        value = ", ".join(f"{k}={_q(v)}" for k, v in zip(key, r[1:], strict=True))
        problems.append(
            ctx.problem(
                lines[1],
                key[0] if len(key) == 1 else ", ".join(key),
                f"each {' + '.join(key)} once per file",
                f"{value} again (first on {ctx.word} {lines[0]})",
                "remove the duplicate row, or merge the two rows into one.",
            )
        )
    yield Found(problems, total)


def check_references(ctx: Context) -> Iterator[Found]:
    con = ctx.con
    for col in ctx.schema.columns:
        if col.references is None or ctx.target(col.name) is None:
            continue
        parent, pcol = col.references
        c = ident(col.name)
        if parent == ctx.schema.name:
            # A tree (branches.parent_id): the parent may be in the same file.
            pool = f"SELECT {ident(pcol)} FROM {STAGE_TABLE} WHERE {ident(pcol)} IS NOT NULL"
            if ctx.mode != "replace":
                pool += f" UNION ALL SELECT {ident(pcol)} FROM {parent}"
        else:
            pool = f"SELECT {ident(pcol)} FROM {parent} WHERE {ident(pcol)} IS NOT NULL"
        where = f"{c} IS NOT NULL AND {c} NOT IN ({pool})"
        # One problem per unknown value (with its row count), so the total counts values too.
        total = con.execute(f"SELECT count(DISTINCT {c}) FROM {STAGE_TABLE} WHERE {where}").fetchone()[0]
        if not total:
            continue
        rows = con.execute(
            f"SELECT min(_line), {c}, count(*) FROM {STAGE_TABLE} WHERE {where} GROUP BY {c} "
            f"ORDER BY min(_line) LIMIT {SHOW_PER_CHECK}"
        ).fetchall()
        noun = "branch" if parent == "branches" else "customer"
        if parent == ctx.schema.name:
            fix = f"add the parent {noun} to the file, or leave {col.name} empty for the head office."
        else:
            fix = f"load {parent} first (churnguard ingest {parent} FILE), or correct the {noun} id."
        problems = [
            ctx.problem(
                r[0],
                col.name,
                f"a {col.name} that exists in {parent}",
                f"unknown {noun} {_q(r[1])}" + (f" ({r[2]} rows)" if r[2] > 1 else ""),
                fix,
            )
            for r in rows
        ]
        yield Found(problems, total)


def _compare_columns(ctx: Context) -> list[str]:
    """The non-key columns a keyed append compares with the stored row (those the file gives and the table has)."""
    key = ctx.schema.key
    return [t.name for t in ctx.targets if t.name not in key and t.spec is not None and t.name in ctx.stored_cols]


def check_conflicts(ctx: Context) -> Iterator[Found]:
    """Keyed append: a key already stored with other values would be silently kept or lost."""
    key = ctx.schema.key
    if not key or ctx.mode != "append":
        return
    table = ctx.schema.name
    join = " AND ".join(f"s.{ident(k)} = t.{ident(k)}" for k in key)
    compare = _compare_columns(ctx)
    if not compare:
        return
    differs = " OR ".join(f"s.{ident(c)} IS DISTINCT FROM t.{ident(c)}" for c in compare)
    base = f"FROM {STAGE_TABLE} s JOIN {table} t ON {join} WHERE {differs}"
    con = ctx.con
    total = con.execute(f"SELECT count(*) {base}").fetchone()[0]
    if not total:
        return
    firsts = ", ".join(f"s.{ident(k)}" for k in key)
    rows = con.execute(f"SELECT s._line, {firsts} {base} ORDER BY s._line LIMIT {SHOW_PER_CHECK}").fetchall()
    problems = [
        ctx.problem(
            r[0],
            ", ".join(key),
            f"a new {' + '.join(key)}, or the same values as the stored row",
            ", ".join(f"{k}={_q(v)}" for k, v in zip(key, r[1:], strict=True)) + " already stored with other values",
            "use --mode upsert to replace the stored rows with the file's, or --mode replace to replace the table.",
        )
        for r in rows
    ]
    yield Found(problems, total)


CHECKS = (
    check_conversions,
    check_required,
    check_ranges,
    check_ranges_when,
    check_future,
    check_allowed,
    check_order,
    check_duplicate_keys,
    check_references,
    check_conflicts,
)
#: The checks that read stored rows beyond their keys (a server store runs them on the server).
STORED_ROW_CHECKS = (check_conflicts,)
#: The others read the staged rows and, for references, the parents' key columns.
STAGE_CHECKS = tuple(c for c in CHECKS if c not in STORED_ROW_CHECKS)


def parent_keys(ctx: Context) -> dict[str, list[str]]:
    """The stored tables and key columns :func:`check_references` reads: ``{table: [column, …]}``."""
    keys: dict[str, list[str]] = {}
    for col in ctx.schema.columns:
        if col.references is None or ctx.target(col.name) is None:
            continue
        parent, pcol = col.references
        if parent == ctx.schema.name and ctx.mode == "replace":  # a replaced tree refers to the file alone
            continue
        keys.setdefault(parent, [])
        if pcol not in keys[parent]:
            keys[parent].append(pcol)
    return keys


def conflict_columns(ctx: Context) -> list[str]:
    """The staged columns :func:`check_conflicts` reads (``_line`` first); empty when it does not apply."""
    key = ctx.schema.key
    if not key or ctx.mode != "append":
        return []
    compare = _compare_columns(ctx)
    return ["_line", *key, *compare] if compare else []


def run_checks(ctx: Context, *, limit: int = 20, checks: tuple[Any, ...] = CHECKS) -> tuple[list[Problem], int]:
    """Run ``checks`` (default: every check); return up to ``limit`` problems and the total count."""
    problems: list[Problem] = []
    total = 0
    for check in checks:
        for found in check(ctx):
            total += found.total
            problems.extend(found.problems[: max(0, limit - len(problems))])
    return problems, total
