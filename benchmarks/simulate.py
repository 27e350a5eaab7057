"""Benchmark: generate the seeded demo operator through `churnguard simulate`, at several sizes.

Reproduce::

    .venv/bin/python benchmarks/simulate.py --customers 20000,200000,1000000

For each size N it runs the real CLI in a child process::

    churnguard simulate --customers N --seed 7 --out benchmarks/work/sim_N --file-format parquet --format json

Wall time is measured around the child; peak memory is the child's maximum resident set size
(``os.wait4``, that child alone).  The rows of every table are then counted back from the Parquet
files with DuckDB's ``read_parquet`` (not part of the timing), the output's size is summed, and the
output folder is deleted (a million customers take about 1 GB of disk).  One record per size is
appended to benchmarks/results/simulate.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
from pathlib import Path

import duckdb
import numpy
from child import run_cli

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
RESULTS = HERE / "results" / "simulate.json"
TABLES = ("branches", "customers", "subscriptions", "transactions", "events", "tickets", "surveys", "churn_events")
SEED = 7


def run(args: list[str]) -> tuple[float, int, dict]:
    """Run the CLI; return (wall seconds, peak RSS in MB of that child alone, its JSON output)."""
    return run_cli(args)


def count_rows(out: Path) -> dict[str, int]:
    """Rows per table, read back from the Parquet files with DuckDB."""
    con = duckdb.connect()
    counts = {}
    for name in TABLES:
        pattern = (out / name / "*.parquet").as_posix().replace("'", "''")
        counts[name] = con.execute(f"SELECT count(*) FROM read_parquet('{pattern}')").fetchone()[0]
    con.close()
    return counts


def folder_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6, 1)


def bench(customers: int) -> dict:
    out = WORK / f"sim_{customers}"
    shutil.rmtree(out, ignore_errors=True)
    WORK.mkdir(exist_ok=True)
    args = ["simulate", "--customers", str(customers), "--seed", str(SEED), "--out", str(out)]
    secs, peak, _ = run([*args, "--file-format", "parquet", "--format", "json"])
    try:
        rows = count_rows(out)
        size = folder_mb(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    total = sum(rows.values())
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "customers": customers,
        "seed": SEED,
        "file_format": "parquet",
        "seconds_wall": round(secs, 2),
        "peak_rss_mb": peak,
        "rows": rows,
        "rows_total": total,
        "events_per_second_wall": round(rows["events"] / secs),
        "rows_per_second_wall": round(total / secs),
        "output_mb": size,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "numpy": numpy.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--customers",
        default="20000,200000,1000000",
        help="comma-separated sizes to run, in customers (default: 20000,200000,1000000)",
    )
    ns = parser.parse_args()
    try:
        sizes = [int(s.replace("_", "")) for s in ns.customers.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--customers: expected comma-separated whole numbers, got {ns.customers!r}")
    if not sizes or min(sizes) < 1:
        parser.error(f"--customers: expected sizes of at least 1, got {ns.customers!r}")
    RESULTS.parent.mkdir(exist_ok=True)
    for customers in sizes:
        record = bench(customers)
        history = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
        history.append(record)
        RESULTS.write_text(json.dumps(history, indent=2) + "\n")
        print(json.dumps(record, indent=2), flush=True)


if __name__ == "__main__":
    main()
