"""A problem is reported at the right place: the Nth data row of a CSV is on line N + 1 (the header is
line 1), also in a large file (which proves the staged rows keep the file's order), after blank lines
and across quoted line breaks."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import AS_OF

import churnguard

HEADER = "customer_id,ts,event_type,value"


def good_row(i: int) -> str:
    return f"{'AB'[i % 2]},2024-03-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:00,login,{i}"


def events_file(write_csv, n: int, bad: dict[int, str], name: str = "events.csv"):
    """``n`` data rows; row ``k`` (1-based) replaced by ``bad[k]``."""
    rows = [bad.get(k, good_row(k)) for k in range(1, n + 1)]
    return write_csv(name, HEADER + "\n" + "\n".join(rows) + "\n")


@pytest.mark.parametrize("n", [1, 2, 9, 10, 57])
def test_the_nth_row_is_on_line_n_plus_1(seeded, write_csv, rejected, n):
    csv = events_file(write_csv, 60, {n: "A,2024-03-01,login,oops"})
    error = rejected(
        lambda: churnguard.ingest_table(seeded, "events", csv, as_of=AS_OF),
        f'events.csv line {n + 1}, column value: expected a number like 12.5, got "oops"',
    )
    assert [p.line for p in error.problems] == [n + 1]


def test_a_large_file_with_one_bad_row_near_the_end(seeded, write_csv, rejected):
    n, bad = 200_000, 199_990
    csv = events_file(write_csv, n, {bad: "A,2024-03-01 10:00:00,login,oops", 7: "B,2024-03-01 10:00:00,login,x7"})
    error = rejected(
        lambda: churnguard.ingest_table(seeded, "events", csv, as_of=AS_OF),
        '2 problems found; nothing was loaded.\nevents.csv line 8, column value: expected a number like 12.5, got "x7"',
        f'events.csv line {bad + 1}, column value: expected a number like 12.5, got "oops"',
    )
    assert [p.line for p in error.problems] == [8, bad + 1]


def test_a_large_file_with_a_ragged_row_near_the_end(seeded, write_csv, rejected):
    n, bad = 200_000, 199_995
    csv = events_file(write_csv, n, {bad: "A,2024-03-01 10:00:00,login,1,surplus"})
    rejected(
        lambda: churnguard.ingest_table(seeded, "events", csv, as_of=AS_OF),
        f"events.csv line {bad + 1}: expected 4 fields (customer_id, ts, event_type, value), got 5 fields: "
        '"A,2024-03-01 10:00:00,login,1,surplus"',
    )


def test_a_large_file_loads_in_order(seeded, write_csv):
    n = 200_000
    csv = events_file(write_csv, n, {})
    result = churnguard.ingest_table(seeded, "events", csv, as_of=AS_OF)
    assert result.rows_added == n
    # value = the data row's number: the stored order follows the file.
    values = seeded.execute("SELECT value FROM events").fetchnumpy()["value"]
    assert values.tolist() == [float(i) for i in range(1, n + 1)]


def test_a_large_parquet_file_locates_the_bad_row(seeded, tmp_path, rejected):
    n, bad = 200_000, 199_990
    frame = pd.DataFrame(
        {
            "customer_id": ["A"] * n,
            "ts": pd.Timestamp("2024-03-01"),
            "event_type": "login",
            "value": [float(i) for i in range(1, n + 1)],
        }
    )
    frame.loc[bad - 1, "customer_id"] = "Q"
    path = tmp_path / "events.parquet"
    frame.to_parquet(path, index=False, row_group_size=10_000)
    rejected(
        lambda: churnguard.ingest_table(seeded, "events", path, as_of=AS_OF),
        f"events.parquet row {bad}, column customer_id: expected a customer_id that exists in customers, got unknown "
        'customer "Q"',
    )


def test_duplicates_far_apart_name_both_lines(seeded, write_csv, rejected):
    rows = [f"N{i},C1,2024-03-01" for i in range(1, 5001)]
    rows[4499] = "N7,C1,2024-03-02"
    csv = write_csv("customers.csv", "customer_id,branch_id,signup_date\n" + "\n".join(rows) + "\n")
    rejected(
        lambda: churnguard.ingest_table(seeded, "customers", csv, as_of=AS_OF),
        'customers.csv line 4501, column customer_id: expected each customer_id once per file, got customer_id="N7" '
        "again (first on line 8)",
    )


def test_blank_lines_do_not_shift_the_line_numbers(seeded, write_csv, rejected):
    csv = write_csv(
        "events.csv",
        f"{HEADER}\n{good_row(1)}\n\n\n{good_row(2)}\nA,2024-03-01,login,oops\n\n",
    )
    rejected(
        lambda: churnguard.ingest_table(seeded, "events", csv, as_of=AS_OF),
        'events.csv line 6, column value: expected a number like 12.5, got "oops"',
    )


def test_blank_lines_and_no_final_newline(seeded, write_csv, rejected):
    csv = write_csv("events.csv", f"{HEADER}\n\n{good_row(1)}\nA,2024-03-01,login,oops")
    rejected(
        lambda: churnguard.ingest_table(seeded, "events", csv, as_of=AS_OF),
        'events.csv line 4, column value: expected a number like 12.5, got "oops"',
    )


def test_quoted_line_breaks_do_not_shift_the_line_numbers(seeded, write_csv, rejected):
    csv = write_csv(
        "events.csv",
        f'{HEADER}\nA,2024-03-01,"a note\nover\nthree lines",1\n{good_row(2)}\nA,2024-03-01,login,oops\n',
    )
    rejected(
        lambda: churnguard.ingest_table(seeded, "events", csv, as_of=AS_OF),
        'events.csv line 6, column value: expected a number like 12.5, got "oops"',
    )


def test_windows_line_endings(seeded, write_csv, rejected):
    text = f"{HEADER}\r\n{good_row(1)}\r\n{good_row(2)}\r\nA,2024-03-01,login,oops\r\n"
    csv = write_csv("events.csv", text.encode())
    rejected(
        lambda: churnguard.ingest_table(seeded, "events", csv, as_of=AS_OF),
        'events.csv line 4, column value: expected a number like 12.5, got "oops"',
    )


def test_problems_are_listed_in_line_order_within_a_check(seeded, write_csv, rejected):
    csv = events_file(write_csv, 40, {k: f"A,2024-03-01,login,bad{k}" for k in (33, 4, 17, 25, 9, 38)})
    error = rejected(
        lambda: churnguard.ingest_table(seeded, "events", csv, as_of=AS_OF),
        "6 problems found; nothing was loaded. The first 5 follow.",
    )
    assert [p.line for p in error.problems] == [5, 10, 18, 26, 34]
