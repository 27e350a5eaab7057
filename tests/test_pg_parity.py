"""The same analyses on PostgreSQL and on DuckDB give the same answers (issue 8).

A simulated operator is loaded into a DuckDB file, copied into a database on a real PostgreSQL
server (``copy_store``), and every set-based stage runs on both: churn by period × branch, loss,
cohorts, survival, revenue retention, implicit churn, alerts and reason mix, segmentation (RFM,
ABC, lifecycle), CLV, point-in-time features and scoring with one saved model.  The SQL is the
same text; PostgreSQL gets it translated (churnguard/store/dialect.py).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import build_demo_store

import churnguard
from churnguard.store import Store
from churnguard.store.transfer import copy_store, store_tables

CUSTOMERS = 1_500


def assert_same(a: Any, b: Any, path: str = "") -> None:
    """Recursive equality with floats to 1e-9 (relative) — the engines sum in different orders."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{path}: keys {sorted(a)} vs {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), f"{path}: lengths {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
            assert (a is None or math.isnan(a)) and (b is None or math.isnan(b)), f"{path}: {a!r} vs {b!r}"
        else:
            assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), f"{path}: {a!r} vs {b!r}"
    else:
        assert a == b, f"{path}: {a!r} vs {b!r}"


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, pg_server: Any) -> Iterator[tuple[Store, Store]]:
    """(DuckDB, PostgreSQL) stores holding the same simulated operator."""
    import os

    from pgserver import create_database

    path, _ = build_demo_store(tmp_path_factory, customers=CUSTOMERS)
    folder = tmp_path_factory.mktemp("pg-parity")
    duck_path = folder / "duck.duckdb"
    duck_path.write_bytes(Path(path).read_bytes())
    duck = churnguard.connect(duck_path)
    admin = os.environ.get("CHURNGUARD_TEST_PG_URL") or pg_server.admin_url
    pg = churnguard.connect(create_database(admin))
    copy_store(duck, pg)
    yield duck, pg
    duck.close()
    pg.close()


def test_copy_store_copies_every_table_and_the_metadata(stores: tuple[Store, Store]) -> None:
    duck, pg = stores
    assert store_tables(duck) == store_tables(pg)
    for table in store_tables(duck):
        n = duck.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        assert pg.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == n, table
    assert pg.get_meta("dataset") == duck.get_meta("dataset") == "demo"
    assert dict(pg.columns("customers")) == dict(duck.columns("customers"))
    # The content, not only the counts: a few columns of every event, in one order.
    q = "SELECT customer_id, ts, event_type, value FROM events ORDER BY customer_id, ts, event_type, value"
    assert duck.execute(q).fetchall() == pg.execute(q).fetchall()


def _both(stores: tuple[Store, Store], fn: Any) -> tuple[Any, Any]:
    duck, pg = stores
    return fn(duck), fn(pg)


def _window(store: Store) -> tuple[Any, dt.date, dt.date]:
    from churnguard.metrics import rules_for
    from churnguard.metrics.churn import last_twelve_months

    rules = rules_for(store)
    start, end = last_twelve_months(rules.as_of)
    return rules, start, end


@pytest.mark.parametrize(
    "analysis",
    [
        "churn_by_month_and_branch",
        "churn_by_reason",
        "loss_by_branch",
        "cohorts",
        "survival",
        "revenue",
        "implicit",
        "alerts",
        "reason_mix",
    ],
)
def test_measurement_is_identical(stores: tuple[Store, Store], analysis: str) -> None:
    from churnguard import metrics

    def run(store: Store) -> dict[str, Any]:
        rules, start, end = _window(store)
        if analysis == "churn_by_month_and_branch":
            r = metrics.churn_report(store, start=start, end=end, rules=rules, period="month", by="branch")
        elif analysis == "churn_by_reason":
            r = metrics.churn_report(store, start=start, end=end, rules=rules, by="reason")
        elif analysis == "loss_by_branch":
            r = metrics.churn_loss(store, start=start, end=end, rules=rules, by="branch")
        elif analysis == "cohorts":
            r = metrics.cohort_retention(store, rules=rules, max_age=12)
        elif analysis == "survival":
            r = metrics.survival_curves(store, rules=rules, by="segment")
        elif analysis == "revenue":
            r = metrics.revenue_retention(store, start=start, end=end, period="quarter")
        elif analysis == "implicit":
            r = metrics.implicit_churn(store, rules=rules, limit=20)
        elif analysis == "alerts":
            r = metrics.churn_alerts(store, start=start, end=end, rules=rules, min_start_customers=20)
        else:
            return metrics.reason_mix(store, start=start, end=end, rules=rules)
        return r.to_dict()

    on_duck, on_pg = _both(stores, run)
    assert on_duck, "the analysis found nothing: the comparison would prove nothing"
    assert_same(on_duck, on_pg)


def test_segments_and_clv_are_identical(stores: tuple[Store, Store]) -> None:
    from churnguard.clv.score import score_customers
    from churnguard.segments import segment_customers

    for store in stores:
        segment_customers(store)
        score_customers(store)
    q = (
        "SELECT customer_id, recency_days, frequency, monetary, r_score, f_score, m_score, rfm_segment, value, "
        "tier, lifecycle_stage, p_alive, clv FROM customer_value ORDER BY customer_id"
    )
    duck, pg = (s.execute(q).df() for s in stores)
    assert len(duck) > CUSTOMERS / 2
    assert {"A", "B", "C"} <= set(duck["tier"].dropna()) and duck["clv"].notna().any()
    pd.testing.assert_frame_equal(duck, pg, check_dtype=False, rtol=1e-6)


def test_features_are_identical(stores: tuple[Store, Store]) -> None:
    from churnguard.features import build_features, observation_dates

    duck, pg = stores
    dates = observation_dates(duck, count=2)
    assert dates == observation_dates(pg, count=2)
    a = build_features(duck, dates).sort_values(["as_of", "customer_id"]).reset_index(drop=True)
    b = build_features(pg, dates).sort_values(["as_of", "customer_id"]).reset_index(drop=True)
    assert len(a) > CUSTOMERS and a.shape == b.shape
    assert list(a.columns) == list(b.columns)
    for col in a.columns:
        if isinstance(a[col].dtype, pd.CategoricalDtype) or a[col].dtype == object:
            assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), col
        else:
            pd.testing.assert_series_equal(a[col], b[col], check_dtype=False, rtol=1e-9, obj=col)


def test_scoring_with_one_model_is_identical(stores: tuple[Store, Store], tmp_path: Path) -> None:
    """Train once on DuckDB; score both stores with that model file: the same rows in ``scores``."""
    from churnguard.predict.events import score_store, train_from_store

    duck, pg = stores
    run = train_from_store(duck, horizon_days=30, count=4, algorithm="logistic", out=tmp_path, cox=False, folds=1)
    for store in stores:
        score_store(store, model=run.path)
    q = (
        "SELECT customer_id, as_of, probability, risk_band, value_at_risk, top_reason, reasons "
        "FROM scores ORDER BY customer_id"
    )
    a, b = duck.execute(q).df(), pg.execute(q).df()
    assert len(a) > CUSTOMERS / 2
    pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-9)


def test_pg_round_trip_back_to_duckdb(stores: tuple[Store, Store], tmp_path: Path) -> None:
    """PostgreSQL → a new DuckDB file: the same rows again (copy works both ways)."""
    _, pg = stores
    back = churnguard.connect(tmp_path / "back.duckdb")
    copy_store(pg, back)
    for table in ("customers", "subscriptions", "transactions", "churn_events"):
        q = f"SELECT * FROM {table}"
        assert sorted(back.execute(q).fetchall(), key=repr) == sorted(pg.execute(q).fetchall(), key=repr), table
    back.close()
