"""The store: one connection URL selects the backend; the canonical schema lives here."""

from churnguard.store.connection import DEFAULT_URL, Store, StoreURL, connect, parse_url
from churnguard.store.migrations import LATEST_VERSION
from churnguard.store.schema import TABLES, TableSchema, table_schema

__all__ = [
    "DEFAULT_URL",
    "LATEST_VERSION",
    "TABLES",
    "Store",
    "StoreURL",
    "TableSchema",
    "connect",
    "parse_url",
    "table_schema",
]
