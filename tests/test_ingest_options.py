"""Load options: recoding to empty, replace and clear_all with extra columns, named sources, metadata,
dry runs, replacing parents with their children, drop typos, digit separators, per-kind survey ranges
and the rows_replaced count."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest
from conftest import AS_OF, snapshot, table_rows

import churnguard
from churnguard import LoadSpec
from churnguard.errors import ValidationError
from churnguard.ingest.load import validate_tables
from churnguard.store import TABLES, table_schema


def state(store) -> dict[str, Any]:
    """Every canonical table (columns and rows), ingest_log and the metadata table."""
    out = snapshot(store)
    out["churnguard_meta"] = table_rows(store, "churnguard_meta")
    return out


def staging_tables(store) -> list[tuple[str]]:
    return store.execute("SELECT table_name FROM information_schema.tables WHERE table_name LIKE '_cg%'").fetchall()


def extra_columns(store, table: str) -> list[str]:
    canonical = set(table_schema(table).column_names)
    return [c for c, _ in store.columns(table) if c not in canonical]


def log_rows(store) -> list[tuple[Any, ...]]:
    return store.execute(
        "SELECT table_name, source, mode, rows_read, rows_added, rows_replaced, rows_skipped FROM ingest_log "
        "ORDER BY started_at, finished_at"
    ).fetchall()


def comparable(results) -> list[dict[str, Any]]:
    """Results without what differs between two runs of the same load (timing, load id)."""
    return [{k: v for k, v in r.to_dict().items() if k not in ("seconds", "load_id")} for r in results]


def load_events(store, write_csv, text: str = "customer_id,ts,event_type\nA,2024-03-01,login\nA,2024-03-02,call\n"):
    return churnguard.ingest_table(store, "events", write_csv("events0.csv", text), as_of=AS_OF)


# -- 1. values: recode to null or "" ------------------------------------------------------------

CHURN_CSV = """\
customer_id,churn_date,why
A,2024-05-01,Don't know
B,2024-05-02,n/a
C,2024-05-03,price
A,2024-05-04,Too expensive
"""


def test_values_recoded_to_null_or_empty_are_stored_as_null(seeded, write_csv):
    mapping = {
        "columns": {"reason_code": {"from": "why", "values": {"Don't know": None, "n/a": "", "Too expensive": "price"}}}
    }
    result = churnguard.ingest_table(
        seeded, "churn_events", write_csv("churn.csv", CHURN_CSV), mapping=mapping, as_of=AS_OF
    )
    assert result.rows_added == 4
    got = seeded.execute("SELECT customer_id, churn_date, reason_code FROM churn_events ORDER BY churn_date").fetchall()
    assert got == [
        ("A", dt.date(2024, 5, 1), None),
        ("B", dt.date(2024, 5, 2), None),
        ("C", dt.date(2024, 5, 3), "price"),  # not in values: passes through
        ("A", dt.date(2024, 5, 4), "price"),
    ]
    # NULL, not the text "" or "None".
    assert seeded.execute("SELECT count(*) FROM churn_events WHERE reason_code IS NULL").fetchone()[0] == 2


def test_values_recoded_to_null_from_a_yaml_mapping_file(seeded, write_csv, write_file):
    mapping = write_file(
        "churn.yaml",
        """\
        table: churn_events
        columns:
          reason_code: {from: why, values: {"Don't know": null, "n/a": "", "Too expensive": price}}
        """,
    )
    churnguard.ingest_table(seeded, "churn_events", write_csv("churn.csv", CHURN_CSV), mapping=mapping, as_of=AS_OF)
    got = seeded.execute("SELECT reason_code FROM churn_events ORDER BY churn_date").fetchall()
    assert got == [(None,), (None,), ("price",), ("price",)]


def test_an_unmatched_text_that_is_not_a_reason_code_is_still_rejected(seeded, write_csv, rejected):
    csv = write_csv("churn.csv", CHURN_CSV + "B,2024-05-05,Moved away\n")
    mapping = {"columns": {"reason_code": {"from": "why", "values": {"Don't know": None, "n/a": None}}}}
    err = rejected(
        lambda: churnguard.ingest_table(seeded, "churn_events", csv, mapping=mapping, as_of=AS_OF),
        "churn.csv line 5, column reason_code: expected one of benefit, competitor",
        "churn.csv line 6, column reason_code",
        'got "Too expensive"',
        'got "Moved away"',
    )
    assert err.total == 2  # the recoded rows are not problems


def test_a_number_recoded_to_null_is_empty_not_a_bad_number(seeded, write_csv):
    csv = write_csv("tx.csv", "customer_id,ts,amt\nA,2024-03-01,n/a\nB,2024-03-02,12.5\n")
    mapping = {"columns": {"amount": {"from": "amt", "values": {"n/a": None}}}}
    churnguard.ingest_table(seeded, "transactions", csv, mapping=mapping, as_of=AS_OF)
    assert seeded.execute("SELECT customer_id, amount FROM transactions ORDER BY 1").fetchall() == [
        ("A", None),
        ("B", 12.5),
    ]


def test_a_required_value_recoded_to_empty_is_an_empty_cell(seeded, write_csv, rejected):
    csv = write_csv("events.csv", "customer_id,ts,what\nA,2024-03-01,login\nB,2024-03-02,-\n")
    mapping = {"columns": {"event_type": {"from": "what", "values": {"-": ""}}}}
    rejected(
        lambda: churnguard.ingest_table(seeded, "events", csv, mapping=mapping, as_of=AS_OF),
        "events.csv line 3, column event_type: expected a value",
        "got an empty cell",
    )


# -- 2. replace and clear_all drop stale extra columns --------------------------------------------


def test_replace_drops_extra_columns_the_file_lacks_and_keeps_those_it_has(seeded, write_csv):
    first = write_csv("c1.csv", "customer_id,branch_id,signup_date,Colour,Size\nA,C1,2024-01-02,red,1\n")
    churnguard.ingest_table(seeded, "customers", first, as_of=AS_OF, mode="upsert")
    assert extra_columns(seeded, "customers") == ["colour", "size"]

    second = write_csv("c2.csv", "customer_id,branch_id,signup_date,Colour,Tier\nX,C1,2024-01-05,blue,gold\n")
    result = churnguard.ingest_table(seeded, "customers", second, as_of=AS_OF, mode="replace")
    assert result.extra_columns == ["colour", "tier"]
    assert extra_columns(seeded, "customers") == ["colour", "tier"]  # size is gone, tier is new
    assert seeded.execute("SELECT customer_id, colour, tier FROM customers").fetchall() == [("X", "blue", "gold")]


def test_replace_without_extra_columns_leaves_only_the_canonical_ones(seeded, write_csv):
    first = write_csv("c1.csv", "customer_id,branch_id,signup_date,Colour\nA,C1,2024-01-02,red\n")
    churnguard.ingest_table(seeded, "customers", first, as_of=AS_OF, mode="upsert")
    plain = write_csv(
        "c2.csv", "customer_id,branch_id,signup_date\nA,C1,2024-01-02\nB,C1,2024-01-03\nC,C2,2024-02-10\n"
    )
    churnguard.ingest_table(seeded, "customers", plain, as_of=AS_OF, mode="replace")
    assert [c for c, _ in seeded.columns("customers")] == list(table_schema("customers").column_names)


def _seed_extras(store, write_csv):
    """Extra columns in customers and events, rows in events, tickets and surveys."""
    csv = write_csv("cx.csv", "customer_id,branch_id,signup_date,Colour\nA,C1,2024-01-02,red\n")
    churnguard.ingest_table(store, "customers", csv, as_of=AS_OF, mode="upsert")
    load_events(store, write_csv, "customer_id,ts,event_type,Channel\nA,2024-03-01,login,app\nB,2024-03-02,call,web\n")
    churnguard.ingest_table(
        store, "tickets", write_csv("t.csv", "customer_id,opened_at,Team\nC,2024-03-01,north\n"), as_of=AS_OF
    )
    assert extra_columns(store, "customers") == ["colour"]
    assert extra_columns(store, "events") == ["channel"]
    assert extra_columns(store, "tickets") == ["team"]


NEW_BRANCHES = "branch_id,name,parent_id\nROOT,Root,\nN1,North,ROOT\n"


def test_clear_all_empties_every_table_and_drops_every_extra_column(seeded, write_csv):
    _seed_extras(seeded, write_csv)
    branches = write_csv("branches.csv", NEW_BRANCHES)
    results = churnguard.ingest_tables(seeded, [LoadSpec("branches", branches)], clear_all=True, as_of=AS_OF)
    assert results[0].rows_added == 2
    assert table_rows(seeded, "branches") == [("N1", "North", "ROOT", 1), ("ROOT", "Root", None, 0)]
    for schema in TABLES:
        assert [c for c, _ in seeded.columns(schema.name)] == list(schema.column_names), schema.name
        if schema.name != "branches":
            assert table_rows(seeded, schema.name) == [], schema.name


def test_clear_all_keeps_the_extra_columns_of_the_new_files(seeded, write_csv):
    _seed_extras(seeded, write_csv)
    loads = [
        LoadSpec("branches", write_csv("branches.csv", NEW_BRANCHES)),
        LoadSpec("customers", write_csv("c.csv", "customer_id,branch_id,signup_date,Region\nZ,N1,2024-01-02,n\n")),
    ]
    churnguard.ingest_tables(seeded, loads, clear_all=True, as_of=AS_OF)
    assert extra_columns(seeded, "customers") == ["region"]
    assert extra_columns(seeded, "events") == []


def test_a_failed_clear_all_changes_nothing_not_even_extra_columns(seeded, write_csv, rejected):
    _seed_extras(seeded, write_csv)
    loads = [
        LoadSpec("branches", write_csv("branches.csv", NEW_BRANCHES)),
        LoadSpec("customers", write_csv("c.csv", "customer_id,branch_id,signup_date\nZ,N1,2024-01-02\n")),
        LoadSpec(
            "events", write_csv("e.csv", "customer_id,ts,event_type,Device\nZ,2024-03-01,login,ios\nZ,later,x,y\n")
        ),
    ]
    before = state(seeded)
    rejected(
        lambda: churnguard.ingest_tables(seeded, loads, clear_all=True, mode="replace", as_of=AS_OF),
        "e.csv line 3, column ts: expected a timestamp",
    )
    assert state(seeded) == before
    assert extra_columns(seeded, "customers") == ["colour"]
    assert extra_columns(seeded, "events") == ["channel"]
    assert extra_columns(seeded, "tickets") == ["team"]


# -- 3. LoadSpec(name=...) ---------------------------------------------------------------------


def test_a_named_in_memory_source_is_named_in_the_result_and_the_log(seeded):
    table = pa.table({"customer_id": ["A", "B"], "ts": ["2024-03-01", "2024-03-02"], "event_type": ["x", "y"]})
    [result] = churnguard.ingest_tables(seeded, [LoadSpec("events", table, None, name="x (derived)")], as_of=AS_OF)
    assert result.source == "x (derived)"
    assert log_rows(seeded)[-1][:2] == ("events", "x (derived)")


def test_a_named_in_memory_source_is_named_in_problems(seeded, rejected):
    table = pa.table({"customer_id": ["A", "B"], "ts": ["2024-03-01", "soon"], "event_type": ["x", "y"]})
    err = rejected(
        lambda: churnguard.ingest_tables(seeded, [LoadSpec("events", table, name="x (derived)")], as_of=AS_OF),
        "x (derived) row 2, column ts: expected a timestamp",
    )
    assert [p.source for p in err.problems] == ["x (derived)"]
    assert "input" not in str(err)


def test_an_unnamed_in_memory_source_is_called_input(seeded):
    table = pa.table({"customer_id": ["A"], "ts": ["2024-03-01"], "event_type": ["x"]})
    [result] = churnguard.ingest_tables(seeded, [LoadSpec("events", table)], as_of=AS_OF)
    assert result.source == "input"


def test_a_name_given_for_a_file_replaces_its_path(seeded, write_csv, rejected):
    csv = write_csv("events.csv", "customer_id,ts,event_type\nA,2024-03-01,login\n")
    [result] = churnguard.ingest_tables(seeded, [LoadSpec("events", csv, name="events (cleaned)")], as_of=AS_OF)
    assert result.source == "events (cleaned)"
    assert log_rows(seeded)[-1][1] == "events (cleaned)"
    bad = write_csv("bad.csv", "customer_id,ts,event_type\nQ,2024-03-01,login\n")
    rejected(
        lambda: churnguard.ingest_tables(seeded, [LoadSpec("events", bad, name="events (cleaned)")], as_of=AS_OF),
        "events (cleaned) line 2, column customer_id: expected a customer_id that exists in customers, got unknown "
        'customer "Q"',
    )


# -- 4. meta in the load's transaction --------------------------------------------------------------


def test_meta_is_written_with_a_successful_load(seeded, write_csv):
    csv = write_csv("events.csv", "customer_id,ts,event_type\nA,2024-03-01,login\n")
    churnguard.ingest_tables(seeded, [LoadSpec("events", csv)], as_of=AS_OF, meta={"k": "v", "dataset": "demo"})
    assert (seeded.get_meta("k"), seeded.get_meta("dataset")) == ("v", "demo")


def test_meta_is_not_written_when_a_check_fails(seeded, write_csv, rejected):
    seeded.set_meta("dataset", "old")
    bad = write_csv("events.csv", "customer_id,ts,event_type\nA,2024-03-01,login\nA,never,login\n")
    rejected(
        lambda: churnguard.ingest_tables(
            seeded, [LoadSpec("events", bad)], as_of=AS_OF, meta={"k": "v", "dataset": "new"}
        ),
        "column ts",
    )
    assert seeded.get_meta("k") is None
    assert seeded.get_meta("dataset") == "old"


def test_meta_is_not_written_when_the_final_orphan_check_fails(seeded, write_csv, rejected):
    load_events(seeded, write_csv)
    customers = write_csv("c.csv", "customer_id,branch_id,signup_date\nB,C1,2024-01-03\n")
    rejected(
        lambda: churnguard.ingest_tables(
            seeded, [LoadSpec("customers", customers)], mode="replace", as_of=AS_OF, meta={"k": "v"}
        ),
        'including "A"',
    )
    assert seeded.get_meta("k") is None


# -- 5. validate_tables: a dry run --------------------------------------------------------------------


def test_a_dry_run_reports_what_the_load_would_do_and_changes_nothing(seeded, write_csv):
    _seed_extras(seeded, write_csv)
    seeded.set_meta("dataset", "old")
    loads = [
        LoadSpec("customers", write_csv("c.csv", "customer_id,branch_id,signup_date,Tier\nA,C1,2024-01-02,x\n")),
        LoadSpec("events", write_csv("e.csv", "customer_id,ts,event_type\nA,2024-03-01,login\nA,2024-04-01,x\n")),
    ]
    options: dict[str, Any] = {"mode": "upsert", "as_of": AS_OF, "meta": {"dataset": "new", "k": "v"}}
    before = state(seeded)
    dry = validate_tables(seeded, loads, **options)
    assert state(seeded) == before
    assert staging_tables(seeded) == []
    assert (seeded.get_meta("dataset"), seeded.get_meta("k")) == ("old", None)
    assert [(r.table, r.rows_read, r.rows_added, r.rows_replaced, r.rows_skipped) for r in dry] == [
        ("customers", 1, 1, 1, 0),
        ("events", 2, 1, 0, 1),
    ]
    assert dry[0].extra_columns == ["tier"]
    assert "tier" not in dict(seeded.columns("customers"))

    real = churnguard.ingest_tables(seeded, loads, **options)
    assert comparable(real) == comparable(dry)
    assert seeded.get_meta("dataset") == "new"
    assert "tier" in dict(seeded.columns("customers"))


def test_a_dry_run_of_replace_with_clear_all_changes_nothing(seeded, write_csv):
    _seed_extras(seeded, write_csv)
    loads = [
        LoadSpec("branches", write_csv("b.csv", NEW_BRANCHES)),
        LoadSpec("customers", write_csv("c.csv", "customer_id,branch_id,signup_date,Region\nZ,N1,2024-01-02,n\n")),
    ]
    before = state(seeded)
    dry = validate_tables(seeded, loads, mode="replace", clear_all=True, as_of=AS_OF)
    assert state(seeded) == before  # rows, extra columns (colour, channel, team) and the log
    assert [(r.table, r.rows_added, r.rows_replaced) for r in dry] == [("branches", 2, 4), ("customers", 1, 3)]
    real = churnguard.ingest_tables(seeded, loads, mode="replace", clear_all=True, as_of=AS_OF)
    assert comparable(real) == comparable(dry)


def test_a_dry_run_raises_the_same_error_as_the_load(seeded, write_csv, rejected):
    bad = write_csv("e.csv", "customer_id,ts,event_type\nA,2024-03-01,login\nQ,2024-03-01,login\n")
    loads = [LoadSpec("events", bad)]
    dry = rejected(lambda: validate_tables(seeded, loads, as_of=AS_OF, meta={"k": "v"}), 'unknown customer "Q"')
    real = rejected(lambda: churnguard.ingest_tables(seeded, loads, as_of=AS_OF, meta={"k": "v"}), "unknown customer")
    assert type(dry) is type(real) is ValidationError
    assert str(dry) == str(real)
    assert dry.problems == real.problems
    assert seeded.get_meta("k") is None


def test_a_dry_run_refuses_orphans_like_the_load(seeded, write_csv, rejected):
    load_events(seeded, write_csv)
    customers = write_csv("c.csv", "customer_id,branch_id,signup_date\nB,C1,2024-01-03\n")
    loads = [LoadSpec("customers", customers)]
    dry = rejected(lambda: validate_tables(seeded, loads, mode="replace", as_of=AS_OF), 'including "A"')
    real = rejected(lambda: churnguard.ingest_tables(seeded, loads, mode="replace", as_of=AS_OF), 'including "A"')
    assert str(dry) == str(real)


# -- 6. replacing a parent with its children ---------------------------------------------------------

NEW_CUSTOMERS = "customer_id,branch_id,signup_date\nX,C1,2024-01-02\nY,C2,2024-01-03\n"
NEW_EVENTS = "customer_id,ts,event_type\nX,2024-03-01,login\nY,2024-03-02,call\nY,2024-03-03,call\n"


def test_a_parent_and_its_children_are_replaced_together(seeded, write_csv):
    load_events(seeded, write_csv)
    loads = [
        LoadSpec("customers", write_csv("c.csv", NEW_CUSTOMERS)),
        LoadSpec("events", write_csv("e.csv", NEW_EVENTS)),
    ]
    results = churnguard.ingest_tables(seeded, loads, mode="replace", as_of=AS_OF)
    assert [(r.table, r.rows_added, r.rows_replaced) for r in results] == [("customers", 2, 3), ("events", 3, 2)]
    assert [r[0] for r in table_rows(seeded, "customers")] == ["X", "Y"]
    assert [r[0] for r in table_rows(seeded, "events")] == ["X", "Y", "Y"]


def test_a_parent_and_its_children_are_replaced_together_in_any_order(seeded, write_csv):
    load_events(seeded, write_csv)
    loads = [
        LoadSpec("events", write_csv("e.csv", NEW_EVENTS)),
        LoadSpec("customers", write_csv("c.csv", NEW_CUSTOMERS)),
    ]
    results = churnguard.ingest_tables(seeded, loads, mode="replace", as_of=AS_OF)
    assert [(r.table, r.rows_added, r.rows_replaced) for r in results] == [("events", 3, 2), ("customers", 2, 3)]
    assert [r[0] for r in table_rows(seeded, "customers")] == ["X", "Y"]
    assert [r[0] for r in table_rows(seeded, "events")] == ["X", "Y", "Y"]


def test_replacing_a_parent_alone_that_would_orphan_children_is_refused(seeded, write_csv, rejected):
    load_events(seeded, write_csv)
    customers = write_csv("c.csv", NEW_CUSTOMERS)
    rejected(
        lambda: churnguard.ingest_table(seeded, "customers", customers, mode="replace", as_of=AS_OF),
        'c.csv, column customer_id: expected every customer_id that events refers to, including "A"',
        'got no row for "A" (2 events rows refer to it)',
        "Fix: keep A in the file, or remove its events rows first.",
    )


def test_children_left_out_of_a_joint_replace_still_block_it(seeded, write_csv, rejected):
    load_events(seeded, write_csv)
    churnguard.ingest_table(seeded, "tickets", write_csv("t.csv", "customer_id,opened_at\nC,2024-03-01\n"), as_of=AS_OF)
    loads = [
        LoadSpec("customers", write_csv("c.csv", NEW_CUSTOMERS)),
        LoadSpec("events", write_csv("e.csv", NEW_EVENTS)),
    ]
    rejected(
        lambda: churnguard.ingest_tables(seeded, loads, mode="replace", as_of=AS_OF),
        'every customer_id that tickets refers to, including "C"',
        'no row for "C" (1 tickets row refers to it)',
    )


# -- 7. drop: entries that name no column ----------------------------------------------------------


def test_a_drop_entry_naming_a_missing_column_is_refused(seeded, write_csv, rejected):
    csv = write_csv("c.csv", "customer_id,branch_id,signup_date,Colour,Size\nD,C1,2024-01-02,red,1\n")
    mapping = {"drop": ["Colour", "Sise"]}
    rejected(
        lambda: churnguard.ingest_table(seeded, "customers", csv, mapping=mapping, as_of=AS_OF),
        'c.csv, column Sise: expected a column named "Sise" (the inline mapping drops it)',
        "got columns customer_id, branch_id, signup_date, Colour, Size",
        "correct the name under drop: in the mapping file",
    )


def test_a_drop_entry_in_a_mapping_file_names_the_file(seeded, write_csv, write_file, rejected):
    csv = write_csv("c.csv", "customer_id,branch_id,signup_date,Colour\nD,C1,2024-01-02,red\n")
    mapping = write_file("c.yaml", "drop: [Color]\n")
    rejected(
        lambda: churnguard.ingest_table(seeded, "customers", csv, mapping=mapping, as_of=AS_OF),
        f'expected a column named "Color" ({mapping} drops it)',
        "correct the name under drop:",
    )


def test_a_correct_drop_entry_drops_the_column(seeded, write_csv):
    csv = write_csv("c.csv", "customer_id,branch_id,signup_date,Colour,Size\nD,C1,2024-01-02,red,1\n")
    result = churnguard.ingest_table(seeded, "customers", csv, mapping={"drop": ["Colour"]}, as_of=AS_OF)
    assert result.extra_columns == ["size"]
    assert extra_columns(seeded, "customers") == ["size"]


# -- 8. digit separators --------------------------------------------------------------------------


def test_a_digit_separator_in_a_number_is_not_a_number(seeded, write_csv, rejected):
    csv = write_csv("tx.csv", "customer_id,ts,amount\nA,2024-03-01,1000\nA,2024-03-02,1_000\n")
    rejected(
        lambda: churnguard.ingest_table(seeded, "transactions", csv, as_of=AS_OF),
        'tx.csv line 3, column amount: expected a number like 12.5, got "1_000"',
    )


def test_a_digit_separator_in_a_whole_number_is_not_a_number(store, write_csv, rejected):
    csv = write_csv("b.csv", "branch_id,name,parent_id,level\nHQ,Head,,0\nC1,City,HQ,1_0\n")
    rejected(
        lambda: churnguard.ingest_table(store, "branches", csv, as_of=AS_OF),
        'b.csv line 3, column level: expected a whole number like 3, got "1_0"',
    )


def test_a_digit_separator_in_a_typed_extra_column_is_not_a_number(seeded, write_csv, rejected):
    csv = write_csv("tx.csv", "customer_id,ts,qty\nA,2024-03-01,2_000\n")
    mapping = {"columns": {"qty": {"from": "qty", "type": "number"}}}
    rejected(
        lambda: churnguard.ingest_table(seeded, "transactions", csv, mapping=mapping, as_of=AS_OF),
        'column qty: expected a number like 12.5, got "2_000"',
    )


def test_a_digit_separator_in_an_in_memory_text_column_is_not_a_number(seeded, rejected):
    table = pa.table({"customer_id": ["A"], "ts": ["2024-03-01"], "amount": ["1_000"]})
    rejected(
        lambda: churnguard.ingest_tables(seeded, [LoadSpec("transactions", table)], as_of=AS_OF),
        'row 1, column amount: expected a number like 12.5, got "1_000"',
    )


def test_digit_separators_in_an_untyped_extra_column_are_not_lost(seeded, write_csv):
    csv = write_csv("tx.csv", "customer_id,ts,amount,qty\nA,2024-03-01,5,1_000\nA,2024-03-02,6,2_000\n")
    churnguard.ingest_table(seeded, "transactions", csv, as_of=AS_OF)
    # Not a number column whose every value became NULL: the text is kept.
    assert dict(seeded.columns("transactions"))["qty"] == "VARCHAR"
    assert seeded.execute("SELECT qty FROM transactions ORDER BY ts").fetchall() == [("1_000",), ("2_000",)]


# -- 9. survey score ranges per kind ----------------------------------------------------------------


def test_survey_scores_out_of_range_for_their_kind_are_rejected(seeded, write_csv, rejected):
    csv = write_csv(
        "surveys.csv",
        """\
        customer_id,ts,kind,score
        A,2024-03-01,NPS,11
        A,2024-03-02,csat,0
        B,2024-03-03,csat,6
        B,2024-03-04,CSAT,5
        C,2024-03-05,NPS,0
        C,2024-03-06,CES,7
        """,
    )
    err = rejected(
        lambda: churnguard.ingest_table(seeded, "surveys", csv, as_of=AS_OF),
        "surveys.csv line 2, column score: expected a NPS score from 0 to 10, got 11",
        "surveys.csv line 3, column score: expected a CSAT score from 1 to 5, got 0",
        "surveys.csv line 4, column score: expected a CSAT score from 1 to 5, got 6",
    )
    bad_lines = {p.line for p in err.problems}
    assert bad_lines == {2, 3, 4}  # CSAT 5, NPS 0 and CES 7 are fine


def test_survey_scores_within_range_for_their_kind_are_accepted(seeded, write_csv):
    csv = write_csv(
        "surveys.csv",
        "customer_id,ts,kind,score\nA,2024-03-01,CSAT,5\nA,2024-03-02,csat,1\nB,2024-03-03,NPS,0\n"
        "B,2024-03-04,nps,10\nC,2024-03-05,CES,7\n",
    )
    result = churnguard.ingest_table(seeded, "surveys", csv, as_of=AS_OF)
    assert result.rows_added == 5
    assert seeded.execute("SELECT kind, score FROM surveys ORDER BY ts").fetchall() == [
        ("CSAT", 5.0),
        ("csat", 1.0),
        ("NPS", 0.0),
        ("nps", 10.0),
        ("CES", 7.0),
    ]


@pytest.mark.parametrize(("kind", "score"), [("nps", "-1"), ("Csat", "6"), ("csat", "5.5")])
def test_each_out_of_range_survey_score_is_rejected(seeded, write_csv, rejected, kind, score):
    csv = write_csv("s.csv", f"customer_id,ts,kind,score\nA,2024-03-01,{kind},{score}\n")
    expected = "a NPS score from 0 to 10" if kind.upper() == "NPS" else "a CSAT score from 1 to 5"
    rejected(lambda: churnguard.ingest_table(seeded, "surveys", csv, as_of=AS_OF), f"column score: expected {expected}")


# -- 10. rows_replaced ------------------------------------------------------------------------------


def test_rows_replaced_counts_rows_removed_by_replace(seeded, write_csv):
    load_events(seeded, write_csv)
    csv = write_csv("e.csv", "customer_id,ts,event_type\nB,2024-04-01,login\n")
    result = churnguard.ingest_table(seeded, "events", csv, mode="replace", as_of=AS_OF)
    assert (result.rows_added, result.rows_replaced, result.rows_skipped) == (1, 2, 0)
    assert log_rows(seeded)[-1] == ("events", str(csv), "replace", 1, 1, 2, 0)


def test_rows_replaced_counts_rows_removed_by_upsert(seeded, write_csv):
    csv = write_csv("c.csv", "customer_id,branch_id,signup_date,plan\nA,C1,2024-01-02,gold\nB,C1,2024-01-03,pro\n")
    result = churnguard.ingest_table(seeded, "customers", csv, mode="upsert", as_of=AS_OF)
    assert (result.rows_added, result.rows_replaced) == (2, 2)
    assert log_rows(seeded)[-1][3:6] == (2, 2, 2)
    again = write_csv("d.csv", "customer_id,branch_id,signup_date\nD,C1,2024-01-02\n")
    assert churnguard.ingest_table(seeded, "customers", again, mode="upsert", as_of=AS_OF).rows_replaced == 0


@pytest.mark.parametrize("mode", ["append", "replace", "upsert"])
def test_rows_replaced_counts_the_rows_clear_all_removed_from_each_loaded_table(seeded, write_csv, mode):
    load_events(seeded, write_csv)  # 2 events, 4 branches, 3 customers
    loads = [
        LoadSpec("branches", write_csv("b.csv", NEW_BRANCHES)),
        LoadSpec("customers", write_csv("c.csv", "customer_id,branch_id,signup_date\nZ,N1,2024-01-02\n")),
    ]
    results = churnguard.ingest_tables(seeded, loads, mode=mode, clear_all=True, as_of=AS_OF)
    # The cleared events are not loaded again: they count in no result.
    assert [(r.table, r.rows_added, r.rows_replaced) for r in results] == [("branches", 2, 4), ("customers", 1, 3)]
    assert [r[5] for r in log_rows(seeded)[-2:]] == [4, 3]
    assert table_rows(seeded, "events") == []


def test_clear_all_counts_the_cleared_rows_once_per_table(seeded, write_csv):
    load_events(seeded, write_csv)
    loads = [
        LoadSpec("branches", write_csv("b.csv", "branch_id,name,parent_id\nHQ,Head office,\nC1,City One,HQ\n")),
        LoadSpec("customers", write_csv("c.csv", "customer_id,branch_id,signup_date\nA,C1,2024-01-02\n")),
        LoadSpec("events", write_csv("e1.csv", "customer_id,ts,event_type\nA,2024-05-01,login\n")),
        LoadSpec("events", write_csv("e2.csv", "customer_id,ts,event_type\nA,2024-05-02,login\n")),
    ]
    results = churnguard.ingest_tables(seeded, loads, clear_all=True, as_of=AS_OF)
    assert [(r.table, r.rows_added, r.rows_replaced) for r in results] == [
        ("branches", 2, 4),
        ("customers", 1, 3),
        ("events", 1, 2),
        ("events", 1, 0),
    ]


def test_replace_gives_extra_columns_the_new_files_types(seeded, write_csv):
    first = write_csv("c1.csv", "customer_id,branch_id,signup_date,score\nD,C1,2024-03-01,1\nE,C1,2024-03-01,2\n")
    churnguard.ingest_table(seeded, "customers", first, mode="upsert", as_of=AS_OF)
    assert dict(seeded.columns("customers"))["score"] == "BIGINT"
    second = write_csv("c2.csv", "customer_id,branch_id,signup_date,score\nD,C1,2024-03-01,high\n")
    result = churnguard.ingest_table(seeded, "customers", second, mode="replace", as_of=AS_OF)
    assert result.rows_added == 1
    assert dict(seeded.columns("customers"))["score"] == "VARCHAR"
    assert seeded.execute("SELECT score FROM customers").fetchall() == [("high",)]


def test_a_load_that_runs_out_of_memory_says_so_and_loads_nothing(store, tmp_path):
    """Not "expected a Parquet file": the error names memory and the fix, and the store is unchanged."""
    import duckdb

    from churnguard.errors import StoreError

    path = tmp_path / "events.parquet"
    duckdb.execute(
        "COPY (SELECT 'C' || (i % 1000) AS customer_id, TIMESTAMP '2024-01-01' + to_seconds(i % 1000000) AS ts, "
        f"'call' AS event_type, random() AS value FROM range(1000000) t(i)) TO '{path}' (FORMAT parquet)"
    )
    with pytest.raises(StoreError) as info:
        churnguard.ingest_table(store, "events", path, as_of=AS_OF, memory_limit="4MB")
    message = str(info.value)
    assert "ran out of memory" in message and "--memory-limit" in message and "Nothing was loaded" in message
    assert store.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    assert store.execute("SELECT count(*) FROM ingest_log").fetchone()[0] == 0
