"""Mapping files: parsing (with clear errors) and every conversion they describe, end to end."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import AS_OF, table_rows

import churnguard
from churnguard.errors import ConfigError, MappingError, ValidationError
from churnguard.ingest import load_mapping, parse_mapping
from churnguard.ingest.mapping import snake_case

# -- parsing ----------------------------------------------------------------------------------


def test_identity_mapping():
    m = parse_mapping(None)
    assert m.columns == {}
    assert m.keep_extra is True


def test_full_mapping_parses(write_file):
    path = write_file(
        "customers.yaml",
        """\
        table: customers
        delimiter: ";"
        sheet: Customers
        description: the CRM export
        columns:
          customer_id: customerID
          signup_date: {from: Join Date, format: "%d/%m/%Y"}
          segment: {from: Type, values: {B2B: business, yes: consumer}}
          branch_id: {value: HQ}
          plan: {from: Contract, default: unknown}
          tenure: {from: tenure, type: integer}
          mrr: {from: MRR cents, scale: 0.01}
          vip: {from: VIP, true_values: [Y, yes], false_values: [N, no]}
        drop: [Count, Lat Long]
        keep_extra: false
        """,
    )
    m = load_mapping(path)
    assert m.origin == str(path)
    assert m.table == "customers"
    assert m.delimiter == ";"
    assert m.sheet == "Customers"
    assert m.drop == ("Count", "Lat Long")
    assert m.keep_extra is False
    assert m.columns["customer_id"].source == "customerID"
    assert m.columns["signup_date"].format == "%d/%m/%Y"
    # YAML reads a bare yes as a boolean; a mapping means the word.
    assert m.columns["segment"].values == {"B2B": "business", "true": "consumer"}
    assert m.columns["branch_id"].source is None
    assert m.columns["branch_id"].value == "HQ"
    assert m.columns["plan"].default == "unknown"
    assert m.columns["tenure"].type == "integer"
    assert m.columns["mrr"].scale == 0.01
    assert m.columns["vip"].true_values == ("Y", "true")
    assert m.columns["vip"].false_values == ("N", "false")


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("- a\n- b\n", ["expected a mapping with a 'columns:' section, got list"]),
        ("colums: {customer_id: id}\n", ["unknown key(s) colums", "expected table, columns"]),
        ("columns: [customer_id]\n", ["key columns", "expected target: source pairs, got list"]),
        ("columns: {customer_id: [a, b]}\n", ["column customer_id", "expected a source column name"]),
        ("columns: {signup_date: {from: d, fromat: '%d'}}\n", ["column signup_date", "unknown option(s) fromat"]),
        ("columns: {branch_id: {from: b, value: HQ}}\n", ["column branch_id", "exactly one of 'from'"]),
        ("columns: {branch_id: {default: HQ}}\n", ["column branch_id", "exactly one of 'from'"]),
        ("columns: {amount: {from: a, scale: cents}}\n", ["column amount, option scale", "expected a number"]),
        ("columns: {amount: {from: a, scale: true}}\n", ["column amount, option scale", "got True"]),
        ("columns: {tenure: {from: t, type: float}}\n", ["column tenure, option type", "got 'float'"]),
        ("columns: {segment: {from: s, values: [a, b]}}\n", ["column segment, option values", "source: target"]),
        ("columns: {signup_date: {from: d, format: dd/mm/yyyy}}\n", ["option format", "strptime format"]),
        ("columns: {voluntary: {from: v, true_values: []}}\n", ["option true_values", "non-empty list"]),
        ("columns: {voluntary: {from: v, false_values: No}}\n", ["option false_values", "non-empty list"]),
        ("drop: Count\n", ["key drop", "expected a list"]),
        ("delimiter: ';;'\n", ["key delimiter", "expected one character"]),
        ("keep_extra: 'false'\n", ["key keep_extra", "expected true or false", "'false'"]),
    ],
)
def test_malformed_mapping_names_the_file_and_the_key(write_file, text, fragments):
    path = write_file("bad.yaml", text)
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    for fragment in fragments:
        assert fragment in message


def test_yaml_syntax_error_gives_line_and_column(write_file):
    path = write_file(
        "broken.yaml",
        """\
        columns:
          customer_id: id
          signup_date: {from: Join Date, format: "%d/%m/%Y"
        drop: [x]
        """,
    )
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    message = str(info.value)
    assert message.startswith(f"{path} line 4, column 1:")
    assert "expected valid YAML" in message


def test_yaml_tab_indentation_error_is_located(write_file):
    path = write_file("tabs.yaml", "columns:\n\tcustomer_id: id\n")
    with pytest.raises(MappingError, match=r"tabs\.yaml line 2, column 1: expected valid YAML"):
        load_mapping(path)


def test_missing_or_unreadable_mapping_file(tmp_path):
    with pytest.raises(MappingError, match="does not exist"):
        load_mapping(tmp_path / "absent.yaml")
    with pytest.raises(MappingError, match="expected a readable UTF-8 YAML file"):
        load_mapping(tmp_path)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("columns: {r\xe9gion: region}\n".encode("latin-1"))
    with pytest.raises(MappingError, match=r"latin\.yaml: expected a readable UTF-8 YAML file"):
        load_mapping(latin)


def test_mapping_for_another_table_is_refused(seeded, write_csv, write_file):
    mapping = write_file("events.yaml", "table: events\ncolumns: {customer_id: id}\n")
    csv = write_csv("c.csv", "customer_id,branch_id,signup_date\nD,C1,2024-01-01\n")
    with pytest.raises(ConfigError) as info:
        churnguard.ingest_table(seeded, "customers", csv, mapping=mapping)
    assert 'this mapping is for table "events"' in str(info.value)
    assert table_rows(seeded, "customers")[-1][0] == "C"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Zip Code", "zip_code"),
        ("customerID", "customer_id"),
        ("Monthly Charges ($)", "monthly_charges"),
        ("  CLTV  ", "cltv"),
        ("Lat-Long", "lat_long"),
        ("%%", "column"),
    ],
)
def test_snake_case(name, expected):
    assert snake_case(name) == expected


# -- conversions, end to end ------------------------------------------------------------------

CRM_EXPORT = """\
Customer ID;Join Date;Contract;Type;Zip Code;Tenure Months;Avg Spend;Notes;VIP
D;31/01/2024;Monthly;B2B;01234;3;12.5;call back;Y
E;01/02/2024;;B2C;98765;14;7;;N
F;15/02/2024;Yearly;;;;;;
"""


def test_mapping_renames_converts_and_keeps_extras(seeded, write_csv, write_file):
    csv = write_csv("crm.csv", CRM_EXPORT)
    mapping = write_file(
        "crm.yaml",
        """\
        table: customers
        columns:
          customer_id: Customer ID
          signup_date: {from: Join Date, format: "%d/%m/%Y"}
          branch_id: {value: C2}
          plan: {from: Contract, default: unknown}
          segment: {from: Type, values: {B2B: business, B2C: consumer}}
          vip: {from: VIP, type: bool, true_values: [Y], false_values: [N]}
        drop: [Notes]
        """,
    )
    result = churnguard.ingest_table(seeded, "customers", csv, mapping=mapping, as_of=AS_OF)
    assert result.rows_added == 3
    assert result.extra_columns == ["vip", "zip_code", "tenure_months", "avg_spend"]
    columns = dict(seeded.columns("customers"))
    assert "notes" not in columns and "Notes" not in columns
    assert columns["vip"] == "BOOLEAN"
    assert columns["zip_code"] == "VARCHAR"  # a leading zero makes it a code, not a number
    assert columns["tenure_months"] == "BIGINT"
    assert columns["avg_spend"] == "DOUBLE"
    rows = seeded.execute(
        "SELECT customer_id, branch_id, signup_date, plan, segment, vip, zip_code, tenure_months, avg_spend "
        "FROM customers WHERE customer_id IN ('D', 'E', 'F') ORDER BY customer_id"
    ).fetchall()
    assert rows == [
        ("D", "C2", dt.date(2024, 1, 31), "Monthly", "business", True, "01234", 3, 12.5),
        ("E", "C2", dt.date(2024, 2, 1), "unknown", "consumer", False, "98765", 14, 7.0),
        ("F", "C2", dt.date(2024, 2, 15), "Yearly", None, None, None, None, None),
    ]


def test_mapping_as_a_dict_and_case_insensitive_names(seeded, write_csv):
    csv = write_csv("c.csv", "Customer_ID,BRANCH_ID,Signup_Date\nD,C1,2024-03-01\n")
    churnguard.ingest_table(seeded, "customers", csv, as_of=AS_OF)
    assert ("D", "C1", dt.date(2024, 3, 1)) in seeded.execute(
        "SELECT customer_id, branch_id, signup_date FROM customers"
    ).fetchall()


def test_flags_recoding_and_constants(seeded, write_csv):
    csv = write_csv(
        "churn.csv",
        """\
        id,left_on,kind,why,where
        A,2024-05-01,Voluntary,Price too high,RivalCo
        B,2024-05-02,Involuntary,Unpaid bills,
        C,2024-05-03,,,
        """,
    )
    mapping = {
        "columns": {
            "customer_id": "id",
            "churn_date": "left_on",
            "voluntary": {"from": "kind", "true_values": ["Voluntary"], "false_values": ["Involuntary"]},
            "reason_code": {"from": "why", "values": {"Price too high": "price", "Unpaid bills": "involuntary"}},
            "destination": "where",
            "notes": {"value": "imported"},
        }
    }
    result = churnguard.ingest_table(seeded, "churn_events", csv, mapping=mapping, as_of=AS_OF)
    assert result.extra_columns == []
    assert seeded.execute(
        "SELECT customer_id, churn_date, voluntary, reason_code, destination, notes FROM churn_events ORDER BY 1"
    ).fetchall() == [
        ("A", dt.date(2024, 5, 1), True, "price", "RivalCo", "imported"),
        ("B", dt.date(2024, 5, 2), False, "involuntary", None, "imported"),
        ("C", dt.date(2024, 5, 3), None, None, None, "imported"),
    ]


def test_default_flag_words(seeded, write_csv):
    csv = write_csv(
        "churn.csv",
        "customer_id,churn_date,voluntary\nA,2024-05-01,YES\nB,2024-05-01,n\nC,2024-05-01,0\n",
    )
    churnguard.ingest_table(seeded, "churn_events", csv, as_of=AS_OF)
    assert seeded.execute("SELECT customer_id, voluntary FROM churn_events ORDER BY 1").fetchall() == [
        ("A", True),
        ("B", False),
        ("C", False),
    ]


def test_scale_converts_units(seeded, write_csv):
    csv = write_csv(
        "subs.csv",
        "customer_id,plan,start_date,mrr_cents\nA,basic,2024-01-02,1999\nB,pro,2024-01-03,\n",
    )
    mapping = {"columns": {"recurring_revenue": {"from": "mrr_cents", "scale": 0.01}}, "keep_extra": False}
    result = churnguard.ingest_table(seeded, "subscriptions", csv, mapping=mapping, as_of=AS_OF)
    assert result.extra_columns == []
    rows = seeded.execute("SELECT customer_id, recurring_revenue FROM subscriptions ORDER BY 1").fetchall()
    assert rows[0][0] == "A" and rows[0][1] == pytest.approx(19.99)
    assert rows[1] == ("B", None)  # an empty cell stays empty: never silently 0
    assert "mrr_cents" not in dict(seeded.columns("subscriptions"))


def test_keep_extra_false_drops_unmapped_columns(seeded, write_csv):
    csv = write_csv("c.csv", "customer_id,branch_id,signup_date,Colour\nD,C1,2024-03-01,red\n")
    result = churnguard.ingest_table(seeded, "customers", csv, mapping={"keep_extra": False}, as_of=AS_OF)
    assert result.extra_columns == []
    assert "colour" not in dict(seeded.columns("customers"))


def test_typed_extra_columns(seeded, write_csv, rejected):
    csv = write_csv("c.csv", "customer_id,branch_id,signup_date,Renewal,Seats\nD,C1,2024-03-01,2024-09-30,12\n")
    mapping = {"columns": {"renewal": {"from": "Renewal", "type": "date"}, "seats": {"from": "Seats", "type": "text"}}}
    churnguard.ingest_table(seeded, "customers", csv, mapping=mapping, as_of=AS_OF)
    columns = dict(seeded.columns("customers"))
    assert columns["renewal"] == "DATE"
    assert columns["seats"] == "VARCHAR"  # declared text: not inferred as a number
    assert seeded.execute("SELECT renewal, seats FROM customers WHERE customer_id = 'D'").fetchall() == [
        (dt.date(2024, 9, 30), "12")
    ]
    # A declared type is checked like a canonical one.
    bad = write_csv("c2.csv", "customer_id,branch_id,signup_date,Renewal,Seats\nE,C1,2024-03-01,soon,3\n")
    rejected(
        lambda: churnguard.ingest_table(seeded, "customers", bad, mapping=mapping, as_of=AS_OF),
        'c2.csv line 2, column renewal: expected a date like 2024-01-31, got "soon"',
    )


def test_a_stored_extra_column_keeps_its_type_on_the_next_load(seeded, write_csv, rejected):
    first = write_csv("c1.csv", "customer_id,branch_id,signup_date,Renewal,Seats\nD,C1,2024-03-01,2024-09-30,12\n")
    churnguard.ingest_table(
        seeded, "customers", first, mapping={"columns": {"renewal": {"from": "Renewal", "type": "date"}}}, as_of=AS_OF
    )
    assert dict(seeded.columns("customers"))["seats"] == "BIGINT"
    # The next file has no mapping: the stored types decide, and a value that does not fit is a problem.
    second = write_csv("c2.csv", "customer_id,branch_id,signup_date,Renewal,Seats\nE,C1,2024-03-01,someday,many\n")
    rejected(
        lambda: churnguard.ingest_table(seeded, "customers", second, as_of=AS_OF),
        'c2.csv line 2, column renewal: expected a date like 2024-01-31, got "someday"',
        'c2.csv line 2, column seats: expected a whole number like 3, got "many"',
    )
    good = write_csv("c3.csv", "customer_id,branch_id,signup_date,Renewal,Seats\nE,C1,2024-03-01,2024-10-01,7\n")
    churnguard.ingest_table(seeded, "customers", good, as_of=AS_OF)
    assert seeded.execute("SELECT renewal, seats FROM customers WHERE customer_id = 'E'").fetchall() == [
        (dt.date(2024, 10, 1), 7)
    ]


def test_mapping_names_a_column_the_file_lacks(seeded, write_csv, write_file, rejected):
    csv = write_csv("c.csv", "id,branch_id,signup_date\nD,C1,2024-03-01\n")
    mapping = write_file("m.yaml", "columns:\n  customer_id: Customer ID\n")
    rejected(
        lambda: churnguard.ingest_table(seeded, "customers", csv, mapping=mapping, as_of=AS_OF),
        'c.csv, column Customer ID: expected a column named "Customer ID"',
        f"(mapped to customer_id by {mapping})",
        "got columns id, branch_id, signup_date",
        "Fix: correct the column name in the mapping file.",
    )


def test_date_in_the_wrong_format_for_the_mapping(seeded, write_csv, rejected):
    csv = write_csv("c.csv", "customer_id,branch_id,signup_date\nD,C1,2024-03-01\n")
    rejected(
        lambda: churnguard.ingest_table(
            seeded,
            "customers",
            csv,
            mapping={"columns": {"signup_date": {"from": "signup_date", "format": "%d/%m/%Y"}}},
        ),
        'c.csv line 2, column signup_date: expected a date in the format "%d/%m/%Y", got "2024-03-01"',
    )


def test_unknown_flag_word_suggests_true_values(seeded, write_csv, rejected):
    csv = write_csv("churn.csv", "customer_id,churn_date,voluntary\nA,2024-05-01,maybe\n")
    rejected(
        lambda: churnguard.ingest_table(seeded, "churn_events", csv, as_of=AS_OF),
        'churn.csv line 2, column voluntary: expected a yes/no flag like true, false, yes, no, 1, 0, got "maybe"',
        "true_values: [...] and false_values: [...]",
    )


def test_parsed_mapping_errors_are_value_errors():
    with pytest.raises(ValueError, match="mapping, column x"):
        parse_mapping({"columns": {"x": {"from": "a", "type": "decimal"}}})
    assert issubclass(MappingError, ValueError)
    assert not issubclass(MappingError, ValidationError)
