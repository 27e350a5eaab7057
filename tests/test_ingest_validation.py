"""Every way a load is refused: the message names the file, line, column, what was expected, what
arrived and a fix, and the store is exactly as it was (the ``rejected`` fixture compares every
canonical table and ``ingest_log`` before and after)."""

from __future__ import annotations

import gzip

import pytest
from conftest import AS_OF

import churnguard

# A minimal valid row for each child table, and its header; the first field is the customer.
CHILD_ROWS = {
    "events": ("customer_id,ts,event_type", "2024-03-01 10:00:00,login"),
    "transactions": ("customer_id,ts,amount", "2024-03-01,9.99"),
    "subscriptions": ("customer_id,plan,start_date", "basic,2024-01-02"),
    "tickets": ("customer_id,opened_at,category", "2024-03-01 10:00:00,billing"),
    "surveys": ("customer_id,ts,kind,score", "2024-03-01,NPS,9"),
    "churn_events": ("customer_id,churn_date,reason_code", "2024-05-01,price"),
}


def load(store, table, path, **kw):
    return lambda: churnguard.ingest_table(store, table, path, as_of=AS_OF, **kw)


# -- values -----------------------------------------------------------------------------------


def test_bad_date(seeded, write_csv, rejected):
    csv = write_csv("customers.csv", "customer_id,branch_id,signup_date\nD,C1,2024-03-01\nE,C1,31/01/2024\n")
    error = rejected(
        load(seeded, "customers", csv),
        "1 problem found; nothing was loaded.\ncustomers.csv line 3, column signup_date: expected a date like "
        '2024-01-31, got "31/01/2024". Fix: if the file uses another format, map the column with a format, e.g. '
        'signup_date: {from: signup_date, format: "%d/%m/%Y"} (--mapping).',
    )
    [problem] = error.problems
    assert (problem.source, problem.line, problem.column) == ("customers.csv", 3, "signup_date")
    assert problem.got == '"31/01/2024"'


def test_impossible_date_and_timestamp(seeded, write_csv, rejected):
    csv = write_csv("events.csv", "customer_id,ts,event_type\nA,2024-02-30,login\nB,2024-03-01 25:00:00,login\n")
    rejected(
        load(seeded, "events", csv),
        'events.csv line 2, column ts: expected a timestamp like 2024-01-31 13:45:00 (or a date), got "2024-02-30"',
        "events.csv line 3, column ts: expected a timestamp like 2024-01-31 13:45:00 (or a date), "
        'got "2024-03-01 25:00:00"',
    )


def test_missing_required_column(seeded, write_csv, rejected):
    csv = write_csv("customers.csv", "customer_id,branch_id,joined\nD,C1,2024-03-01\n")
    rejected(
        load(seeded, "customers", csv),
        "customers.csv, column signup_date: expected a required column signup_date (first day as a customer), "
        "got columns customer_id, branch_id, joined. Fix: rename the file's column to signup_date, or map it in a "
        "mapping file (columns: {signup_date: YOUR_COLUMN}) and pass --mapping.",
    )


def test_empty_required_cell(seeded, write_csv, rejected):
    csv = write_csv("customers.csv", "customer_id,branch_id,signup_date\nD,,2024-03-01\n")
    rejected(
        load(seeded, "customers", csv),
        "customers.csv line 2, column branch_id: expected a value (the branch that owns the customer), "
        "got an empty cell. Fix: fill the cell, or give a default in the mapping (default: VALUE).",
    )


def test_duplicate_customer_in_the_file(seeded, write_csv, rejected):
    csv = write_csv(
        "customers.csv",
        "customer_id,branch_id,signup_date\nD,C1,2024-03-01\nE,C1,2024-03-01\nD,C2,2024-03-02\n",
    )
    rejected(
        load(seeded, "customers", csv),
        'customers.csv line 4, column customer_id: expected each customer_id once per file, got customer_id="D" '
        "again (first on line 2). Fix: remove the duplicate row, or merge the two rows into one.",
    )


def test_duplicate_composite_key(seeded, write_csv, rejected):
    csv = write_csv(
        "subscriptions.csv",
        "customer_id,plan,start_date\nA,basic,2024-01-02\nA,pro,2024-01-02\nA,basic,2024-01-02\n",
    )
    rejected(
        load(seeded, "subscriptions", csv),
        "subscriptions.csv line 4, column customer_id, plan, start_date: expected each customer_id + plan + "
        'start_date once per file, got customer_id="A", plan="basic", start_date="2024-01-02" again (first on line 2)',
    )


def test_stored_customer_with_other_values_suggests_upsert(seeded, write_csv, rejected):
    # A is stored with plan basic; the same row is fine, a changed one is a conflict in append mode.
    csv = write_csv(
        "customers.csv",
        "customer_id,branch_id,signup_date,plan\nA,C1,2024-01-02,basic\nB,C1,2024-01-03,gold\n",
    )
    rejected(
        load(seeded, "customers", csv),
        "customers.csv line 3, column customer_id: expected a new customer_id, or the same values as the stored row, "
        'got customer_id="B" already stored with other values. Fix: use --mode upsert',
    )
    result = churnguard.ingest_table(seeded, "customers", csv, as_of=AS_OF, mode="upsert")
    assert (result.rows_added, result.rows_replaced) == (2, 2)
    assert seeded.execute("SELECT plan FROM customers WHERE customer_id = 'B'").fetchone() == ("gold",)


@pytest.mark.parametrize("table", sorted(CHILD_ROWS))
def test_unknown_customer_in_a_child_table(seeded, write_csv, rejected, table):
    header, rest = CHILD_ROWS[table]
    csv = write_csv(f"{table}.csv", f"{header}\nA,{rest}\nZ9,{rest}\n")
    rejected(
        load(seeded, table, csv),
        f"{table}.csv line 3, column customer_id: expected a customer_id that exists in customers, got unknown "
        f'customer "Z9". Fix: load customers first (churnguard ingest customers FILE), or correct the customer id.',
    )


@pytest.mark.parametrize("table", sorted(CHILD_ROWS))
def test_a_valid_row_loads_into_each_child_table(seeded, write_csv, table):
    header, rest = CHILD_ROWS[table]
    csv = write_csv(f"{table}.csv", f"{header}\nA,{rest}\n")
    assert churnguard.ingest_table(seeded, table, csv, as_of=AS_OF).rows_added == 1


def test_one_problem_per_unknown_value(seeded, write_csv, rejected):
    csv = write_csv("events.csv", "customer_id,ts,event_type\nZ1,2024-03-01,login\nZ1,2024-03-02,login\n")
    error = rejected(
        load(seeded, "events", csv),
        "1 problem found; nothing was loaded.\nevents.csv line 2, column customer_id: expected a customer_id that "
        'exists in customers, got unknown customer "Z1" (2 rows).',
    )
    assert error.total == 1


def test_unknown_branch(seeded, write_csv, rejected):
    csv = write_csv("customers.csv", "customer_id,branch_id,signup_date\nD,C1,2024-03-01\nE,C9,2024-03-01\n")
    rejected(
        load(seeded, "customers", csv),
        "customers.csv line 3, column branch_id: expected a branch_id that exists in branches, got unknown branch "
        '"C9". Fix: load branches first (churnguard ingest branches FILE), or correct the branch id.',
    )


@pytest.mark.parametrize(
    ("table", "text", "column"),
    [
        ("transactions", "customer_id,ts,amount\nA,2024-03-01,10\nA,2024-03-02,-5\n", "amount"),
        (
            "subscriptions",
            "customer_id,plan,start_date,recurring_revenue\nA,basic,2024-01-02,-5\n",
            "recurring_revenue",
        ),
    ],
)
def test_negative_amounts(seeded, write_csv, rejected, table, text, column):
    csv = write_csv(f"{table}.csv", text)
    line = text.count("\n")
    rejected(
        load(seeded, table, csv),
        f"{table}.csv line {line}, column {column}: expected a number ≥ 0, got -5. Fix: amounts must not be "
        "negative: load refunds and credits as their own rows",
    )


@pytest.mark.parametrize("value", ["$12", "12 EUR", "1,200", "twelve", "12.5.1", "0x10"])
def test_non_numeric_amounts(seeded, write_csv, rejected, value):
    csv = write_csv("transactions.csv", f'customer_id,ts,amount\nA,2024-03-01,"{value}"\n')
    rejected(
        load(seeded, "transactions", csv),
        f'transactions.csv line 2, column amount: expected a number like 12.5, got "{value}". Fix: remove currency '
        "signs, units and thousands separators (or convert units with scale: in a mapping).",
    )


@pytest.mark.parametrize("value", ["NaN", "nan", "inf", "-inf", "Infinity"])
def test_nan_and_infinity_are_not_numbers(seeded, write_csv, rejected, value):
    csv = write_csv("transactions.csv", f"customer_id,ts,amount\nA,2024-03-01,{value}\n")
    rejected(
        load(seeded, "transactions", csv),
        f'transactions.csv line 2, column amount: expected a number like 12.5, got "{value}"',
    )


def test_whole_numbers_are_not_rounded(seeded, write_csv, rejected):
    csv = write_csv("branches.csv", "branch_id,name,parent_id,level\nC3,City Three,P1,2.5\n")
    rejected(
        load(seeded, "branches", csv),
        'branches.csv line 2, column level: expected a whole number like 3, got "2.5". Fix: use a whole number',
    )


@pytest.mark.parametrize(
    ("table", "text", "message"),
    [
        (
            "tickets",
            "customer_id,opened_at,resolved_at,satisfaction\nA,2024-03-01 10:00,2024-03-01 11:00,6\n",
            "tickets.csv line 2, column satisfaction: expected a number ≤ 5, got 6. Fix: satisfaction ranges from "
            "1 to 5; rescale or correct it.",
        ),
        (
            "tickets",
            "customer_id,opened_at,satisfaction\nA,2024-03-01 10:00,0\n",
            "tickets.csv line 2, column satisfaction: expected a number ≥ 1, got 0. Fix: correct the value; "
            "satisfaction ranges from 1 to 5.",
        ),
        (
            "surveys",
            "customer_id,ts,kind,score\nA,2024-03-01,NPS,-1\n",
            "surveys.csv line 2, column score: expected a number ≥ 0, got -1. Fix: correct the value; score ranges "
            "from 0 to 10.",
        ),
    ],
)
def test_out_of_range_scores(seeded, write_csv, rejected, table, text, message):
    rejected(load(seeded, table, write_csv(f"{table}.csv", text)), message)


def test_subscription_ending_before_it_starts(seeded, write_csv, rejected):
    csv = write_csv("subscriptions.csv", "customer_id,plan,start_date,end_date\nA,basic,2024-01-02,2023-12-01\n")
    rejected(
        load(seeded, "subscriptions", csv),
        'subscriptions.csv line 2, column end_date: expected end_date on or after start_date ("2024-01-02"), '
        'got "2023-12-01". Fix: correct the dates; end_date cannot come before start_date.',
    )


def test_ticket_resolved_before_it_was_opened(seeded, write_csv, rejected):
    csv = write_csv(
        "tickets.csv",
        "customer_id,opened_at,resolved_at\nA,2024-03-01 10:00,2024-03-01 12:00\nB,2024-03-01 10:00,2024-03-01 09:30\n",
    )
    rejected(
        load(seeded, "tickets", csv),
        'tickets.csv line 3, column resolved_at: expected resolved_at on or after opened_at ("2024-03-01 10:00:00"), '
        'got "2024-03-01 09:30:00"',
    )


@pytest.mark.parametrize(
    ("table", "text", "column", "got"),
    [
        ("customers", "customer_id,branch_id,signup_date\nD,C1,2024-07-01\n", "signup_date", '"2024-07-01"'),
        ("events", "customer_id,ts,event_type\nA,2024-07-01 00:00:01,login\n", "ts", '"2024-07-01 00:00:01"'),
        ("churn_events", "customer_id,churn_date\nA,2099-01-01\n", "churn_date", '"2099-01-01"'),
        (
            "tickets",
            "customer_id,opened_at,resolved_at\nA,2024-06-01,2024-07-02\n",
            "resolved_at",
            '"2024-07-02 00:00:00"',
        ),
    ],
)
def test_dates_in_the_future(seeded, write_csv, rejected, table, text, column, got):
    csv = write_csv(f"{table}.csv", text)
    rejected(
        load(seeded, table, csv),
        f"{table}.csv line 2, column {column}: expected a date not after 2024-06-30 (today), got {got}. "
        "Fix: correct the date; a date in the future usually means a wrong format",
    )


def test_the_last_moment_of_today_is_not_the_future(seeded, write_csv):
    csv = write_csv("events.csv", "customer_id,ts,event_type\nA,2024-06-30 23:59:59,login\n")
    assert churnguard.ingest_table(seeded, "events", csv, as_of=AS_OF).rows_added == 1


def test_unknown_reason_code(seeded, write_csv, rejected):
    csv = write_csv("churn.csv", "customer_id,churn_date,reason_code\nA,2024-05-01,price\nB,2024-05-01,too expensive\n")
    rejected(
        load(seeded, "churn_events", csv),
        "churn.csv line 3, column reason_code: expected one of benefit, competitor, industry_exit, involuntary, "
        'natural, policy, price, product, service, got "too expensive". Fix: recode the file\'s values in a mapping: '
        'reason_code: {from: COLUMN, values: {"too expensive": benefit}}.',
    )


def test_many_problems_are_counted_and_the_first_shown(seeded, write_csv, rejected):
    rows = "".join(f"A,someday{i},login\n" for i in range(30))
    csv = write_csv("events.csv", "customer_id,ts,event_type\n" + rows)
    error = rejected(load(seeded, "events", csv), "30 problems found; nothing was loaded. The first 5 follow.")
    assert error.total == 30
    assert [p.line for p in error.problems] == [2, 3, 4, 5, 6]


def test_problems_from_several_checks_are_reported_together(seeded, write_csv, rejected):
    csv = write_csv(
        "transactions.csv",
        "customer_id,ts,amount\nA,2024-03-01,oops\nZ,2024-03-01,1\nA,2099-03-01,-1\n",
    )
    error = rejected(load(seeded, "transactions", csv), "4 problems found")
    found = {(p.line, p.column) for p in error.problems}
    assert found == {(2, "amount"), (3, "customer_id"), (4, "ts"), (4, "amount")}


# -- files ------------------------------------------------------------------------------------


def test_ragged_row(seeded, write_csv, rejected):
    csv = write_csv(
        "events.csv",
        "customer_id,ts,event_type\nA,2024-03-01,login\nB,2024-03-01,login\nA,2024-03-02,call,extra\n",
    )
    rejected(
        load(seeded, "events", csv),
        'events.csv line 4: expected 3 fields (customer_id, ts, event_type), got 4 fields: "A,2024-03-02,call,extra". '
        "Fix: quote values that contain the delimiter, or fix the row's number of fields.",
    )


def test_short_row(seeded, write_csv, rejected):
    csv = write_csv("events.csv", "customer_id,ts,event_type\nA,2024-03-01\n")
    rejected(
        load(seeded, "events", csv),
        'events.csv line 2: expected 3 fields (customer_id, ts, event_type), got 2 fields: "A,2024-03-01"',
    )


def test_unterminated_quote(seeded, write_csv, rejected):
    csv = write_csv("events.csv", 'customer_id,ts,event_type\nA,2024-03-01,login\nA,2024-03-01,"login\n')
    rejected(load(seeded, "events", csv), "events.csv line 3: expected a well-formed CSV row", "Fix:")


def test_missing_file(seeded, tmp_path, rejected):
    path = tmp_path / "nowhere" / "customers.csv"
    rejected(
        load(seeded, "customers", path),
        f"{path}: expected an existing file, got no such file. Fix: check the path.",
    )


@pytest.mark.parametrize("name", ["customers.docx", "customers", "customers.csv.zip"])
def test_unsupported_extension(seeded, write_file, rejected, name):
    path = write_file(name, "customer_id,branch_id,signup_date\nD,C1,2024-03-01\n")
    rejected(
        load(seeded, "customers", path),
        f"{name}: expected a .csv, .tsv, .parquet, .jsonl or .xlsx file, got",
        "Fix: convert the file to CSV or Parquet, or rename it with the right extension.",
    )


def test_non_utf8_header(seeded, write_file, rejected):
    path = write_file(
        "customers.csv", "customer_id,branch_id,signup_date,r\xe9gion\nD,C1,2024-03-01,x\n".encode("latin-1")
    )
    rejected(
        load(seeded, "customers", path),
        "customers.csv line 1: expected UTF-8 text, got undecodable bytes",
        "Fix: save the file as UTF-8.",
    )


def test_non_utf8_byte_further_down_is_located(seeded, write_file, rejected):
    text = "customer_id,branch_id,signup_date,city\n" + "".join(f"N{i},C1,2024-03-01,Lyon\n" for i in range(50))
    text += "X,C1,2024-03-01,Orl\xe9ans\n"
    path = write_file("customers.csv", text.encode("latin-1"))
    rejected(
        load(seeded, "customers", path),
        "customers.csv line 52: expected UTF-8 text, got bytes that are not UTF-8",
        "Fix: save the file as UTF-8",
    )


def test_non_utf8_in_a_gzipped_file(seeded, write_file, rejected):
    body = "customer_id,ts,event_type\nA,2024-03-01,caf\xe9\n".encode("latin-1")
    path = write_file("events.csv.gz", gzip.compress(body))
    rejected(load(seeded, "events", path), "events.csv.gz line 2: expected UTF-8 text")


def test_gz_name_on_a_plain_file(seeded, write_file, rejected):
    path = write_file("events.csv.gz", "customer_id,ts,event_type\nA,2024-03-01,login\n")
    rejected(load(seeded, "events", path), "events.csv.gz: expected a gzip-compressed file")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("events.parquet", b"PAR1 this is not parquet", "events.parquet: expected a Parquet file, got"),
        ("events.jsonl", b'{"customer_id": "A", "ts": "2024-03-01"}\n{"customer_id": oops\n', "expected JSON lines"),
        ("events.xlsx", b"just text", "events.xlsx: expected an Excel workbook (.xlsx), got"),
    ],
)
def test_damaged_files_are_validation_errors(seeded, write_file, rejected, name, content, expected):
    rejected(load(seeded, "events", write_file(name, content)), expected, "Fix:")


def test_empty_file(seeded, write_file, rejected):
    rejected(
        load(seeded, "events", write_file("events.csv", "")),
        "events.csv line 1: expected a header line with column names, got an empty line.",
    )


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("customer_id,,event_type", "events.csv line 1: expected a name for every column in the header"),
        ("customer_id,ts,ts", 'events.csv line 1, column ts: expected each column name once in the header, got "ts"'),
        ("customer_id,ts,TS", 'got "ts" and "TS"'),
    ],
)
def test_bad_header(seeded, write_csv, rejected, header, message):
    rejected(load(seeded, "events", write_csv("events.csv", f"{header}\nA,2024-03-01,login\n")), message)


# -- the branch tree and orphans --------------------------------------------------------------


def test_branch_tree_with_two_roots(store, write_csv, rejected):
    csv = write_csv("branches.csv", "branch_id,name,parent_id\nHQ,Head office,\nHQ2,Second head office,\nP1,Prov,HQ\n")
    rejected(
        load(store, "branches", csv),
        "branches.csv, column parent_id: expected exactly one head office (one branch with an empty parent_id), "
        "got 2: HQ, HQ2. Fix: give every branch except the head office its parent_id.",
    )


def test_second_root_added_to_a_stored_tree(seeded, write_csv, rejected):
    csv = write_csv("branches.csv", "branch_id,name,parent_id\nHQ2,Second head office,\n")
    rejected(load(seeded, "branches", csv), "expected exactly one head office", "got 2: HQ, HQ2")


def test_branch_tree_with_a_cycle(seeded, write_csv, rejected):
    csv = write_csv("branches.csv", "branch_id,name,parent_id\nX,Ex,Y\nY,Why,X\n")
    rejected(
        load(seeded, "branches", csv),
        "branches.csv, column parent_id: expected a chain of parents from branch 'X' up to the head office, "
        "got a cycle. Fix: correct parent_id so that every branch leads up to the head office.",
        "from branch 'Y'",
    )


def test_branch_tree_that_is_only_a_cycle(store, write_csv, rejected):
    csv = write_csv("branches.csv", "branch_id,name,parent_id\nX,Ex,Y\nY,Why,X\n")
    rejected(load(store, "branches", csv), "expected exactly one head office", "got none")


def test_branch_with_an_unknown_parent(seeded, write_csv, rejected):
    csv = write_csv("branches.csv", "branch_id,name,parent_id\nC3,City Three,P9\n")
    rejected(
        load(seeded, "branches", csv),
        'branches.csv line 2, column parent_id: expected a parent_id that exists in branches, got unknown branch "P9". '
        "Fix: add the parent branch to the file, or leave parent_id empty for the head office.",
    )


def test_replacing_customers_may_not_orphan_events(seeded, write_csv, rejected):
    events = write_csv(
        "events.csv", "customer_id,ts,event_type\nB,2024-03-01,login\nC,2024-03-01,login\nC,2024-03-02,x\n"
    )
    churnguard.ingest_table(seeded, "events", events, as_of=AS_OF)
    customers = write_csv("customers.csv", "customer_id,branch_id,signup_date\nA,C1,2024-01-02\nB,C1,2024-01-03\n")
    rejected(
        load(seeded, "customers", customers, mode="replace"),
        'customers.csv, column customer_id: expected every customer_id that events refers to, including "C", '
        'got no row for "C" (2 events rows refer to it). Fix: keep C in the file, or remove its events rows first.',
    )


def test_replacing_branches_may_not_orphan_customers(seeded, write_csv, rejected):
    csv = write_csv("branches.csv", "branch_id,name,parent_id\nHQ,Head office,\nC1,City One,HQ\n")
    rejected(
        load(seeded, "branches", csv, mode="replace"),
        'branches.csv, column branch_id: expected every branch_id that customers refers to, including "C2", '
        'got no row for "C2" (1 customers row refers to it).',
    )


def test_upserting_customers_keeps_their_events(seeded, write_csv):
    events = write_csv("events.csv", "customer_id,ts,event_type\nA,2024-03-01,login\n")
    churnguard.ingest_table(seeded, "events", events, as_of=AS_OF)
    customers = write_csv("customers.csv", "customer_id,branch_id,signup_date,plan\nA,C2,2024-01-02,gold\n")
    result = churnguard.ingest_table(seeded, "customers", customers, as_of=AS_OF, mode="upsert")
    assert (result.rows_added, result.rows_replaced) == (1, 1)
    assert seeded.execute("SELECT branch_id, plan FROM customers WHERE customer_id = 'A'").fetchone() == ("C2", "gold")


# -- options ----------------------------------------------------------------------------------


def test_unknown_mode_and_table(seeded, write_csv):
    csv = write_csv("events.csv", "customer_id,ts,event_type\nA,2024-03-01,login\n")
    with pytest.raises(ValueError, match='load mode "merge": expected one of append, replace, upsert'):
        churnguard.ingest_table(seeded, "events", csv, mode="merge")
    with pytest.raises(LookupError, match='unknown table "event"'):
        churnguard.ingest_table(seeded, "event", csv)
    assert seeded.execute("SELECT count(*) FROM events").fetchone() == (0,)
