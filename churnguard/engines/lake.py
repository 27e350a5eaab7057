"""Export a store to a *lake*: a folder of Parquet tables that the Spark engine reads.

Layout (``churnguard export --to FOLDER``)::

    FOLDER/
      branches/data_0.parquet        one folder per canonical table (empty tables too),
      customers/data_0.parquet       split into files of at most FILE_SIZE each
      events/data_0.parquet …
      customer_value/ …              the stored segmentation / CLV (when the store has rows)
      churnguard_meta/ …             key, value: dataset_as_of, churn_definition, schema_version …
      churnguard_lake.json           what was written: tables, rows, when, from which store

Timestamps are written in microseconds (Spark refuses Parquet nanosecond timestamps); DuckDB's
``TIMESTAMP`` already is, and nanosecond or time-zone columns are cast to it.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from churnguard.errors import ConfigError, StoreError
from churnguard.store.connection import Store
from churnguard.store.schema import TABLES
from churnguard.store.sql import ident

META_TABLE = "churnguard_meta"
MANIFEST = "churnguard_lake.json"
#: Derived tables exported beside the canonical ones when the store has them.
EXTRA_TABLES: tuple[str, ...] = ("customer_value",)
#: Largest Parquet file written; bigger tables are split (Spark reads the files in parallel).
FILE_SIZE = "256MB"
FORMATS: tuple[str, ...] = ("parquet",)


@dataclass(frozen=True)
class ExportedTable:
    table: str
    rows: int
    files: int
    bytes: int
    seconds: float


@dataclass
class LakeExport:
    """What :func:`export_lake` wrote."""

    folder: Path
    tables: list[ExportedTable] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "format": "parquet",
            "tables": [asdict(t) for t in self.tables],
            "rows": sum(t.rows for t in self.tables),
            "seconds": round(self.seconds, 3),
        }


def _select_list(store: Store, table: str) -> str:
    """The table's columns, with nanosecond and time-zone timestamps cast to microsecond TIMESTAMP."""
    cols = []
    for name, kind in store.columns(table):
        upper = kind.upper()
        if upper.startswith("TIMESTAMP") and upper != "TIMESTAMP":
            cols.append(f"CAST({ident(name)} AS TIMESTAMP) AS {ident(name)}")
        elif upper in ("HUGEINT", "UHUGEINT", "UBIGINT"):
            cols.append(f"CAST({ident(name)} AS DOUBLE) AS {ident(name)}")
        else:
            cols.append(ident(name))
    return ", ".join(cols)


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def export_lake(
    store: Store, folder: str | Path, *, file_format: str = "parquet", overwrite: bool = False
) -> LakeExport:
    """Write the store's canonical tables, ``customer_value`` and ``churnguard_meta`` to ``folder``.

    Parameters
    ----------
    store : a DuckDB store (the source).
    folder : the lake folder; created if missing.  A folder that already holds files is refused
        unless ``overwrite`` (then the tables written here replace their folders).
    file_format : ``parquet`` (the only one Spark's engine reads here).

    Returns
    -------
    LakeExport : rows, files and bytes per table.
    """
    if file_format not in FORMATS:
        raise ConfigError(f'--file-format: expected {", ".join(FORMATS)}, got "{file_format}".')
    if store.url.backend != "duckdb":
        raise StoreError(f"export reads a DuckDB store, got {store.url}. Fix: --db duckdb:///PATH.")
    root = Path(folder).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise ConfigError(f'--to "{root}": expected a folder, got a file. Fix: name a new or empty folder.')
    if root.exists() and any(root.iterdir()) and not overwrite:
        raise ConfigError(
            f'--to "{root}": the folder is not empty. Fix: name a new folder, or add --overwrite to replace its tables.'
        )
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    names = [t.name for t in TABLES] + [t for t in EXTRA_TABLES if store.has_table(t)] + [META_TABLE]
    result = LakeExport(root)
    for name in names:
        t0 = time.perf_counter()
        dest = root / name
        if dest.exists():
            shutil.rmtree(dest)
        rows = store.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
        if name in EXTRA_TABLES and rows == 0:
            continue
        store.execute(
            f"COPY (SELECT {_select_list(store, name)} FROM {name}) TO {_literal(dest)} "
            f"(FORMAT parquet, COMPRESSION zstd, FILE_SIZE_BYTES '{FILE_SIZE}', OVERWRITE_OR_IGNORE true)"
        )
        files = sorted(dest.glob("*.parquet"))
        result.tables.append(
            ExportedTable(name, int(rows), len(files), sum(f.stat().st_size for f in files), time.perf_counter() - t0)
        )
    result.seconds = time.perf_counter() - started
    manifest = {
        **result.to_dict(),
        "exported_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "source": str(store.url),
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return result
