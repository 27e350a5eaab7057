"""Resolve a mapping against a staged source and convert it to canonical types, in the engine.

The result is the table ``_cg_stage``: ``_line``, one column per canonical column (typed),
the extra attribute columns, and for every converted column a ``__bad__<name>`` column that
holds the original text where conversion failed (NULL everywhere else), so problems can be
reported with what actually arrived.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from churnguard.errors import Problem, ValidationError
from churnguard.ingest.mapping import ColumnMap, Mapping, snake_case
from churnguard.ingest.readers import RAW_TABLE, StagedSource, assign_lines, reading
from churnguard.store.schema import KIND_TYPES, TableSchema
from churnguard.store.sql import Params, ident

STAGE_TABLE = "_cg_stage"

TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")
_ENGINE_KIND = {
    "BIGINT": "integer",
    "INTEGER": "integer",
    "DOUBLE": "number",
    "VARCHAR": "text",
    "BOOLEAN": "bool",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
}


@dataclass(frozen=True)
class Target:
    """One column of the staged table: where it comes from and what type it must have."""

    name: str
    kind: str  # key of KIND_TYPES
    spec: ColumnMap | None  # None: absent from the source (all NULL)
    canonical: bool
    sql_type: str  # engine type stored
    checked: bool  # a failed conversion is a problem (False for inferred extra types)


def bad_column(name: str) -> str:
    return f"__bad__{name}"


def resolve_targets(
    schema: TableSchema,
    staged: StagedSource,
    mapping: Mapping,
    stored_columns: dict[str, str],
) -> list[Target]:
    """Decide, for each canonical and extra column, which source column feeds it and its type.

    Raises :class:`ValidationError` for a missing required column or a mapping that names a
    source column the file does not have.
    """
    source_cols = [c for c, _ in staged.columns]
    by_lower = {c.lower(): c for c in source_cols}
    problems: list[Problem] = []
    used: set[str] = set()
    targets: list[Target] = []

    def source_exists(spec: ColumnMap) -> bool:
        if spec.source is None or spec.source in source_cols:
            return True
        problems.append(
            Problem(
                staged.name,
                None,
                spec.source,
                f'a column named "{spec.source}" (mapped to {spec.target} by {mapping.origin})',
                f"columns {', '.join(source_cols)}",
                "correct the column name in the mapping file.",
            )
        )
        return False

    for col in schema.columns:
        spec = mapping.columns.get(col.name)
        if spec is None:
            found = by_lower.get(col.name.lower())
            if found is not None:
                spec = ColumnMap(target=col.name, source=found)
        if spec is not None and not source_exists(spec):
            continue
        if spec is None and col.required:
            problems.append(
                Problem(
                    staged.name,
                    None,
                    col.name,
                    f"a required column {col.name} ({col.description})",
                    f"columns {', '.join(source_cols)}",
                    f"rename the file's column to {col.name}, or map it in a mapping file "
                    f"(columns: {{{col.name}: YOUR_COLUMN}}) and pass --mapping.",
                )
            )
            continue
        if spec is not None and spec.source is not None:
            used.add(spec.source)
        targets.append(Target(col.name, col.kind, spec, True, col.sql_type, True))

    canonical = set(schema.column_names)
    taken = set(canonical)
    for name, spec in mapping.columns.items():
        if name in canonical or not source_exists(spec):
            continue
        if spec.source is not None:
            used.add(spec.source)
        targets.append(_extra_target(name, spec, staged, stored_columns))
        taken.add(name)
    if mapping.keep_extra:
        for src in source_cols:
            if src in used or src in mapping.drop:
                continue
            name = snake_case(src)
            while name in taken:
                name += "_src"
            taken.add(name)
            targets.append(_extra_target(name, ColumnMap(target=name, source=src), staged, stored_columns))
    for dropped in mapping.drop:
        if dropped not in source_cols:
            problems.append(
                Problem(
                    staged.name,
                    None,
                    dropped,
                    f'a column named "{dropped}" ({mapping.origin} drops it)',
                    f"columns {', '.join(source_cols)}",
                    "correct the name under drop: in the mapping file (a typo would keep the column).",
                )
            )
    if problems:
        raise ValidationError(problems)
    return targets


def _extra_target(name: str, spec: ColumnMap, staged: StagedSource, stored: dict[str, str]) -> Target:
    if spec.type is not None:
        return Target(name, spec.type, spec, False, KIND_TYPES[spec.type], True)
    if name in stored:
        sql_type = stored[name]
        return Target(name, _ENGINE_KIND.get(sql_type, "text"), spec, False, sql_type, True)
    source_type = dict(staged.columns).get(spec.source or "", "VARCHAR")
    if spec.source is None or source_type != "VARCHAR":
        kind = _ENGINE_KIND.get(source_type, "text")
        return Target(name, kind, spec, False, source_type if spec.source else "VARCHAR", False)
    return Target(name, "infer", spec, False, "VARCHAR", False)


def infer_extra_types(con: Any, staged: StagedSource, targets: list[Target]) -> list[Target]:
    """Give text extra columns a numeric type when every value in the file is a number."""
    todo = [t for t in targets if t.kind == "infer"]
    if not todo:
        return targets
    exprs = []
    for t in todo:
        v = f"NULLIF(trim({ident(t.spec.source)}), '')"  # type: ignore[union-attr]
        code = f"regexp_matches({v}, '^[+-]?0[0-9]')"  # "01234" is a code (a zip code), not a number
        digits = f"regexp_full_match({v}, '[+-]?[0-9]+')"  # the engine's cast would round "12.5" to 13
        exprs.append(f"bool_and({v} IS NULL OR ({digits} AND TRY_CAST({v} AS BIGINT) IS NOT NULL AND NOT {code}))")
        # "1_000": the engine's cast accepts digit separators, the number conversion does not.
        plain = f"NOT contains({v}, '_')"
        exprs.append(f"bool_and({v} IS NULL OR (TRY_CAST({v} AS DOUBLE) IS NOT NULL AND NOT {code} AND {plain}))")
        exprs.append(f"count({v})")
    with reading(staged):
        row = con.execute(f"SELECT {', '.join(exprs)} FROM {staged.relation}", staged.params).fetchone()
    decided = {}
    for i, t in enumerate(todo):
        is_int, is_num, n = row[3 * i], row[3 * i + 1], row[3 * i + 2]
        if n and is_int:
            decided[t.name] = ("integer", "BIGINT")
        elif n and is_num:
            decided[t.name] = ("number", "DOUBLE")
        else:
            decided[t.name] = ("text", "VARCHAR")
    out = []
    for t in targets:
        if t.name in decided:
            kind, sql_type = decided[t.name]
            out.append(Target(t.name, kind, t.spec, False, sql_type, False))
        else:
            out.append(t)
    return out


def _text_expr(t: Target, staged_types: dict[str, str], params: Params) -> tuple[str, bool]:
    """The first step: the source value, as normalised text when it needs converting.

    Returns ``(expression, is_text)``; a typed source that needs no text handling passes through.
    """
    spec = t.spec
    assert spec is not None
    if spec.source is None:
        return f"CAST({params.add(_as_text(spec.value))} AS VARCHAR)", True
    src = ident(spec.source)
    src_type = staged_types.get(spec.source, "VARCHAR")
    needs_text = (
        src_type == "VARCHAR"
        or spec.values
        or spec.default is not None
        or spec.format
        or spec.true_values
        or spec.false_values
        or t.kind in ("id", "text")
    )
    if not needs_text:
        return src, False
    expr = f"NULLIF(trim(CAST({src} AS VARCHAR)), '')"
    if spec.values:
        cases = " ".join(f"WHEN {params.add(k)} THEN CAST({params.add(v)} AS VARCHAR)" for k, v in spec.values.items())
        expr = f"NULLIF((CASE {expr} {cases} ELSE {expr} END), '')"  # recoded to null or "": empty
    if spec.default is not None:
        expr = f"COALESCE({expr}, {params.add(_as_text(spec.default))})"
    return expr, True


def _as_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _convert_expr(t: Target, v: str, is_text: bool, params: Params) -> str:
    """Convert the step-one value ``v`` to the target's type (NULL where it does not convert)."""
    spec = t.spec
    assert spec is not None
    kind = t.kind
    if t.sql_type == "VARCHAR" and kind not in ("date", "timestamp", "bool"):
        return v
    if kind in ("id", "text"):  # an engine type with no kind of its own (a stored FLOAT, DECIMAL, …)
        return f"TRY_CAST({v} AS {t.sql_type})"
    if kind in ("number", "integer"):
        # The engine reads "1_000" as 1000; a digit separator in data is more likely a mistake.
        cast = f"TRY_CAST({v} AS {t.sql_type})" if not is_text else f"TRY_CAST(replace({v}, '_', '?') AS {t.sql_type})"
        if kind == "number":
            cast = f"(CASE WHEN isfinite({cast}) THEN {cast} END)"
        else:  # the engine's cast rounds ("2.5" becomes 3): only a whole number is an integer
            whole = f"TRY_CAST({v} AS DOUBLE)"
            cast = f"(CASE WHEN {whole} = trunc({whole}) THEN {cast} END)"
        if spec.scale is not None:
            cast = f"({cast} * {params.add(spec.scale)})"
        return cast
    if kind in ("date", "timestamp"):
        if not is_text:
            return f"TRY_CAST({v} AS {t.sql_type})"
        if spec.format:
            parsed = f"try_strptime({v}, {params.add(spec.format)})"
            return f"CAST({parsed} AS {t.sql_type})"
        return _iso_datetime(v, t.sql_type)
    if kind == "bool":
        if not is_text:
            return f"TRY_CAST({v} AS BOOLEAN)"
        trues = [w.lower() for w in (spec.true_values or TRUE_WORDS)]
        falses = [w.lower() for w in (spec.false_values or FALSE_WORDS)]
        return (
            f"(CASE WHEN list_contains({params.add(trues)}, lower({v})) THEN true "
            f"WHEN list_contains({params.add(falses)}, lower({v})) THEN false END)"
        )
    return f"TRY_CAST({v} AS {t.sql_type})"


def _iso_datetime(v: str, sql_type: str) -> str:
    """ISO 8601 text → DATE / TIMESTAMP; NULL for anything else.

    The engine's cast is fast but lenient ("31/01/24" would become the year 31), so it only
    sees text that starts with a four-digit year and a dash.  A UTC offset ("+08:00", "Z")
    is honoured: the value is converted to UTC.
    """
    iso = f"(substr({v}, 5, 1) = '-' AND TRY_CAST(substr({v}, 1, 4) AS INTEGER) IS NOT NULL)"
    offset = rf"(length({v}) > 19 AND regexp_matches({v}, '[+-]\d{{2}}:?\d{{2}}$'))"
    utc = f"CAST(timezone('UTC', TRY_CAST({v} AS TIMESTAMPTZ)) AS {sql_type})"
    return f"(CASE WHEN {iso} THEN (CASE WHEN {offset} THEN {utc} ELSE TRY_CAST({v} AS {sql_type}) END) END)"


def build_stage(con: Any, staged: StagedSource, targets: list[Target]) -> int:
    """Create ``_cg_stage`` (typed, with ``__bad__`` columns and ``_line``) in one scan of the source.

    Returns the number of rows.
    """
    params = Params()
    params.values.update(staged.params)
    staged_types = dict(staged.columns)
    inner: list[str] = []
    outer: list[str] = []
    for i, t in enumerate(targets):
        if t.spec is None:
            outer.append(f"CAST(NULL AS {t.sql_type}) AS {ident(t.name)}")
            continue
        text, is_text = _text_expr(t, staged_types, params)
        alias = f"v{i}"
        inner.append(f"{text} AS {alias}")
        conv = _convert_expr(t, alias, is_text, params)
        outer.append(f"CAST({conv} AS {t.sql_type}) AS {ident(t.name)}")
        if t.checked and conv != alias:
            outer.append(
                f"CASE WHEN {alias} IS NOT NULL AND ({conv}) IS NULL THEN CAST({alias} AS VARCHAR) END "
                f"AS {ident(bad_column(t.name))}"
            )
    con.execute(f"DROP TABLE IF EXISTS {STAGE_TABLE}")
    with reading(staged):
        con.execute(
            f"CREATE TEMP TABLE {STAGE_TABLE} AS SELECT {', '.join(outer)} "
            f"FROM (SELECT {', '.join(inner) or '1 AS _none'} FROM {staged.relation})",
            params.values,
        )
    con.execute(f"DROP TABLE IF EXISTS {RAW_TABLE}")
    return assign_lines(con, STAGE_TABLE, staged)


def stage_columns(con: Any) -> set[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [STAGE_TABLE]
    ).fetchall()
    return {r[0] for r in rows}
