"""One SQL text for every engine: churnguard's SQL is written in DuckDB's dialect and translated.

The metrics, features, segmentation, scoring and case workflow build their statements once, in
DuckDB SQL.  On PostgreSQL (and Spark) :func:`translate` rewrites a statement with sqlglot
(``read="duckdb"``) into the target dialect, so the same expressions run on every engine rather
than a second hand-written copy.  Translations are cached: the code issues a few hundred distinct
statements, each translated once per process.

What sqlglot does not cover is fixed here, in one place:

* ``round(x)`` rounds halves away from zero, as DuckDB does (PostgreSQL's float round goes to even).
* ``arg_max`` / ``arg_min`` / ``max_by`` become an ordered ``array_agg`` picked by subscript.
* ``CAST(<condition> AS DOUBLE)`` goes through INT (PostgreSQL casts booleans only to integers).
* A subquery in FROM without a name gets one; so does ``range(a, b)`` (its column ``range``).
* ``GROUP BY ALL`` becomes the list of the select items' positions that hold no aggregate.
* ``CREATE OR REPLACE TEMP TABLE`` (PostgreSQL has no ``OR REPLACE`` for tables): a
  ``DROP TABLE IF EXISTS`` is issued first (:func:`split_statements`).
* PostgreSQL binds parameters as ``%s`` / ``%(name)s``, so a literal ``%`` in a statement with
  parameters is doubled.
* Functions PostgreSQL lacks or types differently (``date_trunc`` on a DATE returning a DATE,
  ``round(double, n)``, ``any_value``, ``arg_max``…) are installed by
  :data:`POSTGRES_COMPAT_SQL` when a PostgreSQL store is opened, rather than rewritten.
"""

from __future__ import annotations

import functools
import re

import sqlglot
from sqlglot import exp

DIALECTS = ("duckdb", "postgres", "spark")

_CREATE_OR_REPLACE_TABLE = re.compile(
    r"^\s*CREATE\s+OR\s+REPLACE\s+(TEMP|TEMPORARY)?\s*TABLE\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE
)


def split_statements(sql: str) -> tuple[str | None, str]:
    """``(pre, sql)``: a ``DROP TABLE IF EXISTS`` to run first when ``sql`` replaces a table.

    >>> split_statements("CREATE OR REPLACE TEMP TABLE t AS SELECT 1")
    ('DROP TABLE IF EXISTS t', 'CREATE TEMP TABLE t AS SELECT 1')
    >>> split_statements("SELECT 1")
    (None, 'SELECT 1')
    """
    m = _CREATE_OR_REPLACE_TABLE.match(sql)
    if not m:
        return None, sql
    temp = "TEMP " if m.group(1) else ""
    rest = sql[m.end() :]
    return f"DROP TABLE IF EXISTS {m.group(2)}", f"CREATE {temp}TABLE {m.group(2)}{rest}"


_TIME_FORMATS = (exp.TimeToStr, exp.StrToTime, exp.StrToDate)


def _double_percent(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Literal) and node.is_string and "%" in node.this:
        if node.arg_key == "format" and isinstance(node.parent, _TIME_FORMATS):
            return node  # strftime's format: written in PostgreSQL's codes (no %) when generated
        return exp.Literal.string(node.this.replace("%", "%%"))
    return node


def _expand_group_by_all(node: exp.Expression) -> exp.Expression:
    """DuckDB's ``GROUP BY ALL`` → ``GROUP BY 1, 3, …`` (the select items without an aggregate)."""
    if isinstance(node, exp.Select):
        group = node.args.get("group")
        if group is not None and group.args.get("all"):
            keys = [
                exp.Literal.number(i)
                for i, item in enumerate(node.expressions, start=1)
                if not item.find(exp.AggFunc) and not item.find(exp.Window)
            ]
            node.set("group", exp.Group(expressions=keys) if keys else None)
    return node


def _alias_subqueries(tree: exp.Expression) -> exp.Expression:
    """Name every unnamed subquery in FROM/JOIN (DuckDB allows them bare, PostgreSQL does not)."""
    for n, sub in enumerate(tree.find_all(exp.Subquery)):
        if not sub.alias and isinstance(sub.parent, exp.From | exp.Join):
            sub.set("alias", exp.TableAlias(this=exp.to_identifier(f"_cg_sq{n}")))
    return tree


def _name_range_column(tree: exp.Expression) -> exp.Expression:
    """``FROM range(a, b)`` without a name: DuckDB calls its column ``range``; PostgreSQL needs telling."""
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.GenerateSeries) and not table.alias:
            table.set(
                "alias", exp.TableAlias(this=exp.to_identifier("_cg_range"), columns=[exp.to_identifier("range")])
            )
    return tree


_BOOLEAN_EXPRESSIONS = (
    exp.Predicate,  # comparisons, IN, BETWEEN, LIKE, IS, EXISTS
    exp.Connector,  # AND, OR
    exp.Not,
    exp.Boolean,
)


def _bool_to_number_casts(tree: exp.Expression) -> exp.Expression:
    """``CAST(<condition> AS DOUBLE)``: PostgreSQL casts booleans to integers only, so go through INT."""
    for cast in list(tree.find_all(exp.Cast)):
        inner = cast.this
        while isinstance(inner, exp.Paren):
            inner = inner.this
        to = cast.to
        if isinstance(inner, _BOOLEAN_EXPRESSIONS) and to.is_type(*exp.DataType.REAL_TYPES, "bigint", "smallint"):
            cast.set("this", exp.Cast(this=cast.this, to=exp.DataType.build("int")))
    return tree


def _arg_min_max(tree: exp.Expression) -> exp.Expression:
    """``arg_max(x, k [, n])`` → the first (n) of ``array_agg(x ORDER BY k DESC)`` over rows whose k is set.

    A tuple key ``(k1, k2)`` orders by both.  DuckDB ignores rows whose key is NULL; so does this.
    """

    def fix(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.ArgMax | exp.ArgMin):
            return node
        key = node.expression
        keys = key.expressions if isinstance(key, exp.Tuple) else [key]
        direction = " DESC" if isinstance(node, exp.ArgMax) else ""
        order = ", ".join(f"{k.sql('postgres')}{direction} NULLS LAST" for k in keys)
        count = node.args.get("count")
        pick = f"1:{count.sql('postgres')}" if count is not None else "1"
        text = (
            f"(ARRAY_AGG({node.this.sql('postgres')} ORDER BY {order}) "
            f"FILTER (WHERE {keys[0].sql('postgres')} IS NOT NULL))[{pick}]"
        )
        return sqlglot.parse_one(text, read="postgres")

    return tree.transform(fix)


def _round_half_away(tree: exp.Expression) -> exp.Expression:
    """``round(x)``: DuckDB rounds halves away from zero, PostgreSQL's float ``round`` to even."""

    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Round) and node.args.get("decimals") is None:
            x = node.this.sql("postgres")
            return sqlglot.parse_one(
                f"(CASE WHEN ({x}) >= 0 THEN FLOOR(({x}) + 0.5) ELSE CEIL(({x}) - 0.5) END)", read="postgres"
            )
        return node

    return tree.transform(fix)


@functools.lru_cache(maxsize=4096)
def translate(sql: str, dialect: str, *, has_params: bool = False) -> str:
    """``sql`` (DuckDB dialect) rewritten for ``dialect``.

    ``has_params`` says the statement will be executed with bound parameters; for PostgreSQL a
    literal ``%`` is then written ``%%`` (psycopg's escape).

    >>> translate("SELECT a / b FROM t WHERE c = ?", "postgres")
    'SELECT CAST(a AS DOUBLE PRECISION) / b FROM t WHERE c = %s'
    >>> translate("SELECT x FROM t WHERE n LIKE 'a%' AND y = $p0", "postgres", has_params=True)
    "SELECT x FROM t WHERE n LIKE 'a%%' AND y = %(p0)s"
    """
    if dialect == "duckdb":
        return sql
    if dialect == "spark":  # Spark's fixes live beside its engine (they also use table schemas when known)
        from churnguard.engines.spark_sql import to_spark

        return to_spark(sql)
    if dialect != "postgres":
        raise ValueError(f"unknown SQL dialect {dialect!r}; expected one of {', '.join(DIALECTS)}")
    out = []
    for tree in _statements(sql):
        # transform() copies: the cached parse stays as it was; the fixes below then edit the copy.
        tree = _alias_subqueries(tree.transform(_expand_group_by_all))
        tree = _round_half_away(_arg_min_max(_bool_to_number_casts(_name_range_column(tree))))
        if has_params:
            tree = tree.transform(_double_percent)
        out.append(tree.sql(dialect="postgres"))
    return ";\n".join(out)


def translate_each(sql: str, dialect: str, *, has_params: bool = False) -> list[str]:
    """Like :func:`translate`, one string per statement (a server-side prepared statement holds one)."""
    return [translate(one.sql(dialect="duckdb"), dialect, has_params=has_params) for one in _statements(sql)]


@functools.lru_cache(maxsize=1024)
def _statements(sql: str) -> tuple[exp.Expression, ...]:
    return tuple(t for t in sqlglot.parse(sql, read="duckdb") if t is not None)


#: Functions installed in a PostgreSQL store so that translated DuckDB SQL keeps DuckDB's types
#: and names.  Each is a small SQL function; ``CREATE OR REPLACE`` makes this idempotent.
POSTGRES_COMPAT_SQL: tuple[str, ...] = (
    # DuckDB's date_trunc on a DATE returns a DATE; PostgreSQL's returns a TIMESTAMP.  An exact
    # (text, date) overload wins over pg_catalog's (text, timestamp) for DATE arguments.
    """CREATE OR REPLACE FUNCTION date_trunc(text, date) RETURNS date
       LANGUAGE sql IMMUTABLE PARALLEL SAFE
       AS $$ SELECT CAST(pg_catalog.date_trunc($1, CAST($2 AS timestamp)) AS date) $$""",
    """CREATE OR REPLACE FUNCTION round(double precision, integer) RETURNS double precision
       LANGUAGE sql IMMUTABLE PARALLEL SAFE
       AS $$ SELECT CAST(pg_catalog.round(CAST($1 AS numeric), $2) AS double precision) $$""",
    """CREATE OR REPLACE FUNCTION date_from_parts(integer, integer, integer) RETURNS date
       LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT make_date($1, $2, $3) $$""",
    """CREATE OR REPLACE FUNCTION to_months(integer) RETURNS interval
       LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT make_interval(months => $1) $$""",
    """CREATE OR REPLACE FUNCTION to_days(integer) RETURNS interval
       LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT make_interval(days => $1) $$""",
    """CREATE OR REPLACE FUNCTION to_years(integer) RETURNS interval
       LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT make_interval(years => $1) $$""",
    """CREATE OR REPLACE FUNCTION bit_count(bigint) RETURNS integer
       LANGUAGE sql IMMUTABLE PARALLEL SAFE
       AS $$ SELECT length(replace(CAST(CAST($1 AS bit(64)) AS text), '0', '')) $$""",
    """CREATE OR REPLACE FUNCTION cg_first_agg(anyelement, anyelement) RETURNS anyelement
       LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT $1 $$""",
    """DO $$ BEGIN
         IF NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'any_value') THEN
           CREATE AGGREGATE any_value(anyelement) (SFUNC = cg_first_agg, STYPE = anyelement);
         END IF;
         IF NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'first') THEN
           CREATE AGGREGATE first(anyelement) (SFUNC = cg_first_agg, STYPE = anyelement);
         END IF;
       END $$""",
)
