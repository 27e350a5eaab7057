"""Opening the store from one connection URL.

``duckdb:///path/to/churn.duckdb`` (or a plain path) opens the embedded DuckDB store, the
default.  ``spark:///abs/lake?master=local[2]`` opens a Parquet lake written by ``churnguard export``
on a Spark session, read-only (see churnguard/store/spark.py).
``postgresql://user:password@host:port/database`` opens a PostgreSQL store: the same
schema and migrations, and the same SQL, written once in DuckDB's dialect and translated by
:mod:`churnguard.store.dialect` (``Store.raw`` is then a
:class:`churnguard.store.postgres.PostgresConnection` with DuckDB's connection methods).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churnguard.errors import StoreError, UnsupportedBackendError
from churnguard.store import migrations

DEFAULT_URL = "duckdb:///churnguard.duckdb"


@dataclass(frozen=True)
class StoreURL:
    backend: str
    path: str  # a filesystem path or ":memory:" for DuckDB; the full URL for PostgreSQL; the lake for Spark
    master: str | None = None  # Spark only: local[N], spark://host:port, yarn, sc://host:port

    def __str__(self) -> str:
        if self.backend == "spark":
            return f"spark://{self.path}" + (f"?master={self.master}" if self.master else "")
        if self.backend == "postgresql":
            from churnguard.store.postgres import _redact

            return _redact(self.path)
        return f"{self.backend}:///{self.path}" if self.path != ":memory:" else f"{self.backend}://:memory:"


def parse_url(url: str | Path | None) -> StoreURL:
    """Parse a store URL.

    Accepted: ``duckdb:///relative/or/absolute.duckdb``, ``duckdb:////abs/path.duckdb``,
    ``duckdb://:memory:``, and a bare path such as ``./churn.duckdb``.
    """
    if url is None or str(url) == "":
        url = DEFAULT_URL
    text = str(url)
    if isinstance(url, Path) or "://" not in text:
        return StoreURL("duckdb", text)
    scheme, _, rest = text.partition("://")
    scheme = scheme.lower()
    if scheme == "duckdb":
        if rest in (":memory:", "/:memory:"):
            return StoreURL("duckdb", ":memory:")
        if not rest.startswith("/"):
            raise UnsupportedBackendError(
                f'store URL "{text}": expected duckdb:///path/to/file.duckdb (three slashes), got "{text}".'
            )
        path = rest[1:]  # duckdb:///rel.duckdb -> rel.duckdb ; duckdb:////abs -> /abs
        return StoreURL("duckdb", path or "churnguard.duckdb")
    if scheme in {"postgres", "postgresql", "postgresql+psycopg"}:
        return StoreURL("postgresql", text)
    if scheme == "spark":
        from churnguard.store.spark import parse_spark_url

        lake, master = parse_spark_url(text)
        return StoreURL("spark", lake, master)
    raise UnsupportedBackendError(f'store URL "{text}": unknown backend "{scheme}"; expected duckdb:///PATH.')


class Store:
    """An open churnguard store.

    ``raw`` is the engine's own connection (used by ingestion, which stages files in the
    engine); ``table(name)`` gives an Ibis table expression, which is what analytic code
    builds on.
    """

    def __init__(self, url: StoreURL, raw: Any) -> None:
        self.url = url
        self.raw = raw
        self._ibis: Any = None
        #: Whether :meth:`transaction` is open (a nested block then joins it).
        self.in_transaction = False

    @property
    def backend(self) -> str:
        """``"duckdb"`` or ``"postgresql"``."""
        return self.url.backend

    @property
    def dialect(self) -> str:
        """The SQL dialect the engine speaks (churnguard's SQL is written in ``"duckdb"``'s)."""
        return getattr(self.raw, "dialect", "duckdb")

    @property
    def folder(self) -> Path | None:
        """Where files that belong with the store go (models, the demo report).

        The folder of a DuckDB file; for a server store, ``$CHURNGUARD_HOME`` or the working
        directory; ``None`` for an in-memory store.
        """
        if self.backend == "postgresql":
            import os

            return Path(os.environ.get("CHURNGUARD_HOME") or ".").expanduser().resolve()
        if self.url.path == ":memory:":
            return None
        return Path(self.url.path).expanduser().resolve().parent

    @property
    def name(self) -> str:
        """A short name of the store for file names (the DuckDB file's stem, the database's name)."""
        if self.backend == "postgresql":
            return self.url.path.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or "churnguard"
        return Path(self.url.path).stem

    # -- engine access ---------------------------------------------------------------
    @property
    def ibis(self) -> Any:
        """The Ibis backend over this store's connection (created on first use)."""
        if self._ibis is None:
            import ibis

            if self.backend == "postgresql":
                from churnguard.store.postgres import libpq_url

                self._ibis = ibis.connect(libpq_url(self.url.path))
            else:
                self._ibis = ibis.duckdb.from_connection(self.raw)
        return self._ibis

    def table(self, name: str) -> Any:
        """An Ibis expression for table ``name``."""
        return self.ibis.table(name)

    def execute(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> Any:
        """Run one SQL statement (parameters bound, never interpolated)."""
        return self.raw.execute(sql, params or [])

    def has_table(self, name: str) -> bool:
        if hasattr(self.raw, "has_table"):
            return bool(self.raw.has_table(name))
        return bool(
            self.raw.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'",
                [name],
            ).fetchone()[0]
        )

    def columns(self, name: str) -> list[tuple[str, str]]:
        """``(column, type)`` pairs of a stored table, in order (types as DuckDB names them)."""
        if hasattr(self.raw, "columns"):
            return list(self.raw.columns(name))
        rows = self.raw.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = 'main' ORDER BY ordinal_position",
            [name],
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """All statements inside commit together or not at all.

        Inside an open transaction it joins that one (DuckDB has no nested transactions, and a
        refused ``BEGIN`` would abort the open one): the outermost block commits or rolls back.
        """
        if self.in_transaction:
            yield self
            return
        self.raw.execute("BEGIN TRANSACTION")
        self.in_transaction = True
        try:
            yield self
        except BaseException:
            self.raw.execute("ROLLBACK")
            raise
        else:
            self.raw.execute("COMMIT")
        finally:
            self.in_transaction = False

    # -- metadata --------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        return migrations.current_version(self.raw)

    def get_meta(self, key: str) -> str | None:
        row = self.raw.execute(f"SELECT value FROM {migrations.META_TABLE} WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        migrations.set_meta(self.raw, key, value)

    # -- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.url)!r})"


def connect(url: str | Path | None = None, *, migrate: bool = True, read_only: bool = False) -> Store:
    """Open (and create or upgrade, unless ``migrate=False``) the store at ``url``.

    Examples
    --------
    >>> store = connect("duckdb://:memory:")
    >>> store.schema_version == migrations.LATEST_VERSION
    True
    """
    parsed = parse_url(url)
    if parsed.backend == "postgresql":
        return _connect_postgres(parsed, migrate=migrate and not read_only)
    if parsed.backend == "spark":  # a read-only Parquet lake (churnguard export) on a Spark session
        from churnguard.store.spark import connect_spark

        return connect_spark(parsed.path, parsed.master)
    import duckdb

    if parsed.path != ":memory:":
        parent = Path(parsed.path).expanduser().resolve().parent
        if not parent.exists():
            raise StoreError(f'store "{parsed.path}": folder {parent} does not exist. Fix: create it first.')
    try:
        raw = duckdb.connect(parsed.path, read_only=read_only)
    except duckdb.IOException as exc:
        if "not a valid DuckDB database" in str(exc):
            raise StoreError(
                f'store "{parsed.path}": expected a DuckDB database file, got another kind of file ({exc}). '
                "Fix: check the store URL, or name a new file and churnguard creates it."
            ) from exc
        raise StoreError(f'store "{parsed.path}" cannot be opened: {exc}') from exc
    except duckdb.Error as exc:
        raise StoreError(f'store "{parsed.path}" is not a DuckDB database or is damaged: {exc}') from exc
    store = Store(parsed, raw)
    if migrate and not read_only:
        try:
            migrations.migrate(raw, source=f'store "{parsed.path}"')
        except BaseException:
            raw.close()  # a refused file must not stay open (and locked) behind the error
            raise
    return store


def _connect_postgres(parsed: StoreURL, *, migrate: bool) -> Store:
    from churnguard.store.postgres import PostgresConnection

    raw = PostgresConnection(parsed.path)
    store = Store(parsed, raw)
    if migrate:
        try:
            migrations.migrate(raw, source=f'store "{parsed}"')
        except BaseException:
            raw.close()
            raise
    return store
