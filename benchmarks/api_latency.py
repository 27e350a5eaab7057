"""Benchmark: latency of the at-risk list, the customer 360 and the dashboard pages at 1 M customers.

Reproduce::

    .venv/bin/python benchmarks/api_latency.py                   # builds once, then ~2 min of requests
    .venv/bin/python benchmarks/api_latency.py --requests 100    # fewer requests per endpoint
    .venv/bin/python benchmarks/api_latency.py --cold-overview   # cold overviews, in process (~2 min)
    .venv/bin/python benchmarks/api_latency.py --cold-overview --http   # and over HTTP (copies the store once)

1. The store (built once, skipped when present): the simulator's operator at 1 M customers, seed 7,
   as ``benchmarks/metrics_1m.py`` builds it (``benchmarks/work/sim_1m.duckdb``: ~107 M events), copied
   to ``benchmarks/work/api_1m.duckdb``; then, in the copy: value segments for every customer
   (:func:`churnguard.segments.segment_customers`), **synthetic scores** for every customer without a
   churn event (probability, risk band, value at risk, driver and reasons deterministic from the
   customer id: the model is not what is measured), three users (an admin, the Guangdong branch
   manager, an account manager in Guangzhou) and retention cases for the 2,000 riskiest customers.
2. The app runs under uvicorn in its own process (this file with ``--serve``) on a free loopback port.
3. One client (httpx, one connection, requests one after another, so each measures one request
   alone) logs in (a bearer token per user, and a dashboard session for the pages), warms each
   endpoint with 5 requests, then sends ``--requests`` (200) requests to each endpoint below, with
   offsets, filters and customer ids drawn from a seeded generator.  Per request it records the
   wall time at the client and the app's own time (``Server-Timing: app;dur=…``, from the first
   byte received by the app to the response start, without the network and the client).
4. p50, p90, p99 and max of both per endpoint go to ``benchmarks/results/api_latency.json``
   (one record appended per run).

``--cold-overview`` times the overview of branches and periods that nothing has computed yet
(:func:`cold_overview`, in process on the store opened read-only; with ``--http``, also over HTTP against
a server on a copy of the store, ``work/api_1m_cold.duckdb``, after its start-up warm-up) and appends a
record with a ``cold_overview`` section to the same JSON.

Endpoints: ``/api/at-risk`` (admin, whole company: sorted by value at risk, random pages of 50;
with tier + driver filters; sorted by probability; as the Guangdong manager), ``/api/customers/{id}``
(admin, random customers; the account manager, their own customers), and the pages ``/at-risk``,
``/customers/{id}`` and ``/overview`` (served from the figure cache, which the server warms at start:
the warm-up, which also computes the root's and each province's overview, is waited for and timed
separately).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work"
RESULTS = HERE / "results" / "api_latency.json"
SOURCE = WORK / "sim_1m.duckdb"
STORE = WORK / "api_1m.duckdb"
SECRET = "benchmark-secret-not-for-production-0123456789"
USERS = {
    "admin": ("admin", None, "bench-admin-pass"),
    "gd-manager": ("branch_manager", "GD", "bench-gd-pass"),
    "AM-GZ-01": ("account_manager", "GD-GZ", "bench-am-pass"),
}
PREPARED_KEY = "api_bench_prepared"
DRIVERS = ("usage", "price", "service", "competitor", "payment")


# -- the store -------------------------------------------------------------------------------------


def prepare(customers: int) -> dict[str, Any]:
    """Build (or reuse) the 1 M store and its scored copy; return what was done and how long it took."""
    sys.path.insert(0, str(HERE))
    import metrics_1m

    import churnguard

    out: dict[str, Any] = {}
    if not STORE.exists() or not _prepared(STORE):
        label = "1m" if customers == 1_000_000 else str(customers)
        source = WORK / f"sim_{label}.duckdb"
        out["source"] = metrics_1m.build(
            customers, WORK / f"sim_{customers}", source, timeout=600.0, memory_cap_mb=16 * 1024
        )
        t0 = time.perf_counter()
        shutil.copyfile(source, STORE)
        out["copy_s"] = round(time.perf_counter() - t0, 1)
        with churnguard.connect(STORE) as s:
            out.update(_fill(s))
            s.set_meta(PREPARED_KEY, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    else:
        out["store"] = "reused"
    with churnguard.connect(STORE) as s:
        out["rows"] = {
            t: s.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("customers", "events", "transactions", "scores", "customer_value", "cases", "users")
        }
    out["store_mb"] = round(STORE.stat().st_size / 1e6, 1)
    return out


def _prepared(path: Path) -> bool:
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
        row = con.execute("SELECT value FROM churnguard_meta WHERE key = ?", [PREPARED_KEY]).fetchone()
        con.close()
    except duckdb.Error:
        return False
    return bool(row)


def _fill(s: Any) -> dict[str, Any]:
    from churnguard.auth.users import add_user
    from churnguard.retention.cases import open_cases
    from churnguard.segments import segment_customers

    done: dict[str, Any] = {}
    t0 = time.perf_counter()
    segment_customers(s)
    done["segments_s"] = round(time.perf_counter() - t0, 1)
    as_of = dt.date.fromisoformat(s.get_meta("dataset_as_of") or "2025-12-31")
    t0 = time.perf_counter()
    s.execute(
        """
        INSERT INTO scores
        WITH base AS (
          SELECT c.customer_id, (hash(c.customer_id) % 99991) / 99991.0 AS p, v.clv, v.value,
                 CAST(hash(c.customer_id) % 5 AS BIGINT) AS k
          FROM customers c LEFT JOIN customer_value v ON v.customer_id = c.customer_id
          WHERE c.customer_id NOT IN (SELECT customer_id FROM churn_events)
        )
        SELECT customer_id, CAST($as_of AS DATE), 'synthetic-bench', 30, p,
               CASE WHEN p >= 0.7 THEN 'high' WHEN p >= 0.4 THEN 'medium' ELSE 'low' END,
               round(p * coalesce(clv, value, 300), 2), $drivers[k + 1],
               to_json([{'feature': 'f_' || $drivers[k + 1], 'category': $drivers[k + 1], 'contribution': p,
                         'value': 1.0, 'text_en': 'synthetic reason: ' || $drivers[k + 1],
                         'text_zh': '模拟原因:' || $drivers[k + 1]}])::VARCHAR,
               round((1 - p) * 90, 1), TIMESTAMP '2025-12-31 06:00:00'
        FROM base
        """,
        {"as_of": as_of, "drivers": list(DRIVERS)},
    )
    done["scores_s"] = round(time.perf_counter() - t0, 1)
    for name, (role, branch, password) in USERS.items():
        add_user(s, name, role=role, branch_id=branch, password=password)
    picked = s.execute(
        """
        SELECT customer_id, 'retain' AS kind, probability AS priority, 'call' AS action, value_at_risk AS expected_gain
        FROM scores ORDER BY probability DESC, customer_id LIMIT 2000
        """
    ).df()
    t0 = time.perf_counter()
    open_cases(s, picked, actor="benchmark")
    done["cases_s"] = round(time.perf_counter() - t0, 1)
    s.execute("CHECKPOINT")
    return done


# -- the server --------------------------------------------------------------------------------------


def serve(port: int, store: Path = STORE) -> None:
    import uvicorn

    from churnguard.api import create_app

    app = create_app(f"duckdb:///{store}", secret=SECRET, warm_cache=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(store: Path = STORE) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(WORK / "api_latency_server.log", "w")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve", str(port), "--store", str(store)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server stopped; see {WORK / 'api_latency_server.log'}")
        try:
            httpx.get(base + "/openapi.json", timeout=2)
            return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("the server did not start within 300 s")


def stop_server(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def _rss_mb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except OSError:
        return None
    return None


# -- the client --------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo), 1)


def summary(wall: list[float], app: list[float]) -> dict[str, Any]:
    out: dict[str, Any] = {"requests": len(wall)}
    for name, values in (("wall_ms", wall), ("app_ms", app)):
        if values:
            out[name] = {
                "p50": pct(values, 0.5),
                "p90": pct(values, 0.9),
                "p99": pct(values, 0.99),
                "max": round(max(values), 1),
                "mean": round(statistics.fmean(values), 1),
            }
    return out


def timed(client: Any, url: str) -> tuple[float, float | None, int]:
    t0 = time.perf_counter()
    r = client.get(url)
    wall = (time.perf_counter() - t0) * 1000
    m = re.search(r"app;dur=([0-9.]+)", r.headers.get("server-timing", ""))
    if r.status_code != 200:
        raise SystemExit(f"GET {url}: {r.status_code} {r.text[:300]}")
    return wall, float(m.group(1)) if m else None, len(r.content)


def measure(client: Any, name: str, urls: list[str], warm: int = 5) -> dict[str, Any]:
    for url in urls[:warm]:
        timed(client, url)
    wall, app, sizes = [], [], []
    for url in urls:
        w, a, n = timed(client, url)
        wall.append(w)
        sizes.append(n)
        if a is not None:
            app.append(a)
    out = {"endpoint": name, **summary(wall, app), "mean_bytes": int(statistics.fmean(sizes))}
    print(
        f"  {name:<44} p50 {out['app_ms']['p50']:>7.1f} ms  p99 {out['app_ms']['p99']:>7.1f} ms (app)   "
        f"p50 {out['wall_ms']['p50']:>7.1f} ms  p99 {out['wall_ms']['p99']:>7.1f} ms (wall)",
        flush=True,
    )
    return out


def login_page_session(base: str, user: str, password: str) -> Any:
    import httpx

    c = httpx.Client(base_url=base, timeout=300)
    page = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = c.post("/login", data={"username": user, "password": password, "csrf_token": token, "next": "/"})
    assert r.status_code == 303, r.text
    return c


def run_requests(base: str, n: int, seed: int) -> dict[str, Any]:
    import httpx

    rng = random.Random(seed)
    tokens = {}
    for user, (_, _, password) in USERS.items():
        r = httpx.post(f"{base}/api/auth/token", json={"username": user, "password": password}, timeout=60)
        tokens[user] = r.json()["token"]

    def api(user: str) -> Any:
        return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {tokens[user]}"}, timeout=300)

    out: dict[str, Any] = {"endpoints": []}
    admin, gd, am = api("admin"), api("gd-manager"), api("AM-GZ-01")
    first = admin.get("/api/at-risk?limit=1").json()
    total = first["total"]
    gd_total = gd.get("/api/at-risk?limit=1").json()["total"]
    out["at_risk_total"], out["at_risk_total_gd"] = total, gd_total
    # customer ids for the 360: a sample of the scored customers, read through the API (random pages)
    ids: list[str] = []
    while len(ids) < n:
        page = admin.get(f"/api/at-risk?limit=50&offset={rng.randrange(0, total - 50)}").json()
        ids += [r["customer_id"] for r in page["rows"]]
    ids = ids[:n]
    own = am.get("/api/at-risk?limit=500").json()
    own_ids = [r["customer_id"] for r in own["rows"]] or ids
    out["account_manager_customers"] = own["total"]

    def pages(fmt: str, count: int, top: int) -> list[str]:
        return [fmt.format(offset=rng.randrange(0, max(top - 50, 1))) for _ in range(count)]

    m = out["endpoints"]
    m.append(
        measure(
            admin, "at-risk: all, value at risk, random page", pages("/api/at-risk?limit=50&offset={offset}", n, total)
        )
    )
    m.append(measure(admin, "at-risk: all, first page", ["/api/at-risk?limit=50"] * n))
    m.append(
        measure(
            admin,
            "at-risk: all, tier A + driver price",
            pages("/api/at-risk?limit=50&tier=A&reason=price&offset={offset}", n, 2000),
        )
    )
    m.append(
        measure(
            admin,
            "at-risk: all, by probability",
            pages("/api/at-risk?limit=50&sort=probability&offset={offset}", n, total),
        )
    )
    m.append(
        measure(
            gd, "at-risk: Guangdong manager, random page", pages("/api/at-risk?limit=50&offset={offset}", n, gd_total)
        )
    )
    m.append(measure(admin, "customer 360: admin, random customer", [f"/api/customers/{c}" for c in ids]))
    m.append(
        measure(
            am,
            "customer 360: account manager, own customer",
            [f"/api/customers/{rng.choice(own_ids)}" for _ in range(n)],
        )
    )
    web = login_page_session(base, "admin", USERS["admin"][2])
    t0 = time.perf_counter()
    r = web.get("/overview")
    out["overview_first_s"] = round(time.perf_counter() - t0, 2)  # cached by the warm-up unless it is still running
    out["overview_first_app_ms"] = float(re.search(r"app;dur=([0-9.]+)", r.headers["server-timing"]).group(1))  # type: ignore[union-attr]
    m.append(measure(web, "page /overview (cached figures)", ["/overview"] * n))
    m.append(
        measure(web, "page /at-risk, random page", [f"/at-risk?page={rng.randrange(1, total // 50)}" for _ in range(n)])
    )
    m.append(measure(web, "page /customers/{id}", [f"/customers/{c}" for c in ids]))
    gd_web = login_page_session(base, "gd-manager", USERS["gd-manager"][2])
    t0 = time.perf_counter()
    gd_web.get("/overview")
    # the server warms the provinces' overviews after the company's: by now usually cached
    out["overview_gd_first_s"] = round(time.perf_counter() - t0, 2)
    for c in (admin, gd, am, web, gd_web):
        c.close()
    return out


# -- cold overviews (in process) ----------------------------------------------------------------------

#: (label, branch, months): the overviews timed cold by ``--cold-overview``.
COLD_CASES: tuple[tuple[str, str | None, int], ...] = (
    ("head office, 12 months", None, 12),
    ("province GD, 12 months", "GD", 12),
    ("city GD-GZ, 12 months", "GD-GZ", 12),
    ("head office, 3 months (another period)", None, 3),
    ("city ZJ-HZ, 6 months (another period)", "ZJ-HZ", 6),
)


def cold_overview(repeat: int) -> dict[str, Any]:
    """Time :func:`churnguard.api.services.figures.overview` in this process on a read-only store.

    ``cold``: each case with an empty figure cache (nothing of that period computed yet: what the first
    visit of a branch or period not warmed at start-up costs on the server, without HTTP and JSON);
    ``branch_cold``: with the period's all-branch figures already cached (the period warmed, this branch
    not); ``warm``: the same call again (a cache hit: the data-version check and the lookup).  DuckDB's
    buffers are warm (a running server's are): one untimed overview of another period runs first.
    Where the overview reads the spell facts (``figures.overview_facts``, built once per data version at
    start-up), they are built first and timed apart (``facts_build_s``) and kept across the cases.
    """
    import churnguard
    from churnguard.api.cache import FigureCache
    from churnguard.api.services import figures
    from churnguard.auth.scope import Scope

    def scope(branch: str | None) -> Scope:
        return Scope("(bench)", "admin" if branch is None else "analyst", branch)

    out: dict[str, Any] = {"cases": []}
    with churnguard.connect(STORE, read_only=True) as store:
        cache = FigureCache()
        if hasattr(figures, "overview_facts"):
            t0 = time.perf_counter()
            facts = figures.overview_facts(store, cache)
            out["facts_build_s"] = round(time.perf_counter() - t0, 2)
            out["facts_spells"] = facts.spells
            print(f"  spell facts: {facts.spells:,} spells in {out['facts_build_s']} s", flush=True)
        t0 = time.perf_counter()
        figures.overview(store, scope("SC"), cache, months=1)
        out["prime_s"] = round(time.perf_counter() - t0, 2)
        print(f"  prime (SC, 1 month): {out['prime_s']} s", flush=True)
        for label, branch, months in COLD_CASES:
            cold, branch_cold, warm = [], [], []
            for _ in range(repeat):
                cache.clear()  # the figures; the spell facts of the data version stay
                t0 = time.perf_counter()
                figures.overview(store, scope(branch), cache, months=months)
                cold.append(time.perf_counter() - t0)
                for _ in range(5):
                    t0 = time.perf_counter()
                    figures.overview(store, scope(branch), cache, months=months)
                    warm.append(time.perf_counter() - t0)
                other = "ZJ-NB" if branch != "ZJ-NB" else "GD-SZ"
                figures.overview(store, scope(other), cache, months=months)  # the period's shared figures
                kept = {k: cache._entries[k] for k in cache._entries if k[1] != "overview"}
                cache.clear()
                for k, v in kept.items():
                    cache.get_or_compute(k, lambda v=v: v)
                t0 = time.perf_counter()
                figures.overview(store, scope(branch), cache, months=months)
                branch_cold.append(time.perf_counter() - t0)
            row = {
                "case": label,
                "branch": branch,
                "months": months,
                "cold_s": [round(x, 3) for x in cold],
                "branch_cold_s": [round(x, 3) for x in branch_cold],
                "warm_ms_p50": round(statistics.median(warm) * 1000, 1),
                "warm_ms_max": round(max(warm) * 1000, 1),
            }
            out["cases"].append(row)
            print(
                f"  {label:<42} cold {min(cold):6.2f} s   branch cold {min(branch_cold):6.2f} s   "
                f"warm {row['warm_ms_p50']:6.1f} ms",
                flush=True,
            )
    return out


#: (label, branch, from, to): the overviews timed cold over HTTP by ``--cold-overview --http`` (periods the
#: start-up warm-up does not compute).
HTTP_COLD_CASES: tuple[tuple[str, str | None, str, str], ...] = (
    ("head office, 2025-02-01..2025-07-31", None, "2025-02-01", "2025-07-31"),
    ("province GD, 2025-02-01..2025-07-31", "GD", "2025-02-01", "2025-07-31"),
    ("city GD-GZ, 2025-02-01..2025-07-31", "GD-GZ", "2025-02-01", "2025-07-31"),
    ("city ZJ-HZ, 12 months (warmed period, branch not)", "ZJ-HZ", "", ""),
    ("city SC-MY, 2024-05-15..2024-11-20", "SC-MY", "2024-05-15", "2024-11-20"),
)


def cold_overview_http(warm: int = 20) -> dict[str, Any]:
    """The server (on a copy of the store: it opens it for writing) with its start-up warm-up; then cold and
    warm ``/api/metrics/overview`` requests for branches and periods the warm-up did not compute."""
    import httpx

    copy = WORK / "api_1m_cold.duckdb"
    if not copy.exists():
        shutil.copyfile(STORE, copy)
    t0 = time.perf_counter()
    proc, base = start_server(copy)
    out: dict[str, Any] = {"server_start_s": round(time.perf_counter() - t0, 1), "cases": []}
    try:
        token = httpx.post(
            f"{base}/api/auth/token", json={"username": "admin", "password": USERS["admin"][2]}, timeout=60
        ).json()["token"]
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=900) as c:
            t0 = time.perf_counter()
            c.get("/api/metrics/overview")  # waits for the warm-up's company overview (it holds the entry's lock)
            for months in (1, 3, 6):
                c.get("/api/metrics/overview", params={"months": months})
            out["warm_up_s"] = round(time.perf_counter() - t0, 1)
            print(f"  server up in {out['server_start_s']} s; warm-up done after {out['warm_up_s']} s", flush=True)
            for label, branch, start, end in HTTP_COLD_CASES:
                params = {k: v for k, v in (("branch", branch), ("from", start), ("to", end)) if v}
                wall, app = [], []
                for _ in range(1 + warm):
                    w, a, _ = timed(c, "/api/metrics/overview?" + "&".join(f"{k}={v}" for k, v in params.items()))
                    wall.append(w)
                    app.append(a or 0.0)
                row = {
                    "case": label,
                    "cold_app_ms": round(app[0], 1),
                    "cold_wall_ms": round(wall[0], 1),
                    "warm": summary(wall[1:], app[1:]),
                }
                out["cases"].append(row)
                print(
                    f"  {label:<48} cold {row['cold_app_ms']:8.1f} ms   warm p50 {row['warm']['app_ms']['p50']:6.1f} ms"
                    f"  p99 {row['warm']['app_ms']['p99']:6.1f} ms (app)",
                    flush=True,
                )
        out["server_peak_rss_mb"] = _rss_mb(proc.pid)
    finally:
        stop_server(proc)
    return out


def record_cold_overview(repeat: int, note: str | None, http: bool) -> None:
    import duckdb

    started, load_start = dt.datetime.now(dt.UTC), os.getloadavg()
    print(f"cold overviews on {STORE.name} (read-only, in process)", flush=True)
    measured = cold_overview(repeat)
    if http:
        print("cold overviews over HTTP (a copy of the store, warm-up on)", flush=True)
        measured["http"] = cold_overview_http()
    record = {
        "date": started.isoformat(timespec="seconds"),
        "customers": 1_000_000,
        "cold_overview": measured,
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in load_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
    }
    if note:
        record["note"] = note
    history = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    history.append(record)
    RESULTS.write_text(json.dumps(history, indent=2, ensure_ascii=False) + "\n")
    print(f"recorded in {RESULTS.relative_to(ROOT)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200, help="requests per endpoint (after 5 warm-up ones)")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, default=STORE, help=argparse.SUPPRESS)
    parser.add_argument(
        "--cold-overview", action="store_true", help="time cold and warm overviews in process (read-only store)"
    )
    parser.add_argument("--repeat", type=int, default=2, help="--cold-overview: times each case")
    parser.add_argument("--note", help="--cold-overview: a note kept with the record")
    parser.add_argument("--http", action="store_true", help="--cold-overview: over HTTP too (copies the store)")
    ns = parser.parse_args()
    if ns.serve:
        serve(ns.serve, ns.store)
        return
    if ns.cold_overview:
        record_cold_overview(ns.repeat, ns.note, ns.http)
        return
    started, load_start = dt.datetime.now(dt.UTC), os.getloadavg()
    print(f"prepare {STORE.name}", flush=True)
    built = prepare(ns.customers)
    print(json.dumps(built), flush=True)
    if ns.prepare_only:
        return
    t0 = time.perf_counter()
    proc, base = start_server()
    startup_s = round(time.perf_counter() - t0, 1)
    try:
        # the server warms the company overview in the background: wait for it before timing pages
        import httpx

        token = httpx.post(
            f"{base}/api/auth/token", json={"username": "admin", "password": USERS["admin"][2]}, timeout=60
        ).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        t0 = time.perf_counter()
        httpx.get(f"{base}/api/metrics/overview", headers=headers, timeout=900)
        overview_wait_s = round(time.perf_counter() - t0, 1)
        # ... and for the rest of the warm-up (the root and the provinces), so that it does not run beside the timing
        tree = httpx.get(f"{base}/api/branches", headers=headers, timeout=60).json()["branches"]
        for b in tree:
            if (b["level"] or 0) <= 1:
                httpx.get(
                    f"{base}/api/metrics/overview", params={"branch": b["branch_id"]}, headers=headers, timeout=900
                )
        warm_all_s = round(time.perf_counter() - t0, 1)
        print(
            f"server up in {startup_s} s; company overview ready after {overview_wait_s} s more, "
            f"provinces after {warm_all_s} s",
            flush=True,
        )
        measured = run_requests(base, ns.requests, ns.seed)
        server_peak = _rss_mb(proc.pid)
    finally:
        stop_server(proc)
    import duckdb
    import fastapi
    import uvicorn

    record = {
        "date": started.isoformat(timespec="seconds"),
        "customers": ns.customers,
        "requests_per_endpoint": ns.requests,
        "seed": ns.seed,
        "build": built,
        "server_start_s": startup_s,
        "overview_warm_s": overview_wait_s,
        "warm_up_all_s": warm_all_s,
        **measured,
        "server_peak_rss_mb": server_peak,
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in load_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "fastapi": fastapi.__version__,
        "uvicorn": uvicorn.__version__,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    history = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    history.append(record)
    RESULTS.write_text(json.dumps(history, indent=2, ensure_ascii=False) + "\n")
    print(f"recorded in {RESULTS.relative_to(ROOT)}", flush=True)


if __name__ == "__main__":
    main()
