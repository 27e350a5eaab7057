"""Every source format loads the same data to the same stored rows, and locates a bad row its own way."""

from __future__ import annotations

import datetime as dt
import gzip

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import AS_OF, table_rows

import churnguard

COLUMNS = ["customer_id", "ts", "event_type", "value"]
ROWS = [
    ["A", "2024-03-01 09:15:00", "login", "1"],
    ["B", "2024-03-02 10:00:00", "call", "12.5"],
    ["A", "2024-03-03 00:00:00", "data_mb", ""],
    ["C", "2024-03-04 23:59:59", "login", "3"],
]
EXPECTED = sorted(
    [
        ("A", dt.datetime(2024, 3, 1, 9, 15), "login", 1.0),
        ("B", dt.datetime(2024, 3, 2, 10, 0), "call", 12.5),
        ("A", dt.datetime(2024, 3, 3, 0, 0), "data_mb", None),
        ("C", dt.datetime(2024, 3, 4, 23, 59, 59), "login", 3.0),
    ],
    key=lambda r: tuple((v is not None, str(v)) for v in r),
)


def _frame(rows=ROWS) -> pd.DataFrame:
    """The events as a typed frame: timestamps as datetimes, value as a float (NaN where empty)."""
    return pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "ts": pd.to_datetime([r[1] for r in rows]),
            "event_type": [r[2] for r in rows],
            "value": pd.to_numeric([r[3] for r in rows]),
        }
    )


def _delimited(sep: str, rows=ROWS) -> str:
    return "\n".join(sep.join(r) for r in [COLUMNS, *rows]) + "\n"


def _write(kind: str, folder, rows=ROWS):
    """Write the events in format ``kind``; return the source to load (a path or an in-memory table)."""
    if kind == "csv":
        path = folder / "events.csv"
        path.write_text(_delimited(",", rows), encoding="utf-8")
    elif kind == "csv-crlf-bom":
        path = folder / "events.csv"
        path.write_bytes(b"\xef\xbb\xbf" + _delimited(",", rows).replace("\n", "\r\n").encode())
    elif kind == "semicolon":
        path = folder / "events.csv"
        path.write_text(_delimited(";", rows), encoding="utf-8")
    elif kind == "csv.gz":
        path = folder / "events.csv.gz"
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(_delimited(",", rows))
    elif kind == "tsv":
        path = folder / "events.tsv"
        path.write_text(_delimited("\t", rows), encoding="utf-8")
    elif kind == "parquet":
        path = folder / "events.parquet"
        _frame(rows).to_parquet(path, index=False)
    elif kind == "parquet-folder":
        path = folder / "events_parts"
        path.mkdir()
        table = pa.Table.from_pandas(_frame(rows), preserve_index=False)
        pq.write_table(table.slice(0, 2), path / "part-0.parquet")
        pq.write_table(table.slice(2), path / "part-1.parquet")
    elif kind == "jsonl":
        path = folder / "events.jsonl"
        lines = [
            pd.Series(dict(zip(COLUMNS, [r[0], r[1], r[2], float(r[3]) if r[3] else None], strict=True))).to_json()
            for r in rows
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif kind == "xlsx":
        path = folder / "events.xlsx"
        _frame(rows).to_excel(path, index=False, sheet_name="Events")
    elif kind == "arrow":
        return pa.Table.from_pandas(_frame(rows), preserve_index=False)
    elif kind == "pandas":
        return _frame(rows)
    elif kind == "pandas-text":
        return pd.DataFrame(rows, columns=COLUMNS)
    else:  # pragma: no cover
        raise AssertionError(kind)
    return path


KINDS = [
    "csv",
    "csv-crlf-bom",
    "semicolon",
    "csv.gz",
    "tsv",
    "parquet",
    "parquet-folder",
    "jsonl",
    "xlsx",
    "arrow",
    "pandas",
    "pandas-text",
]


@pytest.mark.parametrize("kind", KINDS)
def test_every_format_loads_the_same_rows(seeded, tmp_path, kind):
    source = _write(kind, tmp_path)
    result = churnguard.ingest_table(seeded, "events", source, as_of=AS_OF)
    assert result.rows_read == 4
    assert result.rows_added == 4
    assert result.extra_columns == []
    assert table_rows(seeded, "events") == EXPECTED
    # A re-run of the same source adds nothing, whatever the format.
    again = churnguard.ingest_table(seeded, "events", source, as_of=AS_OF)
    assert (again.rows_added, again.rows_skipped) == (0, 4)
    assert len(table_rows(seeded, "events")) == 4


BAD_ROWS = [*ROWS[:2], ["Z", "2024-03-03 00:00:00", "login", "1"], *ROWS[3:]]


@pytest.mark.parametrize(
    ("kind", "where"),
    [
        ("csv", "events.csv line 4"),  # header is line 1: the 3rd data row is on line 4
        ("csv.gz", "events.csv.gz line 4"),
        ("tsv", "events.tsv line 4"),
        ("parquet", "events.parquet row 3"),
        ("parquet-folder", "events_parts row 3"),
        ("jsonl", "events.jsonl row 3"),
        ("xlsx", "events.xlsx row 4"),  # the sheet's row: the header is row 1
        ("arrow", "input row 3"),
        ("pandas", "input row 3"),
    ],
)
def test_each_format_locates_the_bad_row(seeded, tmp_path, rejected, kind, where):
    source = _write(kind, tmp_path, BAD_ROWS)
    rejected(
        lambda: churnguard.ingest_table(seeded, "events", source, as_of=AS_OF),
        f'{where}, column customer_id: expected a customer_id that exists in customers, got unknown customer "Z"',
    )


def test_excel_sheet_by_name(seeded, tmp_path, rejected):
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"note": ["not this sheet"]}).to_excel(writer, sheet_name="Readme", index=False)
        _frame().to_excel(writer, sheet_name="Events", index=False)
    result = churnguard.ingest_table(seeded, "events", path, mapping={"sheet": "Events"}, as_of=AS_OF)
    assert result.rows_added == 4
    assert table_rows(seeded, "events") == EXPECTED
    rejected(
        lambda: churnguard.ingest_table(seeded, "events", path, mapping={"sheet": "Evnts"}, as_of=AS_OF),
        'book.xlsx: expected a sheet named "Evnts"',
        "set 'sheet:' in the mapping",
    )


def test_excel_written_with_openpyxl_keeps_text_codes(seeded, tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["customer_id", "branch_id", "signup_date", "Zip"])
    ws.append(["D", "C1", dt.datetime(2024, 3, 1), "01234"])
    ws.append(["E", "C2", "2024-03-02", "00501"])
    path = tmp_path / "customers.xlsx"
    wb.save(path)
    churnguard.ingest_table(seeded, "customers", path, as_of=AS_OF)
    assert seeded.execute(
        "SELECT customer_id, signup_date, zip FROM customers WHERE zip IS NOT NULL ORDER BY 1"
    ).fetchall() == [
        ("D", dt.date(2024, 3, 1), "01234"),
        ("E", dt.date(2024, 3, 2), "00501"),
    ]


def test_explicit_delimiter_in_the_mapping(seeded, tmp_path):
    path = tmp_path / "events.txt"
    path.write_text(_delimited("|"), encoding="utf-8")
    churnguard.ingest_table(seeded, "events", path, mapping={"delimiter": "|"}, as_of=AS_OF)
    assert table_rows(seeded, "events") == EXPECTED


def test_quoted_values_with_delimiters_and_quotes(seeded, write_csv):
    csv = write_csv(
        "events.csv",
        'customer_id,ts,event_type,value\nA,2024-03-01,"call, outbound",1\nB,2024-03-02,"say ""hi""",2\n',
    )
    churnguard.ingest_table(seeded, "events", csv, as_of=AS_OF)
    assert [r[2] for r in table_rows(seeded, "events")] == ["call, outbound", 'say "hi"']


def test_header_only_file_loads_nothing(seeded, write_csv):
    csv = write_csv("events.csv", "customer_id,ts,event_type\n")
    result = churnguard.ingest_table(seeded, "events", csv, as_of=AS_OF)
    assert (result.rows_read, result.rows_added) == (0, 0)
    assert table_rows(seeded, "events") == []
    assert seeded.execute("SELECT rows_read FROM ingest_log WHERE table_name = 'events'").fetchall() == [(0,)]


def test_typed_parquet_extras_keep_their_types(seeded, tmp_path):
    frame = _frame().assign(duration=[1.5, 2.0, None, 4.25], channel=["app", "web", "app", None])
    path = tmp_path / "events.parquet"
    frame.to_parquet(path, index=False)
    result = churnguard.ingest_table(seeded, "events", path, as_of=AS_OF)
    assert result.extra_columns == ["duration", "channel"]
    assert dict(seeded.columns("events"))["duration"] == "DOUBLE"
    assert seeded.execute("SELECT sum(duration), count(channel) FROM events").fetchone() == (7.75, 3)


def test_in_memory_frame_with_nan_and_infinity(seeded, rejected):
    # pandas writes a missing number as NaN: an empty cell, not a number.
    frame = _frame()
    churnguard.ingest_table(seeded, "events", frame, as_of=AS_OF)
    assert table_rows(seeded, "events") == EXPECTED
    # A real NaN or infinity in an Arrow column is not a number.
    table = pa.table(
        {
            "customer_id": ["A", "B"],
            "ts": [dt.datetime(2024, 4, 1), dt.datetime(2024, 4, 2)],
            "amount": pa.array([float("nan"), float("inf")], pa.float64()),
        }
    )
    error = rejected(
        lambda: churnguard.ingest_table(seeded, "transactions", table, as_of=AS_OF),
        'input row 1, column amount: expected a number like 12.5, got "nan"',
        'input row 2, column amount: expected a number like 12.5, got "inf"',
    )
    assert error.total == 2


def test_an_unsupported_in_memory_source_is_a_clear_error(seeded, rejected):
    rejected(
        lambda: churnguard.ingest_table(seeded, "events", [("A", "2024-01-01", "login")], as_of=AS_OF),
        "input: expected a file path, a pandas DataFrame or a pyarrow Table, got a list",
    )
