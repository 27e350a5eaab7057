"""Loading: stage → convert → validate → write, atomically.

A load either writes all its rows or none: every statement runs inside one transaction,
and any problem rolls it back, so a failed load leaves every table exactly as it was.

On a PostgreSQL store the file is read, converted and checked in a private in-memory DuckDB
(the reader and conversion SQL are DuckDB's), exactly as on a DuckDB store; the references are
checked there against a copy of the parents' key columns fetched from the server.  What must see
the stored rows runs on the server, inside the store's one transaction: the converted rows are
copied (COPY) straight into the table when there is nothing to compare them with (``replace``,
an empty table), and otherwise to a temporary ``_cg_stage`` there, against which the comparison
with stored values (:data:`~churnguard.ingest.checks.STORED_ROW_CHECKS`) and the merge (DELETE /
INSERT … WHERE NOT EXISTS / EXCEPT ALL) run.  ALTER TABLE for extra columns runs there too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import duckdb

from churnguard.errors import ConfigError, Problem, ValidationError
from churnguard.ingest import checks, convert, readers
from churnguard.ingest.mapping import Mapping, load_mapping, parse_mapping
from churnguard.store.connection import Store
from churnguard.store.schema import TABLES, table_schema
from churnguard.store.sql import ident

Mode = Literal["append", "replace", "upsert"]
#: Ingestion streams through the engine, spilling to disk beyond this much memory.
DEFAULT_MEMORY_LIMIT = "1GB"
_MEMORY = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)
MODES: tuple[str, ...] = ("append", "replace", "upsert")


@dataclass(frozen=True)
class IngestResult:
    """What one load did."""

    table: str
    source: str
    mode: str
    rows_read: int
    rows_added: int
    rows_replaced: int
    rows_skipped: int
    extra_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0
    load_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LoadSpec:
    """One table to load: the canonical table, the source and its mapping."""

    table: str
    source: Any  # a path, a pyarrow Table or a pandas DataFrame
    mapping: Mapping | str | Path | dict | None = None
    name: str | None = None  # how results, problems and ingest_log name an in-memory source


def _as_mapping(m: Mapping | str | Path | dict | None, table: str) -> Mapping:
    if m is None:
        return Mapping()
    if isinstance(m, Mapping):
        mapping = m
    elif isinstance(m, dict):
        mapping = parse_mapping(m)
    else:
        mapping = load_mapping(m)
    if mapping.table is not None and mapping.table != table:
        raise ConfigError(
            f'{mapping.origin}: this mapping is for table "{mapping.table}", but the load is into "{table}". '
            f"Fix: use the mapping made for {table}, or load into {mapping.table}."
        )
    return mapping


def ingest_table(
    store: Store,
    table: str,
    source: Any,
    *,
    mapping: Mapping | str | Path | dict | None = None,
    mode: Mode = "append",
    as_of: dt.date | None = None,
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
) -> IngestResult:
    """Validate ``source`` against the canonical ``table`` and load it atomically.

    Parameters
    ----------
    store : the open store.
    table : a canonical table name (``customers``, ``events``, …).
    source : a CSV / TSV (optionally gzipped), Parquet (file or folder), JSON-lines or Excel
        file, or an in-memory pyarrow Table / pandas DataFrame.
    mapping : a mapping file (or parsed mapping) that renames and converts the source columns.
    mode : ``append`` adds new rows and skips rows already stored (a re-run adds nothing);
        ``upsert`` replaces stored rows that have the same key; ``replace`` replaces the table.
    as_of : dates after this day are rejected as "in the future" (default: today, UTC).

    Raises
    ------
    ValidationError
        Listing each problem by file, line, column, expected and got; nothing is written.
    """
    return ingest_tables(store, [LoadSpec(table, source, mapping)], mode=mode, as_of=as_of, memory_limit=memory_limit)[
        0
    ]


def ingest_tables(
    store: Store,
    loads: list[LoadSpec],
    *,
    mode: Mode = "append",
    as_of: dt.date | None = None,
    clear_all: bool = False,
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
    meta: dict[str, str] | None = None,
    dry_run: bool = False,
) -> list[IngestResult]:
    """Load several tables in one transaction: all of them, or (on any problem) none.

    ``clear_all=True`` first empties every canonical table and drops their extra columns (in
    the same transaction), so a whole data set replaces whatever the store held before.
    ``memory_limit`` bounds the engine's memory during the load (it spills to disk beyond it);
    ``None`` leaves it as is.  On a PostgreSQL store it bounds the private DuckDB that reads the
    files, and a quarter of it is the server's ``work_mem`` for the load's transaction.
    ``meta`` is written to the store's metadata in the same transaction.  ``dry_run=True`` runs
    every step and check, reports what would change, and rolls back.  References between the
    loaded tables are checked once all are written, so a parent and its children can be
    replaced together.
    """
    if mode not in MODES:
        raise ConfigError(f'load mode "{mode}": expected one of {", ".join(MODES)}.')
    as_of = as_of or dt.datetime.now(dt.UTC).date()
    order = {t.name: n for n, t in enumerate(TABLES)}
    plan = [
        (i, table_schema(part.table), part, _as_mapping(part.mapping, part.table))
        for i, spec in sorted(enumerate(loads), key=lambda item: order.get(item[1].table, -1))
        for part in _parts(spec)
    ]  # parents before children, whatever order the loads were given in
    results = []
    con = store.raw
    try:
        # Staging tables are created inside the transaction, so a rollback removes them too.
        with _work_connection(store) as work, _memory_limit(work, memory_limit), store.transaction():
            if work is not con and memory_limit is not None:
                _server_memory(con, memory_limit)
            cleared: dict[str, int] = {}
            if clear_all:
                for schema in reversed(TABLES):
                    cleared[schema.name] = con.execute(f"DELETE FROM {schema.name}").fetchone()[0]
                    _drop_extra_columns(store, schema, keep=set())
            for _, schema, spec, mapping in plan:
                # Rows the clearing removed count as replaced by the table's (first) load.
                removed = cleared.pop(schema.name, 0)
                # Parts after the first of a folder append to what the first part loaded.
                part_mode = "append" if mode == "replace" and any(r.table == schema.name for r in results) else mode
                results.append(_load_one(store, work, schema, spec, mapping, part_mode, as_of, removed=removed))
            readers.drop_stage(work)
            work.execute(f"DROP TABLE IF EXISTS {convert.STAGE_TABLE}")
            if work is not con:
                con.execute(f"DROP TABLE IF EXISTS {convert.STAGE_TABLE}")
            if mode == "replace":
                for _, schema, _, _ in plan:
                    _check_orphans(store, schema.name, next(r.source for r in results if r.table == schema.name))
            results = _merge_parts(loads, [i for i, *_ in plan], results)
            for key, value in (meta or {}).items():
                store.set_meta(key, value)
            if dry_run:
                raise _DryRun(results)
    except duckdb.OutOfMemoryException as exc:
        raise readers.out_of_memory(", ".join(sorted({spec.table for spec in loads})), exc) from None
    return results


def _merge_parts(loads: list[LoadSpec], owners: list[int], results: list[IngestResult]) -> list[IngestResult]:
    """One result per requested load: the parts of a folder add up."""
    merged: list[IngestResult] = []
    for i, spec in enumerate(loads):
        mine = [r for owner, r in zip(owners, results, strict=True) if owner == i]
        if len(mine) == 1:
            merged.append(mine[0])
            continue
        first = mine[0]
        merged.append(
            IngestResult(
                table=first.table,
                source=spec.name or Path(spec.source).name + f"/ ({len(mine)} parts)",
                mode=first.mode,
                rows_read=sum(r.rows_read for r in mine),
                rows_added=sum(r.rows_added for r in mine),
                rows_replaced=sum(r.rows_replaced for r in mine),
                rows_skipped=sum(r.rows_skipped for r in mine),
                extra_columns=list(dict.fromkeys(c for r in mine for c in r.extra_columns)),
                seconds=round(sum(r.seconds for r in mine), 3),
                load_id=first.load_id,
            )
        )
    return merged


def _parts(spec: LoadSpec) -> list[LoadSpec]:
    """A folder of CSV / JSON-lines parts becomes one load per part (all in the same transaction)."""
    if not isinstance(spec.source, str | Path):
        return [spec]
    parts = readers.folder_parts(Path(spec.source))
    if parts is None:
        return [spec]
    return [LoadSpec(spec.table, part, spec.mapping, name=spec.name) for part in parts]


class _DryRun(Exception):
    """Raised inside the load's transaction to roll a dry run back."""

    def __init__(self, results: list[IngestResult]) -> None:
        self.results = results


def validate_tables(store: Store, loads: list[LoadSpec], **options: Any) -> list[IngestResult]:
    """Run a load completely — every check, every write — and roll it back: what *would* happen.

    Raises :class:`ValidationError` exactly as the load would; otherwise returns the results the
    load would have had.  The store is never changed.
    """
    try:
        ingest_tables(store, loads, dry_run=True, **options)
    except _DryRun as done:
        return done.results
    raise AssertionError("a dry run always rolls back")  # pragma: no cover


def _drop_extra_columns(store: Store, schema: Any, *, keep: set[str]) -> None:
    for column, _ in store.columns(schema.name):
        if column not in schema.column_names and column not in keep:
            store.raw.execute(f"ALTER TABLE {schema.name} DROP COLUMN {ident(column)}")


@contextlib.contextmanager
def _work_connection(store: Store) -> Iterator[Any]:
    """The DuckDB connection that reads, converts and checks the files.

    The store's own on DuckDB; on another engine a private in-memory DuckDB, closed afterwards
    (the reader and conversion SQL are DuckDB's: read_csv, TRY_CAST, regexp_*, try_strptime …).
    """
    if store.backend == "duckdb":
        yield store.raw
        return
    import duckdb

    work = duckdb.connect()
    try:
        yield work
    finally:
        work.close()


def _ship_stage(work: Any, db: Any, columns: list[str], table: str) -> None:
    """Copy ``columns`` of the staged rows from ``work`` (DuckDB) to a temporary ``_cg_stage`` on ``db``.

    The server's table gets the staged columns' types (translated from DuckDB's names); the rows
    stream as Arrow record batches through COPY, in the order of ``table``'s index on the server.
    """
    stage = convert.STAGE_TABLE
    types = dict(
        work.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?", [stage]
        ).fetchall()
    )
    cols = ", ".join(ident(c) for c in columns)
    db.execute(f"DROP TABLE IF EXISTS {stage}")
    db.execute(f"CREATE TEMP TABLE {stage} ({', '.join(f'{ident(c)} {types[c]}' for c in columns)})")
    db.copy_arrow(stage, _stage_reader(work, cols, _index_order(table)))
    db.execute(f"ANALYZE {stage}")  # temporary tables get no statistics otherwise: the joins need them


#: Rows per batch shipped to a server store (Arrow writes each batch as one CSV chunk).
_SHIP_BATCH = 100_000


def _stage_reader(work: Any, cols: str, order: str | None = None) -> Any:
    """The staged rows' columns ``cols`` as an Arrow record batch reader (streamed), sorted by ``order`` if given."""
    work.complete()  # a result of execute() left unread (a check's fetchone) would block the reader
    sort = f" ORDER BY {order}" if order else ""
    return work.sql(f"SELECT {cols} FROM {convert.STAGE_TABLE}{sort}").to_arrow_reader(_SHIP_BATCH)


def _index_order(table: str) -> str | None:
    """The columns of the server's first index on ``table`` (rows copied in that order update it far faster)."""
    from churnguard.store.migrations import SERVER_INDEXES_V6

    return next((cols for name, cols in SERVER_INDEXES_V6 if name == table), None)


def _run_checks(store: Store, ctx: checks.Context) -> tuple[list[Problem], int, bool]:
    """Every check, as :func:`checks.run_checks` runs them on one engine: ``(problems, total, shipped)``.

    On a server store the work connection gets a copy of the parents' key columns (for the
    references), and the checks that compare with stored values run on the server against the
    staged rows shipped there; ``shipped`` says the whole stage is on the server (ready to merge).
    """
    work, db = ctx.con, store.raw
    if work is db:
        problems, total = checks.run_checks(ctx)
        return problems, total, True
    parents = checks.parent_keys(ctx)
    for parent, cols in parents.items():
        _copy_keys(store, work, parent, cols)
    try:
        problems, total = checks.run_checks(ctx, checks=checks.STAGE_CHECKS)
    finally:
        for parent in parents:
            work.execute(f"DROP TABLE IF EXISTS {parent}")
    needed = checks.conflict_columns(ctx)
    if not needed or _is_empty(db, ctx.schema.name):
        return problems, total, False
    # A keyed append compares with stored values on the server: ship the stage (when the load already
    # fails, only the columns the comparison reads, for the full count of problems).
    _ship_stage(work, db, _stage_columns(ctx.targets) if not problems else needed, ctx.schema.name)
    more, more_total = checks.run_checks(
        replace(ctx, con=db), checks=checks.STORED_ROW_CHECKS, limit=max(0, 20 - len(problems))
    )
    return problems + more, total + more_total, not problems


def _copy_keys(store: Store, work: Any, parent: str, cols: list[str]) -> None:
    """Give the work connection (a private DuckDB) a table ``parent`` with the server's ``cols`` of it.

    The keys travel as CSV (COPY … TO STDOUT into a temporary file, read back by DuckDB's reader).
    """
    types = dict(store.columns(parent))
    columns = "{" + ", ".join(f"'{c}': '{types[c]}'" for c in cols) + "}"
    with tempfile.TemporaryDirectory(prefix="cg-keys-") as folder:
        path = Path(folder) / "keys.csv"
        with path.open("wb") as out:
            store.raw.copy_to(f"SELECT {', '.join(ident(c) for c in cols)} FROM {parent}", out)
        work.execute(
            f"CREATE OR REPLACE TABLE {parent} AS SELECT * FROM read_csv($src, header=false, auto_detect=false, "
            f"quote='\"', escape='\"', columns={columns})",
            {"src": str(path)},
        )


def _stage_columns(targets: list[Any]) -> list[str]:
    return ["_line", *(t.name for t in targets)]


def _is_empty(con: Any, table: str) -> bool:
    return bool(con.execute(f"SELECT count(*) = 0 FROM (SELECT 1 FROM {table} LIMIT 1)").fetchone()[0])


@contextlib.contextmanager
def _memory_limit(con: Any, limit: str | None) -> Iterator[None]:
    if limit is None:
        yield
        return
    if not _MEMORY.fullmatch(limit.strip()):
        raise ConfigError(f'memory limit: expected a size like 1GB or 512MB, got "{limit}".')
    previous = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    con.execute(f"SET memory_limit = '{limit.strip()}'")
    try:
        yield
    finally:
        con.execute(f"SET memory_limit = '{previous}'")


_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}
_UNITS.update({"kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4})


def _server_memory(con: Any, limit: str) -> None:
    """Let the server's hashes and sorts of this load's transaction use a quarter of ``limit`` each.

    PostgreSQL's default ``work_mem`` (4 MB) sends the anti-joins of an append re-run to disk; the
    setting is ``SET LOCAL``: it ends with the transaction.  (PostgreSQL may give a hash twice
    ``work_mem``, ``hash_mem_multiplier``.)
    """
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]+)", limit.strip().lower())
    assert m is not None  # _memory_limit has validated it
    kb = max(64, int(float(m.group(1)) * _UNITS[m.group(2)] / 4 / 1024))
    con.execute(f"SET LOCAL work_mem = '{kb}kB'")


def _load_one(
    store: Store,
    work: Any,
    schema: Any,
    spec: LoadSpec,
    mapping: Mapping,
    mode: str,
    as_of: dt.date,
    *,
    removed: int = 0,
) -> IngestResult:
    """Stage, convert and check ``spec`` on ``work`` (DuckDB), then merge it into the store."""
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    con = work
    source = spec.source
    staged = readers.stage(con, source, delimiter=mapping.delimiter, sheet=mapping.sheet, name=spec.name)
    stored = dict(store.columns(schema.name))
    if mode == "replace":  # the table becomes the file: its extra columns take the file's types
        stored = {c: t for c, t in stored.items() if c in schema.column_names}
    targets = convert.resolve_targets(schema, staged, mapping, stored)
    targets = convert.infer_extra_types(con, staged, targets)
    rows = convert.build_stage(con, staged, targets)
    ctx = checks.Context(
        con=con,
        schema=schema,
        targets=targets,
        stage_cols=convert.stage_columns(con),
        source=staged.name,
        word=staged.location_word,
        mode=mode,
        as_of=as_of,
        stored_cols=frozenset(stored),
    )
    problems, total, shipped = _run_checks(store, ctx)
    if problems:
        raise ValidationError(problems, total=total)

    con = store.raw  # the merge, on the store
    extras = [t for t in targets if not t.canonical]
    table = schema.name
    added, replaced = 0, removed
    # A server store with nothing to compare against (replace, or an empty table) takes the rows
    # straight from the work connection; otherwise the stage is shipped and merged there.
    direct = con is not work and (mode == "replace" or _is_empty(con, table))
    if con is not work and not direct and not shipped:
        _ship_stage(work, con, _stage_columns(targets), table)
    if mode == "replace":
        replaced += con.execute(f"DELETE FROM {table}").fetchone()[0]
        # The table becomes the file: extra columns of earlier loads go, the file's are added below.
        _drop_extra_columns(store, schema, keep=set())
    for t in extras:
        if t.name not in stored:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {ident(t.name)} {t.sql_type}")
    cols = ", ".join(ident(t.name) for t in targets)
    if direct:
        added = con.copy_arrow(table, _stage_reader(work, cols, _index_order(table)))
    elif mode == "replace":
        added = con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {convert.STAGE_TABLE}").fetchone()[0]
    elif schema.key:
        join = " AND ".join(f"s.{ident(k)} = t.{ident(k)}" for k in schema.key)
        if mode == "upsert":
            replaced += con.execute(
                f"DELETE FROM {table} t WHERE EXISTS (SELECT 1 FROM {convert.STAGE_TABLE} s WHERE {join})"
            ).fetchone()[0]
        added = con.execute(
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {convert.STAGE_TABLE} s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {join})"
        ).fetchone()[0]
    else:
        empty = con.execute(f"SELECT count(*) = 0 FROM (SELECT 1 FROM {table} LIMIT 1)").fetchone()[0]
        novel = f"SELECT {cols} FROM {convert.STAGE_TABLE}"
        if not empty:
            novel += f" EXCEPT ALL SELECT {cols} FROM {table}"
        added = con.execute(f"INSERT INTO {table} ({cols}) {novel}").fetchone()[0]
    skipped = 0 if mode == "replace" else rows - added

    if table == "branches":
        _check_tree_and_fill_levels(store, staged.name)

    load_id = uuid.uuid4().hex[:12]
    con.execute(
        "INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            load_id,
            table,
            str(source) if isinstance(source, str | Path) and spec.name is None else staged.name,
            mode,
            rows,
            added,
            replaced,
            skipped,
            started_at,
            dt.datetime.now(dt.UTC).replace(tzinfo=None),
        ],
    )
    return IngestResult(
        table=table,
        source=staged.name,
        mode=mode,
        rows_read=rows,
        rows_added=added,
        rows_replaced=replaced,
        rows_skipped=max(skipped, 0),
        extra_columns=[t.name for t in extras],
        seconds=round(time.perf_counter() - started, 3),
        load_id=load_id,
    )


def _check_orphans(store: Store, table: str, source: str) -> None:
    """After replacing or upserting a parent table, no child row may point at a removed parent."""
    problems = []
    for child in TABLES:
        for col in child.columns:
            if col.references is None or col.references[0] != table or child.name == table:
                continue
            pcol = col.references[1]
            c = ident(col.name)
            rows = store.raw.execute(
                f"SELECT {c}, count(*) FROM {child.name} x WHERE {c} IS NOT NULL AND NOT EXISTS "
                f"(SELECT 1 FROM {table} p WHERE p.{ident(pcol)} = x.{c}) GROUP BY {c} ORDER BY {c} LIMIT 5"
            ).fetchall()
            for value, n in rows:
                problems.append(
                    Problem(
                        source,
                        None,
                        pcol,
                        f'every {pcol} that {child.name} refers to, including "{value}"',
                        f'no row for "{value}" ({n} {child.name} row{"s refer" if n != 1 else " refers"} to it)',
                        f"keep {value} in the file, or remove its {child.name} rows first.",
                    )
                )
    if problems:
        raise ValidationError(problems)


def _check_tree_and_fill_levels(store: Store, source: str) -> None:
    """The branch tree has one root, no cycles; fill ``level`` where it is empty."""
    con = store.raw
    roots = [r[0] for r in con.execute("SELECT branch_id FROM branches WHERE parent_id IS NULL ORDER BY 1").fetchall()]
    n = con.execute("SELECT count(*) FROM branches").fetchone()[0]
    if n and len(roots) != 1:
        got = "none" if not roots else f"{len(roots)}: {', '.join(roots[:5])}"
        raise ValidationError(
            [
                Problem(
                    source,
                    None,
                    "parent_id",
                    "exactly one head office (one branch with an empty parent_id)",
                    got,
                    "give every branch except the head office its parent_id.",
                )
            ]
        )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _cg_depth AS
        WITH RECURSIVE tree(branch_id, depth) AS (
          SELECT branch_id, 0 FROM branches WHERE parent_id IS NULL
          UNION ALL
          SELECT b.branch_id, t.depth + 1 FROM branches b JOIN tree t ON b.parent_id = t.branch_id
          WHERE t.depth < 100
        )
        SELECT branch_id, min(depth) AS depth FROM tree GROUP BY branch_id
        """
    )
    try:
        lost = con.execute(
            "SELECT branch_id FROM branches WHERE branch_id NOT IN (SELECT branch_id FROM _cg_depth) ORDER BY 1 LIMIT 5"
        ).fetchall()
        if lost:
            raise ValidationError(
                [
                    Problem(
                        source,
                        None,
                        "parent_id",
                        f"a chain of parents from branch {b!r} up to the head office",
                        "a cycle",
                        "correct parent_id so that every branch leads up to the head office.",
                    )
                    for (b,) in lost
                ]
            )
        con.execute(
            "UPDATE branches SET level = d.depth FROM _cg_depth d "
            "WHERE branches.branch_id = d.branch_id AND branches.level IS NULL"
        )
    finally:
        con.execute("DROP TABLE IF EXISTS _cg_depth")
