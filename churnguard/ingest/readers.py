"""Readers: describe a source (CSV, Parquet, JSON lines, Excel, or an in-memory table) as a
relation the engine can scan, without reading it into Python.

Files are not copied: the conversion step (:mod:`churnguard.ingest.convert`) scans the file's
reader expression once, converting as it reads.  Excel files and in-memory tables, which are
small, are copied into the temp table ``_cg_raw`` first.

Problems are located by ``_line``: the line in a CSV file (the header is line 1), the row in a
Parquet or JSON-lines file (1-based), the sheet row in an Excel file (the header is row 1).
:func:`assign_lines` numbers the staged rows: DuckDB preserves insertion order, so the staged
table's ``rowid`` follows the file (inside a transaction rowids start at an internal offset, so
lines are counted from the smallest; this is much faster than ``row_number() OVER ()``, which
serialises the read); for CSV it then corrects for blank lines and quoted line breaks.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from churnguard.errors import Problem, ValidationError

RAW_TABLE = "_cg_raw"

CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz")
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")


@dataclass(frozen=True)
class StagedSource:
    """A source the engine can scan: ``SELECT … FROM {relation}`` with ``params`` bound."""

    name: str  # how problems name the source (the file name)
    columns: tuple[tuple[str, str], ...]  # (source column, engine type), in file order
    location_word: str  # "line" or "row"
    relation: str  # a reader expression (read_csv(...)) or the temp table _cg_raw
    params: dict[str, Any] = field(default_factory=dict)
    first: int = 1  # the line or row of the first data row
    path: Path | None = None
    kind: str = "frame"  # csv, parquet, json, excel, frame
    delimiter: str = ","
    header: tuple[str, ...] = ()


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


def folder_parts(path: Path) -> list[Path] | None:
    """The part files of a folder source, or ``None`` when the folder is read as one Parquet data set.

    A folder of Parquet parts is read in one scan; a folder of CSV / JSON-lines parts (``part-00000.csv``,
    …) is loaded part by part, in name order, in the same transaction.
    """
    if not path.is_dir():
        return None
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
    if any(p.name.lower().endswith(PARQUET_SUFFIXES) for p in files):
        return None
    parts = [p for p in files if p.name.lower().endswith(CSV_SUFFIXES + JSON_SUFFIXES)]
    if not parts:
        raise ValidationError(
            [
                Problem(
                    str(path),
                    None,
                    None,
                    "a folder of .parquet, .csv or .jsonl part files",
                    "no such files" if not files else f"files like {files[0].name}",
                    "point at the file itself, or at a folder that holds the parts.",
                )
            ]
        )
    return parts


def stage(
    con: Any, source: Any, *, delimiter: str | None = None, sheet: str | None = None, name: str | None = None
) -> StagedSource:
    """Describe ``source`` as a relation the engine can scan (copying only Excel and in-memory data).

    ``name`` is how problems name the source (default: the file name, or "input").
    """
    con.execute(f"DROP TABLE IF EXISTS {RAW_TABLE}")
    if not isinstance(source, str | Path):
        import duckdb

        try:
            _copy_frame(con, source)
        except duckdb.Error as exc:
            got = f"a {type(source).__name__}: {str(exc).strip().splitlines()[0]}"
            fix = "pass a file path, or convert the data with pandas.DataFrame(...) or pyarrow.table(...)."
            raise ValidationError(
                [Problem("input", None, None, "a file path, a pandas DataFrame or a pyarrow Table", got, fix)]
            ) from None
        return _describe(con, StagedSource(name or "input", (), "row", RAW_TABLE, first=1))
    path = Path(source)
    if not path.exists():
        raise ValidationError([Problem(str(path), None, None, "an existing file", "no such file", "check the path.")])
    kind = source_kind(path)
    label = name or path.name
    if kind == "excel":
        _copy_frame(con, _read_excel(path, sheet))
        return _describe(con, StagedSource(label, (), "row", RAW_TABLE, first=2, path=path, kind=kind))
    if kind == "csv":
        header, delim = _read_header(path, delimiter)
        columns = "{" + ", ".join(f"'{h.replace(chr(39), chr(39) * 2)}': 'VARCHAR'" for h in header) + "}"
        reader = (
            "read_csv($src, auto_detect=false, header=true, delim=$delim, quote='\"', escape='\"', "
            f"columns={columns}, strict_mode=true)"
        )
        return StagedSource(
            label,
            tuple((h, "VARCHAR") for h in header),
            "line",
            reader,
            {"src": str(path), "delim": delim},
            first=2,
            path=path,
            kind=kind,
            delimiter=delim,
            header=tuple(header),
        )
    if kind == "parquet":
        reader, src = "read_parquet($src)", str(path / "**" / "*.parquet") if path.is_dir() else str(path)
    else:
        reader, src = "read_json($src, format='newline_delimited')", str(path)
    return _describe(con, StagedSource(label, (), "row", reader, {"src": src}, first=1, path=path, kind=kind))


def _describe(con: Any, staged: StagedSource) -> StagedSource:
    """Fill in the columns and their engine types (a damaged file is a problem)."""
    with reading(staged):
        cols = con.execute(f"DESCRIBE SELECT * FROM {staged.relation}", staged.params).fetchall()
    return StagedSource(**{**staged.__dict__, "columns": tuple((c[0], c[1]) for c in cols)})


def out_of_memory(source: str, exc: Exception) -> Exception:
    """The error for a load that ran out of memory: not a problem of the data, and what to do about it."""
    from churnguard.errors import StoreError

    return StoreError(
        f"{source}: the load ran out of memory under its memory limit ({str(exc).strip().splitlines()[0]}). "
        "Nothing was loaded. Fix: raise --memory-limit (e.g. --memory-limit 4GB; the engine spills to disk "
        "beyond it), or load the parts of a large folder in separate runs."
    )


@contextlib.contextmanager
def reading(staged: StagedSource) -> Iterator[None]:
    """Turn the engine's errors while it reads ``staged`` into problems that name the file."""
    import duckdb

    try:
        yield
    except duckdb.OutOfMemoryException as exc:  # not a problem of the file: say what it is and what to do
        raise out_of_memory(staged.name, exc) from None
    except duckdb.Error as exc:
        if staged.path is None or staged.kind not in ("csv", "parquet", "json"):
            raise
        if staged.kind == "csv":
            raise _csv_problem(staged.path, str(exc), list(staged.header)) from None
        expected, fix = _FILE_KINDS[staged.kind]
        got = str(exc).strip().splitlines()[0].removeprefix("Invalid Input Error: ").rstrip(" .")
        raise ValidationError([Problem(staged.path.name, None, None, expected, got, fix)]) from None


def assign_lines(con: Any, table: str, staged: StagedSource) -> int:
    """Give the staged rows of ``table`` their ``_line``; return the number of rows."""
    rows, base = con.execute(f"SELECT count(*), coalesce(min(rowid), 0) FROM {table}").fetchone()
    con.execute(f"ALTER TABLE {table} ADD COLUMN _line BIGINT")
    con.execute(f"UPDATE {table} SET _line = rowid - {int(base)} + {int(staged.first)}")
    if staged.kind == "csv" and staged.path is not None:
        _fix_line_numbers(con, table, staged.path, staged.delimiter, int(rows))
    return int(rows)


_FILE_KINDS = {
    "parquet": ("a Parquet file", "export the file again, or convert it to CSV."),
    "json": ("JSON lines (one JSON object per line)", "correct the JSON there, or convert the file to CSV."),
}


def _open_binary(path: Path) -> Any:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _open_text(path: Path) -> io.TextIOBase:
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", newline="")


def _read_header(path: Path, delimiter: str | None) -> tuple[list[str], str]:
    # Only the header line is decoded here: a bad byte further on is reported by the engine, with its line.
    try:
        with _open_binary(path) as fh:
            raw = fh.readline()
    except OSError as exc:  # e.g. a .gz name on a file that is not gzip-compressed
        raise ValidationError(
            [Problem(path.name, None, None, "a gzip-compressed file", str(exc), "check the file.")]
        ) from None
    try:
        first = raw.decode("utf-8-sig")
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
    lowered = [h.lower() for h in header]  # the engine's column names ignore case
    dupes = sorted({h for h in header if lowered.count(h.lower()) > 1})
    if dupes:
        same = [f'"{h}"' for h in header if h.lower() == dupes[0].lower()]
        raise ValidationError(
            [Problem(path.name, 1, dupes[0], "each column name once in the header", " and ".join(same))]
        )
    return header, delimiter


_CSV_ERROR = re.compile(r"CSV Error on Line: (\d+)")
_ORIGINAL = re.compile(r"Original Line: (.*)")
_FOUND = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def _fix_line_numbers(con: Any, table: str, path: Path, delimiter: str, rows: int) -> None:
    """Make ``_line`` the file's line where data rows and lines differ.

    The engine skips blank lines, and a quoted value may span lines, so counting rows would
    misplace every later problem.  Counting newlines is cheap; the file is parsed again with
    the ``csv`` module only when the two counts disagree.
    """
    newlines, tail = 0, b""
    with _open_binary(path) as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            newlines += chunk.count(b"\n")
            tail = (tail + chunk)[-64:]
    # Blank lines at the very end shift nothing: count the lines up to the last one with content.
    trailing = tail[len(tail.rstrip(b"\r\n")) :].count(b"\n")
    if newlines - trailing + 1 == rows + 1:
        return
    starts: list[int] = []
    try:
        with _open_text(path) as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            next(reader, None)
            before = reader.line_num
            for record in reader:
                if record:  # a blank line: skipped by the engine too
                    starts.append(before + 1)
                before = reader.line_num
    except csv.Error:
        return
    if len(starts) != rows:  # the two parsers disagree: keep the row-based numbers
        return
    import pyarrow as pa

    con.register("_cg_lines", pa.table({"row_line": range(2, rows + 2), "file_line": starts}))
    try:
        con.execute(f"UPDATE {table} SET _line = m.file_line FROM _cg_lines m WHERE {table}._line = m.row_line")
    finally:
        con.unregister("_cg_lines")


def _csv_problem(path: Path, message: str, header: list[str]) -> ValidationError:
    line = _CSV_ERROR.search(message)
    original = _ORIGINAL.search(message)
    found = _FOUND.search(message)
    got = f'"{original.group(1)[:200]}"' if original else message.splitlines()[0]
    if "Invalid unicode" in message:
        return ValidationError(
            [
                Problem(
                    path.name,
                    int(line.group(1)) if line else None,
                    None,
                    "UTF-8 text",
                    f"bytes that are not UTF-8: {got}",
                    "save the file as UTF-8 (in Excel: Save As, CSV UTF-8).",
                )
            ]
        )
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
        if sheet is None:
            raise _not_a_workbook(path, exc) from None
        raise ValidationError(
            [Problem(path.name, None, None, f'a sheet named "{sheet}"', str(exc), "set 'sheet:' in the mapping.")]
        ) from None
    except Exception as exc:  # zip, XML and I/O errors: the file is not an .xlsx workbook
        raise _not_a_workbook(path, exc) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _not_a_workbook(path: Path, exc: Exception) -> ValidationError:
    return ValidationError(
        [
            Problem(
                path.name,
                None,
                None,
                "an Excel workbook (.xlsx)",
                f"{type(exc).__name__}: {exc}",
                "open the file in Excel and save it as .xlsx (or as CSV UTF-8).",
            )
        ]
    )


def _copy_frame(con: Any, frame: Any) -> None:
    con.register("_cg_src", frame)
    try:
        con.execute(f"CREATE TEMP TABLE {RAW_TABLE} AS SELECT * FROM _cg_src")
    finally:
        con.unregister("_cg_src")


def drop_stage(con: Any) -> None:
    con.execute(f"DROP TABLE IF EXISTS {RAW_TABLE}")


__all__ = [
    "RAW_TABLE",
    "StagedSource",
    "assign_lines",
    "drop_stage",
    "folder_parts",
    "reading",
    "source_kind",
    "stage",
]
