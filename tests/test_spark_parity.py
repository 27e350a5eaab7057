"""The Spark engine: the same churnguard SQL on DuckDB and on Spark (local[2]) gives the same results.

One simulator store (1,000 customers, every table) is exported to a Parquet lake; each stage runs
on the DuckDB store and on the lake through a real Spark session, and the results must be equal
(frames sorted, floats to 1e-9).  One Spark session serves the whole module.  The translation
fixes are also checked one by one on their SQL text (no Spark needed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import build_demo_store

import churnguard
from churnguard.engines.spark_sql import split_recursive, to_spark
from churnguard.errors import StoreError
from churnguard.store import Store

CUSTOMERS = 1_000

# -- the translation, on SQL text ------------------------------------------------------------------


def test_date_minus_date_becomes_datediff_only_for_dates() -> None:
    schema = {"t": {"a": "DATE", "b": "DATE", "n": "INTEGER", "ts": "TIMESTAMP"}}
    out = to_spark("SELECT a - b AS d, a - 1 AS e, n - 1 AS f, (a + 3) - b AS g FROM t", schema=schema)
    assert "DATEDIFF(a, b) AS d" in out
    assert "a - 1 AS e" in out and "n - 1 AS f" in out
    assert "DATEDIFF((a + 3), b) AS g" in out or "DATEDIFF(a + 3, b) AS g" in out
    # a bound date parameter is typed by its value
    out = to_spark("SELECT $d - a AS x FROM t", params={"d": dt.date(2024, 1, 1)}, schema=schema)
    assert "DATEDIFF(CAST(:d AS DATE), a)" in out


def test_structural_fixes() -> None:
    zipped = to_spark("SELECT unnest($l) AS period, unnest($f) AS p_from")
    assert "INLINE(ARRAYS_ZIP(:l, :f)) AS (period, p_from)" in zipped
    assert "RANGE(0, :n + 1) AS a(age)" in to_spark("SELECT a.age FROM range(0, $n + 1) a(age)")
    assert "`range`" in to_spark("SELECT CAST(range AS INTEGER) AS age FROM range(1, 5)")
    assert "ADD_MONTHS(c, 3)" in to_spark("SELECT c + to_months(3) FROM t")
    assert "MATERIALIZED" not in to_spark("WITH x AS MATERIALIZED (SELECT 1 AS a) SELECT * FROM x")
    assert "UNIX_MICROS" in to_spark("SELECT epoch(a - b) FROM t")
    assert "CAST(a AS DOUBLE) / 2.0" in to_spark("SELECT a / 2.0 FROM t")
    ordered = to_spark("SELECT list(struct_pack(a, b) ORDER BY a DESC, b)[1:$k] FROM t")
    assert "ARRAY_SORT(COLLECT_LIST(STRUCT(" in ordered and "SLICE(" in ordered
    top = to_spark("SELECT max_by(v, k, 2) FROM t")
    assert "SORT_ARRAY(FILTER(COLLECT_LIST(STRUCT(k AS k, v AS v))" in top


def test_recursive_cte_is_split_out() -> None:
    sql = (
        "WITH closure AS (WITH RECURSIVE closure(b, a) AS (SELECT id, id FROM t UNION ALL "
        "SELECT c.b, t.parent FROM closure c JOIN t ON t.id = c.a WHERE t.parent IS NOT NULL) "
        "SELECT b, a FROM closure) SELECT * FROM closure"
    )
    rest, parts = split_recursive(sql, lambda text: "_rec1")
    assert len(parts) == 1 and parts[0].columns == ("b", "a")
    assert "RECURSIVE" not in rest.upper() and "_rec1" in rest
    assert "_rec1_delta" in parts[0].step and "closure" not in parts[0].anchor


# -- one Spark session, one store and its lake ------------------------------------------------------


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from churnguard.store.spark import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from churnguard.engines.lake import export_lake

    path, _ = build_demo_store(tmp_path_factory, customers=CUSTOMERS, seed=11)
    folder = tmp_path_factory.mktemp("lake") / "lake"
    with churnguard.connect(path, migrate=False, read_only=True) as s:
        export_lake(s, folder)
    return path, folder


@pytest.fixture(scope="module")
def stores(lake: tuple[Path, Path], spark: Any) -> Iterator[tuple[Store, Store]]:
    from churnguard.store.spark import connect_spark

    duck = churnguard.connect(lake[0], migrate=False, read_only=True)
    lake_store = connect_spark(lake[1], spark=spark)
    yield duck, lake_store
    lake_store.close()
    duck.close()


def assert_same_frame(a: pd.DataFrame, b: pd.DataFrame, keys: list[str]) -> None:
    """Equal frames: same columns, same rows (sorted by ``keys``), numbers to 1e-9, the rest exactly."""
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    a = a.sort_values(keys, kind="mergesort").reset_index(drop=True)
    b = b.sort_values(keys, kind="mergesort").reset_index(drop=True)
    for c in a.columns:
        x, y = a[c], b[c]
        if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(x):
            np.testing.assert_allclose(
                x.to_numpy(dtype=float), y.to_numpy(dtype=float), rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=c
            )
        else:
            xs = [None if pd.isna(v) else str(v) for v in x.astype(object)]
            ys = [None if pd.isna(v) else str(v) for v in y.astype(object)]
            assert xs == ys, c


# -- the connection API ------------------------------------------------------------------------------


def test_connection_api_on_spark(stores: tuple[Store, Store]) -> None:
    _, sp = stores
    raw = sp.raw
    assert sp.has_table("events") and not sp.has_table("no_such_table")
    assert ("ts", "TIMESTAMP") in sp.columns("events") and ("signup_date", "DATE") in sp.columns("customers")
    assert sp.get_meta("churn_definition") == "contractual" and sp.get_meta("nope") is None
    # positional and named parameters; description; fetchone after the rows are used up
    cur = raw.execute("SELECT customer_id, signup_date FROM customers WHERE customer_id = ?", ["C0000001"])
    assert [d[0] for d in cur.description] == ["customer_id", "signup_date"]
    row = cur.fetchone()
    assert row[0] == "C0000001" and isinstance(row[1], dt.date) and cur.fetchone() is None
    n = sp.execute("SELECT count(*) FROM customers WHERE signup_date < $d", {"d": dt.date(2030, 1, 1)}).fetchone()[0]
    assert n == CUSTOMERS
    # temp tables: create, insert (one row, many rows, a select), read, drop
    raw.execute("CREATE TEMP TABLE _t_dates (as_of DATE)")
    raw.executemany("INSERT INTO _t_dates VALUES (?)", [[dt.date(2024, 1, 1)], [dt.date(2024, 2, 1)]])
    raw.execute("INSERT INTO _t_dates VALUES (?)", [dt.date(2024, 3, 1)])
    raw.execute("CREATE OR REPLACE TEMP TABLE _t_next AS SELECT as_of + 1 AS d FROM _t_dates")
    assert sorted(r[0] for r in raw.execute("SELECT d FROM _t_next").fetchall())[0] == dt.date(2024, 1, 2)
    frame = raw.execute("SELECT * FROM _t_dates ORDER BY as_of").df()
    assert pd.api.types.is_datetime64_any_dtype(frame["as_of"]) and len(frame) == 3
    assert raw.execute("SELECT count(*) AS n FROM _t_dates").fetchnumpy()["n"][0] == 3
    assert raw.execute("SELECT as_of FROM _t_dates").to_arrow_table().num_rows == 3
    raw.execute("DROP TABLE _t_next")
    raw.execute("DROP TABLE IF EXISTS _t_next")
    raw.execute("DROP TABLE _t_dates")
    assert not sp.has_table("_t_dates")
    # frames registered as views
    raw.register("_t_frame", pd.DataFrame({"x": [1, 2, 3]}))
    assert raw.execute("SELECT sum(x) FROM _t_frame").fetchone()[0] == 6
    raw.unregister("_t_frame")
    with sp.transaction():  # accepted; nothing is written
        pass


def test_writes_to_the_lake_are_refused(stores: tuple[Store, Store]) -> None:
    _, sp = stores
    for sql, word in [
        ("INSERT INTO customers (customer_id) VALUES ('X')", "INSERT into customers"),
        ("DELETE FROM events", "DELETE into events"),
        ("UPDATE customers SET plan = 'x'", "UPDATE into customers"),
        ("CREATE TABLE x AS SELECT 1", "CREATE into x"),
        ("DROP TABLE customers", "DROP into customers"),
    ]:
        with pytest.raises(StoreError, match=word):
            sp.execute(sql)
    with pytest.raises(StoreError, match="read-only"):
        sp.set_meta("dataset_as_of", "2020-01-01")
    assert sp.execute("SELECT count(*) FROM customers").fetchone()[0] == CUSTOMERS


# -- parity, stage by stage --------------------------------------------------------------------------


@pytest.mark.slow
def test_churn_by_month_and_branch(stores: tuple[Store, Store]) -> None:
    from churnguard.engines.spark_stages import churn_by_month_branch

    duck, sp = stores
    a, b = churn_by_month_branch(duck), churn_by_month_branch(sp)  # the same function takes either store
    assert a.to_dict() == b.to_dict()
    assert len(a.rows) > 12 and a.totals["churned_customers"] > 0
    reasons = churn_by_month_branch(duck, by="reason", period=None), churn_by_month_branch(sp, by="reason", period=None)
    assert reasons[0].to_dict() == reasons[1].to_dict()


@pytest.mark.slow
def test_cohort_matrix(stores: tuple[Store, Store]) -> None:
    from churnguard.engines.spark_stages import cohort_matrix

    duck, sp = stores
    a, b = cohort_matrix(duck, max_age=12, by="plan"), cohort_matrix(sp, max_age=12, by="plan")
    assert a.to_dict() == b.to_dict()
    assert len(a.cohorts) > 3


@pytest.mark.slow
def test_implicit_churn(stores: tuple[Store, Store]) -> None:
    from churnguard.engines.spark_stages import implicit_churn_report

    duck, sp = stores
    a, b = implicit_churn_report(duck, limit=25), implicit_churn_report(sp, limit=25)
    assert a.to_dict() == b.to_dict()
    assert a.implicit_churners > 0 and len(a.customers) == min(25, a.implicit_churners)


@pytest.mark.slow
def test_segmentation_inputs(stores: tuple[Store, Store]) -> None:
    from churnguard.engines.spark_stages import clv_summary, rfm_inputs, rfm_segments

    duck, sp = stores
    assert_same_frame(rfm_inputs(duck), rfm_inputs(sp), ["customer_id"])
    assert rfm_segments(duck).to_dict() == rfm_segments(sp).to_dict()
    assert_same_frame(clv_summary(duck), clv_summary(sp), ["customer_id"])


@pytest.mark.slow
def test_point_in_time_features(stores: tuple[Store, Store]) -> None:
    from churnguard.engines.spark_stages import features
    from churnguard.features.build import observation_dates
    from churnguard.metrics.activity import data_as_of

    duck, sp = stores
    dates = observation_dates(duck, count=2, end=data_as_of(duck) - dt.timedelta(days=30))
    a, b = features(duck, dates), features(sp, dates)
    assert len(a) > 500 and a["label"].sum() > 0
    assert a.attrs["build"]["features"] == b.attrs["build"]["features"]
    assert list(a.dtypes.astype(str)) == list(b.dtypes.astype(str))
    assert_same_frame(a, b, ["as_of", "customer_id"])


@pytest.mark.slow
def test_batch_scoring_distributed(stores: tuple[Store, Store], tmp_path: Path) -> None:
    from churnguard.engines.spark_stages import score_lake
    from churnguard.features import CATALOG, build_features
    from churnguard.features.build import observation_dates
    from churnguard.metrics.activity import data_as_of
    from churnguard.predict import load_model, train

    duck, sp = stores
    end = data_as_of(duck) - dt.timedelta(days=30)
    history = build_features(duck, observation_dates(duck, end=end, count=3))
    model = train(
        history.drop(columns=["days_to_churn", "churned"]),
        label="label",
        id_col="customer_id",
        time_col="as_of",
        algorithm="logistic",
        catalog=CATALOG,
        seed=0,
    )
    model.save(tmp_path / "model")
    as_of = data_as_of(duck) + dt.timedelta(days=1)
    run = score_lake(sp, tmp_path / "model", None, tmp_path / "scores", partitions=3)
    assert run.as_of == as_of and run.partitions == 3
    got = pd.read_parquet(tmp_path / "scores").set_index("customer_id").sort_index()
    frame = build_features(duck, as_of, labels=False)
    expected = pd.Series(load_model(tmp_path / "model").predict(frame), index=frame["customer_id"].astype(str))
    assert len(got) == len(expected) == run.customers
    np.testing.assert_allclose(got["probability"].to_numpy(), expected.loc[got.index].to_numpy(), rtol=1e-9)
    assert set(got["risk_band"]) <= {"high", "medium", "low"} and got["top_reason"].notna().all()
    assert (got["as_of"] == as_of).all()


def test_cli_on_spark_matches_the_store(stores: tuple[Store, Store], lake: tuple[Path, Path]) -> None:
    """``churnguard spark metrics`` and ``churnguard --db spark:///lake metrics cohorts`` print what DuckDB computes.

    In process (Typer's runner), so the commands join this module's Spark session instead of starting a JVM.
    """
    import json

    from typer.testing import CliRunner

    from churnguard.cli.app import app
    from churnguard.metrics import rules_for
    from churnguard.metrics.cohorts import cohort_retention

    duck, _ = stores
    expected = json.loads(json.dumps(cohort_retention(duck, rules=rules_for(duck), max_age=6).to_dict(), default=str))
    runner = CliRunner()
    args = ["spark", "metrics", "--lake", str(lake[1]), "--what", "cohort", "--max-age", "6", "--format", "json"]
    done = runner.invoke(app, [*args, "--master", "local[2]"])
    assert done.exit_code == 0, done.output[-2000:]
    assert json.loads(done.stdout) == expected
    url = f"spark://{lake[1].resolve()}?master=local[2]"
    done = runner.invoke(app, ["--db", url, "metrics", "cohorts", "--max-age", "6", "--format", "json"])
    assert done.exit_code == 0, done.output[-2000:]
    assert json.loads(done.stdout) == expected
