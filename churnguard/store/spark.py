"""The Spark engine: a lake of Parquet read through a Spark session, behind DuckDB's connection API.

churnguard's SQL is written once, in DuckDB's dialect, and run through ``store.raw.execute(sql,
params)``.  :class:`SparkConnection` offers the part of DuckDB's connection API that churnguard
uses (``execute``, ``sql``, ``executemany``, ``register``, ``unregister``, ``cursor``, ``close``,
results with ``fetchone/fetchall/df/fetchnumpy/to_arrow_table/description``) and runs each
statement on Spark after :func:`churnguard.engines.spark_sql.to_spark` translated it.

The lake
    A folder with one Parquet file or folder per table (``customers/``, ``events/`` …, as
    ``churnguard export --format parquet`` writes them) and ``churnguard_meta`` (key, value: the
    data set's as-of date and churn definition).  Every table becomes a temporary view of the
    session; canonical tables the lake lacks become empty views with the canonical columns.

What runs
    Queries run on Spark.  ``CREATE [OR REPLACE] TEMP TABLE … AS SELECT`` becomes a cached
    temporary view (materialised at once, so later statements read it, not its recomputation);
    ``CREATE TEMP TABLE t (cols)`` an empty one, which ``INSERT INTO t …`` (and ``executemany``)
    extend.  The lake is read-only input: INSERT, UPDATE, DELETE, CREATE TABLE and DROP on
    anything but this connection's own temporary views raise :class:`~churnguard.errors.StoreError`
    naming the statement.  Transactions are accepted and do nothing (nothing is written).
    Recursive CTEs (Spark 4.0 has none) are evaluated by iteration into cached views.

The session (:func:`spark_session`)
    ``local[*]`` by default (or ``CHURNGUARD_SPARK_MASTER``), offline: ``SPARK_LOCAL_IP=127.0.0.1``,
    no UI, no progress bars, UTC, quiet logs, ANSI mode off (division by zero is NULL, as in
    DuckDB), driver memory from ``CHURNGUARD_SPARK_DRIVER_MEMORY`` (default 2g).  A master of the
    form ``sc://host:port`` opens a Spark Connect session instead.  pyspark is imported only here,
    and only when a session is asked for.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from churnguard.errors import StoreError, UnsupportedBackendError
from churnguard.store.connection import Store, StoreURL
from churnguard.store.schema import TABLES

META_TABLE = "churnguard_meta"
DEFAULT_MASTER = "local[*]"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: Spark type (``simpleString``) → DuckDB type name, for :meth:`SparkConnection.columns`.
_DUCK_TYPES = {
    "string": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "timestamp_ntz": "TIMESTAMP",
    "double": "DOUBLE",
    "float": "FLOAT",
    "int": "INTEGER",
    "bigint": "BIGINT",
    "smallint": "SMALLINT",
    "tinyint": "TINYINT",
    "boolean": "BOOLEAN",
}
#: Canonical kind → Spark type, for the empty views of canonical tables a lake lacks.
_SPARK_KINDS = {
    "id": "string",
    "text": "string",
    "date": "date",
    "timestamp": "timestamp_ntz",
    "number": "double",
    "integer": "int",
    "bool": "boolean",
}


def _translate(sql: str, params: Any, schema: Mapping[str, Mapping[str, str]] | None) -> str:
    """DuckDB SQL → Spark SQL (the Spark fixes of churnguard.engines.spark_sql, with the lake tables' schemas)."""
    from churnguard.engines.spark_sql import to_spark

    return to_spark(sql, params=params, schema=schema)


# -- the session ------------------------------------------------------------------------------------


def spark_session(master: str | None = None, *, app_name: str = "churnguard", memory: str | None = None) -> Any:
    """A Spark session: local (``local[*]``, ``local[2]``), a cluster master, or Spark Connect (``sc://…``).

    Offline settings (no UI, UTC, quiet logs) as in the module docstring.  An existing session
    of this process is reused (Spark allows one per JVM).
    """
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")
    # Python workers (pandas UDFs) run this interpreter, with churnguard and its packages
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - pyspark is an optional extra
        raise UnsupportedBackendError(
            "the Spark engine needs pyspark. Fix: pip install 'churnguard[spark]' (pyspark 4.0)."
        ) from exc
    master = master or os.environ.get("CHURNGUARD_SPARK_MASTER") or DEFAULT_MASTER
    conf = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.ansi.enabled": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    }
    if master.startswith("sc://"):
        builder = SparkSession.builder.remote(master).appName(app_name)
        for k, v in conf.items():
            if k != "spark.ui.enabled":
                builder = builder.config(k, v)
        _quiet_python_loggers()
        return builder.getOrCreate()
    builder = SparkSession.builder.master(master).appName(app_name)
    conf["spark.driver.memory"] = memory or os.environ.get("CHURNGUARD_SPARK_DRIVER_MEMORY", "2g")
    conf["spark.sql.shuffle.partitions"] = os.environ.get("CHURNGUARD_SPARK_SHUFFLE_PARTITIONS", "8")
    conf["spark.driver.extraJavaOptions"] = "-Dlog4j2.level=ERROR"
    for k, v in conf.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    with contextlib.suppress(Exception):
        spark.sparkContext.setLogLevel("OFF")
    _quiet_python_loggers()
    return spark


def _quiet_python_loggers() -> None:
    """PySpark logs every refused statement as JSON to stderr; our StoreError already says it."""
    import logging

    try:
        from pyspark.logger import PySparkLogger
    except ImportError:  # pragma: no cover - older pyspark
        return
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        # created as PySparkLogger (it takes keyword fields), then silenced
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL + 1)


# -- results ----------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Spark values as DuckDB returns them: structs as dicts, lists as lists."""
    from pyspark.sql import Row

    if isinstance(value, Row):
        return {k: _plain(v) for k, v in value.asDict(recursive=False).items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class SparkResult:
    """The result of one statement, fetched from Spark on first use (DuckDB's result API)."""

    def __init__(self, frame: Any = None) -> None:
        self._frame = frame
        self._rows: list[tuple[Any, ...]] | None = None
        self._pos = 0

    @property
    def frame(self) -> Any:
        """The Spark DataFrame (``None`` for statements without rows)."""
        return self._frame

    @property
    def description(self) -> list[tuple[Any, ...]] | None:
        if self._frame is None:
            return None
        return [(f.name, f.dataType.simpleString(), None, None, None, None, None) for f in self._frame.schema.fields]

    def _all(self) -> list[tuple[Any, ...]]:
        if self._rows is None:
            self._rows = [] if self._frame is None else [tuple(_plain(v) for v in r) for r in self._frame.collect()]
        return self._rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows = self._all()[self._pos :]
        self._pos = len(self._all())
        return rows

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self._all()
        if self._pos >= len(rows):
            return None
        self._pos += 1
        return rows[self._pos - 1]

    def fetchmany(self, size: int = 1) -> list[tuple[Any, ...]]:
        rows = self._all()[self._pos : self._pos + size]
        self._pos += len(rows)
        return rows

    def to_arrow_table(self) -> Any:
        import pyarrow as pa

        if self._frame is None:
            return pa.table({})
        return self._frame.toArrow()

    fetch_arrow_table = to_arrow_table
    arrow = to_arrow_table

    def df(self) -> Any:
        """A pandas DataFrame; dates as ``datetime64`` as DuckDB gives them."""
        import pandas as pd

        if self._frame is None:
            return pd.DataFrame()
        frame = self.to_arrow_table().to_pandas()
        for f in self._frame.schema.fields:
            if f.dataType.simpleString() == "date":
                frame[f.name] = pd.to_datetime(frame[f.name])
        return frame

    fetchdf = df

    def fetchnumpy(self) -> dict[str, Any]:
        frame = self.df()
        return {c: frame[c].to_numpy() for c in frame.columns}

    def close(self) -> None:
        self._rows = None


# -- the connection ---------------------------------------------------------------------------------


class SparkConnection:
    """DuckDB's connection API over a Spark session (module docstring)."""

    def __init__(self, spark: Any, *, lake: str | Path | None = None, owns_session: bool = False) -> None:
        self.spark = spark
        self.lake = Path(lake) if lake is not None else None
        self.owns_session = owns_session
        self._views: set[str] = set()  # temporary views this connection made (writable, droppable)
        self._inputs: set[str] = set()  # the lake's tables (read-only)
        self._schemas: dict[str, dict[str, str]] = {}
        self._recursive: set[str] = set()
        self._closed = False

    # -- lake ------------------------------------------------------------------------------------
    def attach_lake(self, folder: str | Path) -> list[str]:
        """Register every table of the lake folder as a temporary view; return their names."""
        root = Path(folder)
        if not root.is_dir():
            raise StoreError(
                f'Spark lake "{root}": expected a folder of Parquet tables, got '
                + ("no such folder" if not root.exists() else "a file")
                + ". Fix: churnguard export --to FOLDER --format parquet writes one."
            )
        found = []
        for entry in sorted(root.iterdir()):
            name = entry.name.removesuffix(".parquet")
            if entry.name.startswith((".", "_")) or not _NAME.match(name):
                continue
            if entry.is_dir() or entry.suffix == ".parquet":
                self.spark.read.parquet(str(entry)).createOrReplaceTempView(name)
                self._inputs.add(name.lower())
                found.append(name)
        meta_json = root / f"{META_TABLE}.json"
        if META_TABLE not in found and meta_json.exists():
            values = json.loads(meta_json.read_text(encoding="utf-8"))
            rows = [(str(k), None if v is None else str(v)) for k, v in values.items()]
            self.spark.createDataFrame(rows, "key string, value string").createOrReplaceTempView(META_TABLE)
            self._inputs.add(META_TABLE)
            found.append(META_TABLE)
        for t in TABLES:  # the canonical tables are always there, as in a DuckDB store (perhaps empty)
            if t.name not in self._inputs:
                ddl = ", ".join(f"{c.name} {_SPARK_KINDS[c.kind]}" for c in t.columns)
                self.spark.createDataFrame([], ddl).createOrReplaceTempView(t.name)
                self._inputs.add(t.name)
        self._schemas.clear()
        self.lake = root
        return found

    # -- catalog ---------------------------------------------------------------------------------
    def has_table(self, name: str) -> bool:
        return bool(self.spark.catalog.tableExists(name))

    def columns(self, name: str) -> list[tuple[str, str]]:
        """``(column, DuckDB type name)`` pairs of a table or view, in order."""
        fields = self.spark.table(name).schema.fields
        return [(f.name, _DUCK_TYPES.get(f.dataType.simpleString(), f.dataType.simpleString().upper())) for f in fields]

    def get_meta(self, key: str) -> str | None:
        if not self.has_table(META_TABLE):
            return None
        row = self.execute(f"SELECT value FROM {META_TABLE} WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def _schema_of(self, name: str) -> dict[str, str] | None:
        key = name.lower()
        if key not in self._schemas:
            try:
                fields = self.spark.table(name).schema.fields
            except Exception:
                return None
            types = {f.name: _DUCK_TYPES.get(f.dataType.simpleString(), "UNKNOWN") for f in fields}
            self._schemas[key] = {c: ("UNKNOWN" if t == "UNKNOWN" else t) for c, t in types.items()}
        return self._schemas[key]

    def _schema_for(self, sql: str) -> dict[str, dict[str, str]]:
        from churnguard.engines.spark_sql import referenced_tables

        out = {}
        for name in referenced_tables(sql):
            cols = self._schema_of(name)
            if cols is not None:
                out[name] = {c: t for c, t in cols.items() if t != "UNKNOWN"}
        return out

    # -- statements ------------------------------------------------------------------------------
    def _bind(self, spark_sql: str, params: Any) -> Any:
        if params is None or (isinstance(params, Sequence | Mapping) and len(params) == 0):
            return None
        if isinstance(params, Mapping):
            used = set(re.findall(r":([A-Za-z_][A-Za-z0-9_]*)", spark_sql))
            return {k: _arg(v) for k, v in params.items() if k in used}
        return [_arg(v) for v in params]

    def _query(self, sql: str, params: Any = None) -> Any:
        """A Spark DataFrame for the DuckDB query ``sql``."""
        from churnguard.engines.spark_sql import split_recursive

        if "recursive" in sql.lower():
            sql, parts = split_recursive(sql, lambda text: "_cg_rec_" + hashlib.sha1(text.encode()).hexdigest()[:12])
            for part in parts:
                self._evaluate_recursive(part)
        spark_sql = _translate(sql, params, self._schema_for(sql))
        try:
            return self.spark.sql(spark_sql, args=self._bind(spark_sql, params))
        except Exception as exc:
            raise StoreError(f"Spark refused a statement: {_short(exc)}\nstatement (Spark SQL): {spark_sql}") from exc

    def _evaluate_recursive(self, part: Any) -> None:
        """Semi-naive evaluation of a recursive CTE (UNION ALL): anchor, then steps until no new rows."""
        if part.view in self._recursive:
            return
        frame = self._query(part.anchor)
        if part.columns:
            frame = frame.toDF(*part.columns)
        total, delta = frame, frame
        for _ in range(100):
            delta = delta.localCheckpoint()
            delta.createOrReplaceTempView(part.delta)
            self._schemas.pop(part.delta.lower(), None)
            step = self._query(part.step)
            if part.columns:
                step = step.toDF(*part.columns)
            step = step.localCheckpoint()
            if step.isEmpty():
                break
            total = total.unionByName(step)
            delta = step
        else:
            raise StoreError(f"recursive query {part.view}: more than 100 rounds; is the tree cyclic?")
        self.spark.catalog.dropTempView(part.delta)
        total.cache().createOrReplaceTempView(part.view)
        self._views.add(part.view.lower())
        self._recursive.add(part.view)

    def execute(self, sql: str, params: Any = None) -> SparkResult:
        """Run one statement (DuckDB dialect, parameters bound); see the module docstring for what runs."""
        import sqlglot
        from sqlglot import exp

        self._check_open()
        try:
            tree = sqlglot.parse_one(sql, read="duckdb")
        except sqlglot.errors.ParseError as exc:
            raise StoreError(f"statement not understood: {exc}\nstatement: {sql.strip()[:300]}") from exc
        if isinstance(tree, exp.Transaction | exp.Commit | exp.Rollback):
            return SparkResult()
        if isinstance(tree, exp.Create):
            return self._create(tree, sql, params)
        if isinstance(tree, exp.Insert):
            return self._insert(tree, params)
        if isinstance(tree, exp.Drop):
            return self._drop(tree)
        if isinstance(tree, exp.Update | exp.Delete | exp.Merge | exp.Alter | exp.TruncateTable):
            self._refuse(tree, _target(tree))
        return SparkResult(self._query(sql, params))

    def sql(self, sql: str, params: Any = None) -> SparkResult:
        """DuckDB's ``connection.sql`` (a relation); here the same as :meth:`execute`."""
        return self.execute(sql, params)

    def complete(self) -> None:
        """Nothing is left pending between Spark statements."""

    def _refuse(self, tree: Any, target: str | None) -> None:
        kind = type(tree).__name__.upper()
        raise StoreError(
            f"{kind} into {target or 'a table'} refused: the Spark lake is read-only input "
            "(only this session's temporary tables may be written). "
            "Fix: run writing commands (ingest, segment, score into the store) on the DuckDB or PostgreSQL store."
        )

    def _create(self, tree: Any, sql: str, params: Any) -> SparkResult:
        from sqlglot import exp

        name = tree.this.this.name if isinstance(tree.this, exp.Schema) else tree.this.name
        props = tree.args.get("properties")
        temporary = props is not None and any(isinstance(p, exp.TemporaryProperty) for p in props.expressions)
        kind = str(tree.args.get("kind") or "").upper()
        if not temporary or kind not in ("TABLE", "VIEW"):
            self._refuse(tree, name)
        exists = name.lower() in self._views or name.lower() in self._inputs
        if exists and not tree.args.get("replace"):
            if tree.args.get("exists"):
                return SparkResult()
            if name.lower() in self._inputs:
                self._refuse(tree, name)
            raise StoreError(f'temporary table "{name}" already exists. Fix: CREATE OR REPLACE, or drop it first.')
        select = tree.expression
        if select is not None:
            frame = self._query(select.sql(dialect="duckdb"), params)
            if kind == "TABLE":
                frame = frame.cache()
                frame.count()  # materialise now, as DuckDB does
        else:
            cols = [(c.name, c.args["kind"]) for c in tree.this.expressions if isinstance(c, exp.ColumnDef)]
            ddl = ", ".join(f"`{c}` {t.sql(dialect='spark')}" for c, t in cols)
            frame = self.spark.createDataFrame([], ddl)
        self._replace_view(name, frame)
        return SparkResult()

    def _replace_view(self, name: str, frame: Any) -> None:
        old = name.lower() in self._views
        if old:
            with contextlib.suppress(Exception):
                self.spark.catalog.uncacheTable(name)
        frame.createOrReplaceTempView(name)
        self._views.add(name.lower())
        self._schemas.pop(name.lower(), None)

    def _insert(self, tree: Any, params: Any) -> SparkResult:
        name = _target(tree)
        if name is None or name.lower() not in self._views:
            self._refuse(tree, name)
        self._append(name, tree, [params] if params else [[]])
        return SparkResult()

    def _append(self, name: str, tree: Any, rows: Sequence[Any]) -> None:
        from sqlglot import exp

        current = self.spark.table(name)
        source = tree.expression
        if isinstance(source, exp.Values):
            values = [exp.Tuple(expressions=[v.copy() for v in t.expressions]) for t in source.expressions]
            if all(isinstance(v, exp.Placeholder) and not v.name for t in values for v in t.expressions):
                data = [tuple(r) for r in rows]  # VALUES (?, ?) with rows of parameters: the fast path
                added = self.spark.createDataFrame(data, current.schema)
            else:
                parts = []
                for r in rows:
                    select = f"SELECT * FROM ({source.sql(dialect='duckdb')})"
                    parts.append(self._query(select, r or None))
                added = parts[0]
                for p in parts[1:]:
                    added = added.unionAll(p)
                added = added.toDF(*current.columns)
        else:
            added = self._query(source.sql(dialect="duckdb"), rows[0] or None)
            added = added.toDF(*current.columns)
        combined = current.unionAll(added.select(*[added[c].cast(current.schema[c].dataType) for c in added.columns]))
        combined = combined.localCheckpoint()
        self._replace_view(name, combined)

    def executemany(self, sql: str, rows: Sequence[Any]) -> SparkResult:
        """Run an INSERT into this connection's temporary table once per row of parameters."""
        import sqlglot
        from sqlglot import exp

        tree = sqlglot.parse_one(sql, read="duckdb")
        if not isinstance(tree, exp.Insert):
            for r in rows:
                self.execute(sql, r)
            return SparkResult()
        name = _target(tree)
        if name is None or name.lower() not in self._views:
            self._refuse(tree, name)
        if rows:
            self._append(name, tree, list(rows))
        return SparkResult()

    def _drop(self, tree: Any) -> SparkResult:
        tables = tree.args.get("tables") or ([tree.this] if tree.this is not None else [])
        if len(tables) != 1:
            self._refuse(tree, ", ".join(t.name for t in tables) or None)
        name = tables[0].name
        if name and name.lower() in self._views:
            with contextlib.suppress(Exception):
                self.spark.catalog.uncacheTable(name)
            self.spark.catalog.dropTempView(name)
            self._views.discard(name.lower())
            self._schemas.pop(name.lower(), None)
            return SparkResult()
        if name and name.lower() not in self._inputs and tree.args.get("exists"):
            return SparkResult()
        self._refuse(tree, name)
        return SparkResult()  # pragma: no cover - _refuse raises

    # -- frames ----------------------------------------------------------------------------------
    def register(self, name: str, frame: Any) -> SparkConnection:
        """A pandas DataFrame or pyarrow Table as the temporary view ``name``."""
        self._check_open()
        if hasattr(frame, "to_pandas") and not hasattr(frame, "iloc"):
            frame = frame.to_pandas()
        self._replace_view(name, self.spark.createDataFrame(frame))
        return self

    def unregister(self, name: str) -> SparkConnection:
        if name.lower() in self._views:
            self.spark.catalog.dropTempView(name)
            self._views.discard(name.lower())
            self._schemas.pop(name.lower(), None)
        return self

    def cursor(self) -> SparkConnection:
        return self

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the Spark connection is closed.")

    def close(self) -> None:
        """Drop this connection's temporary views; stop the session when this connection started it."""
        if self._closed:
            return
        self._closed = True
        for name in list(self._views | self._inputs):
            with contextlib.suppress(Exception):
                self.spark.catalog.uncacheTable(name)
            with contextlib.suppress(Exception):
                self.spark.catalog.dropTempView(name)
        self._views.clear()
        self._inputs.clear()
        if self.owns_session:
            self.spark.stop()


def _arg(value: Any) -> Any:
    """A parameter value as pyspark binds it (numpy scalars as Python ones)."""
    if hasattr(value, "item") and not isinstance(value, list | tuple | dict | str | bytes):
        with contextlib.suppress(Exception):
            return value.item()
    if isinstance(value, tuple):
        return list(value)
    return value


def _target(tree: Any) -> str | None:
    from sqlglot import exp

    node = tree.this
    if isinstance(node, exp.Schema):
        node = node.this
    if isinstance(node, exp.Table):
        return node.name
    return None


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else type(exc).__name__


# -- the store --------------------------------------------------------------------------------------


class SparkStore(Store):
    """A :class:`~churnguard.store.Store` over a :class:`SparkConnection` (read-only lake)."""

    raw: SparkConnection

    @property
    def ibis(self) -> Any:
        raise UnsupportedBackendError(
            "Ibis expressions are not wired to the Spark engine yet; churnguard's SQL runs through store.execute."
        )

    def has_table(self, name: str) -> bool:
        return self.raw.has_table(name)

    def columns(self, name: str) -> list[tuple[str, str]]:
        return self.raw.columns(name)

    def get_meta(self, key: str) -> str | None:
        return self.raw.get_meta(key)

    def set_meta(self, key: str, value: str) -> None:
        raise StoreError(f'setting "{key}" refused: the Spark lake is read-only. Fix: set it on the DuckDB store.')

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """Nothing is written on Spark: the block runs as it is."""
        yield self

    @property
    def schema_version(self) -> int:
        from churnguard.store.migrations import LATEST_VERSION

        recorded = self.get_meta("schema_version")
        return int(recorded) if recorded and recorded.isdigit() else LATEST_VERSION


def connect_spark(lake: str | Path, master: str | None = None, *, spark: Any = None) -> SparkStore:
    """Open the Parquet lake folder ``lake`` on a Spark session (``master`` or an existing ``spark``).

    The store URL ``spark:///abs/lake?master=local[2]`` opens it through :func:`churnguard.connect`.

    Examples
    --------
    >>> store = connect_spark("/data/lake", "local[2]")           # doctest: +SKIP
    >>> store.execute("SELECT count(*) FROM events").fetchone()   # doctest: +SKIP
    """
    owns = False
    if spark is None:  # stop the session on close only if this call started it (not one already running)
        from pyspark.sql import SparkSession

        owns = SparkSession.getActiveSession() is None
    session = spark if spark is not None else spark_session(master)
    raw = SparkConnection(session, owns_session=owns)
    try:
        raw.attach_lake(lake)
    except BaseException:
        raw.close()
        raise
    return SparkStore(StoreURL("spark", str(Path(lake).resolve()), master), raw)


def parse_spark_url(url: str) -> tuple[str, str | None]:
    """``spark:///abs/lake?master=local[2]`` → ``("/abs/lake", "local[2]")``."""
    from urllib.parse import parse_qs, unquote, urlsplit

    parts = urlsplit(url)
    if parts.scheme != "spark" or not parts.path:
        raise UnsupportedBackendError(
            f'store URL "{url}": expected spark:///absolute/path/to/lake (optionally ?master=local[2] or sc://host:15002).'
        )
    master = parse_qs(parts.query).get("master", [None])[0]
    return unquote(parts.path), master


__all__ = [
    "SparkConnection",
    "SparkResult",
    "SparkStore",
    "connect_spark",
    "parse_spark_url",
    "spark_session",
]
