"""DuckDB-dialect SQL → Spark SQL: sqlglot's translation plus the fixes it needs for churnguard's SQL.

All churnguard SQL is written once, in DuckDB's dialect.  :func:`to_spark` parses it with sqlglot
(``read="duckdb"``), applies the fixes below to the syntax tree, and writes Spark SQL.  Each fix is
one function, named in :data:`FIXES` with the reason it is needed;
``churnguard.store.dialect.translate(sql, "spark")`` calls :func:`to_spark` (without table schemas).

Fixes (sqlglot 30 writes these wrongly, or Spark 4.0 lacks the construct):

- ``AS MATERIALIZED`` CTEs: Spark's parser rejects the keyword; the hint is dropped.
- ``date - date``: DuckDB gives whole days (an integer), Spark an ``INTERVAL DAY``; with the
  operand types known (from the lake's schemas and the bound parameters), it becomes
  ``datediff(a, b)``.
- ``epoch(ts1 - ts2)``: sqlglot writes ``unix_timestamp(ts1 - ts2)``, which Spark refuses; it
  becomes ``(unix_micros(ts1) - unix_micros(ts2)) / 1e6``.
- ``x + to_months(n)``: Spark has no ``to_months``; it becomes ``add_months(x, n)``.
- ``range(a, b)`` / ``generate_series`` in FROM: sqlglot writes ``explode(sequence(…))`` with a
  broken alias; Spark's own ``range(a, b)`` table function is used (its column renamed to the
  DuckDB name ``range`` when the query gives none).
- several ``unnest(…)`` in one SELECT: DuckDB zips them; Spark allows one generator per SELECT,
  so they become one ``inline(arrays_zip(…)) AS (…)``.
- ``list(x ORDER BY k…)`` (an ordered aggregate): Spark's ``collect_list`` has no ORDER BY; it
  becomes ``array_sort`` of (keys, value) structs with a comparator that keeps DuckDB's order
  (ASC/DESC, NULLS LAST by default), then ``transform`` back to the values.
- ``list[a:b]`` slices: sqlglot writes ``x[a::b]``; it becomes ``slice(x, a, b − a + 1)``.
- ``max_by(v, k, n)`` / ``arg_max(v, k, n)`` (top n): Spark's ``max_by`` has no ``n``; it becomes
  the first n values of the (k, v) structs sorted by k descending (NULL k skipped, as DuckDB).
- ``a / b``: DuckDB divides in floating point (``1.0 / 3.0`` is a DOUBLE), Spark divides decimal
  literals as decimals rounded to 6 places; the numerator is cast to DOUBLE.
- nested CTEs: sqlglot hoists them to the top for Spark (a Hive limit), which duplicates names
  when one CTE text is used twice; :class:`SparkNested` writes them where they are.
- bound date / timestamp parameters are wrapped in ``CAST(:p AS DATE|TIMESTAMP)`` so that their
  type is known to the ``date - date`` fix (Spark would infer the same type).

Recursive CTEs (``WITH RECURSIVE``; Spark 4.0 has none) are not translated here: the Spark
adapter (:mod:`churnguard.store.spark`) evaluates them by iteration into temporary views, using
:func:`split_recursive`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.spark import Spark


class SparkNested(Spark):
    """Spark SQL as sqlglot writes it, but keeping CTEs nested where they are written.

    sqlglot moves nested CTEs to the top (Hive could not nest them); Spark 3+ can, and moving
    them gives duplicate names when the same CTE text (the spells) is used twice in a statement.
    """

    class Generator(Spark.Generator):
        EXPRESSIONS_WITHOUT_NESTED_CTES: set = set()  # type: ignore[type-arg]  # noqa: RUF012


#: Column types of a table, by name, as sqlglot type strings (``DATE``, ``BIGINT`` …).
Schema = Mapping[str, Mapping[str, str]]


def param_kinds(params: Any) -> tuple[tuple[str, str], ...]:
    """``(name, kind)`` of the named parameters whose SQL type matters (``date``, ``timestamp``)."""
    if not isinstance(params, Mapping):
        return ()
    out = []
    for name, value in params.items():
        kind = _kind(value)
        if kind is None and isinstance(value, list | tuple) and value:
            kinds = {_kind(v) for v in value if v is not None}
            kind = f"{kinds.pop()}[]" if len(kinds) == 1 and None not in kinds else None
        if kind is not None:
            out.append((name, kind))
    return tuple(sorted(out))


def _kind(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return "TIMESTAMP"
    if isinstance(value, dt.date):
        return "DATE"
    return None


# -- the fixes -----------------------------------------------------------------------------------------


def _strip_materialized(tree: exp.Expression) -> None:
    for cte in tree.find_all(exp.CTE):
        if cte.args.get("materialized") is not None:
            cte.set("materialized", None)


def _type_params(tree: exp.Expression, kinds: Mapping[str, str]) -> None:
    for ph in list(tree.find_all(exp.Placeholder)):
        name = ph.name
        kind = kinds.get(name)
        if not kind or isinstance(ph.parent, exp.Cast):
            continue
        ph.replace(exp.Cast(this=ph.copy(), to=exp.DataType.build(kind)))


def _annotate(tree: exp.Expression, schema: Schema) -> exp.Expression:
    from sqlglot.optimizer.annotate_types import annotate_types
    from sqlglot.optimizer.qualify import qualify

    tree = qualify(
        tree,
        schema=dict(schema),
        dialect="duckdb",
        validate_qualify_columns=False,
        quote_identifiers=False,
        identify=False,
    )
    return annotate_types(tree, schema=dict(schema), dialect="duckdb")


def _is_date(node: exp.Expression) -> bool:
    t = node.type
    if t is not None and t.this == exp.DataType.Type.DATE:
        return True
    if isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.DATE:
        return True
    if isinstance(node, exp.Paren):
        return _is_date(node.this)
    if isinstance(node, exp.Coalesce):
        return any(_is_date(a) for a in [node.this, *node.expressions])
    if isinstance(node, exp.Add | exp.Sub):
        # date ± whole days is a date (DuckDB and Spark agree)
        return _is_date(node.this) and not _is_date(node.expression)
    if isinstance(node, exp.Greatest | exp.Least):
        return any(_is_date(a) for a in [node.this, *node.expressions])
    if isinstance(node, exp.Max | exp.Min | exp.AnyValue) and node.this is not None:
        return _is_date(node.this)
    if isinstance(node, exp.Case):
        return any(_is_date(i.args["true"]) for i in node.args.get("ifs") or [])
    return False


def _date_minus_date(tree: exp.Expression, schema: Schema | None) -> None:
    """Replace ``date - date`` by ``datediff``; the types come from an annotated *copy* of the tree.

    The copy is qualified (columns bound to tables, stars expanded) so that sqlglot can type it;
    the statement itself keeps its own text (qualifying would lower-case quoted names such as "T").
    """
    subs = list(tree.find_all(exp.Sub))
    if not subs:
        return
    for i, sub in enumerate(subs):
        sub.meta["cg_sub"] = i
    dates: set[int] = set()
    typed = tree
    if schema is not None:
        try:
            typed = _annotate(tree.copy(), schema)
        except Exception:  # typing is best effort: casts still tell dates apart
            typed = tree
    for sub in typed.find_all(exp.Sub):
        if _is_date(sub.this) and _is_date(sub.expression):
            dates.add(sub.meta.get("cg_sub"))
    for sub in reversed(subs):  # innermost first, so that an outer one takes the fixed inner ones
        if sub.meta.pop("cg_sub", None) in dates:
            sub.replace(exp.DateDiff(this=sub.this, expression=sub.expression))


def _epoch_of_difference(tree: exp.Expression) -> None:
    for node in list(tree.find_all(exp.TimeToUnix)):
        arg = node.this
        while isinstance(arg, exp.Paren):
            arg = arg.this
        if not isinstance(arg, exp.Sub):
            continue

        def micros(e: exp.Expression) -> exp.Expression:
            return exp.Anonymous(
                this="unix_micros", expressions=[exp.Cast(this=e.copy(), to=exp.DataType.build("TIMESTAMP"))]
            )

        diff = exp.Sub(this=micros(arg.this), expression=micros(arg.expression))
        node.replace(exp.Div(this=exp.Paren(this=diff), expression=exp.Literal.number("1000000.0")))


def _to_months(tree: exp.Expression) -> None:
    for node in list(tree.find_all(exp.Add, exp.Sub)):
        other = node.expression
        if isinstance(other, exp.Anonymous) and other.name.lower() == "to_months":
            n = other.expressions[0].copy()
            if isinstance(node, exp.Sub):
                n = exp.Neg(this=exp.Paren(this=n))
            node.replace(exp.Anonymous(this="add_months", expressions=[node.this.copy(), n]))


def _range_tables(tree: exp.Expression) -> None:
    for table in list(tree.find_all(exp.Table)):
        series = table.this
        if not isinstance(series, exp.GenerateSeries):
            continue
        start, end = series.args["start"].copy(), series.args["end"].copy()
        if not series.args.get("is_end_exclusive"):
            end = exp.Add(this=exp.Paren(this=end), expression=exp.Literal.number(1))
        step = series.args.get("step")
        args = [start, end] if step is None else [start, end, step.copy()]
        alias = table.args.get("alias")
        if alias is None or not alias.columns:
            name = alias.this if alias is not None else exp.to_identifier("_range")
            alias = exp.TableAlias(this=name, columns=[exp.to_identifier("range", quoted=True)])
            # DuckDB's column of range() is "range"; quote the references so Spark reads a column
            for col in (table.parent_select or tree).find_all(exp.Column):
                if col.name.lower() == "range" and not col.table:
                    col.this.set("quoted", True)
        table.set("this", exp.Anonymous(this="range", expressions=args))
        table.set("alias", alias)


def _zip_unnests(tree: exp.Expression) -> None:
    for select in list(tree.find_all(exp.Select)):
        gens = [
            e for e in select.expressions if isinstance(e, exp.Alias) and isinstance(e.this, exp.Explode | exp.Unnest)
        ]
        if len(gens) < 2:
            continue
        arrays = []
        for g in gens:
            inner = g.this
            arrays.append(inner.this.copy() if isinstance(inner, exp.Explode) else inner.expressions[0].copy())
        zipped = exp.Anonymous(this="inline", expressions=[exp.Anonymous(this="arrays_zip", expressions=arrays)])
        multi = exp.Aliases(this=zipped, expressions=[exp.to_identifier(g.alias) for g in gens])
        first = select.expressions.index(gens[0])
        rest = [e for e in select.expressions if e not in gens]
        rest.insert(first, multi)
        select.set("expressions", rest)


def _spark(node: exp.Expression) -> str:
    return node.sql(dialect="spark")


def _comparator(keys: list[tuple[str, bool, bool]]) -> str:
    """A Spark ``array_sort`` comparator over struct fields ``(name, desc, nulls_first)``, in order."""
    expr = "0"
    for name, desc, nulls_first in reversed(keys):
        lt, gt = ("1", "-1") if desc else ("-1", "1")
        ln, rn = ("-1", "1") if nulls_first else ("1", "-1")
        expr = (
            f"CASE WHEN l.{name} IS NULL AND r.{name} IS NULL THEN {expr} "
            f"WHEN l.{name} IS NULL THEN {ln} WHEN r.{name} IS NULL THEN {rn} "
            f"WHEN l.{name} < r.{name} THEN {lt} WHEN l.{name} > r.{name} THEN {gt} ELSE {expr} END"
        )
    return f"(l, r) -> {expr}"


def _ordered_lists(tree: exp.Expression) -> None:
    for agg in list(tree.find_all(exp.ArrayAgg)):
        order = agg.this
        if not isinstance(order, exp.Order):
            continue
        value = order.this
        fields, keys = [], []
        for i, o in enumerate(order.expressions):
            fields.append(f"{_spark(o.this)} AS k{i}")
            # DuckDB's default is NULLS LAST for ASC and DESC alike; sqlglot marks explicit choices
            keys.append((f"k{i}", bool(o.args.get("desc")), bool(o.args.get("nulls_first"))))
        fields.append(f"{_spark(value)} AS v")
        text = f"transform(array_sort(collect_list(struct({', '.join(fields)})), {_comparator(keys)}), s -> s.v)"
        agg.replace(sqlglot.parse_one(text, read="spark"))


def _slices(tree: exp.Expression) -> None:
    for br in list(tree.find_all(exp.Bracket)):
        if len(br.expressions) != 1 or not isinstance(br.expressions[0], exp.Slice):
            continue
        sl = br.expressions[0]
        start = sl.this.copy() if sl.this is not None else exp.Literal.number(1)
        stop = sl.expression
        target = _spark(br.this)
        if stop is None:
            text = f"slice({target}, {_spark(start)}, size({target}))"
        else:
            text = f"slice({target}, {_spark(start)}, greatest(({_spark(stop)}) - ({_spark(start)}) + 1, 0))"
        br.replace(sqlglot.parse_one(text, read="spark"))


def _top_n_by(tree: exp.Expression) -> None:
    for node in list(tree.find_all(exp.ArgMax, exp.ArgMin)):
        count = node.args.get("count")
        if count is None:
            continue
        desc = "false" if isinstance(node, exp.ArgMax) else "true"
        pairs = f"collect_list(struct({_spark(node.expression)} AS k, {_spark(node.this)} AS v))"
        text = (
            f"transform(slice(sort_array(filter({pairs}, s -> s.k IS NOT NULL), {desc}), 1, {_spark(count)}), s -> s.v)"
        )
        node.replace(sqlglot.parse_one(text, read="spark"))


def _float_division(tree: exp.Expression) -> None:
    for div in list(tree.find_all(exp.Div)):
        num = div.this
        if isinstance(num, exp.Cast) and num.to.this == exp.DataType.Type.DOUBLE:
            continue
        div.set("this", exp.Cast(this=num, to=exp.DataType.build("DOUBLE")))


@dataclass(frozen=True)
class Fix:
    name: str
    reason: str
    apply: Callable[[exp.Expression], None]


#: The syntax fixes in the order they run (the typed ones, date − date, run in :func:`fix_tree`).
FIXES: tuple[Fix, ...] = (
    Fix("materialized", "Spark's parser rejects AS MATERIALIZED", _strip_materialized),
    Fix(
        "float_division",
        "DuckDB's / is floating-point division even of decimals; Spark keeps decimals (rounded to 6 places)",
        _float_division,
    ),
    Fix("epoch", "sqlglot writes unix_timestamp(interval), which Spark refuses", _epoch_of_difference),
    Fix("to_months", "Spark has no to_months(); add_months keeps DuckDB's month arithmetic", _to_months),
    Fix("range", "sqlglot rewrites range() in FROM into explode(sequence()) with a broken alias", _range_tables),
    Fix("ordered_list", "Spark's collect_list has no ORDER BY", _ordered_lists),
    Fix("slice", "sqlglot writes list[a:b] as x[a::b], not Spark syntax", _slices),
    Fix("top_n_by", "Spark's max_by/min_by take no n (top-n list)", _top_n_by),
    Fix("zip_unnest", "Spark allows one generator per SELECT; DuckDB zips several unnest()", _zip_unnests),
)


def fix_tree(
    tree: exp.Expression, *, schema: Schema | None = None, kinds: Mapping[str, str] | None = None
) -> exp.Expression:
    """Apply every fix to ``tree`` (parsed as DuckDB) and return it, ready to be written as Spark SQL.

    ``schema`` (table → column → type) lets ``date - date`` be found; ``kinds`` types bound parameters.
    """
    _type_params(tree, kinds or {})
    _date_minus_date(tree, schema)
    for fix in FIXES:
        fix.apply(tree)
    return tree


@functools.lru_cache(maxsize=512)
def _cached(sql: str, kinds: tuple[tuple[str, str], ...], schema_key: tuple[Any, ...]) -> str:
    schema = {t: dict(cols) for t, cols in schema_key} if schema_key else None
    tree = sqlglot.parse_one(sql, read="duckdb")
    return fix_tree(tree, schema=schema, kinds=dict(kinds)).sql(dialect=SparkNested)


def to_spark(sql: str, *, params: Any = None, schema: Schema | None = None) -> str:
    """``sql`` (DuckDB dialect, ``$name`` / ``?`` parameters) as Spark SQL (``:name`` / ``?``).

    Examples
    --------
    >>> to_spark("SELECT d - start_date AS days FROM t", schema={"t": {"d": "DATE", "start_date": "DATE"}})
    'SELECT DATEDIFF(t.d, t.start_date) AS days FROM t AS t'
    """
    key = tuple(sorted((t, tuple(sorted(c.items()))) for t, c in schema.items())) if schema else ()
    return _cached(sql, param_kinds(params), key)


@functools.lru_cache(maxsize=512)
def referenced_tables(sql: str) -> frozenset[str]:
    """Names of the tables ``sql`` reads (CTE names excluded), lower case."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    out = set()
    for t in tree.find_all(exp.Table):
        if isinstance(t.this, exp.Identifier) and t.name.lower() not in ctes:
            out.add(t.name.lower())
    return frozenset(out)


@dataclass(frozen=True)
class Recursive:
    """A recursive CTE taken out of a statement: the view that replaces it and its two parts (DuckDB SQL)."""

    view: str
    columns: tuple[str, ...]
    anchor: str
    step: str  # reads the previous round's rows from the table named ``delta``
    delta: str


def split_recursive(sql: str, name_for: Callable[[str], str]) -> tuple[str, list[Recursive]]:
    """Take the recursive CTEs out of ``sql``: each is replaced by a view named ``name_for(cte_sql)``.

    Returns the statement (DuckDB SQL reading the views) and the CTEs to evaluate, innermost first.
    A CTE's step reads the rows of the previous round from a table named :attr:`Recursive.delta`.
    """
    tree = sqlglot.parse_one(sql, read="duckdb")
    found: list[Recursive] = []
    for with_ in list(tree.find_all(exp.With)):
        if not with_.args.get("recursive"):
            continue
        owner = with_.parent
        for cte in list(with_.expressions):
            body = cte.this
            name = cte.alias_or_name
            if not isinstance(body, exp.Union) or body.args.get("distinct"):
                continue
            selfrefs = [t for t in body.expression.find_all(exp.Table) if t.name == name]
            if not selfrefs:
                continue
            view = name_for(cte.sql(dialect="duckdb"))
            delta = f"{view}_delta"
            step = body.expression.copy()
            for t in step.find_all(exp.Table):
                if t.name == name:
                    t.set("this", exp.to_identifier(delta))
                    if not t.alias:
                        t.set("alias", exp.TableAlias(this=exp.to_identifier(name)))
            cols = tuple(c.name for c in cte.args["alias"].columns) if cte.args.get("alias") else ()
            found.append(Recursive(view, cols, body.this.sql(dialect="duckdb"), step.sql(dialect="duckdb"), delta))
            cte.pop()
            for t in owner.find_all(exp.Table):
                if t.name == name and not isinstance(t.this, exp.Anonymous):
                    t.set("this", exp.to_identifier(view))
                    if not t.alias:
                        t.set("alias", exp.TableAlias(this=exp.to_identifier(name)))
        if not with_.expressions:
            with_.pop()
    return tree.sql(dialect="duckdb"), found
