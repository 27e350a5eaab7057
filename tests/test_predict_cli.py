"""The ``churnguard model`` commands, run as child processes on IBM Telco (bundled copy)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import churnguard

CLI = [sys.executable, "-m", "churnguard"]
TELCO = Path(churnguard.__file__).parent / "datasets" / "data" / "telco_customer_churn.csv.gz"


def cg(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNGUARD_")}
    env["COLUMNS"] = "200"
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def telco(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The 80/20 stratified split (seed 0) written as CSV files, exactly as read from the source."""
    from sklearn.model_selection import train_test_split

    folder = tmp_path_factory.mktemp("telco")
    with gzip.open(TELCO, "rt", encoding="utf-8") as fh:
        df = pd.read_csv(fh, dtype=str, keep_default_na=False)
    train, test = train_test_split(df, test_size=0.2, stratify=df["Churn"], random_state=0)
    paths = {"train": folder / "train.csv", "test": folder / "test.csv", "folder": folder}
    train.to_csv(paths["train"], index=False)
    test.to_csv(paths["test"], index=False)
    return paths


@pytest.fixture(scope="module")
def trained(telco: dict[str, Path]) -> dict:
    folder = telco["folder"]
    db = folder / "store.duckdb"
    churnguard.connect(db).close()
    r = cg(
        "--db",
        str(db),
        "model",
        "train",
        "--table",
        str(telco["train"]),
        "--id",
        "customerID",
        "--label",
        "Churn",
        "--out",
        str(folder / "models" / "telco"),
        "--format",
        "json",
    )
    assert r.returncode == 0, r.stderr
    return {"result": json.loads(r.stdout), "db": db, "model": folder / "models" / "telco"}


def test_train_reports_features_drops_and_registers(trained: dict) -> None:
    out = trained["result"]
    assert out["algorithm"] in ("blend", "lightgbm", "logistic") and out["rows"] == 5634 and out["positives"] == 1495
    assert out["label"]["positive"] == "yes"
    features = {f["name"]: f for f in out["features"]}
    assert "customerID" not in features and "Churn" not in features
    assert features["TotalCharges"]["dtype"] == "numeric" and features["TotalCharges"]["category"] == "price"
    assert features["Contract"]["dtype"] == "categorical" and features["Contract"]["category"] == "product"
    assert features["tenure"]["category"] == "tenure"
    assert {"column": "customerID", "reason": "the customer id (--id)"} in out["dropped"]
    assert out["registered"] is True
    assert out["validation"]["auc"] > 0.8


def test_evaluate_on_the_held_out_split(trained: dict, telco: dict[str, Path]) -> None:
    r = cg("model", "evaluate", "--model", str(trained["model"]), "--table", str(telco["test"]), "--format", "json")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    for key in ("n", "auc", "pr_auc", "lift_at_10", "brier", "ece", "threshold", "confusion"):
        assert key in m
    assert m["n"] == 1409 and m["positives"] == 374
    assert m["auc"] >= 0.84
    assert m["lift_at_10"] >= 2.5
    assert m["brier"] < 0.15
    assert sum(m["confusion"][k] for k in ("tp", "fp", "fn", "tn")) == 1409
    # the expected-value threshold, with a value per customer taken from a column
    r = cg(
        "model",
        "evaluate",
        "--model",
        str(trained["model"]),
        "--table",
        str(telco["test"]),
        "--value",
        "TotalCharges",
        "--contact-cost",
        "50",
        "--save-rate",
        "0.3",
        "--format",
        "json",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["threshold_method"] == "expected_value"


def test_score_writes_ids_probabilities_and_reasons(trained: dict, telco: dict[str, Path]) -> None:
    folder = telco["folder"]
    for name in ("scores.csv", "scores.parquet"):
        r = cg(
            "model",
            "score",
            "--model",
            str(trained["model"]),
            "--table",
            str(telco["test"]),
            "--out",
            str(folder / name),
            "--format",
            "json",
        )
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["rows"] == 1409
    scores = pd.read_parquet(folder / "scores.parquet")
    csv = pd.read_csv(folder / "scores.csv", dtype={"customerID": str})
    expected = ["customerID", "probability", "risk_band", "top_reason", "reason_1", "reason_2", "reason_3", "reasons"]
    assert list(scores.columns) == expected and list(csv.columns) == expected
    test = pd.read_csv(telco["test"], dtype=str)
    assert scores["customerID"].tolist() == test["customerID"].tolist()
    assert scores["probability"].between(0, 1).all()
    risky = scores[scores["risk_band"] == "high"]
    assert len(risky) > 50
    assert risky["reason_1"].str.len().gt(0).all() and risky["top_reason"].notna().all()
    first = json.loads(risky["reasons"].iloc[0])
    assert {"feature", "category", "contribution", "value", "text_en", "text_zh"} <= set(first[0])
    assert first[0]["text_en"] == risky["reason_1"].iloc[0]
    assert set(scores["top_reason"].dropna()) <= {
        "usage",
        "price",
        "service",
        "product",
        "competitor",
        "payment",
        "tenure",
        "value",
        "other",
    }


def test_list_and_explain(trained: dict) -> None:
    r = cg("--db", str(trained["db"]), "model", "list", "--format", "json")
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)
    assert [m["model_id"] for m in listed] == [trained["result"]["model_id"]]
    assert listed[0]["registered"] and listed[0]["metrics"]["validation"]["auc"] > 0.8
    r = cg("model", "list", "--dir", str(trained["model"].parent), "--format", "json")
    assert json.loads(r.stdout)[0]["model_id"] == trained["result"]["model_id"]
    r = cg("model", "explain", "--model", str(trained["model"]), "--format", "json")
    assert r.returncode == 0, r.stderr
    ex = json.loads(r.stdout)
    assert ex["importance"][0]["feature"] in {"Contract", "tenure"}
    assert {d["direction"] for d in ex["drivers"]} <= {"raises churn", "lowers churn", "none"}
    assert any(d["term"] == "Contract = Two year" and d["coefficient"] < 0 for d in ex["drivers"])
    assert ex["partial_dependence"] and ex["partial_dependence"][0]["points"]
    r = cg("--lang", "zh", "model", "explain", "--model", str(trained["model"]))
    assert r.returncode == 0 and "驱动因素分析" in r.stdout


def test_bad_input_is_a_clear_error(trained: dict, telco: dict[str, Path]) -> None:
    folder = telco["folder"]
    broken = folder / "broken.csv"
    pd.read_csv(telco["test"], dtype=str).drop(columns=["Contract"]).to_csv(broken, index=False)
    r = cg(
        "model",
        "score",
        "--model",
        str(trained["model"]),
        "--table",
        str(broken),
        "--out",
        str(folder / "x.csv"),
        "--format",
        "json",
    )
    assert r.returncode != 0
    err = json.loads(r.stderr)["error"]
    assert err["problems"][0]["column"] == "Contract" and err["problems"][0]["source"] == "broken.csv"
    r = cg("model", "train", "--table", str(folder / "nope.csv"), "--label", "Churn", "--out", str(folder / "m"))
    assert r.returncode != 0 and "nope.csv" in r.stderr
    r = cg("model", "train", "--table", str(telco["test"]), "--label", "Churned", "--out", str(folder / "m"))
    assert r.returncode != 0 and "Churned" in r.stderr


def test_heavy_libraries_are_not_imported_for_help() -> None:
    code = (
        "import sys, runpy; sys.argv = ['churnguard', '--help']\n"
        "try:\n    runpy.run_module('churnguard', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('lightgbm', 'sklearn', 'scipy', 'lifelines', 'shap') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in r.stdout, r.stdout[-500:] + r.stderr[-2000:]
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, churnguard.predict as p; p.__all__; print(sorted(m for m in "
            "('lightgbm', 'sklearn', 'pandas') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.stdout.strip() == "[]", r.stdout + r.stderr
