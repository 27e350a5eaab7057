"""Benchmark: the out-of-core check — ~300 M events on DuckDB within 24 GB (issue 8).

Reproduce::

    .venv/bin/python benchmarks/out_of_core.py                     # builds once (~20-25 min), then ~20 min
    .venv/bin/python benchmarks/out_of_core.py --limits 8GB        # one DuckDB memory limit
    .venv/bin/python benchmarks/out_of_core.py --clean             # delete the 2.8 M lake and store afterwards

1. Builds once (skipped when present), as ``metrics_1m.build`` does for 1 M: ``churnguard simulate
   --customers 2800000 --seed 7 --file-format parquet`` into ``benchmarks/work/sim_2800000`` (the
   simulator streams 100,000 customers per chunk, so its memory stays under 1 GB at any size),
   then ``churnguard ingest-all`` into ``benchmarks/work/sim_2800000.duckdb`` with ``--memory-limit``
   4GB (the loader's default, 1 GB, ran out of memory on ~300 M events: see the README; ``--ingest-limits``
   lists the limits tried in turn) and the demo's metadata.  Both steps are timed (wall seconds, the
   peak RSS); the build's record is kept in ``work/out_of_core_build.json`` so a later run reports it.
2. For each DuckDB ``memory_limit`` (``--limits``, default 8GB and 2GB; ``default`` = DuckDB's own,
   80 % of RAM, not run by default on this shared machine), runs
   each stage in its own child process with ``SET memory_limit`` and ``SET temp_directory`` to
   ``work/oc_spill`` (emptied before each run; its largest size during the run is the spill):

   - ``churn``: churn by month × branch, the store's contractual definition (reads the 3.2 M
     subscriptions, not the events);
   - ``cohorts``: the monthly cohort matrix, contractual;
   - ``churn_events``: churn by month × branch with the non-contractual definition on **events**
     (activity days from all ~300 M events, 30 days' inactivity): the stage that reads every event;
   - ``cohorts_events`` (only when asked for): the cohort matrix on the same event-based spells.

   Recorded: wall seconds, the child's peak RSS, the largest spill folder seen.

One record per invocation is appended to ``benchmarks/results/out_of_core.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work"
RESULTS = HERE / "results" / "out_of_core.json"
sys.path.insert(0, str(HERE))

from engines import run_tree  # noqa: E402
from metrics_1m import (  # noqa: E402
    CHURN_FROM,
    CHURN_TO,
    CLI,
    COHORT_MAX_AGE,
    DEMO_META,
    SEED,
    normalise_cohorts,
)

CUSTOMERS = 2_800_000
STAGES = ("churn", "cohorts", "churn_events", "cohorts_events")
SPILL = WORK / "oc_spill"
BUILD_RECORD = WORK / "out_of_core_build.json"
INACTIVITY_DAYS = 30


def lake() -> Path:
    return WORK / f"sim_{CUSTOMERS}"


def store() -> Path:
    return WORK / f"sim_{CUSTOMERS}.duckdb"


def free_gb() -> dict[str, float]:
    """``MemAvailable`` and ``MemTotal`` (GB) from /proc/meminfo."""
    info = {}
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            key, value = line.split(":")
            info[key] = int(value.split()[0]) / 2**20
    return {"total_gb": round(info["MemTotal"], 1), "available_gb": round(info["MemAvailable"], 1)}


def prepare(memory_cap_mb: int, ingest_limits: list[str]) -> dict[str, Any]:
    """Simulate and load once; return the build's record (the timings of the run that built it).

    ``ingest-all`` is tried with each of ``ingest_limits`` in turn (its ``--memory-limit``) until
    one loads; every attempt is recorded.  A failed load leaves nothing behind (the loader is
    atomic), so the next attempt starts from an empty store.
    """
    record: dict[str, Any] = json.loads(BUILD_RECORD.read_text()) if BUILD_RECORD.exists() else {}
    if "rows" in record and store().exists():
        return record
    record.setdefault("attempts", [])
    if not (lake() / "truth.json").exists():
        shutil.rmtree(lake(), ignore_errors=True)
        cmd = [str(CLI), "simulate", "--customers", str(CUSTOMERS), "--seed", str(SEED), "--out", str(lake())]
        res = run_tree(
            [*cmd, "--file-format", "parquet", "--format", "json"],
            timeout=3600,
            memory_cap_mb=memory_cap_mb,
            log=WORK / "out_of_core_simulate.log",
        )
        res["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        record["simulate"] = res
        if res["outcome"] != "ok":
            raise SystemExit(f"simulate failed: {res}")
    record["lake_mb"] = round(sum(f.stat().st_size for f in lake().rglob("*") if f.is_file()) / 1e6, 1)
    for limit in ingest_limits:
        for p in (store(), Path(f"{store()}.wal")):
            p.unlink(missing_ok=True)
        cmd = [str(CLI), "--db", str(store()), "ingest-all", str(lake()), "--memory-limit", limit, "--format", "json"]
        before = {"load_average": [round(x, 2) for x in os.getloadavg()], **free_gb()}
        res = run_tree(cmd, timeout=3600, memory_cap_mb=memory_cap_mb, log=WORK / f"out_of_core_ingest_{limit}.log")
        res.update(
            {"memory_limit": limit, "before": before, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        )
        if res["outcome"] != "ok":
            res["log_tail"] = (WORK / f"out_of_core_ingest_{limit}.log").read_text(errors="replace")[-600:]
        record["attempts"].append(res)
        print(json.dumps(res), flush=True)
        BUILD_RECORD.write_text(json.dumps(record, indent=2) + "\n")
        if res["outcome"] == "ok":
            break
    else:
        raise SystemExit(f"ingest-all failed with every memory limit: {ingest_limits}")
    from churnguard.store.connection import connect

    with connect(store()) as s:
        for key, value in DEMO_META.items():
            s.set_meta(key, value)
        names = ("customers", "subscriptions", "transactions", "events", "churn_events")
        record["rows"] = {n: s.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for n in names}
    record["store_mb"] = round(store().stat().st_size / 1e6, 1)
    record["built_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    BUILD_RECORD.write_text(json.dumps(record, indent=2) + "\n")
    return record


# -- the child -------------------------------------------------------------------------------------------


def child_main(stage: str, limit: str, out: Path) -> None:
    t_import = time.perf_counter()
    from churnguard.metrics.activity import rules_for
    from churnguard.metrics.churn import churn_report
    from churnguard.metrics.cohorts import cohort_retention
    from churnguard.store.connection import connect

    s = connect(store())
    if limit != "default":
        s.raw.execute(f"SET memory_limit = '{limit}'")
    s.raw.execute(f"SET temp_directory = '{SPILL}'")
    setting = s.raw.execute("SELECT current_setting('memory_limit'), current_setting('threads')").fetchone()
    if stage.endswith("_events"):
        rules = rules_for(s, definition="non_contractual", activity_table="events", inactivity_days=INACTIVITY_DAYS)
    else:
        rules = rules_for(s)
    t0 = time.perf_counter()
    if stage.startswith("churn"):
        report = churn_report(s, start=CHURN_FROM, end=CHURN_TO, rules=rules, period="month", by="branch")
        summary: dict[str, Any] = {
            "rows": len(report.rows),
            "churned_customers": int(sum(r["churned_customers"] for r in report.rows)),
            "new_customers": int(sum(r["new_customers"] for r in report.rows)),
        }
    else:
        m = normalise_cohorts(cohort_retention(s, rules=rules, period="month", max_age=COHORT_MAX_AGE))
        summary = {
            "cohorts": len(m["cohorts"]),
            "members": m["info"]["members"],
            "retention_12": m["average_retention"][12],
        }
    seconds = time.perf_counter() - t0
    payload = {
        "seconds_in_process": round(seconds, 2),
        "seconds_imports": round(t0 - t_import, 2),
        "duckdb_memory_limit": setting[0],
        "duckdb_threads": setting[1],
        "rules": {"definition": rules.definition, "activity_table": rules.activity_table},
        "result": summary,
    }
    out.write_text(json.dumps(payload))


# -- driver -------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limits", default="8GB,2GB", help="comma-separated DuckDB memory limits")
    parser.add_argument("--stages", default="churn,cohorts,churn_events", help=f"comma-separated: {', '.join(STAGES)}")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--memory-cap-gb", type=float, default=12.0, help="process RSS at which a child is stopped")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--ingest-limits", default="4GB,8GB", help="ingest-all --memory-limit values to try in turn")
    parser.add_argument("--clean", action="store_true", help="delete the lake and the store at the end")
    parser.add_argument("--note", default="")
    parser.add_argument("--child", nargs=2, metavar=("STAGE", "LIMIT"), help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.child:
        child_main(ns.child[0], ns.child[1], ns.child_out)
        return
    cap = int(ns.memory_cap_gb * 1024)
    WORK.mkdir(exist_ok=True)
    started, load_start, mem_start = dt.datetime.now(dt.UTC), os.getloadavg(), free_gb()
    print(f"build: {lake().name}, {store().name}; memory {mem_start}", flush=True)
    built = prepare(cap, [x.strip() for x in ns.ingest_limits.split(",") if x.strip()])
    print(json.dumps(built), flush=True)
    if ns.build_only:
        return
    stages = [s.strip() for s in ns.stages.split(",") if s.strip()]
    limits = [x.strip() for x in ns.limits.split(",") if x.strip()]
    (WORK / "out_of_core").mkdir(exist_ok=True)
    runs = []
    for limit in limits:
        for stage in stages:
            shutil.rmtree(SPILL, ignore_errors=True)
            SPILL.mkdir(parents=True)
            tag = f"{stage}_{limit}"
            out, log = WORK / "out_of_core" / f"{tag}.json", WORK / "out_of_core" / f"{tag}.log"
            out.unlink(missing_ok=True)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", stage, limit, "--child-out", str(out)]
            before = {"load_average": [round(x, 2) for x in os.getloadavg()], **free_gb()}
            res = run_tree(cmd, timeout=ns.timeout, memory_cap_mb=cap, log=log, watch_dir=SPILL)
            res.update({"stage": stage, "memory_limit": limit, "before": before})
            if res["outcome"] == "ok":
                res.update(json.loads(out.read_text()))
            else:
                res["log_tail"] = log.read_text(errors="replace")[-1500:]
            runs.append(res)
            print(json.dumps(res), flush=True)
    shutil.rmtree(SPILL, ignore_errors=True)

    import duckdb

    record = {
        "date": started.isoformat(timespec="seconds"),
        "customers": CUSTOMERS,
        "build": built,
        "runs": runs,
        "inactivity_days_for_event_stages": INACTIVITY_DAYS,
        "memory_at_start": mem_start,
        "load_average_at_start": [round(x, 2) for x in load_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "note": ns.note,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    history = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    history.append(record)
    RESULTS.write_text(json.dumps(history, indent=2) + "\n")
    if ns.clean:
        shutil.rmtree(lake(), ignore_errors=True)
        for p in (store(), Path(f"{store()}.wal")):
            p.unlink(missing_ok=True)
        subprocess.run(["du", "-sh", str(WORK)], check=False)


if __name__ == "__main__":
    main()
