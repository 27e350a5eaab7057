"""Event-based early warning on the simulator: train from the store, backtest by time, score with reasons.

The simulator's churn has documented causes (docs/simulator.md): usage falls before a voluntary
churn, unresolved tickets and poor service raise the service hazard, unpaid bills lead to
suspension. The model trained on the store's own tables must find them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import build_demo_store

import churnguard
from churnguard.predict.events import ModelNotFoundError, score_store, train_from_store
from churnguard.reasons import DRIVER_CODES

CLI = [sys.executable, "-m", "churnguard"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo store with a model trained on it (6 monthly dates, a 30-day horizon) and a scoring run."""
    path, _ = build_demo_store(tmp_path_factory)
    folder = tmp_path_factory.mktemp("early-warning")
    db = folder / "demo.duckdb"
    shutil.copyfile(path, db)
    with churnguard.connect(db) as store:
        from churnguard.clv.score import score_customers
        from churnguard.segments import segment_customers

        segment_customers(store)
        score_customers(store)
        training = train_from_store(store, horizon_days=30, count=6, folds=2, max_rows=25_000)
        run = score_store(store, keep_frame=True)
    return {"db": db, "training": training, "run": run}


def test_training_is_time_based_and_reports_quality_on_a_date_it_never_saw(trained: dict[str, Any]) -> None:
    t = trained["training"]
    last = max(t.observation_dates)
    assert len(t.observation_dates) == 6 and t.test["as_of"] == last.isoformat()
    # Every date is a month start whose 30-day horizon ends by the data's end (2025-12-31).
    assert all(d.day == 1 and d + dt.timedelta(days=30) <= dt.date(2025, 12, 31) for d in t.observation_dates)
    assert 0.65 < t.test["auc"] < 0.95 and t.test["lift_at_10"] > 2.0
    assert t.test["n"] > 10_000 and 0 < t.test["positives"] < t.test["n"] * 0.1
    assert t.backtest, "the backtest has folds"
    for fold in t.backtest:
        # never trains on an outcome that was still unknown on the first test date
        assert dt.date.fromisoformat(fold["train_to"]) + dt.timedelta(days=30) <= dt.date.fromisoformat(
            fold["test_from"]
        )
        assert fold["test_to"] < last.isoformat()  # the final test date stays unseen
        assert fold["auc"] > 0.6


def test_the_top_drivers_recover_the_simulators_documented_causes(trained: dict[str, Any]) -> None:
    t = trained["training"]
    assert {d["category"] for d in t.drivers} <= DRIVER_CODES
    assert t.drivers[0]["category"] == "usage"
    shares = t.driver_categories  # importance share by driver category, largest first
    assert set(shares) <= DRIVER_CODES and sum(shares.values()) == pytest.approx(1, abs=1e-3)
    # Usage decline is the strongest built-in signal; service (tickets, NPS) comes next, and late or
    # unpaid bills (the involuntary channel) carry weight too.
    assert list(shares)[:2] == ["usage", "service"], shares
    assert shares["usage"] > 0.4 and shares["service"] > 0.05 and shares.get("payment", 0) > 0.01, shares


def test_the_registry_records_the_model_as_the_active_one(trained: dict[str, Any]) -> None:
    t = trained["training"]
    with churnguard.connect(trained["db"]) as store:
        rows = store.execute(
            "SELECT model_id, mode, active, horizon_days, data_from, data_to, n_features, metrics FROM model_runs"
        ).fetchall()
    assert len(rows) == 1
    model_id, mode, active, horizon, data_from, data_to, n_features, metrics = rows[0]
    assert (model_id, mode, active, horizon) == (t.model_id, "events", True, 30)
    assert data_from == min(t.observation_dates) and data_to == max(t.observation_dates)
    assert n_features > 30 and "auc" in metrics
    assert (t.path / "model.json").exists() and (t.path / "cox.json").exists()


def test_scores_cover_every_active_customer_with_reasons_in_both_languages(trained: dict[str, Any]) -> None:
    run = trained["run"]
    with churnguard.connect(trained["db"]) as store:
        active = store.execute(
            "SELECT count(DISTINCT customer_id) FROM subscriptions WHERE end_date IS NULL"
        ).fetchone()[0]
        scores = store.execute("SELECT * FROM scores").fetchdf()
        value = store.execute("SELECT customer_id, max(clv) AS clv FROM customer_value GROUP BY 1").fetchdf()
    assert run.as_of == dt.date(2026, 1, 1) and len(scores) == run.customers == active
    assert scores["probability"].between(0, 1).all() and scores["model_id"].eq(run.model_id).all()
    assert set(scores["risk_band"]) == {"high", "medium", "low"}
    assert (scores["risk_band"] == "high").mean() == pytest.approx(0.10, abs=0.04)
    high, low = (scores.loc[scores["risk_band"] == b, "probability"] for b in ("high", "low"))
    assert high.min() >= low.max()
    first = json.loads(scores.sort_values("probability").iloc[-1]["reasons"])
    assert 1 <= len(first) <= 3
    for reason in first:
        assert reason["category"] in DRIVER_CODES and reason["contribution"] > 0
        assert reason["text_en"] and reason["text_zh"] and reason["text_en"] != reason["text_zh"]
    assert scores["top_reason"].isin(DRIVER_CODES).all()
    assert scores["expected_days_to_churn"].gt(0).all()
    # Value at risk = probability × value (CLV where the customer has one).
    merged = scores.merge(value, on="customer_id").dropna(subset=["clv"])
    assert len(merged) > 1000
    np.testing.assert_allclose(merged["value_at_risk"], merged["probability"] * merged["clv"], rtol=1e-9)


def test_riskier_bands_churn_more_in_the_holdout_month(trained: dict[str, Any]) -> None:
    """Scored at the last training date's horizon start, the high band's churn is far above the low band's."""
    t = trained["training"]
    with churnguard.connect(trained["db"]) as store:
        from churnguard.features import build_features

        last = max(t.observation_dates)
        frame = build_features(store, last, horizon_days=30)
        run = score_store(store, as_of=last, keep_frame=True)
    joined = run.frame.merge(frame[["customer_id", "label"]], on="customer_id")
    rate = joined.groupby("risk_band")["label"].mean()
    assert rate["high"] > 2.5 * rate["low"], rate


def test_cox_expected_days_match_lifelines_within_the_grid_error(trained: dict[str, Any]) -> None:
    from churnguard.predict.cox import load_cox

    cox = load_cox(trained["training"].path)
    assert cox is not None and cox.concordance_test is not None and cox.concordance_test > 0.6
    frame = trained["run"].frame
    assert frame["expected_days_to_churn"].between(1, cox.grid[-1] + 1e-6).all()
    # Riskier customers are expected to leave sooner.
    corr = pd.Series(frame["probability"]).corr(frame["expected_days_to_churn"], method="spearman")
    assert corr < -0.3


def test_scoring_without_a_model_says_how_to_train_one(store_templates: dict[str, Path], tmp_path: Path) -> None:
    db = tmp_path / "empty.duckdb"
    shutil.copyfile(store_templates["empty"], db)
    with churnguard.connect(db) as store, pytest.raises(ModelNotFoundError, match="model train"):
        score_store(store)


def test_the_cli_scores_and_writes_a_file(trained: dict[str, Any], tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    shutil.copyfile(trained["db"], db)
    out = tmp_path / "scores.csv"
    env = {**os.environ, "COLUMNS": "200"}
    r = subprocess.run(
        [*CLI, "--db", str(db), "score", "--as-of", "2025-12-01", "--out", str(out), "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert (
        data["as_of"] == "2025-12-01"
        and data["customers"] > 10_000
        and sum(data["bands"].values()) == data["customers"]
    )
    written = pd.read_csv(out)
    assert len(written) == data["customers"] and {"customer_id", "probability", "reasons"} <= set(written.columns)
    r = subprocess.run(
        [*CLI, "--db", str(db), "--lang", "zh", "score", "--as-of", "2025-12-01"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "风险等级" in r.stdout and "使用量下降" in r.stdout
