"""The store: connection URLs, schema version, migrations and the generated data-model document."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import churnguard
from churnguard.errors import StoreError, UnsupportedBackendError
from churnguard.store import LATEST_VERSION, TABLES, migrations, parse_url
from churnguard.store.schema import create_table_sql, render_markdown, table_schema

ROOT = Path(__file__).resolve().parents[1]


# -- URL parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("duckdb:///churn.duckdb", "churn.duckdb"),
        ("duckdb:///data/churn.duckdb", "data/churn.duckdb"),
        ("duckdb:////var/lib/churn.duckdb", "/var/lib/churn.duckdb"),
        ("DUCKDB:///churn.duckdb", "churn.duckdb"),
        ("duckdb://:memory:", ":memory:"),
        ("duckdb:///:memory:", ":memory:"),
        (":memory:", ":memory:"),
        ("./churn.duckdb", "./churn.duckdb"),
        ("/abs/churn.duckdb", "/abs/churn.duckdb"),
        (Path("rel/churn.duckdb"), "rel/churn.duckdb"),
        (None, "churnguard.duckdb"),
        ("", "churnguard.duckdb"),
    ],
)
def test_parse_url(url, path):
    parsed = parse_url(url)
    assert parsed.backend == "duckdb"
    assert parsed.path == path


def test_postgresql_urls_parse_and_hide_the_password():
    url = parse_url("postgresql://ana:s3cret@db.example:5433/churn")
    assert url.backend == "postgresql"
    assert str(url) == "postgresql://ana:***@db.example:5433/churn"
    assert parse_url("postgres://localhost/churn").backend == "postgresql"


def test_an_unreachable_postgresql_server_is_a_clear_error():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreError) as info:
        churnguard.connect(f"postgresql://ana:s3cret@127.0.0.1:{port}/churn")
    message = str(info.value)
    assert "cannot connect to PostgreSQL" in message and "Fix:" in message
    assert "s3cret" not in message and f"127.0.0.1:{port}" in message


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("spark://master:7077", "spark:///absolute/path/to/lake"),
        ("mysql://localhost/churn", 'unknown backend "mysql"'),
        ("duckdb://churn.duckdb", "three slashes"),
    ],
)
def test_unsupported_urls_are_refused_clearly(url, fragment):
    with pytest.raises(UnsupportedBackendError) as info:
        parse_url(url)
    message = str(info.value)
    assert url in message
    assert fragment in message
    # Callers that know only the builtins or the store errors catch it too.
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, StoreError)


def test_connect_refuses_unsupported_backend_before_touching_disk(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsupportedBackendError, match="mysql"):
        churnguard.connect("mysql://localhost/churn")
    assert list(tmp_path.iterdir()) == []


# -- connecting -------------------------------------------------------------------------------


def test_connect_creates_every_canonical_table_and_records_the_version(tmp_path):
    path = tmp_path / "new.duckdb"
    with churnguard.connect(f"duckdb:///{path}") as store:
        assert store.url.path == str(path)
        assert store.schema_version == LATEST_VERSION
        assert store.get_meta("schema_version") == str(LATEST_VERSION)
        for table in TABLES:
            assert store.has_table(table.name)
            assert [c for c, _ in store.columns(table.name)] == list(table.column_names)
        assert store.has_table("ingest_log")
    assert path.exists()
    # Reopening applies nothing and keeps the version.
    with churnguard.connect(path) as store:
        assert store.schema_version == LATEST_VERSION


def test_column_types_follow_the_schema(store):
    for table in TABLES:
        assert store.columns(table.name) == [(c.name, c.sql_type) for c in table.columns]


def test_in_memory_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with churnguard.connect("duckdb://:memory:") as store:
        assert store.schema_version == LATEST_VERSION
        assert str(store.url) == "duckdb://:memory:"
    assert list(tmp_path.iterdir()) == []


def test_relative_url_is_relative_to_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with churnguard.connect("duckdb:///sub.duckdb") as store:
        assert store.schema_version == LATEST_VERSION
    assert (tmp_path / "sub.duckdb").exists()


def test_missing_folder_is_a_clear_store_error(tmp_path):
    with pytest.raises(StoreError) as info:
        churnguard.connect(tmp_path / "no" / "such" / "churn.duckdb")
    assert "does not exist" in str(info.value)
    assert "Fix:" in str(info.value)


def test_a_file_that_is_not_duckdb_is_refused(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("these are my notes, not a database\n" * 200)
    with pytest.raises(StoreError) as info:
        churnguard.connect(path)
    message = str(info.value)
    assert str(path) in message
    assert "expected a DuckDB database file" in message
    assert "Fix:" in message
    assert path.read_text().startswith("these are my notes")  # left untouched


def test_read_only_open_of_a_missing_file_is_refused(tmp_path):
    with pytest.raises(StoreError, match="cannot be opened"):
        churnguard.connect(tmp_path / "absent.duckdb", read_only=True)


def test_transaction_rolls_back_on_error(store):
    with pytest.raises(RuntimeError), store.transaction():
        store.execute("INSERT INTO branches VALUES ('HQ', 'Head', NULL, 0)")
        raise RuntimeError("boom")
    assert store.execute("SELECT count(*) FROM branches").fetchone()[0] == 0
    with store.transaction():
        store.execute("INSERT INTO branches VALUES ('HQ', 'Head', NULL, 0)")
    assert store.execute("SELECT count(*) FROM branches").fetchone()[0] == 1


def test_a_nested_transaction_joins_the_open_one(store):
    with pytest.raises(RuntimeError), store.transaction():
        with store.transaction():  # joins: neither refused nor committed on its own
            store.execute("INSERT INTO branches VALUES ('P1', 'Province', NULL, 1)")
        assert store.in_transaction
        raise RuntimeError("boom")
    assert not store.in_transaction
    assert store.execute("SELECT count(*) FROM branches WHERE branch_id = 'P1'").fetchone()[0] == 0
    with store.transaction(), store.transaction():
        store.execute("INSERT INTO branches VALUES ('P1', 'Province', NULL, 1)")
    assert store.execute("SELECT count(*) FROM branches WHERE branch_id = 'P1'").fetchone()[0] == 1


def test_table_gives_an_ibis_expression(seeded):
    t = seeded.table("customers")
    assert int(t.count().execute()) == 3
    assert sorted(t.customer_id.execute()) == ["A", "B", "C"]


def test_meta_round_trip(store):
    store.set_meta("owner", "ops")
    store.set_meta("owner", "retention")
    assert store.get_meta("owner") == "retention"
    assert store.get_meta("absent") is None


# -- migrations -------------------------------------------------------------------------------


def test_a_version_1_database_is_upgraded_and_keeps_its_data(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    applied = migrations.migrate(con, target=1)
    assert [m.version for m in applied] == [1]
    assert migrations.current_version(con) == 1
    con.execute("INSERT INTO branches VALUES ('HQ', 'Head office', NULL, 0)")
    con.execute("INSERT INTO customers (customer_id, branch_id, signup_date) VALUES ('A', 'HQ', DATE '2024-01-02')")
    assert (
        con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'ingest_log'").fetchone()[0] == 0
    )
    con.close()

    with churnguard.connect(path) as store:
        assert store.schema_version == LATEST_VERSION
        assert store.has_table("ingest_log")
        assert store.execute("SELECT * FROM branches").fetchall() == [("HQ", "Head office", None, 0)]
        assert store.execute("SELECT customer_id, branch_id FROM customers").fetchall() == [("A", "HQ")]
    # Reopening again applies nothing.
    con = duckdb.connect(str(path))
    assert migrations.migrate(con) == []
    con.close()


def test_an_upgraded_database_takes_loads(tmp_path, write_csv):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    migrations.migrate(con, target=1)
    con.close()
    with churnguard.connect(path) as store:
        csv = write_csv("b.csv", "branch_id,name,parent_id\nHQ,Head,\n")
        result = churnguard.ingest_table(store, "branches", csv)
        assert result.rows_added == 1
        assert store.execute("SELECT count(*) FROM ingest_log").fetchone()[0] == 1


def test_migrations_are_numbered_in_order():
    versions = [m.version for m in migrations.MIGRATIONS]
    assert versions == list(range(1, len(versions) + 1))
    assert versions[-1] == LATEST_VERSION


def test_a_database_from_a_newer_churnguard_is_refused(tmp_path):
    path = tmp_path / "future.duckdb"
    con = duckdb.connect(str(path))
    migrations.migrate(con)
    con.execute("UPDATE churnguard_meta SET value = ? WHERE key = 'schema_version'", [str(LATEST_VERSION + 7)])
    con.execute("INSERT INTO branches VALUES ('HQ', 'Head office', NULL, 0)")
    con.close()
    with pytest.raises(StoreError) as info:
        churnguard.connect(path)
    message = str(info.value)
    assert str(path) in message
    assert f"schema version {LATEST_VERSION + 7}" in message
    assert "upgrade churnguard" in message
    # Nothing was changed: the version and the data are as they were.
    con = duckdb.connect(str(path), read_only=True)
    assert migrations.current_version(con) == LATEST_VERSION + 7
    assert con.execute("SELECT count(*) FROM branches").fetchone()[0] == 1
    con.close()


def test_connect_without_migrate_leaves_an_empty_file_empty(tmp_path):
    path = tmp_path / "raw.duckdb"
    with churnguard.connect(path, migrate=False) as store:
        assert store.schema_version == 0
        assert not store.has_table("customers")


# -- the schema and its document --------------------------------------------------------------


def test_unknown_table_is_a_lookup_error():
    with pytest.raises(LookupError, match="expected one of branches, customers"):
        table_schema("clients")


def test_parents_come_before_children():
    order = [t.name for t in TABLES]
    for t in TABLES:
        for parent in t.parents:
            assert order.index(parent) < order.index(t.name)
        for c in t.columns:
            if c.references:
                assert order.index(c.references[0]) <= order.index(t.name)


def test_create_table_sql_is_idempotent(store):
    for t in TABLES:
        store.execute(create_table_sql(t))  # IF NOT EXISTS: no error on an existing table
    assert store.schema_version == LATEST_VERSION


def test_docs_data_model_is_in_sync_with_the_schema():
    doc = ROOT / "docs" / "data-model.md"
    assert doc.exists(), "generate it: .venv/bin/python -m churnguard.store.schema > docs/data-model.md"
    assert doc.read_text(encoding="utf-8") == render_markdown(), (
        "docs/data-model.md is stale; regenerate it: .venv/bin/python -m churnguard.store.schema > docs/data-model.md"
    )


def test_data_model_document_lists_every_table_column_and_reason():
    text = render_markdown()
    for t in TABLES:
        assert f"## `{t.name}`" in text
        for c in t.columns:
            assert f"| `{c.name}` |" in text
    assert "| `price` |" in text
    assert "must exist in `customers.customer_id`" in text
