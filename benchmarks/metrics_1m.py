"""Benchmark: churn by month x branch, the cohort matrix and implicit churn at 1 M customers, against pandas.

Reproduce::

    .venv/bin/python benchmarks/metrics_1m.py                # build once (~5 min), then every computation
    .venv/bin/python benchmarks/metrics_1m.py --only churn   # one computation (churn, cohorts, implicit)

1. Builds once (skipped when present): the simulator's operator at 1 M customers, seed 7, as
   Parquet in ``benchmarks/work/sim_1000000`` (about 107 M events, 1 GB), then a store
   ``benchmarks/work/sim_1m.duckdb`` loaded from that folder with ``churnguard ingest-all`` (timed:
   wall seconds and peak RSS of the CLI child), with the demo's metadata set afterwards
   (dataset ``demo``, churn definition ``contractual``, as of 2025-12-31).
2. Runs each computation in its own child process (this file with ``--child``), on each engine:

   - ``churn``: ``churn_report(store, start=2023-01-01, end=2025-12-31, rules=rules_for(store),
     period="month", by="branch")``;
   - ``cohorts``: ``cohort_retention(store, rules=rules, period="month", max_age=24)``;
   - ``implicit``: ``implicit_churn(store, as_of=date(2025, 9, 30))`` (its defaults);

   and the same three in pandas from the Parquet files (``benchmarks/pandas_reference.py``).
   Wall seconds are measured around the child (start-up and imports included); peak memory is
   that child's own maximum resident set size (``os.wait4``); the child also reports the seconds
   of the computation itself (after the imports; for pandas, reading the Parquet files included).
   A computation whose first run takes under 30 s is run three times and the median is kept; the
   two engines take turns (churnguard, pandas, churnguard, ...) so that both meet the same noise.
   A child is stopped when it runs past ``--timeout`` (600 s) or its resident memory passes
   ``--memory-cap-gb`` (16 GB; the machine is shared): that is recorded as its result.
3. Compares the two engines' results exactly (counts per month x branch, cohort sizes and
   retention, the implicit churn counts and the 100 customers listed) and records whether they match.

One record per invocation is appended to benchmarks/results/metrics_1m.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work"
RESULTS = HERE / "results" / "metrics_1m.json"
CLI = Path(sys.executable).with_name("churnguard")
SEED = 7
COMPUTATIONS = ("churn", "cohorts", "implicit")
ENGINES = ("churnguard", "pandas")
MODULES = {
    "churn": "churnguard.metrics.churn",
    "cohorts": "churnguard.metrics.cohorts",
    "implicit": "churnguard.metrics.implicit",
}
CHURN_FROM, CHURN_TO = dt.date(2023, 1, 1), dt.date(2025, 12, 31)
IMPLICIT_AS_OF = dt.date(2025, 9, 30)
COHORT_MAX_AGE = 24
REPEAT_UNDER_S = 30.0
DEMO_META = {"dataset": "demo", "churn_definition": "contractual", "dataset_as_of": "2025-12-31"}


# -- children ------------------------------------------------------------------------------------


def run_child(cmd: list[str], *, timeout: float, memory_cap_mb: int, log: Path) -> dict[str, Any]:
    """Run ``cmd``; return wall seconds, the child's own peak RSS (MB) and how it ended.

    The child is polled: past ``timeout`` seconds, or once its resident memory passes
    ``memory_cap_mb``, it is killed (and its process group with it) and that is the outcome.
    """
    t0 = time.perf_counter()
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    outcome, seen_mb = "ok", 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        seen_mb = max(seen_mb, _rss_mb(proc.pid))
        if time.perf_counter() - t0 > timeout:
            outcome = f"killed: ran past the {timeout:.0f} s limit"
        elif seen_mb > memory_cap_mb:
            outcome = f"killed: resident memory passed the {memory_cap_mb} MB cap"
        if outcome != "ok":
            os.killpg(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
    if outcome == "ok" and proc.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        if proc.returncode == -signal.SIGKILL:
            outcome = "killed by SIGKILL (out of memory?)"
        elif "MemoryError" in tail or "Out of Memory" in tail:
            outcome = "out of memory"
        else:
            outcome = f"failed (exit {proc.returncode})"
    return {"seconds_wall": round(seconds, 2), "peak_rss_mb": usage.ru_maxrss // 1024, "outcome": outcome}


def _rss_mb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


# -- build ------------------------------------------------------------------------------------------


def build(customers: int, sim: Path, db: Path, *, timeout: float, memory_cap_mb: int) -> dict[str, Any]:
    """Simulate (if the folder is missing) and load the store (if it is missing or incomplete)."""
    out: dict[str, Any] = {"sim_folder": str(sim.relative_to(ROOT)), "store": str(db.relative_to(ROOT))}
    WORK.mkdir(exist_ok=True)
    if not (sim / "truth.json").exists():
        shutil.rmtree(sim, ignore_errors=True)
        cmd = [str(CLI), "simulate", "--customers", str(customers), "--seed", str(SEED), "--out", str(sim)]
        res = run_child(
            [*cmd, "--file-format", "parquet", "--format", "json"],
            timeout=3600,
            memory_cap_mb=memory_cap_mb,
            log=WORK / "simulate.log",
        )
        if res["outcome"] != "ok":
            raise SystemExit(f"simulate failed: {res}; see {WORK / 'simulate.log'}")
        out["simulate"] = res
    else:
        out["simulate"] = "reused"
    out["sim_mb"] = round(sum(f.stat().st_size for f in sim.rglob("*") if f.is_file()) / 1e6, 1)
    if not _store_complete(db):
        for p in (db, Path(f"{db}.wal")):
            p.unlink(missing_ok=True)
        log = WORK / "ingest_all.log"
        res = run_child(
            [str(CLI), "--db", str(db), "ingest-all", str(sim), "--format", "json"],
            timeout=timeout * 6,
            memory_cap_mb=memory_cap_mb,
            log=log,
        )
        if res["outcome"] != "ok":
            raise SystemExit(f"ingest-all failed: {res}; see {log}")
        from churnguard.store.connection import connect

        with connect(db) as store:
            for key, value in DEMO_META.items():
                store.set_meta(key, value)
        out["ingest_all"] = res
    else:
        out["ingest_all"] = "reused"
    out["rows"] = _store_rows(db)
    out["store_mb"] = round(db.stat().st_size / 1e6, 1)
    return out


def _store_complete(db: Path) -> bool:
    if not db.exists():
        return False
    import duckdb

    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error:
        return False
    try:
        row = con.execute("SELECT value FROM churnguard_meta WHERE key = 'dataset_as_of'").fetchone()
    except duckdb.Error:
        row = None
    finally:
        con.close()
    return bool(row)


def _store_rows(db: Path) -> dict[str, int]:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        names = ("branches", "customers", "subscriptions", "transactions", "events", "churn_events")
        return {n: con.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for n in names}
    finally:
        con.close()


# -- the computations (run inside a child) ---------------------------------------------------------


def churnguard_side(name: str, db: Path) -> dict[str, Any]:
    from churnguard.metrics.activity import rules_for
    from churnguard.store.connection import connect

    store = connect(db)
    rules = rules_for(store)
    if name == "churn":
        from churnguard.metrics.churn import churn_report

        report = churn_report(store, start=CHURN_FROM, end=CHURN_TO, rules=rules, period="month", by="branch")
        keys = ("start_customers", "new_customers", "reactivated_customers", "churned_customers")
        keys += ("churned_from_start", "end_customers", "customer_days")
        rows = sorted([r["period"], r["branch"], *(int(r[k]) for k in keys)] for r in report.rows)
        return {"rows": rows, "rules": report.rules}
    if name == "cohorts":
        from churnguard.metrics.cohorts import cohort_retention

        return normalise_cohorts(cohort_retention(store, rules=rules, period="month", max_age=COHORT_MAX_AGE))
    if name == "implicit":
        from churnguard.metrics.implicit import implicit_churn

        return normalise_implicit(implicit_churn(store, as_of=IMPLICIT_AS_OF))
    raise ValueError(name)


def pandas_side(name: str, sim: Path) -> dict[str, Any]:
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import pandas_reference as ref

    if name == "churn":
        return ref.churn_by_month_branch(sim, CHURN_FROM, CHURN_TO)
    if name == "cohorts":
        return ref.cohort_retention(sim, max_age=COHORT_MAX_AGE)
    if name == "implicit":
        return ref.implicit_churn(sim, as_of=IMPLICIT_AS_OF)
    raise ValueError(name)


def normalise_cohorts(m: Any) -> dict[str, Any]:
    """A ``CohortMatrix`` as the pandas side returns it: [label, size, retained[], retention[]] per cohort."""
    cohorts = sorted([c["cohort"], c["size"], c["retained"], c["retention"]] for c in m.cohorts)
    return {
        "observed_from": m.observed_from.isoformat() if m.observed_from else None,
        "cohorts": cohorts,
        "average_retention": m.average_retention,
        "info": {"members": sum(c[1] for c in cohorts)},
    }


def normalise_implicit(r: Any) -> dict[str, Any]:
    """An ``ImplicitChurnReport`` as the pandas side returns it (the listed customers as lists)."""
    keys = ("customer_id", "branch_id", "plan", "baseline_rate", "recent_rate", "change")
    return {
        "active_customers": r.active_customers,
        "judged_customers": r.judged_customers,
        "implicit_churners": r.implicit_churners,
        "customers": [[c[k] for k in keys] for c in r.customers],
        "info": {"windows": r.windows, "parameters": r.parameters},
    }


def child_main(engine: str, name: str, db: Path, sim: Path, out: Path) -> None:
    """Import first (timed apart), then compute: ``seconds_in_process`` is the computation alone."""
    t_import = time.perf_counter()
    if engine == "churnguard":
        for module in ("churnguard.store.connection", "churnguard.metrics.activity", MODULES[name]):
            importlib.import_module(module)
    else:
        sys.path.insert(0, str(HERE))
        importlib.import_module("pandas_reference")  # pandas, pyarrow, numpy
    t0 = time.perf_counter()
    result = churnguard_side(name, db) if engine == "churnguard" else pandas_side(name, sim)
    seconds = time.perf_counter() - t0
    payload = {"seconds_in_process": round(seconds, 2), "seconds_imports": round(t0 - t_import, 2), "result": result}
    out.write_text(json.dumps(payload))


# -- comparison ------------------------------------------------------------------------------------


def compare(name: str, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Exact comparison of the two engines' normalised results; a few differences when they differ."""
    if name == "churn":
        left = {tuple(r[:2]): r[2:] for r in a["rows"]}
        right = {tuple(r[:2]): r[2:] for r in b["rows"]}
        diffs = [
            {"period_branch": list(k), "churnguard": left.get(k), "pandas": right.get(k)}
            for k in sorted(set(left) | set(right))
            if left.get(k) != right.get(k)
        ]
        return {
            "match": not diffs,
            "rows_compared": len(set(left) | set(right)),
            "differences": diffs[:10],
            "differing_rows": len(diffs),
        }
    if name == "cohorts":
        left = {c[0]: c[1:] for c in a["cohorts"]}
        right = {c[0]: c[1:] for c in b["cohorts"]}
        diffs = [
            {"cohort": k, "churnguard": left.get(k), "pandas": right.get(k)}
            for k in sorted(set(left) | set(right))
            if left.get(k) != right.get(k)
        ]
        for key in ("observed_from", "average_retention"):
            if a[key] != b[key]:
                diffs.append({"key": key, "churnguard": a[key], "pandas": b[key]})
        return {
            "match": not diffs,
            "cohorts_compared": len(set(left) | set(right)),
            "cells_compared": sum(len(v[1]) for v in left.values()),
            "differences": diffs[:5],
            "differing": len(diffs),
        }
    keys = ("active_customers", "judged_customers", "implicit_churners", "customers")
    diffs = [{"key": k, "churnguard": a.get(k), "pandas": b.get(k)} for k in keys if a.get(k) != b.get(k)]
    if any(d["key"] == "customers" for d in diffs):  # show only the first differing listed customers
        listed = [(x, y) for x, y in zip(a["customers"], b["customers"], strict=False) if x != y]
        diffs = [d for d in diffs if d["key"] != "customers"]
        diffs.append(
            {"key": "customers", "first_differing": listed[:5], "lengths": [len(a["customers"]), len(b["customers"])]}
        )
    return {"match": not diffs, "listed_compared": len(a["customers"]), "differences": diffs}


def digest(values: list[Any]) -> str:
    return hashlib.sha256(json.dumps(values).encode()).hexdigest()[:16]


# -- driver ------------------------------------------------------------------------------------------


def run_once(engine: str, name: str, ns: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One child run of one computation: its measurements and, when it finished, its normalised result."""
    tag = f"{name}_{engine}"
    out, log = WORK / "metrics_1m" / f"{tag}.json", WORK / "metrics_1m" / f"{tag}.log"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", engine, name]
    cmd += ["--db", str(ns.db), "--sim", str(ns.sim), "--child-out", str(out)]
    res = run_child(cmd, timeout=ns.timeout, memory_cap_mb=int(ns.memory_cap_gb * 1024), log=log)
    result = None
    if res["outcome"] == "ok":
        payload = json.loads(out.read_text())
        res["seconds_in_process"] = payload["seconds_in_process"]
        res["seconds_imports"] = payload["seconds_imports"]
        result = payload["result"]
    else:
        res["log_tail"] = log.read_text(errors="replace")[-1500:]
    return res, result


def measure(name: str, engines: list[str], ns: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run one computation on each engine, 1 or 3 times, the engines taking turns (so both see the
    same moments of a noisy machine); return one record per engine and each engine's last result."""
    runs: dict[str, list[dict[str, Any]]] = {e: [] for e in engines}
    results: dict[str, Any] = {}
    for i in range(3):
        for engine in engines:
            done = runs[engine] and (
                runs[engine][-1]["outcome"] != "ok" or runs[engine][-1]["seconds_wall"] >= REPEAT_UNDER_S
            )
            if done:
                continue
            res, result = run_once(engine, name, ns)
            runs[engine].append(res)
            if result is not None:
                results[engine] = result
            print(
                f"  {name} {engine} run {i + 1}: {res['outcome']}, {res['seconds_wall']} s, {res['peak_rss_mb']} MB",
                flush=True,
            )
    records = []
    for engine in engines:
        ok = [r for r in runs[engine] if r["outcome"] == "ok"]
        record: dict[str, Any] = {"computation": name, "engine": engine, "runs": runs[engine]}
        if ok and len(ok) == len(runs[engine]):
            record["seconds_wall"] = statistics.median(r["seconds_wall"] for r in ok)
            record["seconds_in_process"] = statistics.median(r["seconds_in_process"] for r in ok)
            record["peak_rss_mb"] = statistics.median(r["peak_rss_mb"] for r in ok)
            record["peak_rss_mb_max"] = max(r["peak_rss_mb"] for r in ok)
        else:
            record["outcome"] = runs[engine][-1]["outcome"]
        if engine in results:
            record["result_summary"] = summarise(name, results[engine])
        records.append(record)
    return records, results


def summarise(name: str, result: dict[str, Any]) -> dict[str, Any]:
    if name == "churn":
        rows = result["rows"]
        return {
            "rows": len(rows),
            "spells": result.get("spells"),
            "churned_customers": sum(r[5] for r in rows),
            "digest": digest(rows),
        }
    out = {k: v for k, v in result.items() if not isinstance(v, list | dict)}
    out.update(result.get("info", {}))
    if name == "cohorts":
        out["cohorts"] = len(result["cohorts"])
        out["digest"] = digest(result["cohorts"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--only", default=",".join(COMPUTATIONS), help="comma-separated: churn, cohorts, implicit")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated: churnguard, pandas")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before a computation is stopped")
    parser.add_argument("--memory-cap-gb", type=float, default=16.0, help="resident memory at which a child is stopped")
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--sim", type=Path, default=None)
    parser.add_argument("--child", nargs=2, metavar=("ENGINE", "COMPUTATION"), help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    label = "1m" if ns.customers == 1_000_000 else str(ns.customers)
    ns.sim = (ns.sim or WORK / f"sim_{ns.customers}").resolve()
    ns.db = (ns.db or WORK / f"sim_{label}.duckdb").resolve()
    if ns.child:
        child_main(ns.child[0], ns.child[1], ns.db, ns.sim, ns.child_out)
        return

    wanted = [c.strip() for c in ns.only.split(",") if c.strip()]
    engines = [e.strip() for e in ns.engines.split(",") if e.strip()]
    if bad := [c for c in wanted if c not in COMPUTATIONS] + [e for e in engines if e not in ENGINES]:
        parser.error(f"unknown computation or engine: {', '.join(bad)}")
    (WORK / "metrics_1m").mkdir(parents=True, exist_ok=True)
    started, load_start = dt.datetime.now(dt.UTC), os.getloadavg()
    print(f"build: {ns.sim.name}, {ns.db.name}", flush=True)
    built = build(ns.customers, ns.sim, ns.db, timeout=ns.timeout, memory_cap_mb=int(ns.memory_cap_gb * 1024))
    print(json.dumps(built), flush=True)

    records, checks, missing = [], {}, {}
    for name in wanted:
        if importlib.util.find_spec(MODULES[name]) is None:
            missing[name] = f"{MODULES[name]} does not exist in this tree yet; not measured"
            print(f"{name}: {missing[name]}", flush=True)
            continue
        done, results = measure(name, engines, ns)
        records.extend(done)
        if all(results.get(e) is not None for e in ENGINES):
            checks[name] = compare(name, results["churnguard"], results["pandas"])
            print(f"  {name}: results match: {checks[name]['match']}", flush=True)

    import duckdb
    import numpy
    import pandas
    import pyarrow

    record = {
        "date": started.isoformat(timespec="seconds"),
        "customers": ns.customers,
        "seed": SEED,
        "build": built,
        "results": records,
        "checks": checks,
        "not_measured": missing,
        "timeout_s": ns.timeout,
        "memory_cap_mb": int(ns.memory_cap_gb * 1024),
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
