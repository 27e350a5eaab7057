"""Benchmark: the same analyses on the embedded DuckDB store and on a PostgreSQL server.

Reproduce::

    .venv/bin/python benchmarks/postgres.py                       # sim_100000 (~10.7 M events)
    .venv/bin/python benchmarks/postgres.py --customers 200000
    .venv/bin/python benchmarks/postgres.py --pg-url postgresql://postgres@127.0.0.1:5432/postgres

1. The simulator's operator (seed 7) at ``--customers`` is loaded into a DuckDB store in
   ``benchmarks/work/pg_sim_<n>.duckdb`` (built once: simulate + ingest).
2. A PostgreSQL server is started for the run in a temporary folder (Debian's binaries, as the
   tests do; or ``--pg-url`` names one), a fresh database is created and the store is copied
   into it with ``copy_store`` (timed: rows per second through COPY).
3. Each analysis runs on both stores in this process, DuckDB first: churn by month × branch over
   36 months, the cohort matrix (24 months), implicit churn, and point-in-time features at 2
   dates. Wall seconds of each; the results are compared (identical counts; features to 1e-9).

The PostgreSQL server runs with its defaults except ``fsync=off`` (a benchmark database) and
``work_mem`` from ``--work-mem`` (default 256MB). One record per run is appended to
``benchmarks/results/postgres.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work"
RESULTS = HERE / "results" / "postgres.json"
sys.path.insert(0, str(ROOT / "tests"))  # the throwaway server of the tests (tests/pgserver.py)


def build_store(customers: int) -> Path:
    """The simulator's operator at ``customers`` in a DuckDB file (built once)."""
    import churnguard
    from churnguard.datasets.simulator import simulate
    from churnguard.ingest import LoadSpec, ingest_tables

    path = WORK / f"pg_sim_{customers}.duckdb"
    if path.exists():
        return path
    WORK.mkdir(exist_ok=True)
    sim = simulate(customers, seed=7)
    part = path.with_suffix(".part")
    with churnguard.connect(part) as s:
        ingest_tables(s, [LoadSpec(n, t) for n, t in sim.tables.items()], as_of=sim.end, memory_limit=None)
        s.set_meta("dataset", "demo")
        s.set_meta("churn_definition", "contractual")
        s.set_meta("dataset_as_of", sim.end.isoformat())
    part.rename(path)
    return path


def analyses() -> dict[str, Any]:
    from churnguard import metrics
    from churnguard.features import build_features, observation_dates

    def churn(store: Any) -> Any:
        rules = metrics.rules_for(store)
        r = metrics.churn_report(
            store, start=dt.date(2023, 1, 1), end=dt.date(2025, 12, 31), rules=rules, period="month", by="branch"
        )
        return r.to_dict()["rows"]

    def cohorts(store: Any) -> Any:
        return metrics.cohort_retention(store, rules=metrics.rules_for(store), max_age=24).to_dict()

    def implicit(store: Any) -> Any:
        return metrics.implicit_churn(store, as_of=dt.date(2025, 9, 30)).to_dict()

    def features(store: Any) -> Any:
        dates = observation_dates(store, count=2)
        frame = build_features(store, dates).sort_values(["as_of", "customer_id"]).reset_index(drop=True)
        return frame

    return {"churn": churn, "cohorts": cohorts, "implicit": implicit, "features": features}


def same(a: Any, b: Any) -> bool:
    import pandas as pd

    if isinstance(a, pd.DataFrame):
        if a.shape != b.shape:
            return False
        for c in a.columns:
            x, y = a[c], b[c]
            if x.dtype.kind in "fi" and y.dtype.kind in "fi":
                if not ((x - y).abs() <= 1e-9 * (1 + x.abs())).where(x.notna(), y.isna()).all():
                    return False
            elif x.astype(str).tolist() != y.astype(str).tolist():
                return False
        return True
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--pg-url", help="an admin URL of a running server (default: start one for the run)")
    ap.add_argument("--work-mem", default="256MB")
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()

    from pgserver import PgServer, create_database

    import churnguard
    from churnguard.store.transfer import copy_store

    source = build_store(args.customers)
    folder = None
    server = None
    if args.pg_url:
        admin = args.pg_url
    else:
        folder = Path(tempfile.mkdtemp(prefix="cg-pg-bench-"))
        server = PgServer(folder).start()
        admin = server.admin_url
    try:
        url = create_database(admin)
        duck = churnguard.connect(source)
        pg = churnguard.connect(url)
        pg.execute(f"SET work_mem = '{args.work_mem}'")
        started = time.perf_counter()
        copied = copy_store(duck, pg)
        copy_s = time.perf_counter() - started
        rows = sum(c.rows for c in copied)
        pg.execute("ANALYZE")
        record: dict[str, Any] = {
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "load_average": os.getloadavg(),
            "customers": args.customers,
            "events": next(c.rows for c in copied if c.table == "events"),
            "copy_to_postgres": {"rows": rows, "seconds": round(copy_s, 1), "rows_per_s": round(rows / copy_s)},
            "work_mem": args.work_mem,
            "analyses": {},
        }
        for name, fn in analyses().items():
            if args.only and name not in args.only:
                continue
            out = {}
            results = []
            for label, store in (("duckdb", duck), ("postgresql", pg)):
                t = time.perf_counter()
                results.append(fn(store))
                out[f"{label}_s"] = round(time.perf_counter() - t, 2)
            out["identical"] = same(*results)
            out["postgresql_vs_duckdb"] = round(out["postgresql_s"] / max(out["duckdb_s"], 1e-9), 1)
            record["analyses"][name] = out
            print(name, out, flush=True)
        duck.close()
        pg.close()
    finally:
        if server is not None:
            server.stop()
            shutil.rmtree(folder, ignore_errors=True)
    history = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    history.append(record)
    RESULTS.write_text(json.dumps(history, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
