"""Benchmark: DuckDB vs Spark local vs pandas at 1 M customers / ~107 M events (issue 8).

Reproduce::

    .venv/bin/python benchmarks/engines.py                        # ~10 min on a quiet machine once the data exist
    .venv/bin/python benchmarks/engines.py --stages churn,cohorts --engines duckdb,spark
    .venv/bin/python benchmarks/engines.py --stages churn,cohorts,features,churn_events
    .venv/bin/python benchmarks/engines.py --customers 300000     # another size (its own sub-lake and store)

The data: the simulator's operator (``churnguard simulate --seed 7 --file-format parquet``), the
same as ``metrics_1m.py``, which builds the 1 M folder and store once.  Three forms of the same rows:

- the simulator's **Parquet folder** ``benchmarks/work/sim_N/<table>/part-*.parquet``: what pandas
  reads.  The simulator writes one part per 100,000 customers and the first ``k`` blocks of
  customers of a larger run equal a run of ``k`` blocks, so the folders of 100,000 and 300,000
  customers are the first 1 and 3 parts of the 1 M folder, linked, not copied (:func:`prepare_lake`);
- the **DuckDB store** ``benchmarks/work/sim_<N>.duckdb``, loaded from that folder with
  ``churnguard ingest-all`` (``metrics_1m.build``), where DuckDB runs;
- the **lake** ``benchmarks/work/lake_N/`` that ``churnguard export`` writes from the store
  (``churnguard.engines.lake.export_lake``: the canonical tables and ``churnguard_meta``, µs
  timestamps), which Spark reads.

The stages, each engine computing the same definitions (contractual churn, 30 days' grace, as of
2025-12-31):

- ``churn``: churn by month × branch (the five provinces), 2023-01 … 2025-12;
- ``cohorts``: the monthly signup-cohort retention matrix, 24 ages;
- ``features``: point-in-time features for every customer active on each observation date
  (2025-10-01, 2025-11-01, 2025-12-01), from ~107 M events.  DuckDB and Spark: ``build_features``
  (every block: 74 features and the labels); pandas: the 18 usage features only
  (``features_pandas_reference.py``);
- ``churn_events`` (when asked for; DuckDB and Spark): churn by month × branch with the
  non-contractual definition on events (30 days without an event = churned), which reads every event.

DuckDB runs churnguard's functions on the store; Spark runs **the same functions** on
``churnguard.store.spark.connect_spark(lake)`` (churnguard's SQL translated to Spark SQL);
pandas runs the reference implementations.

Every (engine, stage) runs in its own child process (this file with ``--child``), started in a
new session; the parent samples the resident memory of **every process of that session** every
0.1 s (``/proc/*/stat`` session id, ``/proc/PID/statm``), so Spark's JVM, started by pyspark
as a grandchild, counts: ``peak_tree_rss_mb`` is the largest sum seen (shared pages are counted
once per process, so it can overstate slightly).  ``peak_rss_mb`` is the child's own
``ru_maxrss`` (the Python process alone).  ``seconds_wall`` is measured around the child
(interpreter start, imports and for Spark the JVM's start included); ``seconds_in_process`` is
the stage alone, after imports and (Spark) after the session is up; ``seconds_session`` is
Spark's session start.  A child is stopped past ``--timeout`` or once its tree passes
``--memory-cap-gb`` (recorded as its outcome: the machine is shared).

The engines' results are compared (churn rows, cohort cells; for features the row count and the
sums of the usage columns that every engine computes).  One record per invocation is appended to
``benchmarks/results/engines.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import importlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work"
RESULTS = HERE / "results" / "engines.json"
sys.path.insert(0, str(HERE))

from metrics_1m import CHURN_FROM, CHURN_TO, COHORT_MAX_AGE, build, normalise_cohorts  # noqa: E402

ENGINES = ("duckdb", "spark", "pandas")
STAGES = ("churn", "cohorts", "features", "churn_events")
DEFAULT_STAGES = ("churn", "cohorts", "features")
#: ``churn_events``: churn by month × branch with the non-contractual definition on events (activity
#: days from every event, this many days without one = churned); it reads all the events.
INACTIVITY_DAYS = 30
FEATURE_DATES = (dt.date(2025, 10, 1), dt.date(2025, 11, 1), dt.date(2025, 12, 1))
#: Usage columns every engine's feature stage computes; their sums are compared.
COMPARED_FEATURES = (
    "usage_events_7d",
    "usage_events_30d",
    "usage_events_90d",
    "usage_days_30d",
    "usage_data_mb_30d",
    "usage_call_minutes_30d",
    "days_since_usage",
)
FULL_LAKE = 1_000_000
PART_CUSTOMERS = 100_000
SPARK_ENV = {"SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable, "TZ": "UTC"}


# -- data ------------------------------------------------------------------------------------------


def lake_path(customers: int) -> Path:
    return WORK / f"sim_{customers}"


def store_path(customers: int) -> Path:
    return WORK / ("sim_1m.duckdb" if customers == 1_000_000 else f"sim_{customers}.duckdb")


def prepare_lake(customers: int) -> dict[str, Any]:
    """The Parquet lake of ``customers`` (a multiple of 100,000 up to 1 M): the first parts of the 1 M lake.

    The 1 M lake itself is simulated by :func:`metrics_1m.build` when missing.  A smaller lake is a
    folder of symbolic links to the first ``customers / 100,000`` part files of every table (the
    branches' one file in full) and its own ``truth.json`` (the simulator's record for that size).
    """
    full = lake_path(FULL_LAKE)
    if customers == FULL_LAKE or (lake_path(customers) / "truth.json").exists():
        return {"lake": str(lake_path(customers).relative_to(ROOT)), "how": "simulated or reused"}
    if customers % PART_CUSTOMERS or customers > FULL_LAKE:
        raise SystemExit(f"--customers {customers}: a multiple of {PART_CUSTOMERS:,} up to {FULL_LAKE:,}")
    if not (full / "truth.json").exists():
        raise SystemExit(f"{full} is missing: run benchmarks/metrics_1m.py --only churn first (it simulates 1 M)")
    from churnguard.datasets import sim_params as P

    parts = customers // PART_CUSTOMERS
    out = lake_path(customers)
    shutil.rmtree(out, ignore_errors=True)
    for table in sorted(p.name for p in full.iterdir() if p.is_dir()):
        (out / table).mkdir(parents=True)
        files = sorted((full / table).glob("part-*.parquet"))
        for f in files if table == "branches" else files[:parts]:
            (out / table / f.name).symlink_to(f)
    truth = json.loads((full / "truth.json").read_text())
    start, end = dt.date.fromisoformat(truth["start"]), dt.date.fromisoformat(truth["end"])
    record = P.truth(P.period(start, end), customers, truth["seed"])
    (out / "truth.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return {"lake": str(out.relative_to(ROOT)), "how": f"first {parts} part(s) of the 1 M lake, linked"}


def spark_lake_path(customers: int) -> Path:
    return WORK / f"lake_{customers}"


def prepare_spark_lake(customers: int) -> dict[str, Any]:
    """The lake Spark reads: ``churnguard export`` of the store (``export_lake``), written once.

    It holds the same rows as the simulator's lake plus ``churnguard_meta`` (the data set's as-of
    date and churn definition), which the Spark store reads as DuckDB reads its own.
    """
    folder = spark_lake_path(customers)
    manifest = folder / "churnguard_lake.json"
    if manifest.exists():
        done = json.loads(manifest.read_text())
        return {
            "spark_lake": str(folder.relative_to(ROOT)),
            "export": {"reused": True, "seconds": done["seconds"], "rows": done["rows"]},
            "spark_lake_mb": round(sum(t["bytes"] for t in done["tables"]) / 1e6, 1),
        }
    from churnguard.engines.lake import export_lake
    from churnguard.store.connection import connect

    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    with connect(store_path(customers), read_only=True) as store:
        store.raw.execute("SET enable_progress_bar = false")
        done = export_lake(store, folder)
    return {
        "spark_lake": str(folder.relative_to(ROOT)),
        "export": {"seconds": round(time.perf_counter() - t0, 2), "rows": done.to_dict()["rows"]},
        "spark_lake_mb": round(sum(t.bytes for t in done.tables) / 1e6, 1),
    }


def prepare(customers: int, *, memory_cap_mb: int, spark: bool = True) -> dict[str, Any]:
    """The lakes and the DuckDB store of ``customers`` (built once; later runs reuse them)."""
    if customers != FULL_LAKE:
        build(FULL_LAKE, lake_path(FULL_LAKE), store_path(FULL_LAKE), timeout=600, memory_cap_mb=memory_cap_mb)
    lake = prepare_lake(customers)
    built = build(customers, lake_path(customers), store_path(customers), timeout=600, memory_cap_mb=memory_cap_mb)
    built["lake_how"] = lake["how"]
    built["lake_rows_events"] = _parquet_rows(lake_path(customers) / "events")
    if spark:
        built.update(prepare_spark_lake(customers))
    return built


def _parquet_rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in sorted(folder.glob("part-*.parquet")))


# -- the child runner: the whole process tree's memory ---------------------------------------------


def _session_pids(sid: int) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 3 and int(fields[3]) == sid:  # state, ppid, pgrp, session
            pids.append(int(entry.name))
    return pids


PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_blocks * 512
    return total


def run_tree(
    cmd: list[str],
    *,
    timeout: float,
    memory_cap_mb: int,
    log: Path,
    env: dict[str, str] | None = None,
    watch_dir: Path | None = None,
) -> dict[str, Any]:
    """Run ``cmd`` in a new session; wall seconds, the child's ``ru_maxrss`` and the session's peak RSS.

    Every 0.1 s the resident memory of every process in the child's session is summed (the JVM
    that pyspark starts included); past ``timeout`` seconds or ``memory_cap_mb`` of that sum the
    whole session is killed and that is the outcome.  With ``watch_dir``, the largest size of
    that folder seen (DuckDB's spill files) is returned as ``peak_spill_mb``.
    """
    t0 = time.perf_counter()
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            cmd,
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    outcome, peak_tree, peak_spill, samples = "ok", 0, 0, 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        tree = sum(_rss_bytes(p) for p in _session_pids(proc.pid))
        peak_tree, samples = max(peak_tree, tree), samples + 1
        if watch_dir is not None and samples % 5 == 0:
            peak_spill = max(peak_spill, _dir_bytes(watch_dir))
        if time.perf_counter() - t0 > timeout:
            outcome = f"killed: ran past the {timeout:.0f} s limit"
        elif tree > memory_cap_mb * 2**20:
            outcome = f"killed: the process tree's resident memory passed the {memory_cap_mb} MB cap"
        if outcome != "ok":
            os.killpg(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.1)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    for p in _session_pids(proc.pid):  # a JVM left behind by a failed child
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGKILL)
    if outcome == "ok" and proc.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        if proc.returncode == -signal.SIGKILL:
            outcome = "killed by SIGKILL (out of memory?)"
        elif "MemoryError" in tail or "Out of Memory" in tail or "OutOfMemoryError" in tail:
            outcome = "out of memory"
        else:
            outcome = f"failed (exit {proc.returncode})"
    res = {
        "seconds_wall": round(seconds, 2),
        "peak_rss_mb": usage.ru_maxrss // 1024,
        "peak_tree_rss_mb": peak_tree // 2**20,
        "outcome": outcome,
    }
    if watch_dir is not None:
        res["peak_spill_mb"] = round(max(peak_spill, _dir_bytes(watch_dir)) / 2**20, 1)
    return res


# -- the stages (run inside a child) --------------------------------------------------------------


def churn_rows(report_rows: list[dict[str, Any]]) -> list[list[Any]]:
    """Churn rows as ``[period, branch, 7 counts]``, sorted (the form ``pandas_reference`` returns)."""
    keys = ("start_customers", "new_customers", "reactivated_customers", "churned_customers")
    keys += ("churned_from_start", "end_customers", "customer_days")
    return sorted([str(r["period"]), str(r["branch"]), *(int(r[k]) for k in keys)] for r in report_rows)


def feature_summary(frame: Any) -> dict[str, Any]:
    """Rows, rows per date and the sums of the compared usage columns of a features frame (pandas)."""
    import numpy as np

    per_date = frame.groupby(frame["as_of"].astype(str)).size()
    return {
        "rows": len(frame),
        "rows_per_date": {str(k): int(v) for k, v in per_date.items()},
        "columns": len(frame.columns),
        "sums": {c: float(np.nansum(frame[c].to_numpy(dtype=float))) for c in COMPARED_FEATURES if c in frame},
    }


def churnguard_side(stage: str, store: Any) -> dict[str, Any]:
    """One stage through churnguard's own functions, on a DuckDB store or a Spark store alike."""
    from churnguard.metrics.activity import rules_for

    if stage == "churn_events":
        rules = rules_for(store, definition="non_contractual", activity_table="events", inactivity_days=INACTIVITY_DAYS)
    else:
        rules = rules_for(store)
    if stage in ("churn", "churn_events"):
        from churnguard.metrics.churn import churn_report

        report = churn_report(store, start=CHURN_FROM, end=CHURN_TO, rules=rules, period="month", by="branch")
        return {"rows": churn_rows(report.rows)}
    if stage == "cohorts":
        from churnguard.metrics.cohorts import cohort_retention

        return normalise_cohorts(cohort_retention(store, rules=rules, period="month", max_age=COHORT_MAX_AGE))
    from churnguard.features.build import build_features

    frame = build_features(store, list(FEATURE_DATES), horizon_days=30)
    return feature_summary(frame)


def pandas_side(stage: str, lake: Path) -> dict[str, Any]:
    import pandas_reference as ref

    if stage == "churn":
        return {"rows": ref.churn_by_month_branch(lake, CHURN_FROM, CHURN_TO)["rows"]}
    if stage == "cohorts":
        return ref.cohort_retention(lake, max_age=COHORT_MAX_AGE)
    import features_pandas_reference as fref

    return feature_summary(fref.usage_features(lake, list(FEATURE_DATES)))


def spark_store(customers: int, driver_memory: str) -> Any:
    """The Spark store on the exported lake: ``churnguard.store.spark`` (its session settings:
    local mode, offline, no UI, UTC, 8 shuffle partitions) with ``driver_memory`` for the JVM."""
    from churnguard.store.spark import connect_spark, spark_session

    session = spark_session(os.environ.get("CHURNGUARD_SPARK_MASTER", "local[*]"), memory=driver_memory)
    return connect_spark(spark_lake_path(customers), spark=session)


def child_main(engine: str, stage: str, customers: int, out: Path, driver_memory: str) -> None:
    """Import (and for Spark start the session and attach the lake) first, timed apart; then the stage."""
    t_import = time.perf_counter()
    modules = ["churnguard.store.connection", "churnguard.metrics.churn", "churnguard.metrics.cohorts"]
    if engine == "pandas":
        modules = ["pandas_reference", "features_pandas_reference"]
    elif stage == "features":
        modules.append("churnguard.features.build")
    if engine == "spark":
        modules += ["churnguard.store.spark", "pyspark.sql"]
    for module in modules:
        importlib.import_module(module)
    t_session = time.perf_counter()
    store = None
    if engine == "duckdb":
        from churnguard.store.connection import connect

        store = connect(store_path(customers))
    elif engine == "spark":
        store = spark_store(customers, driver_memory)
    t0 = time.perf_counter()
    result = pandas_side(stage, lake_path(customers)) if store is None else churnguard_side(stage, store)
    seconds = time.perf_counter() - t0
    payload = {
        "seconds_in_process": round(seconds, 2),
        "seconds_imports": round(t_session - t_import, 2),
        "result": result,
    }
    if engine == "spark":
        payload["seconds_session"] = round(t0 - t_session, 2)
        payload["spark_version"] = store.raw.spark.version
        payload["spark_master"] = store.raw.spark.sparkContext.master
    if store is not None:
        store.close()
    out.write_text(json.dumps(payload, default=str))


# -- comparison --------------------------------------------------------------------------------------


def digest(values: Any) -> str:
    return hashlib.sha256(json.dumps(values, default=str).encode()).hexdigest()[:16]


def summarise(stage: str, result: dict[str, Any]) -> dict[str, Any]:
    """What the record keeps of a result: counts and a digest (features: the summary itself)."""
    if stage in ("churn", "churn_events"):
        rows = result["rows"]
        return {"rows": len(rows), "churned_customers": sum(r[5] for r in rows), "digest": digest(rows)}
    if stage == "cohorts":
        return {
            "cohorts": len(result["cohorts"]),
            "members": sum(c[1] for c in result["cohorts"]),
            "digest": digest([result["cohorts"], result["average_retention"]]),
        }
    return result


def compare(stage: str, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Whether every engine's result equals DuckDB's (features: rows and the compared sums, to 1e-9)."""
    if "duckdb" not in results or len(results) < 2:
        return {"compared": sorted(results), "match": None}
    ref = results["duckdb"]
    out: dict[str, Any] = {"compared": sorted(results)}
    for engine, res in results.items():
        if engine == "duckdb":
            continue
        if stage in ("churn", "churn_events"):
            same = res["rows"] == ref["rows"]
        elif stage == "cohorts":
            same = [res["cohorts"], res["average_retention"]] == [ref["cohorts"], ref["average_retention"]]
        else:
            common = sorted(set(res["sums"]) & set(ref["sums"]))
            same = res["rows_per_date"] == ref["rows_per_date"] and all(
                abs(res["sums"][c] - ref["sums"][c]) <= 1e-9 * max(1.0, abs(ref["sums"][c])) for c in common
            )
            out[f"{engine}_columns_compared"] = common
        out[f"{engine}_matches_duckdb"] = same
    out["match"] = all(v for k, v in out.items() if k.endswith("_matches_duckdb"))
    return out


# -- driver -------------------------------------------------------------------------------------------


def run_stage(engine: str, stage: str, ns: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One child run: its measurements and, when it finished, its result."""
    tag = f"{stage}_{engine}_{ns.customers}"
    out, log = WORK / "engines" / f"{tag}.json", WORK / "engines" / f"{tag}.log"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", engine, stage]
    cmd += ["--customers", str(ns.customers), "--child-out", str(out), "--driver-memory", ns.driver_memory]
    before = {"load_average": [round(x, 2) for x in os.getloadavg()], "available_gb": available_gb()}
    res = run_tree(
        cmd,
        timeout=ns.timeout,
        memory_cap_mb=int(ns.memory_cap_gb * 1024),
        log=log,
        env=SPARK_ENV if engine == "spark" else None,
    )
    res = {"stage": stage, "engine": engine, "customers": ns.customers, **res, "before": before}
    result = None
    if res["outcome"] == "ok":
        payload = json.loads(out.read_text())
        result = payload.pop("result")
        res.update(payload)
    else:
        res["log_tail"] = log.read_text(errors="replace")[-1500:]
    return res, result


def available_gb() -> float:
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return 0.0


def versions() -> dict[str, str]:
    import duckdb
    import numpy
    import pandas
    import pyarrow

    out = {
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "pandas": pandas.__version__,
        "pyarrow": pyarrow.__version__,
        "numpy": numpy.__version__,
    }
    try:
        import pyspark

        out["pyspark"] = pyspark.__version__
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
        out["java"] = (java.stderr or java.stdout).splitlines()[0]
    except (ImportError, OSError, IndexError):
        pass
    return out


def parse_list(text: str, allowed: tuple[str, ...], parser: argparse.ArgumentParser) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if bad := [x for x in items if x not in allowed]:
        parser.error(f"unknown: {', '.join(bad)} (expected {', '.join(allowed)})")
    return items


def common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated: duckdb, spark, pandas")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a child is stopped")
    parser.add_argument(
        "--memory-cap-gb", type=float, default=16.0, help="process-tree RSS at which a child is stopped"
    )
    parser.add_argument("--driver-memory", default="12g", help="Spark driver (JVM heap) memory")
    parser.add_argument("--note", default="")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=FULL_LAKE)
    parser.add_argument(
        "--stages", default=",".join(DEFAULT_STAGES), help="comma-separated: churn, cohorts, features, churn_events"
    )
    common_options(parser)
    parser.add_argument("--child", nargs=2, metavar=("ENGINE", "STAGE"), help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.child:
        child_main(ns.child[0], ns.child[1], ns.customers, ns.child_out, ns.driver_memory)
        return
    engines = parse_list(ns.engines, ENGINES, parser)
    stages = parse_list(ns.stages, STAGES, parser)
    (WORK / "engines").mkdir(parents=True, exist_ok=True)
    started, load_start = dt.datetime.now(dt.UTC), os.getloadavg()
    built = prepare(ns.customers, memory_cap_mb=int(ns.memory_cap_gb * 1024))
    print(json.dumps(built), flush=True)
    runs, checks = [], {}
    for stage in stages:
        results = {}
        for engine in engines:
            if stage == "churn_events" and engine == "pandas":
                continue  # the pandas reference has the contractual definition only
            res, result = run_stage(engine, stage, ns)
            if result is not None:
                results[engine] = result
                res["result_summary"] = summarise(stage, result)
            runs.append(res)
            print(
                f"{stage} {engine}: {res['outcome']}, {res['seconds_wall']} s wall, "
                f"{res.get('seconds_in_process')} s in process, tree {res['peak_tree_rss_mb']} MB",
                flush=True,
            )
        checks[stage] = compare(stage, results)
        print(f"{stage}: {checks[stage]}", flush=True)
    record = {
        "date": started.isoformat(timespec="seconds"),
        "customers": ns.customers,
        "events": built.get("rows", {}).get("events"),
        "build": built,
        "feature_dates": [d.isoformat() for d in FEATURE_DATES],
        "runs": runs,
        "checks": checks,
        "spark_driver_memory": ns.driver_memory,
        "timeout_s": ns.timeout,
        "memory_cap_mb": int(ns.memory_cap_gb * 1024),
        "cpus": os.cpu_count(),
        "memory_total_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_average_at_start": [round(x, 2) for x in load_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        **versions(),
        "note": ns.note,
    }
    append_record(RESULTS, record)


def append_record(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(exist_ok=True)
    history = json.loads(path.read_text()) if path.exists() else []
    history.append(record)
    path.write_text(json.dumps(history, indent=2) + "\n")


if __name__ == "__main__":
    main()
