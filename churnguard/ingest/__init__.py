"""Ingestion: readers and mapping files → validated canonical tables, loaded atomically."""

from churnguard.ingest.load import MODES, IngestResult, LoadSpec, ingest_table, ingest_tables, validate_tables
from churnguard.ingest.mapping import ColumnMap, Mapping, load_mapping, parse_mapping

__all__ = [
    "MODES",
    "ColumnMap",
    "IngestResult",
    "LoadSpec",
    "Mapping",
    "ingest_table",
    "ingest_tables",
    "load_mapping",
    "parse_mapping",
    "validate_tables",
]
