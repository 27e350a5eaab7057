"""Benchmark: load a 10-million-row events CSV through `churnguard ingest`.

Reproduce::

    .venv/bin/python benchmarks/ingest_events.py --rows 10000000

It writes a customers CSV and an events CSV into benchmarks/work/ (generated in DuckDB,
not part of the timing), then runs the real CLI in a child process against a fresh store:
branches, customers, then events — the timed load — and again the same events file with
``--mode append`` (the idempotent re-run, which must add nothing).  Wall time is measured
around the child; peak memory is the child's maximum resident set size.  Results are
appended to benchmarks/results/ingest_events.json.

PostgreSQL::

    .venv/bin/python benchmarks/ingest_events.py --rows 1000000 --customers 200000 \
        --postgresql postgresql://postgres@127.0.0.1:5432/postgres

runs the same steps against a fresh database ``cg_bench_ingest`` on that server (created with
the URL's user; dropped first if it exists) and, right after, on a fresh DuckDB store, so the
two are measured under the same conditions.  The record is appended to the same list with the
PostgreSQL numbers under ``"postgresql"`` and the DuckDB ones under ``"duckdb"``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any

import duckdb
from child import run_cli

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
RESULTS = HERE / "results" / "ingest_events.json"


def generate(rows: int, customers: int) -> tuple[Path, Path, Path]:
    WORK.mkdir(exist_ok=True)
    branches = WORK / "branches.csv"
    branches.write_text("branch_id,name,parent_id\nHQ,Head office,\nP1,Province 1,HQ\n", encoding="utf-8")
    cust = WORK / f"customers_{customers}.csv"
    events = WORK / f"events_{rows}.csv"
    con = duckdb.connect()
    if not cust.exists():
        con.execute(
            f"""COPY (SELECT printf('C%07d', i) AS customer_id, 'P1' AS branch_id,
                       DATE '2023-01-01' + CAST(i % 700 AS INTEGER) AS signup_date, 'basic' AS plan
                FROM range({customers}) t(i)) TO '{cust}' (HEADER)"""
        )
    if not events.exists():
        con.execute(
            f"""COPY (SELECT printf('C%07d', hash(i) % {customers}) AS customer_id,
                       TIMESTAMP '2024-01-01' + to_seconds(CAST(hash(i * 7) % 63072000 AS BIGINT)) AS ts,
                       (['call','data_mb','sms','login'])[1 + CAST(i % 4 AS INTEGER)] AS event_type,
                       round((hash(i * 13) % 10000) / 100.0, 2) AS value
                FROM range({rows}) t(i)) TO '{events}' (HEADER)"""
        )
    return branches, cust, events


def run(args: list[str]) -> tuple[float, int, dict]:
    """Run the CLI; return (wall seconds, peak RSS in MB of that child alone, its JSON output)."""
    return run_cli(args)


def fresh_postgres(url: str, name: str = "cg_bench_ingest") -> str:
    """A fresh, empty database ``name`` on the server of ``url``; its URL."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        con.execute(f"CREATE DATABASE {name}")
    head, _, _ = url.rpartition("/")
    return f"{head}/{name}"


def measure(db: str, count: Any, files: tuple[Path, Path, Path], rows: int, memory_limit: str) -> dict[str, Any]:
    """Load branches, customers, then the timed events load and its append re-run into the store ``db``."""
    branches, cust, events = files
    base = ["--db", db]
    run([*base, "ingest", "branches", str(branches), "--format", "json"])
    run([*base, "ingest", "customers", str(cust), "--format", "json"])
    limit = ["--memory-limit", memory_limit]
    secs, peak, first = run([*base, "ingest", "events", str(events), *limit, "--format", "json"])
    rerun = [*base, "ingest", "events", str(events), "--mode", "append", *limit, "--format", "json"]
    resecs, repeak, again = run(rerun)
    return {
        "load_seconds_wall": round(secs, 2),
        "rows_per_second_wall": round(rows / secs),
        "load_seconds_in_engine": first["seconds"],
        "rows_per_second_in_engine": round(rows / first["seconds"]),
        "peak_rss_mb": peak,
        "rerun_append_seconds": round(resecs, 2),
        "rerun_rows_added": again["rows_added"],
        "rerun_peak_rss_mb": repeak,
        "rows_in_store_after_rerun": count(),
    }


def main_postgres(ns: argparse.Namespace, files: tuple[Path, Path, Path]) -> None:
    import psycopg

    url = fresh_postgres(ns.postgresql)

    def pg_count() -> int:
        with psycopg.connect(url) as con:
            return int(con.execute("SELECT count(*) FROM events").fetchone()[0])

    pg = measure(url, pg_count, files, ns.rows, ns.memory_limit)
    with psycopg.connect(url) as con:
        server = con.execute("SHOW server_version").fetchone()[0]
    db = WORK / "bench_pg_compare.duckdb"
    for p in (db, Path(str(db) + ".wal")):
        p.unlink(missing_ok=True)
    duck = measure(
        str(db),
        lambda: duckdb.connect(str(db), read_only=True).execute("SELECT count(*) FROM events").fetchone()[0],
        files,
        ns.rows,
        ns.memory_limit,
    )
    record = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rows": ns.rows,
        "customers": ns.customers,
        "memory_limit": ns.memory_limit,
        "csv_mb": round(files[2].stat().st_size / 1e6, 1),
        "postgresql": {**pg, "server": f"PostgreSQL {server}, same machine, default settings"},
        "duckdb": duck,
        "postgresql_vs_duckdb_in_engine": round(duck["load_seconds_in_engine"] / pg["load_seconds_in_engine"], 3),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "duckdb_version": duckdb.__version__,
        "psycopg": psycopg.__version__,
    }
    save(record)


def save(record: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    history = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    history.append(record)
    RESULTS.write_text(json.dumps(history, indent=2) + "\n")
    print(json.dumps(record, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--memory-limit", default="1GB", help="passed to churnguard ingest --memory-limit")
    parser.add_argument(
        "--postgresql", metavar="URL", help="also load into a fresh database on this PostgreSQL server (and compare)"
    )
    ns = parser.parse_args()
    branches, cust, events = generate(ns.rows, ns.customers)
    if ns.postgresql:
        main_postgres(ns, (branches, cust, events))
        return
    db = WORK / "bench.duckdb"
    for p in (db, Path(str(db) + ".wal")):
        p.unlink(missing_ok=True)
    base = ["--db", str(db)]
    run([*base, "ingest", "branches", str(branches), "--format", "json"])
    run([*base, "ingest", "customers", str(cust), "--format", "json"])
    limit = ["--memory-limit", ns.memory_limit]
    secs, peak, first = run([*base, "ingest", "events", str(events), *limit, "--format", "json"])
    resecs, repeak, again = run(
        [*base, "ingest", "events", str(events), "--mode", "append", *limit, "--format", "json"]
    )
    n = duckdb.connect(str(db), read_only=True).execute("SELECT count(*) FROM events").fetchone()[0]
    record = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rows": ns.rows,
        "customers": ns.customers,
        "memory_limit": ns.memory_limit,
        "csv_mb": round(events.stat().st_size / 1e6, 1),
        "load_seconds_wall": round(secs, 2),
        "rows_per_second_wall": round(ns.rows / secs),
        "load_seconds_in_engine": first["seconds"],
        "rows_per_second_in_engine": round(ns.rows / first["seconds"]),
        "peak_rss_mb": peak,
        "rerun_append_seconds": round(resecs, 2),
        "rerun_rows_added": again["rows_added"],
        "rerun_peak_rss_mb": repeak,
        "rows_in_store_after_rerun": n,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
    }
    save(record)


if __name__ == "__main__":
    main()
