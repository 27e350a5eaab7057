"""The PostgreSQL store: a connection that speaks the part of DuckDB's connection API churnguard uses.

:class:`PostgresConnection` is what ``Store.raw`` is on PostgreSQL.  ``execute(sql, params)``
translates the statement from DuckDB's dialect (:func:`churnguard.store.dialect.translate`) and
returns a :class:`PostgresResult` with DuckDB's fetch methods (``fetchone``, ``fetchall``, ``df``,
``fetchnumpy``, ``to_arrow_table``), so the metrics, features, scoring and case workflow run
unchanged.  ``register(name, frame)`` stages a pandas or Arrow frame as a temporary table (COPY),
where DuckDB would scan the frame in place.

Connections: autocommit, with explicit ``BEGIN``/``COMMIT`` from :meth:`Store.transaction` (as on
DuckDB).  ``cursor()`` hands out another connection from a small pool (the API server gives each
request its own); closing it returns it to the pool with any open transaction rolled back and its
temporary tables dropped.  ``numeric`` results load as ``float`` (DuckDB returns doubles and
integers, never decimals).
"""

from __future__ import annotations

import datetime as dt
import io
import threading
from typing import Any

from churnguard.errors import StoreError
from churnguard.store.dialect import POSTGRES_COMPAT_SQL, split_statements, translate, translate_each


class _Column:
    def __init__(self, name: str, type_code: int) -> None:
        self.name, self.type_code = name, type_code

    def __getitem__(self, i: int) -> Any:
        return (self.name, self.type_code)[i]


_COUNT_DESCRIPTION = [_Column("Count", 20)]

# PostgreSQL type OIDs → how a column comes back in a frame.
_INT_OIDS = {20, 21, 23, 26}
_FLOAT_OIDS = {700, 701, 1700}
_BOOL_OIDS = {16}
_DATE_OIDS = {1082}
_TS_OIDS = {1114, 1184}


def _redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages)."""
    head, sep, tail = url.partition("://")
    if not sep or "@" not in tail:
        return url
    creds, _, host = tail.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{head}://{user}:***@{host}" if ":" in creds else url


def libpq_url(url: str) -> str:
    """The URL libpq accepts (``postgresql+psycopg://`` and ``postgres://`` become ``postgresql://``)."""
    scheme, _, rest = url.partition("://")
    return "postgresql://" + rest if scheme.lower() in {"postgres", "postgresql", "postgresql+psycopg"} else url


class PostgresResult:
    """The rows of one statement, with DuckDB's result methods."""

    def __init__(self, description: Any, rows: list[tuple[Any, ...]] | None, rowcount: int) -> None:
        self.description = description
        self._rows = rows or []
        self._pos = 0
        self.rowcount = rowcount

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._pos >= len(self._rows):
            return None
        row = self._rows[self._pos]
        self._pos += 1
        return row

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows = self._rows[self._pos :]
        self._pos = len(self._rows)
        return rows

    def _columns(self) -> list[tuple[str, int, list[Any]]]:
        rows = self.fetchall()
        names = [c.name for c in self.description or []]
        oids = [c.type_code for c in self.description or []]
        values = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        return [(n, o, list(v)) for n, o, v in zip(names, oids, values, strict=True)]

    def df(self) -> Any:
        """A pandas frame typed as DuckDB's ``df()`` would type it."""
        import numpy as np
        import pandas as pd

        data: dict[str, Any] = {}
        for name, oid, vals in self._columns():
            if oid in _INT_OIDS:
                data[name] = (
                    np.array([np.nan if v is None else v for v in vals], dtype="float64")
                    if any(v is None for v in vals)
                    else np.array(vals, dtype="int64")
                )
            elif oid in _FLOAT_OIDS:
                data[name] = np.array([np.nan if v is None else v for v in vals], dtype="float64")
            elif oid in _DATE_OIDS or oid in _TS_OIDS:
                data[name] = pd.to_datetime(pd.Series(vals, dtype="object")).astype("datetime64[us]")
            elif oid in _BOOL_OIDS and not any(v is None for v in vals):
                data[name] = np.array(vals, dtype=bool)
            else:
                data[name] = pd.Series(vals, dtype="object")
        return pd.DataFrame(data)

    fetchdf = df

    def fetchnumpy(self) -> dict[str, Any]:
        frame = self.df()
        return {c: frame[c].to_numpy() for c in frame.columns}

    def to_arrow_table(self) -> Any:
        import pyarrow as pa

        arrays, names = [], []
        for name, oid, vals in self._columns():
            typ = (
                pa.int64()
                if oid in _INT_OIDS
                else pa.float64()
                if oid in _FLOAT_OIDS
                else pa.bool_()
                if oid in _BOOL_OIDS
                else pa.date32()
                if oid in _DATE_OIDS
                else pa.timestamp("us")
                if oid in _TS_OIDS
                else None
            )
            arrays.append(pa.array(vals, type=typ))
            names.append(name)
        return pa.Table.from_arrays(arrays, names=names)

    arrow = to_arrow_table
    fetch_arrow_table = to_arrow_table


#: The most connections one process's pool hands out at once (``CHURNGUARD_PG_POOL``, default 16);
#: a request beyond it waits up to ``POOL_WAIT_S`` for one to come back.  With N API workers the
#: server needs about N × this plus a few (PostgreSQL's default ``max_connections`` is 100).
POOL_WAIT_S = 30.0


def _pool_limit() -> int:
    import os

    return max(1, int(os.environ.get("CHURNGUARD_PG_POOL", "16")))


#: The advisory lock key under which the helper functions are (re)created ("churnguard" as digits).
_COMPAT_LOCK = 0x63687572_6E677264


class _Pool:
    """Connections to one server, shared by a root connection and its cursors: at most ``limit`` out at once."""

    def __init__(self, url: str, size: int = 8, limit: int | None = None) -> None:
        self.url = url
        self.size = size
        self.limit = limit or _pool_limit()
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.limit)
        self._compat_installed = False

    def take(self) -> Any:
        if not self._slots.acquire(timeout=POOL_WAIT_S):
            raise StoreError(
                f'store "{_redact(self.url)}": all {self.limit} connections of this process are in use '
                f"(waited {POOL_WAIT_S:g} s). Fix: raise CHURNGUARD_PG_POOL, or the server's max_connections."
            )
        with self._lock:
            if self._idle:
                return self._idle.pop()
        try:
            return open_raw(self.url)
        except BaseException:
            self._slots.release()
            raise

    def give(self, con: Any) -> None:
        try:
            self._keep(con)
        finally:
            self._slots.release()

    def _keep(self, con: Any) -> None:
        try:
            if con.info.transaction_status != 0:  # not idle: roll back what was left open
                con.execute("ROLLBACK")
            con.execute("DISCARD TEMP")
        except Exception:
            con.close()
            return
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append(con)
                return
        con.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for con in idle:
            con.close()


def open_raw(url: str) -> Any:
    """A psycopg connection (autocommit; numeric loaded as float) or a :class:`StoreError` that says why not."""
    import psycopg
    from psycopg.types.numeric import FloatLoader
    from psycopg.types.string import StrDumper

    try:
        con = psycopg.connect(libpq_url(url), autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise StoreError(
            f'store "{_redact(url)}": cannot connect to PostgreSQL: {str(exc).strip()}. '
            "Fix: check host, port, database, user and password in the URL, and that the server runs."
        ) from exc
    con.adapters.register_loader("numeric", FloatLoader)
    # Strings bind as text (as DuckDB binds VARCHAR), not as "unknown": unnest($list) needs a type.
    con.adapters.register_dumper(str, StrDumper)
    return con


class PostgresConnection:
    """``Store.raw`` on PostgreSQL (see the module docstring)."""

    dialect = "postgres"

    def __init__(self, url: str, *, pool: _Pool | None = None, con: Any = None) -> None:
        self.url = url
        self._pool = pool or _Pool(url)
        self._owns_pool = pool is None
        self._con = con if con is not None else open_raw(url)
        if not self._pool._compat_installed:
            self.install_compat()
            self._pool._compat_installed = True

    # -- DuckDB's connection API -----------------------------------------------------
    def execute(self, sql: str, params: list[Any] | tuple[Any, ...] | dict[str, Any] | None = None) -> PostgresResult:
        """Run one DuckDB-dialect statement on PostgreSQL (translated; parameters bound)."""
        pre, sql = split_statements(sql)
        if pre is not None:
            self._con.execute(pre)
        bound = params if params else None
        if isinstance(bound, dict):
            bound = {k.lstrip("$"): v for k, v in bound.items()}
        text = translate(sql, "postgres", has_params=bound is not None)
        cur = self._con.cursor()
        if bound is not None and ";" in text:  # several statements: one prepared statement each
            texts = translate_each(sql, "postgres", has_params=True)
            for one in texts[:-1]:
                cur.execute(one, bound)
            text = texts[-1]
        cur.execute(text, bound)
        if cur.description is not None:
            return PostgresResult(cur.description, cur.fetchall(), cur.rowcount)
        # DuckDB answers INSERT/UPDATE/DELETE with one row: the count.
        if (cur.statusmessage or "").split(" ")[0] in {"INSERT", "UPDATE", "DELETE", "MERGE"}:
            return PostgresResult(_COUNT_DESCRIPTION, [(cur.rowcount,)], cur.rowcount)
        return PostgresResult(None, None, cur.rowcount)

    def executemany(self, sql: str, rows: list[Any]) -> None:
        text = translate(sql, "postgres", has_params=True)
        with self._con.cursor() as cur:
            cur.executemany(text, rows)

    def sql(self, sql: str, params: Any = None) -> PostgresResult:
        return self.execute(sql, params)

    def complete(self) -> None:
        """DuckDB closes a pending result here; results are fetched at once on PostgreSQL."""

    def register(self, name: str, frame: Any) -> None:
        """Stage ``frame`` (pandas or Arrow) as the temporary table ``name`` (replacing one of that name)."""
        import pandas as pd
        import pyarrow as pa

        if isinstance(frame, pa.Table):  # Arrow writes the CSV itself (an int column with NULLs stays int)
            cols = ", ".join(f'"{f.name}" {_arrow_pg_type(f.type)}' for f in frame.schema)
            self._con.execute(f'DROP TABLE IF EXISTS "{name}"')
            self._con.execute(f'CREATE TEMP TABLE "{name}" ({cols})')
            self.copy_arrow(name, frame)
            return
        pdf = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(frame)
        types = [_pandas_pg_type(pdf[c]) for c in pdf.columns]
        cols = ", ".join(f'"{c}" {t}' for c, t in zip(pdf.columns, types, strict=True))
        self._con.execute(f'DROP TABLE IF EXISTS "{name}"')
        self._con.execute(f'CREATE TEMP TABLE "{name}" ({cols})')
        if len(pdf):
            buf = io.StringIO()
            pdf.to_csv(buf, index=False, header=False, na_rep="\\N", date_format="%Y-%m-%d %H:%M:%S.%f")
            with self._con.cursor() as cur, cur.copy(f"COPY \"{name}\" FROM STDIN (FORMAT csv, NULL '\\N')") as copy:
                copy.write(buf.getvalue())

    def copy_arrow(self, name: str, data: Any) -> int:
        """Append Arrow rows (a Table or a RecordBatchReader) to the existing table ``name`` by COPY; the row count.

        Arrow writes the CSV batch by batch, every value quoted and NULL unquoted-empty, so an
        empty string and a NULL stay apart and the data streams without passing through Python objects.
        """
        import pyarrow as pa
        import pyarrow.csv as pacsv

        batches = data.to_batches(max_chunksize=65536) if isinstance(data, pa.Table) else data
        cols = ", ".join('"' + f.name.replace('"', '""') + '"' for f in data.schema)
        options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
        rows = 0
        with self._con.cursor() as cur, cur.copy(f'COPY "{name}" ({cols}) FROM STDIN (FORMAT csv)') as copy:
            for batch in batches:
                buf = io.BytesIO()
                pacsv.write_csv(batch, buf, options)
                copy.write(buf.getbuffer())
                rows += batch.num_rows
        return rows

    def copy_to(self, sql: str, out: Any) -> None:
        """Write the rows of the (DuckDB-dialect) query ``sql`` to the binary file ``out`` as CSV, streamed by COPY.

        NULL is an unquoted empty field and an empty string is ``""`` (PostgreSQL's CSV).
        """
        text = translate(sql, "postgres")
        with self._con.cursor() as cur, cur.copy(f"COPY ({text}) TO STDOUT (FORMAT csv)") as copy:
            for chunk in copy:
                out.write(chunk)

    def unregister(self, name: str) -> None:
        self._con.execute(f'DROP TABLE IF EXISTS "{name}"')

    def cursor(self) -> PostgresConnection:
        """Another connection from the pool (its own transactions; ``close()`` returns it)."""
        return PostgresConnection(self.url, pool=self._pool, con=self._pool.take())

    def close(self) -> None:
        if self._con is None:
            return
        con, self._con = self._con, None
        if self._owns_pool:
            con.close()
            self._pool.close()
        else:
            self._pool.give(con)

    # -- what the Store asks of a backend ---------------------------------------------
    def has_table(self, name: str) -> bool:
        row = self._con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = %s AND table_schema = current_schema()",
            [name],
        ).fetchone()
        return bool(row[0])

    def columns(self, name: str) -> list[tuple[str, str]]:
        rows = self._con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = %s AND table_schema = current_schema() ORDER BY ordinal_position",
            [name],
        ).fetchall()
        return [(r[0], _duck_type_name(r[1])) for r in rows]

    def install_compat(self) -> None:
        """Create the functions translated SQL relies on (idempotent; see :mod:`churnguard.store.dialect`).

        One transaction under an advisory lock: processes that open the store at the same moment (the
        API's workers) take turns instead of failing with "tuple concurrently updated".
        """
        try:
            with self._con.transaction():
                self._con.execute("SELECT pg_advisory_xact_lock(%s)", [_COMPAT_LOCK])
                for stmt in POSTGRES_COMPAT_SQL:
                    self._con.execute(stmt)
        except Exception as exc:  # e.g. a read-only user: say what is missing
            raise StoreError(
                f'store "{_redact(self.url)}": cannot create churnguard\'s helper functions ({exc}). '
                "Fix: connect once as a user who may create functions in the schema."
            ) from exc

    @property
    def in_transaction(self) -> bool:
        return self._con is not None and self._con.info.transaction_status != 0


_PG_TO_DUCK = {
    "character varying": "VARCHAR",
    "text": "VARCHAR",
    "double precision": "DOUBLE",
    "real": "FLOAT",
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "smallint": "SMALLINT",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp without time zone": "TIMESTAMP",
    "timestamp with time zone": "TIMESTAMP WITH TIME ZONE",
    "numeric": "DECIMAL",
}


def _duck_type_name(pg_type: str) -> str:
    """PostgreSQL's ``information_schema`` type name as DuckDB names it (the code compares those)."""
    return _PG_TO_DUCK.get(pg_type, pg_type.upper())


def _arrow_pg_type(typ: Any) -> str:
    import pyarrow as pa

    if pa.types.is_boolean(typ):
        return "BOOLEAN"
    if pa.types.is_integer(typ):
        return "BIGINT"
    if pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        return "DOUBLE PRECISION"
    if pa.types.is_date(typ):
        return "DATE"
    if pa.types.is_timestamp(typ):
        return "TIMESTAMP"
    return "TEXT"


def _pandas_pg_type(col: Any) -> str:
    import pandas as pd

    kind = col.dtype.kind
    if kind == "b":
        return "BOOLEAN"
    if kind in "iu":
        return "BIGINT"
    if kind == "f":
        return "DOUBLE PRECISION"
    if kind == "M":
        return "TIMESTAMP"
    first = col.dropna().iloc[0] if col.notna().any() else None
    if isinstance(first, bool):
        return "BOOLEAN"
    if isinstance(first, dt.datetime | pd.Timestamp):
        return "TIMESTAMP"
    if isinstance(first, dt.date):
        return "DATE"
    if isinstance(first, int):
        return "BIGINT"
    if isinstance(first, float):
        return "DOUBLE PRECISION"
    return "TEXT"
