"""Schema versions and the migrations between them.

A database file records its schema version in ``churnguard_meta``.  Opening a file
written by an older churnguard applies the missing migrations in order, each in its own
transaction, so an existing database upgrades instead of breaking.  A file written by a
newer churnguard is refused rather than damaged.

To change the schema: append a :class:`Migration` (never edit a released one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from churnguard.errors import StoreError
from churnguard.store.schema import TABLES, create_table_sql

META_TABLE = "churnguard_meta"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Any], None]


def _create_canonical_tables(con: Any) -> None:
    for table in TABLES:
        con.execute(create_table_sql(table))


def _create_ingest_log(con: Any) -> None:
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS ingest_log (
          load_id VARCHAR,
          table_name VARCHAR,
          source VARCHAR,
          mode VARCHAR,
          rows_read BIGINT,
          rows_added BIGINT,
          rows_replaced BIGINT,
          rows_skipped BIGINT,
          started_at TIMESTAMP,
          finished_at TIMESTAMP
        )
        """
    )


def _create_customer_value(con: Any) -> None:
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS customer_value (
          customer_id VARCHAR,
          as_of DATE,
          recency_days INTEGER,
          frequency BIGINT,
          monetary DOUBLE,
          r_score INTEGER,
          f_score INTEGER,
          m_score INTEGER,
          rfm_segment VARCHAR,
          value DOUBLE,
          value_basis VARCHAR,
          tier VARCHAR,
          lifecycle_stage VARCHAR,
          expected_transactions DOUBLE,
          p_alive DOUBLE,
          clv DOUBLE,
          clv_model VARCHAR,
          updated_at TIMESTAMP
        )
        """
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "canonical tables", _create_canonical_tables),
    Migration(2, "ingest_log: one row per load, for provenance", _create_ingest_log),
    Migration(
        3,
        "customer_value: value tiers, RFM, lifecycle stage and CLV per customer, as of a date",
        _create_customer_value,
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def current_version(con: Any) -> int:
    """The schema version recorded in the database (0 for an empty database)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [META_TABLE]
    ).fetchone()[0]
    if not exists:
        return 0
    row = con.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(con: Any, *, target: int = LATEST_VERSION, source: str = "database") -> list[Migration]:
    """Upgrade the database to ``target``; return the migrations applied (oldest first)."""
    version = current_version(con)
    if version > LATEST_VERSION:
        raise StoreError(
            f"{source} has schema version {version}, but this churnguard knows only up to "
            f"{LATEST_VERSION}. Fix: upgrade churnguard (pip install -U churnguard)."
        )
    applied = []
    for m in MIGRATIONS:
        if version < m.version <= target:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)")
                m.apply(con)
                con.execute(
                    f"INSERT OR REPLACE INTO {META_TABLE} VALUES ('schema_version', ?)",
                    [str(m.version)],
                )
                con.execute("COMMIT")
            except Exception as exc:
                con.execute("ROLLBACK")
                raise StoreError(f"{source}: migration {m.version} ({m.description}) failed: {exc}") from exc
            applied.append(m)
    return applied
