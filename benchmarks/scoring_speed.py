"""Scoring with reasons: 1M customers, probability + top-3 reasons (en and zh) + the JSON column.

Two synthetic tables of 1,000,000 rows (seeded, generated once into ``work/``, untimed):

- ``telco``: rows drawn from IBM Telco with replacement, ``tenure`` redrawn (0–72),
  ``MonthlyCharges`` jittered ±5 %, ``TotalCharges`` = tenure × monthly × U(0.9, 1.1) as text with
  1 % blanks, 1 % of ``Contract`` set to an unseen level — 19 mixed features; the models are
  trained on the real Telco table (``lightgbm`` with its validation-chosen size, and ``logistic``);
- ``wide``: 30 continuous features (N(0, 1), 2 % missing), churn from a non-linear function of six
  of them (interactions); LightGBM with its default settings trained on 100,000 rows — many
  trees, more features per tree, hence more cells.

Each (table, model) is scored in a child process (its own peak RSS): the timed part is
``model.score(frame)`` — encoding, probabilities, exact tree SHAP / β·z contributions, top-3
selection, texts and JSON — on the frame already in memory (reading the file is timed apart).
For comparison LightGBM's own ``pred_contrib`` is timed on 20,000 of the rows.  Finally the real
CLI, ``churnguard model score --table telco.parquet --out …parquet``, is timed from outside
(start-up, reading and writing included).  Results are appended to ``results/scoring_speed.json``.

    .venv/bin/python benchmarks/scoring_speed.py [--rows 1000000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
WORK = HERE / "work" / "scoring"
DATA = HERE.parent / "churnguard" / "datasets" / "data"
RESULTS = HERE / "results" / "scoring_speed.json"
SEED = 20261123


def make_telco(rows: int, path: Path) -> None:
    import pandas as pd

    from churnguard.predict import read_table

    base = read_table(DATA / "telco_customer_churn.csv.gz")
    rng = np.random.default_rng(SEED)
    big = base.iloc[rng.integers(0, len(base), rows)].reset_index(drop=True)
    big["customerID"] = [f"S{i:07d}" for i in range(rows)]
    monthly = pd.to_numeric(big["MonthlyCharges"]) * rng.uniform(0.95, 1.05, rows)
    tenure = rng.integers(0, 73, rows)
    big["tenure"] = tenure.astype(str)
    big["MonthlyCharges"] = monthly.round(2).astype(str)
    total = (tenure * monthly * rng.uniform(0.9, 1.1, rows)).round(2).astype(str)
    total[rng.random(rows) < 0.01] = " "
    big["TotalCharges"] = total
    big.loc[rng.random(rows) < 0.01, "Contract"] = "Three year"
    big.to_parquet(path, index=False)


def wide_frame(rows: int, seed: int):
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 30))
    margin = 1.2 * X[:, 0] - 0.8 * X[:, 1] * (X[:, 2] > 0) + 0.6 * np.abs(X[:, 3]) + 0.5 * X[:, 4] * X[:, 5] - 1.5
    y = rng.random(rows) < 1 / (1 + np.exp(-margin))
    X[rng.random(X.shape) < 0.02] = np.nan
    frame = pd.DataFrame(X, columns=[f"usage_{i}" if i < 10 else f"f{i}" for i in range(30)])
    frame.insert(0, "customer_id", [f"W{i:07d}" for i in range(rows)])
    frame["churn"] = y.astype(int)
    return frame


def prepare(rows: int) -> dict[str, Path]:
    from churnguard.predict import read_table, train

    WORK.mkdir(parents=True, exist_ok=True)
    paths = {"telco": WORK / f"telco_{rows}.parquet", "wide": WORK / f"wide_{rows}.parquet"}
    if not paths["telco"].exists():
        make_telco(rows, paths["telco"])
    if not paths["wide"].exists():
        wide_frame(rows, SEED + 1).drop(columns=["churn"]).to_parquet(paths["wide"], index=False)
    telco = read_table(DATA / "telco_customer_churn.csv.gz")
    for algorithm in ("lightgbm", "logistic"):
        folder = WORK / f"model_telco_{algorithm}"
        if not (folder / "model.json").exists():
            train(telco, label="Churn", id_col="customerID", algorithm=algorithm, seed=0).save(folder)
    folder = WORK / "model_wide_lightgbm"
    if not (folder / "model.json").exists():
        frame = wide_frame(100_000, SEED + 2)
        train(frame, label="churn", id_col="customer_id", algorithm="lightgbm", seed=0).save(folder)
    return paths


def child(table: Path, model_dir: Path) -> None:
    """Score ``table`` with the model; print JSON with the timings."""
    import pandas as pd

    from churnguard.predict import load_model
    from churnguard.predict.explain import contributions

    model = load_model(model_dir)
    t0 = time.perf_counter()
    frame = pd.read_parquet(table)
    read_s = time.perf_counter() - t0
    n = len(frame)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    t0 = time.perf_counter()
    scored = model.score(frame, top=3)
    score_s = time.perf_counter() - t0
    X = model.matrix(frame)
    t0 = time.perf_counter()
    C = contributions(model, X)
    contrib_s = time.perf_counter() - t0
    out = {
        "rows": n,
        "algorithm": model.algorithm,
        "features": len(model.features),
        "read_s": round(read_s, 3),
        "score_s": round(score_s, 3),
        "rows_per_s": round(n / score_s),
        "contributions_s": round(contrib_s, 3),
        "contributions_rows_per_s": round(n / contrib_s),
        "rss_before_mb": rss_before,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "reasons_non_empty": float(scored["reason_1"].notna().mean()),
        "sample": {k: (v if not isinstance(v, float) else round(v, 4)) for k, v in scored.iloc[0].items()},
    }
    if model.booster is not None:
        sub = X[:20_000]
        t0 = time.perf_counter()
        direct = model.booster.predict(sub, pred_contrib=True, num_threads=2)
        direct_s = time.perf_counter() - t0
        out["pred_contrib_rows_per_s"] = round(len(sub) / direct_s)
        out["max_abs_difference_vs_pred_contrib"] = float(np.abs(direct - C[:20_000]).max())
        tables = model._shap_tables
        out["trees"] = model.booster.num_trees()
        out["num_leaves"] = (model.meta.get("lightgbm") or {}).get("params", {}).get("num_leaves")
        out["shap_tables"] = bool(tables is not None and tables.ok)
        out["shap_table_cells"] = int(sum(g.table.shape[1] for g in tables.groups)) if tables is not None else 0
    print(json.dumps(out, default=str))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--child", nargs=2, metavar=("TABLE", "MODEL"))
    ap.add_argument("--note", default="")
    args = ap.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]))
        return
    t0 = time.perf_counter()
    paths = prepare(args.rows)
    prepare_s = time.perf_counter() - t0
    load_start = os.getloadavg()
    cases = {
        "telco_lightgbm": (paths["telco"], WORK / "model_telco_lightgbm"),
        "telco_logistic": (paths["telco"], WORK / "model_telco_logistic"),
        "wide_lightgbm": (paths["wide"], WORK / "model_wide_lightgbm"),
    }
    runs: dict[str, list[dict]] = {k: [] for k in cases}
    for _ in range(args.repeat):
        for name, (table, model) in cases.items():
            cmd = [sys.executable, __file__, "--child", str(table), str(model)]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                raise SystemExit(res.stderr)
            runs[name].append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(name, {k: v for k, v in runs[name][-1].items() if k != "sample"}, flush=True)
    out_file = WORK / "scores_cli.parquet"
    cli = [sys.executable, "-m", "churnguard", "model", "score", "--model", str(WORK / "model_telco_lightgbm")]
    cli += ["--table", str(paths["telco"]), "--out", str(out_file), "--format", "json"]
    t0 = time.perf_counter()
    proc = subprocess.run(cli, capture_output=True, text=True)
    cli_s = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    cli_result = json.loads(proc.stdout)
    best = {k: max(r["rows_per_s"] for r in v) for k, v in runs.items()}
    record = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rows": args.rows,
        "seed": SEED,
        "prepare_s": round(prepare_s, 1),
        "runs": runs,
        "best_rows_per_s": best,
        "target_rows_per_s": 100_000,
        "cli": {
            "command": "churnguard model score --model model_telco_lightgbm --table telco_1000000.parquet --out …",
            "wall_s": round(cli_s, 2),
            "rows_per_s_wall": round(args.rows / cli_s),
            "reported": {k: cli_result[k] for k in ("read_seconds", "score_seconds", "rows_per_second")},
        },
        "cpus": os.cpu_count(),
        "load_average_at_start": load_start,
        "load_average_at_end": os.getloadavg(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "note": args.note,
    }
    history = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    history.append(record)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(history, indent=2, default=str) + "\n")
    print(json.dumps({"best_rows_per_s": best, "cli": record["cli"]}, indent=2))


if __name__ == "__main__":
    main()
