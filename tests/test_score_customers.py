"""Scoring one customer or a batch: the restricted feature build and ``score_customers``.

- ``build_features(..., customers=ids)`` gives, for those ids, the rows of the full build: every
  column compared on the 20,000-customer demo store at two dates (integers and categories exactly;
  floats to 1e-12 relative: the engine may add a customer's rows in another order, which moves the
  last bits of a sum or a mean).
- ``score_customers`` gives the rows ``score_store`` wrote for the same customers (probability to
  1e-9, band, reasons, value at risk, expected days), says which ids were not scored and why, and
  replaces only their rows of the day; a write that would mix models on a day or start a partial
  newer run is refused with nothing changed.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import build_demo_store, build_scored_web_store

import churnguard
from churnguard.errors import ConfigError
from churnguard.features import build_features
from churnguard.metrics.activity import data_as_of
from churnguard.predict.events import CUSTOMER_SCORE_COLUMNS, ScoringConflictError, score_customers


def _same(a: pd.Series, b: pd.Series) -> bool:
    if isinstance(a.dtype, pd.CategoricalDtype) or a.dtype == object:
        left = [None if pd.isna(v) else v for v in a.astype(object)]
        right = [None if pd.isna(v) else v for v in b.astype(object)]
        return left == right
    if a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f":
        return bool(np.allclose(a.to_numpy(), b.to_numpy(), rtol=1e-12, atol=0, equal_nan=True))
    return bool(np.array_equal(a.to_numpy(), b.to_numpy()))


def test_a_restricted_build_gives_the_full_builds_rows_for_those_customers(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    path, _ = build_demo_store(tmp_path_factory)
    with churnguard.connect(path, read_only=True) as s:
        end = data_as_of(s)
        dates = [end - dt.timedelta(days=75), end + dt.timedelta(days=1)]
        full = build_features(s, dates, labels=False)
        rng = np.random.default_rng(11)
        active = sorted(set(full["customer_id"]))
        churned = s.execute(
            "SELECT min(customer_id) FROM churn_events WHERE churn_date < ?", [dates[0] - dt.timedelta(days=30)]
        ).fetchone()[0]
        ids = [*rng.choice(active, 50, replace=False).tolist(), churned, "NO-SUCH-CUSTOMER"]
        part = build_features(s, dates, labels=False, customers=ids)
        empty = build_features(s, dates, labels=False, customers=[])
        leftovers = s.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_cg_feat_%'").fetchone()[0]
    expected = full[full["customer_id"].isin(ids)].reset_index(drop=True)
    assert len(part) == len(expected) > 50  # the 50 at one or both dates; the churned one and the unknown id: none
    assert churned not in set(part["customer_id"])
    assert list(part.columns) == list(expected.columns)
    differing = [c for c in expected.columns if not _same(expected[c], part[c])]
    assert differing == []
    assert part.attrs["build"]["features"] == full.attrs["build"]["features"]
    assert empty.empty and leftovers == 0


def test_the_customers_argument_must_be_a_list(tmp_path_factory: pytest.TempPathFactory) -> None:
    path, _ = build_demo_store(tmp_path_factory)
    with churnguard.connect(path, read_only=True) as s, pytest.raises(ConfigError, match="customers: expected a list"):
        build_features(s, data_as_of(s), labels=False, customers="C0000001")


@pytest.fixture(scope="module")
def scored_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the scored web store (a model trained on it; every active customer scored)."""
    source = build_scored_web_store(tmp_path_factory)
    path = tmp_path_factory.mktemp("score-customers") / "store.duckdb"
    shutil.copyfile(source, path)
    return path


def _latest_run(s: Any) -> pd.DataFrame:
    return s.execute("SELECT * FROM scores WHERE as_of = (SELECT max(as_of) FROM scores) ORDER BY customer_id").df()


def test_score_customers_gives_the_rows_score_store_wrote_and_replaces_only_theirs(scored_store: Path) -> None:
    with churnguard.connect(scored_store) as s:
        before = _latest_run(s)
        as_of = before["as_of"].iloc[0].date()
        rng = np.random.default_rng(5)
        picked = rng.choice(before["customer_id"].to_numpy(), 40, replace=False).tolist()
        gone = s.execute("SELECT min(customer_id) FROM churn_events WHERE churn_date < ? - 60", [as_of]).fetchone()[0]
        ids = [picked[0], "NO-SUCH-CUSTOMER", *picked, gone]  # a repeat counts once
        computed = score_customers(s, ids, write=False)
        after_compute = _latest_run(s)
        written = score_customers(s, ids)
        after = _latest_run(s)
    assert list(computed.columns) == list(CUSTOMER_SCORE_COLUMNS)
    assert computed["customer_id"].tolist() == [picked[0], "NO-SUCH-CUSTOMER", *picked[1:], gone]
    status = dict(zip(computed["customer_id"], computed["status"], strict=True))
    assert status["NO-SUCH-CUSTOMER"] == "not_found" and status[gone] == "not_active"
    assert {status[c] for c in picked} == {"scored"}
    assert "not active on" in computed.set_index("customer_id").loc[gone, "message"]
    assert pd.isna(computed.set_index("customer_id").loc[gone, "probability"])
    pd.testing.assert_frame_equal(after_compute, before)  # write=False writes nothing

    expected = before.set_index("customer_id").loc[picked]
    for got in (computed, written):
        rows = got.set_index("customer_id").loc[picked]
        assert (rows["as_of"] == as_of).all() and (rows["model_id"] == expected["model_id"]).all()
        np.testing.assert_allclose(rows["probability"].astype(float), expected["probability"], rtol=0, atol=1e-9)
        np.testing.assert_allclose(rows["value_at_risk"].astype(float), expected["value_at_risk"], rtol=1e-9)
        np.testing.assert_allclose(
            rows["expected_days_to_churn"].astype(float), expected["expected_days_to_churn"], rtol=1e-9
        )
        assert rows["risk_band"].tolist() == expected["risk_band"].tolist()
        assert rows["top_reason"].tolist() == expected["top_reason"].tolist()
        assert [json.loads(r) for r in rows["reasons"]] == [json.loads(r) for r in expected["reasons"]]
        assert all("text_zh" in r[0] and "text_en" in r[0] for r in map(json.loads, rows["reasons"]))

    assert len(after) == len(before)  # replaced, not added
    mine = after["customer_id"].isin(picked)
    assert (after.loc[mine, "scored_at"] > before.loc[mine, "scored_at"]).all()
    others = ["customer_id", "probability", "scored_at", "reasons"]
    pd.testing.assert_frame_equal(
        after.loc[~mine, others].reset_index(drop=True), before.loc[~mine, others].reset_index(drop=True)
    )


def test_a_write_that_would_hide_or_mix_a_run_is_refused_and_changes_nothing(scored_store: Path) -> None:
    with churnguard.connect(scored_store) as s:
        before = s.execute("SELECT * FROM scores ORDER BY as_of, customer_id").df()
        latest = before["as_of"].max().date()
        one = _latest_run(s)["customer_id"].iloc[0]
        with pytest.raises(ScoringConflictError, match="at-risk list would show nothing else"):
            score_customers(s, [one], as_of=latest + dt.timedelta(days=7))
        synthetic_day = before.loc[before["model_id"] == "synthetic", "as_of"].max().date()
        with pytest.raises(ScoringConflictError, match="come from model synthetic"):
            score_customers(s, [one], as_of=synthetic_day)
        preview = score_customers(s, [one], as_of=latest + dt.timedelta(days=7), write=False)
        after = s.execute("SELECT * FROM scores ORDER BY as_of, customer_id").df()
        left = s.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_cg_%'").fetchone()[0]
    assert preview["status"].tolist() == ["scored"] and 0 <= preview["probability"].iloc[0] <= 1
    pd.testing.assert_frame_equal(after, before)
    assert left == 0
