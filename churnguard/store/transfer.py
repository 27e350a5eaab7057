"""Copy a whole store to another: a laptop's DuckDB file onto the team's PostgreSQL server, or back.

:func:`copy_store` copies every table churnguard keeps (the canonical data, ingest_log,
customer_value, users, scores, campaigns, cases and their logs, tokens, sessions, model runs) and
the store's metadata, in batches of Arrow rows, inside **one transaction on the target**: the
target ends as an exact copy of the source, or (on any error) as it was.  Extra columns a load
added to a canonical table are created on the target with the same type.  Both stores must be on
the same schema version (each is migrated when opened).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from churnguard.errors import StoreError
from churnguard.store import migrations
from churnguard.store.connection import Store
from churnguard.store.sql import ident

BATCH_ROWS = 500_000


@dataclass(frozen=True)
class CopiedTable:
    table: str
    rows: int


def store_tables(store: Store) -> list[str]:
    """The persistent tables of ``store`` (not temporary ones), metadata table excluded, in name order."""
    schema = "current_schema()" if store.backend == "postgresql" else "'main'"
    rows = store.execute(
        "SELECT table_name FROM information_schema.tables "
        f"WHERE table_schema = {schema} AND table_type = 'BASE TABLE' ORDER BY table_name"
    ).fetchall()
    return [r[0] for r in rows if r[0] != migrations.META_TABLE]


def _batches(store: Store, table: str) -> Iterator[Any]:
    """Arrow tables of at most :data:`BATCH_ROWS` rows of ``table``."""
    if store.backend == "duckdb":
        reader = store.raw.sql(f"SELECT * FROM {ident(table)}").to_arrow_reader(BATCH_ROWS)
        import pyarrow as pa

        for batch in reader:
            yield pa.Table.from_batches([batch])
        return
    yield store.raw.execute(f"SELECT * FROM {ident(table)}").to_arrow_table()


def copy_store(source: Store, target: Store, *, on_table: Any = None) -> list[CopiedTable]:
    """Replace everything in ``target`` with ``source``'s tables and metadata; one transaction.

    ``on_table(name, rows)`` is called after each table (progress).  Returns the rows per table.
    """
    if source.schema_version != target.schema_version:
        raise StoreError(
            f"copy: {source.url} has schema version {source.schema_version}, {target.url} has "
            f"{target.schema_version}. Fix: open both with this churnguard version (they migrate when opened)."
        )
    tables = store_tables(source)
    missing = sorted(set(tables) - set(store_tables(target)))
    if missing:
        raise StoreError(f"copy: {target.url} has no table {', '.join(missing)}; expected the same schema.")
    copied: list[CopiedTable] = []
    staging = "_cg_copy_batch"
    with target.transaction():
        for table in tables:
            started = time.perf_counter()
            have = dict(target.columns(table))
            for column, sql_type in source.columns(table):
                if column not in have:
                    target.execute(f"ALTER TABLE {ident(table)} ADD COLUMN {ident(column)} {sql_type}")
            target.execute(f"DELETE FROM {ident(table)}")
            rows = 0
            for batch in _batches(source, table):
                if batch.num_rows == 0:
                    continue
                target.raw.register(staging, batch)
                cols = ", ".join(ident(c) for c in batch.column_names)
                target.execute(f"INSERT INTO {ident(table)} ({cols}) SELECT {cols} FROM {staging}")
                target.raw.unregister(staging)
                rows += batch.num_rows
            copied.append(CopiedTable(table, rows))
            if on_table is not None:
                on_table(table, rows, time.perf_counter() - started)
        for key, value in source.execute(
            f"SELECT key, value FROM {migrations.META_TABLE} WHERE key <> 'schema_version'"
        ).fetchall():
            target.set_meta(key, value)
    return copied
