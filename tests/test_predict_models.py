"""Models end to end on synthetic tables whose truth is known: reasons, contributions, persistence,
scoring edge cases, calibration, the time-based backtest and the registry."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnguard.predict import backtest, evaluate, list_models, load_model, register, train
from churnguard.predict.errors import ModelFormatError, TableError
from churnguard.predict.explain import DEDUP_MIN_ROWS, _tree_contributions, top_positive
from churnguard.predict.models import (
    BLEND_WEIGHTS,
    Calibrator,
    choose_blend_weight,
    choose_calibration,
    log_loss,
    sigmoid,
)
from churnguard.store import Store


def synthetic(n: int = 2500, seed: int = 0, months: int = 0) -> pd.DataFrame:
    """Churn depends on ``usage_drop`` only; every other column is noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = rng.random(n) < sigmoid(2.5 * x - 1.0)
    out = pd.DataFrame(
        {
            "customer": [f"K{i:06d}" for i in range(n)],
            "usage_drop": x.round(3),
            "noise_a": rng.normal(size=n).round(3),
            "noise_b": rng.uniform(0, 100, n).round(1),
            "plan": rng.choice(["basic", "pro", "max"], n),
            "paperless": rng.choice(["Yes", "No"], n),
            "churn": np.where(y, "Yes", "No"),
        }
    )
    if months:
        out["as_of"] = pd.to_datetime("2024-01-01") + pd.to_timedelta(31 * (np.arange(n) % months), unit="D")
        out["as_of"] = out["as_of"].dt.to_period("M").dt.to_timestamp()
    return out


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return synthetic()


@pytest.fixture(scope="module")
def models(data: pd.DataFrame) -> dict[str, object]:
    trained = {a: train(data, label="churn", id_col="customer", algorithm=a, seed=0) for a in ("lightgbm", "logistic")}
    trained["blend"] = train(data, label="churn", id_col="customer", seed=0)  # the default
    assert trained["blend"].algorithm == "blend"  # this table's validation weight is inside (0, 1)
    return trained


@pytest.mark.parametrize("algorithm", ["lightgbm", "logistic", "blend"])
def test_the_cause_is_the_top_reason_of_high_risk_customers(models: dict, data: pd.DataFrame, algorithm: str) -> None:
    model = models[algorithm]
    test = synthetic(1000, seed=1)
    p = model.predict(test)
    high = test[p >= np.quantile(p, 0.9)]
    explained = model.explain(high, top=3)
    firsts = [r[0]["feature"] for r in explained["reasons"]]
    assert np.mean([f == "usage_drop" for f in firsts]) >= 0.95
    assert (explained["top_reason"] == "usage").mean() >= 0.95
    reason = explained["reasons"].iloc[0][0]
    assert set(reason) == {"feature", "category", "contribution", "value", "text"}
    assert reason["text"].startswith("usage_drop is ") and "(high: top" in reason["text"]
    # contributions are positive and in decreasing order
    for reasons in explained["reasons"]:
        c = [r["contribution"] for r in reasons]
        assert all(v > 0 for v in c) and c == sorted(c, reverse=True)
    assert evaluate((test["churn"] == "Yes").astype(int), p)["auc"] > 0.8
    assert model.importance().iloc[0]["feature"] == "usage_drop"


@pytest.mark.parametrize("algorithm", ["lightgbm", "logistic", "blend"])
def test_contributions_sum_to_the_raw_margin(models: dict, data: pd.DataFrame, algorithm: str) -> None:
    model = models[algorithm]
    X = model.matrix(data.head(500))
    C = model.contributions_matrix(X)
    assert C.shape == (500, len(model.features) + 1)
    assert np.allclose(C.sum(axis=1), model.margin_matrix(X), atol=1e-8)
    # calibrated probabilities are a monotone map of the margin
    p = model.predict(data.head(500))
    order = np.argsort(model.predict_margin(data.head(500)))
    assert np.all(np.diff(p[order]) >= -1e-12)


def test_grouped_tree_shap_equals_lightgbms_own(models: dict) -> None:
    model = models["lightgbm"]
    rng = np.random.default_rng(3)
    base = synthetic(300, seed=4)
    big = base.iloc[rng.integers(0, 300, DEDUP_MIN_ROWS + 2000)].reset_index(drop=True)
    X = model.matrix(big)
    grouped = _tree_contributions(model, X)
    direct = model.booster.predict(X, pred_contrib=True)
    assert np.allclose(grouped, direct, atol=1e-12)


@pytest.mark.parametrize("leaves", [4, 15])
def test_tabulated_tree_shap_equals_pred_contrib(leaves: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(leaves)
    frame = synthetic(3000, seed=leaves)
    frame.loc[rng.random(3000) < 0.1, "noise_b"] = np.nan  # missing values with their own direction
    model = train(frame, label="churn", id_col="customer", algorithm="lightgbm", seed=0, params={"num_leaves": leaves})
    new = synthetic(2000, seed=99)
    new.loc[:50, "plan"] = "unknown plan"  # unseen level → missing
    new.loc[50:100, "usage_drop"] = np.nan  # missing where training had none
    X = model.matrix(new)
    direct = model.booster.predict(X, pred_contrib=True)
    tabulated = _tree_contributions(model, X, tables=True)
    assert model._shap_tables.ok
    assert np.allclose(tabulated, direct, atol=1e-10)
    model.save(tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert np.allclose(_tree_contributions(back, X, tables=True), direct, atol=1e-10)
    assert back._shap_tables is not None and back._shap_tables.ok


def test_top_positive_contributions() -> None:
    rng = np.random.default_rng(0)
    C = rng.normal(size=(500, 12))
    C[0] = -1.0  # no positive contribution at all
    idx3, val3, ok3 = top_positive(C, 3)
    idx6, val6, _ = top_positive(C, 6)  # the argpartition path
    assert np.array_equal(idx3[1:], idx6[1:, :3]) and np.array_equal(val3, val6[:, :3])
    expected = np.argsort(-C, axis=1, kind="stable")[:, :3]
    assert np.array_equal(idx3[1:], expected[1:])
    assert not ok3[0].any() and ok3[1:, 0].all()


def test_reason_texts_in_english_and_chinese(models: dict) -> None:
    model = models["lightgbm"]
    row = pd.DataFrame([{"usage_drop": 2.9, "noise_a": 0.0, "noise_b": 50.0, "plan": "basic", "paperless": "No"}])
    en = model.explain(row, lang="en")["reasons"].iloc[0]
    zh = model.explain(row, lang="zh")["reasons"].iloc[0]
    assert en[0]["text"] == "usage_drop is 2.9 (high: top 10 %)"
    assert zh[0]["text"] == "usage_drop 为 2.9（偏高：最高 10 %）"
    cols = model.reasons(row)
    parsed = json.loads(cols["reasons"].iloc[0])
    assert parsed[0]["text_en"] == en[0]["text"] and parsed[0]["text_zh"] == zh[0]["text"]
    assert parsed[0]["category"] == "usage" and parsed[0]["value"] == 2.9
    assert cols["reason_1"].iloc[0] == en[0]["text"] and cols["reason_1_zh"].iloc[0] == zh[0]["text"]


def test_save_and_load_give_identical_predictions(models: dict, data: pd.DataFrame, tmp_path: Path) -> None:
    for algorithm, model in models.items():
        folder = tmp_path / algorithm
        model.save(folder)
        files = sorted(p.name for p in folder.iterdir())
        lgbm_files = ["booster.txt", "model.json", "shap_tables.npz"]
        assert files == (lgbm_files if algorithm in ("lightgbm", "blend") else ["model.json"])
        back = load_model(folder)
        assert back.model_id == model.model_id and back.features == model.features
        assert back.algorithm == algorithm and back.calibrator.method == model.calibrator.method
        assert back.blend_weight == model.blend_weight
        assert np.array_equal(back.predict(data), model.predict(data))
        assert np.array_equal(back.reasons(data)["reasons"], model.reasons(data)["reasons"])
        assert back.explain(data.head(50))["reasons"].tolist() == model.explain(data.head(50))["reasons"].tolist()
        meta = json.loads((folder / "model.json").read_text())
        assert meta["format_version"] == (2 if algorithm == "blend" else 1)
        assert meta["model_id"].startswith("m-") and len(meta["model_id"]) == len("m-20240101T000000-abcdef")
        for key in ("mode", "created_at", "training_seconds", "features", "dropped", "label", "calibration", "metrics"):
            assert key in meta
        assert {"column": "customer", "reason": "the customer id (--id)"} in meta["dropped"]
        assert meta["metrics"]["validation"]["auc"] > 0.8


def test_a_newer_model_format_is_refused(models: dict, tmp_path: Path) -> None:
    folder = models["logistic"].save(tmp_path / "m")
    meta = json.loads((folder / "model.json").read_text())
    meta["format_version"] = 99
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="version 99"):
        load_model(folder)
    with pytest.raises(ModelFormatError, match=r"model\.json"):
        load_model(tmp_path / "nowhere")


def test_unseen_categories_and_missing_columns_at_scoring(models: dict) -> None:
    model = models["lightgbm"]
    rows = pd.DataFrame(
        {"usage_drop": [1.0, 1.0], "noise_a": [0.0, 0.0], "noise_b": [5.0, 5.0], "plan": ["basic", "diamond"]}
    )
    rows["paperless"] = ["No", "No"]
    p = model.predict(rows)
    assert np.isfinite(p).all()
    with pytest.raises(TableError) as info:
        model.predict(rows.drop(columns=["noise_b"]))
    assert "noise_b" in str(info.value)
    filled = model.predict(rows.drop(columns=["noise_b"]), missing="fill")
    assert np.isfinite(filled).all()


def test_training_is_deterministic(data: pd.DataFrame, models: dict) -> None:
    again = train(data, label="churn", id_col="customer", algorithm="lightgbm", seed=0)
    assert np.array_equal(again.predict(data), models["lightgbm"].predict(data))


def test_auto_keeps_the_better_algorithm_on_validation(data: pd.DataFrame) -> None:
    model = train(data, label="churn", id_col="customer", algorithm="auto", seed=0)
    by = model.meta["validation_auc_by_algorithm"]
    assert set(by) == {"lightgbm", "logistic"}
    assert model.algorithm == max(by, key=by.get)
    assert model.meta["algorithm_requested"] == "auto"


def test_blend_weight_is_chosen_on_validation_and_its_contributions_are_exact(models: dict, data: pd.DataFrame) -> None:
    model = models["blend"]
    info = model.meta["blend"]
    losses = {float(w): v for w, v in info["log_loss_by_weight"].items()}
    assert sorted(losses) == list(BLEND_WEIGHTS)
    assert model.blend_weight == info["weight_lightgbm"] == min(losses, key=losses.get)
    assert 0 < model.blend_weight < 1 and losses[model.blend_weight] < min(losses[0.0], losses[1.0])
    assert set(model.meta["validation_auc_by_algorithm"]) == {"lightgbm", "logistic", "blend"}
    # the margin is the weighted log-odds of its two parts, and so are the contributions
    w = model.blend_weight
    X = model.matrix(data)
    trees = model.booster.predict(X, raw_score=True)
    assert np.allclose(model.margin_matrix(X), w * trees + (1 - w) * model.linear.margin(X), atol=1e-12)
    C = model.contributions_matrix(X)
    tree_shap = model.booster.predict(X, pred_contrib=True)
    assert np.allclose(C[:, :-1], w * tree_shap[:, :-1] + (1 - w) * model.linear.contributions(X, X.shape[1]))
    assert np.allclose(C.sum(axis=1), model.margin_matrix(X), atol=1e-8)
    # a blend of a perfect and a useless margin: all the weight goes to the perfect one
    y = (np.arange(400) % 2).astype(float)
    good, bad = 4 * (y - 0.5), np.zeros(400)
    assert log_loss(y, good) < log_loss(y, bad)
    assert choose_blend_weight(good, bad, y)[0] == 1.0 and choose_blend_weight(bad, good, y)[0] == 0.0


def test_calibration_choice() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(-1, 1.5, 4000)
    y = (rng.random(4000) < sigmoid(truth)).astype(float)
    calibrated, info, _ = choose_calibration(truth, y, seed=0)
    assert calibrated.method == "none", info
    overconfident, info, p_cv = choose_calibration(3 * truth + 1, y, seed=0)
    assert overconfident.method in ("platt", "isotonic"), info
    assert np.mean((p_cv - y) ** 2) < np.mean((sigmoid(3 * truth + 1) - y) ** 2)
    platt = Calibrator.fit("platt", 3 * truth + 1, y)
    assert platt.a == pytest.approx(1 / 3, abs=0.05)


def test_time_validation_and_backtest_never_train_on_later_dates() -> None:
    frame = synthetic(3000, seed=5, months=6)
    model = train(frame, label="churn", id_col="customer", time_col="as_of", algorithm="logistic", seed=0)
    split = model.meta["split"]
    assert split["kind"] == "time" and split["validation_from"] == "2024-06-01"
    assert split["train_to"] < split["validation_from"]
    assert model.meta["data_window"] == {
        "time_col": "as_of",
        "from": "2024-01-01",
        "to": "2024-06-01",
        "validation_from": "2024-06-01",
    }
    folds = backtest(frame, label="churn", time_col="as_of", folds=3, id_col="customer", algorithm="logistic")
    assert [f["test_from"] for f in folds] == ["2024-04-01", "2024-05-01", "2024-06-01"]
    for f in folds:
        assert f["train_to"] < f["test_from"]
        assert f["n_train"] == int((frame["as_of"] < f["test_from"]).sum())
        assert f["auc"] > 0.75
    gapped = backtest(
        frame, label="churn", time_col="as_of", folds=1, gap_days=45, id_col="customer", algorithm="logistic"
    )
    assert gapped[0]["train_to"] == "2024-04-01"  # with a 45-day horizon, May labels reach past June 1


def test_register_and_list(models: dict, tmp_path: Path, store: Store) -> None:
    a = models["logistic"]
    b = models["lightgbm"]
    a.save(tmp_path / "models" / "a")
    b.save(tmp_path / "models" / "b")
    row = register(store, a, tmp_path / "models" / "a")
    assert row["mode"] == "snapshot" and row["n_features"] == len(a.features)
    db = store.execute("SELECT model_id, algorithm, path, n_rows, metrics, features FROM model_runs").fetchall()
    assert len(db) == 1 and db[0][0] == a.model_id and db[0][1] == "logistic"
    assert json.loads(db[0][4])["validation"]["auc"] > 0.8
    assert json.loads(db[0][5])[0] == {"name": "usage_drop", "dtype": "numeric", "category": "usage"}
    register(store, a, tmp_path / "models" / "a")  # again: replaced, not duplicated
    assert store.execute("SELECT count(*) FROM model_runs").fetchone()[0] == 1
    listed = list_models(store, tmp_path / "models")
    assert {m["model_id"] for m in listed} == {a.model_id, b.model_id}
    by_id = {m["model_id"]: m for m in listed}
    assert by_id[a.model_id]["registered"] and not by_id[b.model_id]["registered"]
    created = [m["created_at"] for m in listed]
    assert created == sorted(created, reverse=True)
    # Inside the caller's transaction: registering joins it (a refused nested BEGIN would abort it).
    with store.transaction():
        register(store, b, tmp_path / "models" / "b", active=True)
        store.execute("UPDATE model_runs SET active = false WHERE model_id <> ?", [b.model_id])
    assert store.execute("SELECT model_id FROM model_runs WHERE active").fetchall() == [(b.model_id,)]
    with pytest.raises(RuntimeError, match="undo"), store.transaction():
        store.execute("DELETE FROM model_runs")
        register(store, a, tmp_path / "models" / "a")
        raise RuntimeError("undo")
    assert store.execute("SELECT count(*) FROM model_runs").fetchone()[0] == 2  # rolled back together


@dataclass(frozen=True)
class Spec:
    name: str
    category: str

    def describe(self, value: float | None, lang: str = "en") -> str:
        if lang == "zh":
            return f"使用量下降 {value:.0%}" if value is not None else "无数据"
        return f"usage fell {value:.0%}" if value is not None else "no data"


CATALOG = {"usage_drop": Spec("usage_drop", "usage"), "noise_a": Spec("noise_a", "service")}


def test_catalog_texts_and_categories(data: pd.DataFrame, tmp_path: Path) -> None:
    model = train(data, label="churn", id_col="customer", algorithm="logistic", catalog=CATALOG, seed=0)
    assert {f.name: f.category for f in model.plan.features}["noise_a"] == "service"
    row = data[data["usage_drop"] > 2].head(1)
    reasons = model.explain(row)["reasons"].iloc[0]
    assert reasons[0]["text"] == f"usage fell {row['usage_drop'].iloc[0]:.0%}"
    assert model.explain(row, lang="zh")["reasons"].iloc[0][0]["text"].startswith("使用量下降")
    model.save(tmp_path / "c")
    back = load_model(tmp_path / "c")
    assert back.catalog is CATALOG
