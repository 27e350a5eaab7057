"""Benchmark: how time grows with events on each engine — 10 M, 30 M, 100 M events (issue 8).

Reproduce::

    .venv/bin/python benchmarks/scaling.py                         # ~25 min once the data exist
    .venv/bin/python benchmarks/scaling.py --sizes 100000,1000000 --engines duckdb,spark --stages churn
    .venv/bin/python benchmarks/scaling.py --reuse-engines --stages churn,cohorts,features,churn_events

Sizes are customers: 100,000, 300,000 and 1,000,000 customers of the simulator (seed 7) hold
10.7 M, 32.0 M and 106.9 M events (about 107 per customer).  The Parquet lakes of the two smaller
sizes are the first 1 and 3 part files of the 1 M lake (the simulator's customers are drawn in
seeded blocks, so these are exactly the smaller runs' rows) and each size gets its own DuckDB
store (``churnguard ingest-all``); see ``engines.py``, whose child processes, measurements
(wall seconds, in-process seconds, the whole process tree's peak RSS, Spark's JVM included) and
result checks this script reuses.

Stages: ``churn`` (by month × branch) and ``cohorts`` on every engine and size; ``features``
(3 observation dates) on every engine and size too unless ``--stages`` says otherwise (DuckDB
and Spark build all 74 features through ``build_features``, pandas the 18 usage features);
``churn_events`` (churn by month × branch on event-based spells, which reads every event) when
asked for, on DuckDB and Spark.  Each measurement runs once (the machine is shared: the load
average before each run is recorded with it).  ``--reuse-engines`` takes the runs of a size that
``engines.py`` measured (its latest record at that size) instead of measuring them again; the
record says which.

One record per invocation is appended to ``benchmarks/results/scaling.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from engines import (  # noqa: E402
    DEFAULT_STAGES,
    ENGINES,
    FEATURE_DATES,
    STAGES,
    WORK,
    append_record,
    common_options,
    compare,
    parse_list,
    prepare,
    run_stage,
    summarise,
    versions,
)

RESULTS = HERE / "results" / "scaling.json"
SIZES = (100_000, 300_000, 1_000_000)


def latest_engines_record(customers: int) -> dict[str, Any] | None:
    """The latest record of ``results/engines.json`` measured at ``customers`` (or None)."""
    path = HERE / "results" / "engines.json"
    history = json.loads(path.read_text()) if path.exists() else []
    found = [r for r in history if r["customers"] == customers and not r.get("note", "").startswith("development")]
    return found[-1] if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES), help="customers, comma-separated")
    parser.add_argument(
        "--stages", default=",".join(DEFAULT_STAGES), help="comma-separated: churn, cohorts, features, churn_events"
    )
    parser.add_argument(
        "--feature-engines",
        default=",".join(ENGINES),
        help="engines that run the features stage (it is the longest)",
    )
    parser.add_argument(
        "--reuse-engines",
        action="store_true",
        help="take a size's runs from the latest record of results/engines.json at that size instead of re-running",
    )
    common_options(parser)
    ns = parser.parse_args()
    sizes = [int(s) for s in ns.sizes.split(",") if s.strip()]
    engines = parse_list(ns.engines, ENGINES, parser)
    stages = parse_list(ns.stages, STAGES, parser)
    feature_engines = parse_list(ns.feature_engines, ENGINES, parser)
    (WORK / "engines").mkdir(parents=True, exist_ok=True)
    started, load_start = dt.datetime.now(dt.UTC), os.getloadavg()
    built: dict[int, dict[str, Any]] = {}
    for size in sizes:
        built[size] = prepare(size, memory_cap_mb=int(ns.memory_cap_gb * 1024))
        print(f"{size}: {json.dumps(built[size])}", flush=True)
    runs, checks, reused = [], {}, {}
    for size in sizes:
        ns.customers = size
        earlier = latest_engines_record(size) if ns.reuse_engines else None
        if earlier is not None:
            for res in earlier["runs"]:
                if res["stage"] in stages:
                    runs.append(
                        {**res, "events": built[size]["rows"]["events"], "from": f"engines.json {earlier['date']}"}
                    )
            checks.update({f"{size}_{k}": v for k, v in earlier["checks"].items() if k in stages})
            reused[str(size)] = earlier["date"]
            continue
        for stage in stages:
            results = {}
            for engine in engines:
                if stage == "features" and engine not in feature_engines:
                    continue
                if stage == "churn_events" and engine == "pandas":
                    continue  # the pandas reference has the contractual definition only
                res, result = run_stage(engine, stage, ns)
                res["events"] = built[size]["rows"]["events"]
                if result is not None:
                    results[engine] = result
                    res["result_summary"] = summarise(stage, result)
                runs.append(res)
                print(
                    f"{size} {stage} {engine}: {res['outcome']}, {res['seconds_wall']} s wall, "
                    f"{res.get('seconds_in_process')} s in process, tree {res['peak_tree_rss_mb']} MB",
                    flush=True,
                )
            checks[f"{size}_{stage}"] = compare(stage, results)
    record = {
        "date": started.isoformat(timespec="seconds"),
        "sizes": {str(s): {"customers": s, "events": built[s]["rows"]["events"]} for s in sizes},
        "builds": {str(s): built[s] for s in sizes},
        "feature_dates": [d.isoformat() for d in FEATURE_DATES],
        "runs": runs,
        "checks": checks,
        "reused_from_engines_json": reused,
        "spark_driver_memory": ns.driver_memory,
        "timeout_s": ns.timeout,
        "memory_cap_mb": int(ns.memory_cap_gb * 1024),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in load_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        **versions(),
        "note": ns.note,
    }
    append_record(RESULTS, record)


if __name__ == "__main__":
    main()
