"""Load modes (append, upsert, replace), atomic multi-table loads and the ingest log."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import AS_OF, snapshot, table_rows

import churnguard
from churnguard import LoadSpec
from churnguard.errors import ValidationError

EVENTS = (
    "customer_id,ts,event_type,value\nA,2024-03-01 10:00,login,1\nA,2024-03-01 10:00,login,1\nB,2024-03-02,call,4\n"
)


def log_rows(store):
    return store.execute(
        "SELECT table_name, mode, rows_read, rows_added, rows_replaced, rows_skipped FROM ingest_log "
        "ORDER BY started_at, finished_at"
    ).fetchall()


# -- atomicity ----------------------------------------------------------------------------------


def test_multi_table_load_where_the_last_table_fails_writes_nothing(store, write_csv, rejected):
    branches = write_csv("branches.csv", "branch_id,name,parent_id\nHQ,Head office,\nC1,City,HQ\n")
    customers = write_csv("customers.csv", "customer_id,branch_id,signup_date,Colour\nA,C1,2024-01-02,red\n")
    events = write_csv("events.csv", "customer_id,ts,event_type\nA,2024-03-01,login\nA,2024-03-02,login\nA,soon,x\n")
    loads = [LoadSpec("branches", branches), LoadSpec("customers", customers), LoadSpec("events", events)]
    rejected(
        lambda: churnguard.ingest_tables(store, loads, as_of=AS_OF),
        "events.csv line 4, column ts: expected a timestamp",
    )
    # Nothing from the earlier tables either, not even the extra column the customers file would have added.
    assert "colour" not in dict(store.columns("customers"))
    assert all(rows == [] for _, rows in snapshot(store).values())

    results = churnguard.ingest_tables(store, loads[:2], as_of=AS_OF)
    assert [(r.table, r.rows_added) for r in results] == [("branches", 2), ("customers", 1)]
    assert [r[:4] for r in log_rows(store)] == [("branches", "append", 2, 2), ("customers", "append", 1, 1)]


def test_multi_table_load_into_a_seeded_store_fails_cleanly_in_any_position(seeded, write_csv, rejected):
    good_customers = write_csv("customers.csv", "customer_id,branch_id,signup_date\nD,C1,2024-03-01\n")
    good_events = write_csv("events.csv", "customer_id,ts,event_type\nD,2024-03-01,login\n")
    bad_events = write_csv("bad_events.csv", "customer_id,ts,event_type\nD,2024-03-01,login\nQ,2024-03-01,login\n")
    for loads in (
        [LoadSpec("customers", good_customers), LoadSpec("events", bad_events)],
        [LoadSpec("events", bad_events), LoadSpec("customers", good_customers)],
        [LoadSpec("customers", good_customers), LoadSpec("events", good_events), LoadSpec("events", bad_events)],
    ):
        rejected(lambda loads=loads: churnguard.ingest_tables(seeded, loads, as_of=AS_OF), "unknown customer")
    # Children may come after their parents in one call.
    results = churnguard.ingest_tables(
        seeded, [LoadSpec("customers", good_customers), LoadSpec("events", good_events)], as_of=AS_OF
    )
    assert [r.rows_added for r in results] == [1, 1]


def test_a_failed_load_does_not_poison_the_connection(seeded, write_csv):
    bad = write_csv("bad.csv", "customer_id,ts,event_type\nA,never,login\n")
    with pytest.raises(ValidationError):
        churnguard.ingest_table(seeded, "events", bad, as_of=AS_OF)
    good = write_csv("good.csv", "customer_id,ts,event_type\nA,2024-03-01,login\n")
    assert churnguard.ingest_table(seeded, "events", good, as_of=AS_OF).rows_added == 1
    assert len(table_rows(seeded, "events")) == 1


def test_data_survives_reopening(tmp_path, write_csv):
    path = tmp_path / "reopen.duckdb"
    with churnguard.connect(path) as store:
        churnguard.ingest_table(store, "branches", write_csv("b.csv", "branch_id,name,parent_id\nHQ,Head,\n"))
    with churnguard.connect(path) as store:
        assert table_rows(store, "branches") == [("HQ", "Head", None, 0)]
        assert [r[:4] for r in log_rows(store)] == [("branches", "append", 1, 1)]


# -- append -------------------------------------------------------------------------------------


def test_event_append_rerun_adds_nothing_and_keeps_genuine_repeats(seeded, write_csv):
    csv = write_csv("events.csv", EVENTS)
    first = churnguard.ingest_table(seeded, "events", csv, as_of=AS_OF)
    # Two identical logins in one file are two events: both are kept.
    assert (first.rows_read, first.rows_added, first.rows_skipped) == (3, 3, 0)
    again = churnguard.ingest_table(seeded, "events", csv, as_of=AS_OF)
    assert (again.rows_read, again.rows_added, again.rows_skipped) == (3, 0, 3)
    assert len(table_rows(seeded, "events")) == 3


def test_event_append_adds_only_the_new_rows(seeded, write_csv):
    churnguard.ingest_table(seeded, "events", write_csv("e1.csv", EVENTS), as_of=AS_OF)
    grown = EVENTS + "A,2024-03-01 10:00,login,1\nC,2024-03-05,login,\n"
    result = churnguard.ingest_table(seeded, "events", write_csv("e2.csv", grown), as_of=AS_OF)
    # A third identical login and one new event: exact-row (multiset) semantics.
    assert (result.rows_added, result.rows_skipped) == (2, 3)
    rows = table_rows(seeded, "events")
    assert rows.count(("A", dt.datetime(2024, 3, 1, 10, 0), "login", 1.0)) == 3
    assert ("C", dt.datetime(2024, 3, 5), "login", None) in rows  # an empty value matches an empty value


def test_transactions_append_rerun_adds_nothing(seeded, write_csv):
    csv = write_csv(
        "tx.csv", "customer_id,ts,amount,product\nA,2024-03-01,9.99,\nA,2024-03-01,9.99,\nB,2024-03-02,,visit\n"
    )
    assert churnguard.ingest_table(seeded, "transactions", csv, as_of=AS_OF).rows_added == 3
    assert churnguard.ingest_table(seeded, "transactions", csv, as_of=AS_OF).rows_added == 0
    assert len(table_rows(seeded, "transactions")) == 3


def test_customer_append_skips_identical_rows_and_adds_new_ones(seeded, write_csv):
    before = table_rows(seeded, "customers")
    csv = write_csv(
        "customers.csv",
        "customer_id,branch_id,signup_date,plan\nA,C1,2024-01-02,basic\nD,C2,2024-03-01,pro\n",
    )
    result = churnguard.ingest_table(seeded, "customers", csv, as_of=AS_OF)
    assert (result.rows_added, result.rows_skipped, result.rows_replaced) == (1, 1, 0)
    after = table_rows(seeded, "customers")
    assert len(after) == len(before) + 1
    assert ("D", "C2", dt.date(2024, 3, 1), "pro", None, None, None) in after
    again = churnguard.ingest_table(seeded, "customers", csv, as_of=AS_OF)
    assert (again.rows_added, again.rows_skipped) == (0, 2)
    assert table_rows(seeded, "customers") == after


def test_append_of_a_file_without_an_optional_column_is_not_a_conflict(seeded, write_csv):
    # The stored A has plan "basic"; a file without a plan column says nothing about it.
    csv = write_csv("customers.csv", "customer_id,branch_id,signup_date\nA,C1,2024-01-02\n")
    result = churnguard.ingest_table(seeded, "customers", csv, as_of=AS_OF)
    assert (result.rows_added, result.rows_skipped) == (0, 1)
    assert seeded.execute("SELECT plan FROM customers WHERE customer_id = 'A'").fetchone() == ("basic",)


# -- upsert and replace -------------------------------------------------------------------------


def test_upsert_replaces_keyed_rows_and_adds_new_ones(seeded, write_csv):
    csv = write_csv(
        "customers.csv",
        "customer_id,branch_id,signup_date,plan\nB,C2,2024-01-03,gold\nD,C1,2024-03-01,basic\n",
    )
    result = churnguard.ingest_table(seeded, "customers", csv, as_of=AS_OF, mode="upsert")
    assert (result.rows_read, result.rows_added, result.rows_replaced) == (2, 2, 1)
    rows = {r[0]: r for r in table_rows(seeded, "customers")}
    assert sorted(rows) == ["A", "B", "C", "D"]
    assert rows["B"][:4] == ("B", "C2", dt.date(2024, 1, 3), "gold")
    assert rows["A"][:4] == ("A", "C1", dt.date(2024, 1, 2), "basic")  # untouched


def test_upsert_with_a_composite_key(seeded, write_csv):
    first = "customer_id,plan,start_date,recurring_revenue\nA,basic,2024-01-02,10\nA,pro,2024-02-01,30\n"
    churnguard.ingest_table(seeded, "subscriptions", write_csv("s1.csv", first), as_of=AS_OF)
    second = "customer_id,plan,start_date,end_date,recurring_revenue\nA,basic,2024-01-02,2024-01-31,10\n"
    result = churnguard.ingest_table(seeded, "subscriptions", write_csv("s2.csv", second), as_of=AS_OF, mode="upsert")
    assert (result.rows_added, result.rows_replaced) == (1, 1)
    assert seeded.execute("SELECT plan, end_date FROM subscriptions ORDER BY plan").fetchall() == [
        ("basic", dt.date(2024, 1, 31)),
        ("pro", None),
    ]


def test_replace_replaces_the_table(seeded, write_csv):
    churnguard.ingest_table(seeded, "events", write_csv("e1.csv", EVENTS), as_of=AS_OF)
    customers_before = table_rows(seeded, "customers")
    csv = write_csv("e2.csv", "customer_id,ts,event_type\nC,2024-04-01,login\n")
    result = churnguard.ingest_table(seeded, "events", csv, as_of=AS_OF, mode="replace")
    assert (result.rows_added, result.rows_replaced, result.rows_skipped) == (1, 3, 0)
    assert table_rows(seeded, "events") == [("C", dt.datetime(2024, 4, 1), "login", None)]
    assert table_rows(seeded, "customers") == customers_before


def test_replace_of_the_branch_tree(seeded, write_csv):
    csv = write_csv(
        "branches.csv",
        "branch_id,name,parent_id\nHQ,Head office,\nP1,Province One,HQ\nC1,City One,P1\nC2,City Two,HQ\n",
    )
    result = churnguard.ingest_table(seeded, "branches", csv, as_of=AS_OF, mode="replace")
    assert (result.rows_added, result.rows_replaced) == (4, 4)
    # Levels are computed from the tree: C2 now hangs directly under the head office.
    assert seeded.execute("SELECT branch_id, level FROM branches ORDER BY branch_id").fetchall() == [
        ("C1", 2),
        ("C2", 1),
        ("HQ", 0),
        ("P1", 1),
    ]


def test_branch_levels_are_filled_from_the_tree(seeded):
    assert seeded.execute("SELECT branch_id, parent_id, level FROM branches ORDER BY level, branch_id").fetchall() == [
        ("HQ", None, 0),
        ("P1", "HQ", 1),
        ("C1", "P1", 2),
        ("C2", "P1", 2),
    ]


# -- the ingest log -----------------------------------------------------------------------------


def test_ingest_log_has_one_row_per_successful_load_and_none_for_a_failure(seeded, write_csv):
    base = log_rows(seeded)
    assert [r[0] for r in base] == ["branches", "customers"]
    csv = write_csv("events.csv", EVENTS)
    result = churnguard.ingest_table(seeded, "events", csv, as_of=AS_OF)
    with pytest.raises(ValidationError):
        churnguard.ingest_table(seeded, "events", write_csv("bad.csv", "customer_id,ts,event_type\nZ,2024-03-01,x\n"))
    churnguard.ingest_table(seeded, "events", csv, as_of=AS_OF)
    churnguard.ingest_table(seeded, "events", csv, as_of=AS_OF, mode="replace")
    assert log_rows(seeded)[2:] == [
        ("events", "append", 3, 3, 0, 0),
        ("events", "append", 3, 0, 0, 3),
        ("events", "replace", 3, 3, 3, 0),
    ]
    row = seeded.execute(
        "SELECT load_id, source, started_at <= finished_at FROM ingest_log WHERE load_id = ?", [result.load_id]
    ).fetchone()
    assert row == (result.load_id, str(csv), True)


def test_ingest_log_names_an_in_memory_source(seeded):
    import pandas as pd

    frame = pd.DataFrame({"customer_id": ["A"], "ts": ["2024-03-01"], "event_type": ["login"]})
    result = churnguard.ingest_table(seeded, "events", frame, as_of=AS_OF)
    assert result.source == "input"
    assert seeded.execute("SELECT source FROM ingest_log WHERE table_name = 'events'").fetchall() == [("input",)]


def test_ingest_result_as_dict(seeded, write_csv):
    result = churnguard.ingest_table(seeded, "events", write_csv("events.csv", EVENTS), as_of=AS_OF)
    d = result.to_dict()
    assert {k: d[k] for k in ("table", "source", "mode", "rows_read", "rows_added")} == {
        "table": "events",
        "source": "events.csv",
        "mode": "append",
        "rows_read": 3,
        "rows_added": 3,
    }
    assert len(d["load_id"]) == 12
