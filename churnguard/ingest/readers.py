"""Readers: put a source (CSV, Parquet, JSON lines, Excel, or an in-memory table) into the
engine as a staging table, without reading it into Python.

The staging table has every source column plus ``_line``, the location a problem is
reported at: the line in a CSV file (the header is line 1), the row in a Parquet or
JSON-lines file (1-based), the sheet row in an Excel file (the header is row 1).
DuckDB preserves insertion order, so the staging table's ``rowid`` follows the file; inside
a transaction rowids start at an internal offset, so ``_line`` is counted from the smallest.
(This is a third faster than ``row_number() OVER ()``, which serialises the read.)
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churnguard.errors import Problem, ValidationError
from churnguard.store.sql import ident

RAW_TABLE = "_cg_raw"

CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz")
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")


@dataclass(frozen=True)
class StagedSource:
    """A source staged in the engine."""

    name: str  # how problems name the source (the file name)
    columns: tuple[tuple[str, str], ...]  # (source column, engine type), in file order
    rows: int
    location_word: str  # "line" or "row"


def source_kind(path: Path) -> str:
    name = path.name.lower()
    for kind, suffixes in (
        ("csv", CSV_SUFFIXES),
        ("parquet", PARQUET_SUFFIXES),
        ("json", JSON_SUFFIXES),
        ("excel", EXCEL_SUFFIXES),
    ):
        if name.endswith(suffixes):
            return kind
    if path.is_dir():
        return "parquet"  # a folder of Parquet parts
    raise ValidationError(
        [
            Problem(
                path.name,
                None,
                None,
                "a .csv, .tsv, .parquet, .jsonl or .xlsx file",
                f'"{path.suffix or path.name}"',
                "convert the file to CSV or Parquet, or rename it with the right extension.",
            )
        ]
    )


def stage(con: Any, source: Any, *, delimiter: str | None = None, sheet: str | None = None) -> StagedSource:
    """Create the staging table ``_cg_raw`` from ``source`` and describe it."""
    con.execute(f"DROP TABLE IF EXISTS {RAW_TABLE}")
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.exists():
            raise ValidationError(
                [Problem(str(path), None, None, "an existing file", "no such file", "check the path.")]
            )
        kind = source_kind(path)
        word = "line" if kind == "csv" else "row"
        if kind == "csv":
            _stage_csv(con, path, delimiter)
        elif kind == "parquet":
            pattern = str(path / "**" / "*.parquet") if path.is_dir() else str(path)
            _ctas(con, "read_parquet($src)", {"src": pattern}, first=1)
        elif kind == "json":
            _ctas(con, "read_json($src, format='newline_delimited')", {"src": str(path)}, first=1)
        else:
            _stage_frame(con, _read_excel(path, sheet), first=2)
        name = path.name
    else:
        _stage_frame(con, source, first=1)
        name, word = "input", "row"
    cols = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = ? AND column_name <> '_line' ORDER BY ordinal_position",
        [RAW_TABLE],
    ).fetchall()
    rows = con.execute(f"SELECT count(*) FROM {RAW_TABLE}").fetchone()[0]
    return StagedSource(name, tuple((c, t) for c, t in cols), rows, word)


def _ctas(con: Any, reader_sql: str, params: dict[str, Any], *, first: int) -> None:
    """Stage ``reader_sql``; ``first`` is the location (line or row) of its first data row."""
    con.execute(f"CREATE TEMP TABLE {RAW_TABLE} AS SELECT * FROM {reader_sql}", params)
    base = con.execute(f"SELECT coalesce(min(rowid), 0) FROM {RAW_TABLE}").fetchone()[0]
    con.execute(f"ALTER TABLE {RAW_TABLE} ADD COLUMN _line BIGINT")
    con.execute(f"UPDATE {RAW_TABLE} SET _line = rowid - {int(base)} + {int(first)}")


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _read_header(path: Path, delimiter: str | None) -> tuple[list[str], str]:
    try:
        with _open_text(path) as fh:
            first = fh.readline()
    except UnicodeDecodeError as exc:
        raise ValidationError(
            [Problem(path.name, 1, None, "UTF-8 text", f"undecodable bytes ({exc.reason})", "save the file as UTF-8.")]
        ) from None
    if not first.strip():
        raise ValidationError([Problem(path.name, 1, None, "a header line with column names", "an empty line")])
    if delimiter is None:
        if path.name.lower().endswith((".tsv", ".tsv.gz")):
            delimiter = "\t"
        else:
            counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
            delimiter = max(counts, key=lambda d: counts[d]) if max(counts.values()) > 0 else ","
    header = next(csv.reader([first], delimiter=delimiter))
    header = [h.strip() for h in header]
    blanks = [i + 1 for i, h in enumerate(header) if not h]
    if blanks:
        raise ValidationError(
            [
                Problem(
                    path.name,
                    1,
                    None,
                    "a name for every column in the header",
                    f"an empty name in column position {blanks[0]}",
                    "add the missing column name to the header line.",
                )
            ]
        )
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise ValidationError(
            [Problem(path.name, 1, dupes[0], "each column name once in the header", f'"{dupes[0]}" twice')]
        )
    return header, delimiter


_CSV_ERROR = re.compile(r"CSV Error on Line: (\d+)")
_ORIGINAL = re.compile(r"Original Line: (.*)")
_FOUND = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def _stage_csv(con: Any, path: Path, delimiter: str | None) -> None:
    import duckdb

    header, delim = _read_header(path, delimiter)
    columns = "{" + ", ".join(f"'{h.replace(chr(39), chr(39) * 2)}': 'VARCHAR'" for h in header) + "}"
    try:
        _ctas(
            con,
            "read_csv($src, auto_detect=false, header=true, delim=$delim, quote='\"', escape='\"', "
            f"columns={columns}, strict_mode=true)",
            {"src": str(path), "delim": delim},
            first=2,
        )
    except duckdb.Error as exc:
        raise _csv_problem(path, str(exc), header) from None


def _csv_problem(path: Path, message: str, header: list[str]) -> ValidationError:
    line = _CSV_ERROR.search(message)
    original = _ORIGINAL.search(message)
    found = _FOUND.search(message)
    got = f'"{original.group(1)[:200]}"' if original else message.splitlines()[0]
    if found:
        expected = f"{found.group(1)} fields ({', '.join(header)})"
        got = f"{found.group(2)} fields: {got}"
        fix = "quote values that contain the delimiter, or fix the row's number of fields."
    else:
        expected = "a well-formed CSV row"
        fix = "check quoting and the file's encoding (UTF-8)."
    return ValidationError([Problem(path.name, int(line.group(1)) if line else None, None, expected, got, fix)])


def _read_excel(path: Path, sheet: str | None) -> Any:
    import pandas as pd

    try:
        frame = pd.read_excel(path, sheet_name=sheet or 0, dtype=str, engine="openpyxl")
    except ValueError as exc:
        raise ValidationError(
            [Problem(path.name, None, None, f'a sheet named "{sheet}"', str(exc), "set 'sheet:' in the mapping.")]
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _stage_frame(con: Any, frame: Any, *, first: int) -> None:
    con.register("_cg_src", frame)
    try:
        _ctas(con, "_cg_src", {}, first=first)
    finally:
        con.unregister("_cg_src")


def drop_stage(con: Any) -> None:
    con.execute(f"DROP TABLE IF EXISTS {RAW_TABLE}")


__all__ = ["RAW_TABLE", "StagedSource", "drop_stage", "ident", "source_kind", "stage"]
