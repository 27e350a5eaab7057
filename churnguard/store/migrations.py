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


#: The operational tables (schema v4): written by churnguard itself, never ingested.
#: Types are the portable subset (DuckDB and PostgreSQL both accept them).  JSON payloads
#: are stored as text.  Each table's contract is documented in docs/operations-tables.md.
OPERATIONAL_TABLES_V4: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS users (
      user_id VARCHAR,
      display_name VARCHAR,
      role VARCHAR,
      branch_id VARCHAR,
      password_hash VARCHAR,
      active BOOLEAN,
      max_claims INTEGER,
      open_claims INTEGER,
      created_at TIMESTAMP
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS audit_log (
      ts TIMESTAMP,
      user_id VARCHAR,
      action VARCHAR,
      target VARCHAR,
      detail VARCHAR,
      ip VARCHAR
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS model_runs (
      model_id VARCHAR,
      mode VARCHAR,
      algorithm VARCHAR,
      path VARCHAR,
      horizon_days INTEGER,
      data_from DATE,
      data_to DATE,
      n_rows BIGINT,
      n_features INTEGER,
      features VARCHAR,
      metrics VARCHAR,
      training_seconds DOUBLE PRECISION,
      active BOOLEAN,
      created_at TIMESTAMP
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS scores (
      customer_id VARCHAR,
      as_of DATE,
      model_id VARCHAR,
      horizon_days INTEGER,
      probability DOUBLE PRECISION,
      risk_band VARCHAR,
      value_at_risk DOUBLE PRECISION,
      top_reason VARCHAR,
      reasons VARCHAR,
      expected_days_to_churn DOUBLE PRECISION,
      scored_at TIMESTAMP
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS campaigns (
      campaign_id VARCHAR,
      name VARCHAR,
      kind VARCHAR,
      status VARCHAR,
      branch_id VARCHAR,
      as_of DATE,
      horizon_days INTEGER,
      model_id VARCHAR,
      budget DOUBLE PRECISION,
      control_share DOUBLE PRECISION,
      seed BIGINT,
      playbook VARCHAR,
      parameters VARCHAR,
      created_by VARCHAR,
      created_at TIMESTAMP
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS campaign_members (
      campaign_id VARCHAR,
      customer_id VARCHAR,
      branch_id VARCHAR,
      tier VARCHAR,
      stratum VARCHAR,
      arm VARCHAR,
      probability DOUBLE PRECISION,
      clv DOUBLE PRECISION,
      value_at_risk DOUBLE PRECISION,
      top_reason VARCHAR,
      action VARCHAR,
      action_cost DOUBLE PRECISION,
      save_rate DOUBLE PRECISION,
      expected_gain DOUBLE PRECISION,
      why VARCHAR,
      case_id VARCHAR,
      assigned_at TIMESTAMP
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS cases (
      case_id VARCHAR,
      campaign_id VARCHAR,
      customer_id VARCHAR,
      branch_id VARCHAR,
      kind VARCHAR,
      status VARCHAR,
      owner_id VARCHAR,
      priority DOUBLE PRECISION,
      action VARCHAR,
      expected_gain DOUBLE PRECISION,
      deadline TIMESTAMP,
      created_at TIMESTAMP,
      updated_at TIMESTAMP,
      closed_at TIMESTAMP,
      version INTEGER
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS case_log (
      case_id VARCHAR,
      ts TIMESTAMP,
      actor VARCHAR,
      event VARCHAR,
      from_status VARCHAR,
      to_status VARCHAR,
      note VARCHAR
    )
    """,
)


def _create_operational_tables(con: Any) -> None:
    for ddl in OPERATIONAL_TABLES_V4:
        con.execute(ddl)


#: Access tables (schema v5), written by churnguard.auth: only hashes of tokens and session ids are kept.
ACCESS_TABLES_V5: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS api_tokens (
      token_id VARCHAR,
      user_id VARCHAR,
      token_hash VARCHAR,
      name VARCHAR,
      created_at TIMESTAMP,
      expires_at TIMESTAMP,
      last_used_at TIMESTAMP,
      revoked_at TIMESTAMP
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS web_sessions (
      session_hash VARCHAR,
      user_id VARCHAR,
      csrf_token VARCHAR,
      created_at TIMESTAMP,
      expires_at TIMESTAMP,
      revoked_at TIMESTAMP,
      ip VARCHAR
    )
    """,
)


def _create_access_tables(con: Any) -> None:
    for ddl in ACCESS_TABLES_V5:
        con.execute(ddl)


#: Indexes for a server engine (schema v6).  DuckDB decorrelates subqueries and scans columns, so it
#: needs none (and indexes would slow its bulk loads); PostgreSQL evaluates a correlated subquery per
#: row and looks rows up by key, so there every table is indexed on the keys the queries join on.
SERVER_INDEXES_V6: tuple[tuple[str, str], ...] = (
    ("branches", "branch_id"),
    ("branches", "parent_id"),
    ("customers", "customer_id"),
    ("customers", "branch_id"),
    ("subscriptions", "customer_id, start_date"),
    ("transactions", "customer_id, ts"),
    ("events", "customer_id, ts"),
    ("tickets", "customer_id, opened_at"),
    ("surveys", "customer_id, ts"),
    ("churn_events", "customer_id, churn_date"),
    ("customer_value", "customer_id"),
    ("scores", "customer_id"),
    ("scores", "as_of, model_id"),
    ("campaign_members", "campaign_id, customer_id"),
    ("cases", "case_id"),
    ("cases", "customer_id"),
    ("cases", "owner_id, status"),
    ("case_log", "case_id"),
    ("users", "user_id"),
    ("audit_log", "ts"),
    ("api_tokens", "token_hash"),
    ("web_sessions", "session_hash"),
)


def _create_server_indexes(con: Any) -> None:
    if getattr(con, "dialect", "duckdb") == "duckdb":
        return
    for table, columns in SERVER_INDEXES_V6:
        name = f"cg_{table}_{columns.replace(', ', '_')}"
        con.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "canonical tables", _create_canonical_tables),
    Migration(2, "ingest_log: one row per load, for provenance", _create_ingest_log),
    Migration(
        3,
        "customer_value: value tiers, RFM, lifecycle stage and CLV per customer, as of a date",
        _create_customer_value,
    ),
    Migration(
        4,
        "operational tables: users, audit_log, model_runs, scores, campaigns, campaign_members, cases, case_log",
        _create_operational_tables,
    ),
    Migration(
        5,
        "access: api_tokens (hashed API tokens) and web_sessions (dashboard sessions with their CSRF token)",
        _create_access_tables,
    ),
    Migration(6, "indexes on the join keys for a server engine (PostgreSQL); none on DuckDB", _create_server_indexes),
)

LATEST_VERSION = MIGRATIONS[-1].version


def set_meta(con: Any, key: str, value: str) -> None:
    """Insert or replace one ``churnguard_meta`` entry (portable upsert on the primary key)."""
    con.execute(
        f"INSERT INTO {META_TABLE} (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )


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
                set_meta(con, "schema_version", str(m.version))
                con.execute("COMMIT")
            except Exception as exc:
                con.execute("ROLLBACK")
                raise StoreError(f"{source}: migration {m.version} ({m.description}) failed: {exc}") from exc
            applied.append(m)
    return applied
