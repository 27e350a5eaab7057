"""Benchmark: point-in-time features for 1 M customers × 12 observation dates (~107 M events), against pandas.

Reproduce::

    .venv/bin/python benchmarks/features_pit.py                      # build once (see metrics_1m.py), then ~5 min
    .venv/bin/python benchmarks/features_pit.py --customers 200000   # a smaller operator (its own store)
    .venv/bin/python benchmarks/features_pit.py --engines churnguard --dates 3

1. Builds once (skipped when present) the simulator's operator as Parquet and as a store, exactly
   as ``metrics_1m.py`` does (it is the same ``benchmarks/work/sim_1m.duckdb``).
2. Runs each step in its own child process (this file with ``--child``):

   - ``baseline``: the simple per-customer aggregation the issue quotes (``SELECT customer_id,
     count(*), sum(value), max(ts) FROM events GROUP BY customer_id``), for events/s on this machine;
   - ``churnguard``: ``build_features(store, dates, horizon_days=30)`` — every feature block, the
     labels, the pandas DataFrame (one row per customer active at each date);
   - ``pandas``: the usage block only (``features_pandas_reference.py``: 18 columns, the same
     definitions), from the Parquet files.

   Dates: the first of each month of 2025 (``--dates`` of them, from January).  Seconds are
   wall time around the child and the child's own time after its imports ("in process"); peak
   memory is the child's ``ru_maxrss``.  A child is stopped past ``--timeout`` or
   ``--memory-cap-gb`` (recorded as its outcome).
3. Compares the 18 usage columns of the two frames, row by row (same rows, same values).

One record per invocation is appended to ``benchmarks/results/features_pit.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
RESULTS = HERE / "results" / "features_pit.json"
sys.path.insert(0, str(HERE))

from metrics_1m import build, run_child  # noqa: E402  (shared: the same store and child runner)

STEPS = ("baseline", "churnguard", "pandas")


def dates_of(count: int) -> list[dt.date]:
    return [dt.date(2025, m, 1) for m in range(1, count + 1)]


# -- the children ------------------------------------------------------------------------------------


def child_main(step: str, db: Path, sim: Path, n_dates: int, out: Path) -> None:
    """Import first (timed apart), then compute; write the result summary (and the compared columns)."""
    t_import = time.perf_counter()
    if step == "pandas":
        ref = importlib.import_module("features_pandas_reference")
    else:
        import churnguard.features  # noqa: F401
        from churnguard.store.connection import connect
    t0 = time.perf_counter()
    payload: dict[str, Any] = {}
    dates = dates_of(n_dates)
    if step == "baseline":
        with connect(db, read_only=True) as store:
            rows = store.execute(
                "SELECT count(*), sum(n) FROM (SELECT customer_id, count(*) AS n, sum(value) AS s, max(ts) AS m "
                "FROM events GROUP BY customer_id)"
            ).fetchone()
        payload = {"customers": rows[0], "rows": int(rows[1])}
    elif step == "churnguard":
        from churnguard.features import build_features

        with connect(db, read_only=True) as store:
            frame = build_features(store, dates, horizon_days=30)
        payload = {
            "rows": len(frame),
            "features": len(frame.columns) - 5,
            "label_rate": round(float(frame["label"].mean()), 6),
            "blocks_seconds": frame.attrs["build"]["seconds"],
            "blocks_cpu_seconds": frame.attrs["build"]["cpu_seconds"],
        }
    else:
        frame = ref.usage_features(sim, dates)
        payload = {"rows": len(frame), "features": len(ref.COLUMNS)}
    seconds = time.perf_counter() - t0
    if step in ("churnguard", "pandas"):  # untimed: the compared columns, for the parent
        cols = ["customer_id", "as_of", *importlib.import_module("features_pandas_reference").COLUMNS]
        part = frame[cols].copy()
        part["as_of"] = part["as_of"].astype(str)
        part.to_parquet(out.with_suffix(".parquet"), index=False)
    payload.update({"seconds_in_process": round(seconds, 2), "seconds_imports": round(t0 - t_import, 2)})
    out.write_text(json.dumps(payload))


# -- the parent ----------------------------------------------------------------------------------------


def compare(a: Path, b: Path) -> dict[str, Any]:
    """Row-by-row comparison of the compared columns of two frames (NaN equals NaN)."""
    import numpy as np
    import pandas as pd
    from features_pandas_reference import COLUMNS

    left, right = pd.read_parquet(a), pd.read_parquet(b)
    m = left.merge(right, on=["customer_id", "as_of"], how="outer", suffixes=("", "_pd"), indicator=True)
    only = m["_merge"].value_counts().to_dict()
    both = m[m["_merge"] == "both"]
    differing = {}
    for c in COLUMNS:
        x, y = both[c].to_numpy(float), both[c + "_pd"].to_numpy(float)
        bad = int((~((np.isnan(x) & np.isnan(y)) | np.isclose(x, y, rtol=1e-9, atol=1e-9))).sum())
        if bad:
            differing[c] = bad
    return {
        "match": not differing and only.get("left_only", 0) == 0 and only.get("right_only", 0) == 0,
        "rows_compared": len(both),
        "columns_compared": len(COLUMNS),
        "rows_only_churnguard": int(only.get("left_only", 0)),
        "rows_only_pandas": int(only.get("right_only", 0)),
        "differing_values": differing,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--dates", type=int, default=12, help="observation dates: the first of each month of 2025")
    parser.add_argument("--engines", default=",".join(STEPS), help="comma-separated: baseline, churnguard, pandas")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--memory-cap-gb", type=float, default=18.0)
    parser.add_argument("--note", default="", help="a note stored with the record")
    parser.add_argument("--child", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sim", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    label = "1m" if ns.customers == 1_000_000 else str(ns.customers)
    sim = (ns.sim or WORK / f"sim_{ns.customers}").resolve()
    db = (ns.db or WORK / f"sim_{label}.duckdb").resolve()
    if ns.child:
        child_main(ns.child, db, sim, ns.dates, ns.child_out)
        return
    if not 1 <= ns.dates <= 12:
        parser.error("--dates: 1 to 12 (the months of 2025)")
    steps = [s.strip() for s in ns.engines.split(",") if s.strip()]
    if bad := [s for s in steps if s not in STEPS]:
        parser.error(f"unknown step: {', '.join(bad)}")
    folder = WORK / "features_pit"
    folder.mkdir(parents=True, exist_ok=True)
    started, load_start = dt.datetime.now(dt.UTC), os.getloadavg()
    cap_mb = int(ns.memory_cap_gb * 1024)
    built = build(ns.customers, sim, db, timeout=ns.timeout, memory_cap_mb=cap_mb)
    events = built["rows"]["events"]
    print(json.dumps({"build": built}), flush=True)
    records: dict[str, Any] = {}
    for step in steps:
        out = folder / f"{step}.json"
        out.unlink(missing_ok=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", step, "--dates", str(ns.dates)]
        cmd += ["--db", str(db), "--sim", str(sim), "--child-out", str(out)]
        res = run_child(cmd, timeout=ns.timeout, memory_cap_mb=cap_mb, log=folder / f"{step}.log")
        if res["outcome"] == "ok":
            res.update(json.loads(out.read_text()))
            res["events_per_second_wall"] = round(events / res["seconds_wall"])
            res["events_per_second_in_process"] = round(events / res["seconds_in_process"])
        else:
            res["log_tail"] = (folder / f"{step}.log").read_text(errors="replace")[-1500:]
        records[step] = res
        print(f"{step}: {json.dumps(res)}", flush=True)
    check = None
    if all(records.get(s, {}).get("outcome") == "ok" for s in ("churnguard", "pandas")):
        check = compare(folder / "churnguard.parquet", folder / "pandas.parquet")
        print(f"check: {json.dumps(check)}", flush=True)

    import duckdb
    import numpy
    import pandas
    import pyarrow

    ratio = None
    if records.get("baseline", {}).get("outcome") == "ok" and records.get("churnguard", {}).get("outcome") == "ok":
        ratio = round(records["baseline"]["seconds_in_process"] / records["churnguard"]["seconds_in_process"], 4)
    record = {
        "date": started.isoformat(timespec="seconds"),
        "customers": ns.customers,
        "observation_dates": [d.isoformat() for d in dates_of(ns.dates)],
        "events": events,
        "store": built.get("store"),
        "results": records,
        "check_usage_columns": check,
        "features_vs_baseline_speed": ratio,
        "note": ns.note,
        "timeout_s": ns.timeout,
        "memory_cap_mb": cap_mb,
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in load_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "pandas": pandas.__version__,
        "pyarrow": pyarrow.__version__,
        "numpy": numpy.__version__,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    history = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    history.append(record)
    RESULTS.write_text(json.dumps(history, indent=2) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k != "results"}, indent=2))


if __name__ == "__main__":
    main()
