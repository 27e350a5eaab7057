"""The bundled real data sets load through ingestion, with the published row counts and no leaks.

Every test uses a real DuckDB file.  Stores that tests only read are loaded once per module.
"""

from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import churnguard
from churnguard.datasets import real
from churnguard.datasets.real import (
    DatasetInfo,
    UnknownDatasetError,
    list_datasets,
    load_dataset,
)
from churnguard.errors import ChurnguardError, ConfigError, ValidationError
from churnguard.ingest import load_mapping
from churnguard.reasons import REASON_CODES
from churnguard.store import TABLES, Store
from churnguard.store.schema import table_schema

CANONICAL = [t.name for t in TABLES]
#: Source columns that give the churn label away (SOURCE.md of both IBM files), as attribute names.
LEAKY = {"churn", "churn_label", "churn_value", "churn_score", "churn_reason", "churn_date"}


def count(store: Store, sql: str, params: list[Any] | None = None) -> Any:
    return store.execute(sql, params).fetchone()[0]


def table_rows(store: Store, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``table``, sorted (None first) so that comparisons ignore storage order."""
    rows = store.execute(f"SELECT * FROM {table}").fetchall()
    return sorted(rows, key=lambda r: tuple((v is not None, str(v)) for v in r))


def columns(store: Store, table: str) -> set[str]:
    return {c for c, _ in store.columns(table)}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], tuple[Store, list[Any]]]]:
    """``loaded(name)``: a store holding data set ``name`` (loaded once per module) and the load's results."""
    cache: dict[str, tuple[Store, list[Any]]] = {}

    def get(name: str) -> tuple[Store, list[Any]]:
        if name not in cache:
            store = churnguard.connect(tmp_path_factory.mktemp(name) / "churn.duckdb")
            cache[name] = (store, load_dataset(store, name))
        return cache[name]

    yield get
    for store, _ in cache.values():
        store.close()


# -- registry -----------------------------------------------------------------------------


def test_registry_lists_every_data_set_with_its_churn_definition() -> None:
    infos = list_datasets()
    assert [i.name for i in infos] == ["telco", "telco-cltv", "cdnow", "cdnow-sample", "grocery"]
    by_name = {i.name: i for i in infos}
    assert by_name["telco"].churn_definition == "contractual"
    assert by_name["telco-cltv"].churn_definition == "contractual"
    assert {by_name[n].churn_definition for n in ("cdnow", "cdnow-sample", "grocery")} == {"non_contractual"}
    for info in infos:
        assert isinstance(info, DatasetInfo)
        assert info.title and info.description and info.source and info.licence
        assert set(info.tables) <= set(CANONICAL)
        assert list(info.tables) == sorted(info.tables, key=CANONICAL.index), "tables in load order"


def test_shipped_files_parse_and_stay_small() -> None:
    mappings = sorted(real.MAPPINGS_DIR.glob("*.yaml"))
    assert len(mappings) >= 10
    for path in mappings:
        mapping = load_mapping(path)
        assert mapping.table in CANONICAL, path.name
    data = [p for p in real.DATA_DIR.iterdir() if p.is_file()]
    assert all(p.name.endswith(".csv.gz") for p in data), data
    assert sum(p.stat().st_size for p in data) < 3_000_000


def test_unknown_name_errors_clearly(store: Store) -> None:
    with pytest.raises(UnknownDatasetError) as info:
        load_dataset(store, "kkbox")
    assert isinstance(info.value, LookupError) and isinstance(info.value, ChurnguardError)
    message = str(info.value)
    assert '"kkbox"' in message and "telco, telco-cltv, cdnow, cdnow-sample, grocery" in message
    with pytest.raises(ConfigError, match="load mode"):
        load_dataset(store, "grocery", mode="overwrite")
    assert count(store, "SELECT count(*) FROM branches") == 0
    assert store.get_meta("dataset") is None


# -- telco --------------------------------------------------------------------------------


def test_telco_snapshot(loaded: Callable[[str], tuple[Store, list[Any]]]) -> None:
    store, results = loaded("telco")
    assert [(r.table, r.rows_added) for r in results] == [
        ("branches", 1),
        ("customers", 7043),
        ("subscriptions", 7043),
        ("churn_events", 1869),
    ]
    assert table_rows(store, "branches") == [("HQ", "Head office", None, 0)]
    assert count(store, "SELECT count(*) FROM customers WHERE branch_id = 'HQ'") == 7043
    snapshot = real.TELCO_SNAPSHOT_DATE
    # signup = snapshot − tenure months; the churners' subscriptions end on the snapshot date.
    assert count(store, "SELECT count(*) FROM customers WHERE signup_date <> $1 - to_months(tenure)", [snapshot]) == 0
    assert count(store, "SELECT count(*) FROM customers WHERE signup_date > $1", [snapshot]) == 0
    assert store.execute(
        "SELECT count(*), count(end_date), min(end_date), max(end_date), sum(recurring_revenue) FROM subscriptions"
    ).fetchone() == (7043, 1869, snapshot, snapshot, pytest.approx(456_116.6))
    assert (
        count(
            store,
            "SELECT count(*) FROM subscriptions s JOIN customers c USING (customer_id) "
            "WHERE s.start_date <> c.signup_date OR s.plan <> c.plan",
        )
        == 0
    )
    assert (
        count(
            store,
            "SELECT count(*) FROM churn_events e JOIN subscriptions s USING (customer_id) "
            "WHERE e.churn_date = s.end_date",
        )
        == 1869
    )
    # churn reasons are unknown in this version
    assert store.execute(
        "SELECT count(reason_code), count(voluntary), count(destination) FROM churn_events"
    ).fetchone() == (0, 0, 0)
    assert sorted(store.execute("SELECT DISTINCT plan FROM customers").fetchall()) == [
        ("Month-to-month",),
        ("One year",),
        ("Two year",),
    ]
    assert dict(store.execute("SELECT segment, count(*) FROM customers GROUP BY 1").fetchall()) == {
        "senior": 1142,
        "family": 3182,
        "single": 2719,
    }


def test_telco_keeps_attributes_but_not_the_label(loaded: Callable[[str], tuple[Store, list[Any]]]) -> None:
    store, _ = loaded("telco")
    cols = columns(store, "customers")
    assert not cols & LEAKY
    assert {"gender", "senior_citizen", "tenure", "internet_service", "payment_method", "total_charges"} <= cols
    types = dict(store.columns("customers"))
    assert types["senior_citizen"] == "BOOLEAN" and types["tenure"] == "INTEGER"
    # TotalCharges: 11 blank cells (all tenure 0) are NULL, not 0 and not a failed load.
    assert store.execute(
        "SELECT count(*) - count(total_charges), max(tenure) FILTER (WHERE total_charges IS NULL) FROM customers"
    ).fetchone() == (11, 0)
    assert store.get_meta("dataset") == "telco"
    assert store.get_meta("churn_definition") == "contractual"
    assert store.get_meta("dataset_as_of") == "2019-09-30"


# -- telco-cltv ---------------------------------------------------------------------------


def test_telco_cltv_branch_tree(loaded: Callable[[str], tuple[Store, list[Any]]]) -> None:
    store, _ = loaded("telco-cltv")
    assert store.execute("SELECT level, count(*) FROM branches GROUP BY 1 ORDER BY 1").fetchall() == [
        (0, 1),
        (1, 1),
        (2, 1129),
    ]
    assert table_rows(store, "branches")[:2] == [("HQ", "Head office", None, 0), ("california", "California", "HQ", 1)]
    # every parent is one level up; every customer lives in a city branch named after its city
    assert (
        count(
            store,
            "SELECT count(*) FROM branches b JOIN branches p ON b.parent_id = p.branch_id WHERE p.level <> b.level - 1",
        )
        == 0
    )
    assert (
        count(
            store,
            "SELECT count(*) FROM customers c JOIN branches b USING (branch_id) WHERE b.level = 2 AND b.name = c.city",
        )
        == 7043
    )
    assert ("california.los-angeles", "Los Angeles", "california", 2) in table_rows(store, "branches")


def test_telco_cltv_reasons_recoded(loaded: Callable[[str], tuple[Store, list[Any]]]) -> None:
    store, _ = loaded("telco-cltv")
    assert count(store, "SELECT count(*) FROM churn_events") == 1869
    codes = {r[0] for r in store.execute("SELECT DISTINCT reason_code FROM churn_events").fetchall()}
    assert codes - {None} <= REASON_CODES
    assert codes - {None} == {"competitor", "price", "product", "service", "natural"}
    # every churner has its reason text; only "Don't know" has no code
    assert count(store, "SELECT count(*) FROM churn_events WHERE notes IS NULL") == 0
    assert store.execute("SELECT DISTINCT notes FROM churn_events WHERE reason_code IS NULL").fetchall() == [
        ("Don't know",)
    ]
    assert count(store, "SELECT count(reason_code) FROM churn_events") == 1869 - 154
    assert dict(store.execute("SELECT reason_code, count(*) FROM churn_events GROUP BY 1").fetchall()) == {
        "competitor": 621,
        "service": 543,
        "product": 249,
        "price": 243,
        "natural": 59,
        None: 154,
    }
    assert store.execute("SELECT notes FROM churn_events WHERE NOT voluntary").fetchall() == [("Deceased",)] * 6
    assert count(store, "SELECT count(*) FROM churn_events WHERE voluntary IS NULL") == 0
    competitor = "coalesce(destination = 'competitor', false) <> coalesce(reason_code = 'competitor', false)"
    assert count(store, f"SELECT count(*) FROM churn_events WHERE {competitor}") == 0
    assert count(store, "SELECT count(destination) FROM churn_events") == 621


def test_telco_cltv_leaky_columns_absent(loaded: Callable[[str], tuple[Store, list[Any]]]) -> None:
    store, results = loaded("telco-cltv")
    cols = columns(store, "customers")
    assert not cols & (LEAKY | {"count", "lat_long"})
    assert {"ibm_cltv", "zip_code", "latitude", "city", "state"} <= cols
    assert store.get_meta("attributes_not_features") == "ibm_cltv"
    # the attributes both IBM files have get the same names in both data sets
    _, telco_results = loaded("telco")
    telco_extra = next(r for r in telco_results if r.table == "customers").extra_columns
    cltv_extra = next(r for r in results if r.table == "customers").extra_columns
    assert set(telco_extra) <= set(cltv_extra)
    # same customers, same churners, same plans as the 21-column file
    assert count(store, "SELECT count(*) FROM subscriptions WHERE end_date IS NOT NULL") == 1869


# -- transaction logs ---------------------------------------------------------------------


def test_cdnow(loaded: Callable[[str], tuple[Store, list[Any]]]) -> None:
    store, results = loaded("cdnow")
    assert [(r.table, r.rows_added) for r in results] == [
        ("branches", 1),
        ("customers", 23570),
        ("transactions", 69659),
    ]
    assert store.execute(
        "SELECT count(*), count(DISTINCT customer_id), sum(amount), sum(quantity), min(ts), max(ts) FROM transactions"
    ).fetchone() == (
        69659,
        23570,
        pytest.approx(2_500_315.63),
        167_881,
        dt.datetime(1997, 1, 1),
        dt.datetime(1998, 6, 30),
    )
    assert dict(store.columns("transactions"))["quantity"] == "INTEGER"
    # signup = first purchase, all in the first quarter of 1997 (the cohort)
    assert (
        count(
            store,
            "SELECT count(*) FROM customers c JOIN (SELECT customer_id, CAST(min(ts) AS DATE) AS first "
            "FROM transactions GROUP BY 1) t USING (customer_id) WHERE c.signup_date = t.first",
        )
        == 23570
    )
    assert store.execute("SELECT min(signup_date), max(signup_date) FROM customers").fetchone() == (
        dt.date(1997, 1, 1),
        dt.date(1997, 3, 25),
    )
    assert count(store, "SELECT count(*) FROM churn_events") == 0
    assert (store.get_meta("dataset"), store.get_meta("churn_definition")) == ("cdnow", "non_contractual")


def test_cdnow_sample(loaded: Callable[[str], tuple[Store, list[Any]]]) -> None:
    store, _ = loaded("cdnow-sample")
    assert store.execute(
        "SELECT count(*), count(DISTINCT customer_id), min(ts), max(ts) FROM transactions"
    ).fetchone() == (6919, 2357, dt.datetime(1997, 1, 1), dt.datetime(1998, 6, 30))
    assert store.execute(
        "SELECT count(*), count(DISTINCT sample_id), min(sample_id), max(sample_id) FROM customers"
    ).fetchone() == (2357, 2357, 1, 2357)
    assert store.execute("SELECT customer_id, sample_id FROM customers ORDER BY sample_id LIMIT 1").fetchone() == (
        "00004",
        1,
    )


def test_grocery(loaded: Callable[[str], tuple[Store, list[Any]]]) -> None:
    store, _ = loaded("grocery")
    assert store.execute(
        "SELECT count(*), count(DISTINCT customer_id), count(amount), min(ts), max(ts) FROM transactions"
    ).fetchone() == (10483, 1525, 0, dt.datetime(2006, 1, 1), dt.datetime(2007, 12, 30))
    assert count(store, "SELECT count(*) FROM customers") == 1525
    assert count(store, "SELECT count(*) FROM customers WHERE signup_date >= DATE '2006-04-01'") == 0


# -- load semantics -----------------------------------------------------------------------


def canonical_rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    return {name: table_rows(store, name) for name in CANONICAL}


def test_reloading_is_idempotent(store: Store) -> None:
    load_dataset(store, "telco")
    first = canonical_rows(store)
    again = load_dataset(store, "telco")
    assert canonical_rows(store) == first
    assert [(r.table, r.rows_added, r.rows_replaced) for r in again] == [
        ("branches", 1, 1),
        ("customers", 7043, 7043),
        ("subscriptions", 7043, 7043),
        ("churn_events", 1869, 1869),
    ]
    appended = load_dataset(store, "telco", mode="append")
    assert [r.rows_added for r in appended] == [0, 0, 0, 0]
    assert canonical_rows(store) == first


def test_switching_data_sets_replaces_every_table(store: Store) -> None:
    load_dataset(store, "telco")
    telco_churners = table_rows(store, "churn_events")
    results = load_dataset(store, "cdnow")
    assert [(r.table, r.rows_read, r.rows_replaced) for r in results] == [
        ("branches", 1, 1),
        ("customers", 23570, 7043),
        ("transactions", 69659, 0),
    ]
    # telco's customer attributes went with telco's customers: no empty leftovers
    assert [c for c, _ in store.columns("customers")] == [*table_schema("customers").column_names]
    assert count(store, "SELECT count(*) FROM subscriptions") == 0
    assert count(store, "SELECT count(*) FROM churn_events") == 0
    assert store.get_meta("churn_definition") == "non_contractual"
    load_dataset(store, "telco-cltv")
    assert count(store, "SELECT count(*) FROM transactions") == 0
    assert count(store, "SELECT count(*) FROM branches") == 1131
    # the extended file has the same churners on the same date
    assert [r[:2] for r in table_rows(store, "churn_events")] == [r[:2] for r in telco_churners]
    assert (store.get_meta("dataset"), store.get_meta("churn_definition")) == ("telco-cltv", "contractual")


def test_appending_another_data_set_is_refused(store: Store, rejected: Callable[..., ChurnguardError]) -> None:
    load_dataset(store, "grocery")
    rejected(
        lambda: load_dataset(store, "cdnow-sample", mode="append"), '"grocery"', 'mode "replace"', error=ConfigError
    )


def test_a_failed_load_changes_nothing(
    store: Store, rejected: Callable[..., ChurnguardError], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_dataset(store, "cdnow-sample")
    # a damaged copy of the telco file: one MonthlyCharges with a decimal comma
    name = "telco_customer_churn.csv.gz"
    text = gzip.decompress((real.DATA_DIR / name).read_bytes()).decode()
    text = text.replace("Mailed check,56.95,", 'Mailed check,"56,95",', 1)
    folder = tmp_path / "damaged"
    folder.mkdir()
    (folder / name).write_bytes(gzip.compress(text.encode()))
    monkeypatch.setattr(real, "DATA_DIR", folder)
    error = rejected(lambda: load_dataset(store, "telco"), "monthly_charges", '"56,95"')
    assert isinstance(error, ValidationError)
    assert store.get_meta("dataset") == "cdnow-sample"
