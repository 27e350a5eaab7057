"""Shared fixtures: a real DuckDB store in a temporary folder, file writers and a seeded data set.

No mocks: every test that touches data opens a real DuckDB file with :func:`churnguard.connect`.
"""

from __future__ import annotations

import datetime as dt
import shutil
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import churnguard
from churnguard.errors import ChurnguardError
from churnguard.store import TABLES, Store

#: A fixed "today" so that no test depends on the calendar.
AS_OF = dt.date(2024, 6, 30)

BRANCHES_CSV = """\
branch_id,name,parent_id
HQ,Head office,
P1,Province One,HQ
C1,City One,P1
C2,City Two,P1
"""

CUSTOMERS_CSV = """\
customer_id,branch_id,signup_date,plan
A,C1,2024-01-02,basic
B,C1,2024-01-03,pro
C,C2,2024-02-10,basic
"""


@pytest.fixture(scope="session")
def store_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Database files built once per session: ``empty`` (migrated) and ``seeded``.

    Creating and migrating a file costs far more than copying one, so each test gets a copy.
    """
    folder = tmp_path_factory.mktemp("templates")
    empty = folder / "empty.duckdb"
    churnguard.connect(empty).close()
    seeded = folder / "seeded.duckdb"
    (folder / "branches.csv").write_text(BRANCHES_CSV, encoding="utf-8")
    (folder / "customers.csv").write_text(CUSTOMERS_CSV, encoding="utf-8")
    with churnguard.connect(seeded) as s:
        churnguard.ingest_table(s, "branches", folder / "branches.csv", as_of=AS_OF)
        churnguard.ingest_table(s, "customers", folder / "customers.csv", as_of=AS_OF)
    return {"empty": empty, "seeded": seeded}


@pytest.fixture
def store(tmp_path: Path, request: pytest.FixtureRequest, store_templates: dict[str, Path]) -> Iterator[Store]:
    """A store in a real DuckDB file in the test's temporary folder: empty, or seeded when the test asks for it."""
    path = tmp_path / "churn.duckdb"
    shutil.copyfile(store_templates["seeded" if "seeded" in request.fixturenames else "empty"], path)
    s = churnguard.connect(path)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, str | bytes], Path]:
    """``write_file(name, content)`` writes text (dedented, UTF-8) or bytes into the temporary folder."""
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)

    def write(name: str, content: str | bytes) -> Path:
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content), encoding="utf-8")
        return path

    return write


@pytest.fixture
def write_csv(write_file: Callable[[str, str | bytes], Path]) -> Callable[[str, str], Path]:
    """``write_csv(name, text)``: a CSV file (text is dedented) in the temporary folder."""
    return write_file  # type: ignore[return-value]


@pytest.fixture
def seeded(store: Store) -> Store:
    """The store with a small canonical data set: branches HQ → P1 → (C1, C2) and customers A, B, C
    (loaded through :func:`churnguard.ingest_table`)."""
    return store


def table_rows(store: Store, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``table``, sorted (None first) so that comparisons ignore storage order."""
    rows = store.execute(f"SELECT * FROM {table}").fetchall()
    return sorted(rows, key=lambda r: tuple((v is not None, str(v)) for v in r))


def snapshot(store: Store) -> dict[str, Any]:
    """The full contents and columns of every canonical table and of ``ingest_log``."""
    names = [t.name for t in TABLES] + ["ingest_log"]
    return {name: (store.columns(name), table_rows(store, name)) for name in names}


@pytest.fixture
def rejected(store: Store) -> Callable[..., ChurnguardError]:
    """``rejected(call, *fragments, error=ValidationError)`` runs ``call``, which must fail.

    Asserts the error's class, that every fragment appears in its message, and that the store is
    unchanged: every canonical table and ``ingest_log`` hold exactly what they held before.
    Returns the error for further checks.
    """
    from churnguard.errors import ValidationError

    def run(call: Callable[[], Any], *fragments: str, error: type[ChurnguardError] = ValidationError) -> Any:
        before = snapshot(store)
        with pytest.raises(error) as info:
            call()
        message = str(info.value)
        for fragment in fragments:
            assert fragment in message, f"{fragment!r} not in:\n{message}"
        assert snapshot(store) == before, "a failed load changed the store"
        temp = store.execute("SELECT table_name FROM information_schema.tables WHERE table_name LIKE '_cg%'")
        assert temp.fetchall() == [], "a failed load left staging tables behind"
        return info.value

    return run


# -- the demo operator, shared -------------------------------------------------------------------


def build_demo_store(factory: pytest.TempPathFactory, customers: int = 20_000, seed: int = 7) -> tuple[Path, dict]:
    """The demo operator (every table), built once per test session and shared by the modules that need it.

    Returns the store's path and the simulation's ``truth``.  At its default size (20,000) the
    built-in causes stand out of the noise (at 5,000 the smart fee rise's extra churn, about 2 pp
    in six months, does not).  The truth file is written last: its presence says the store is complete.
    """
    import json

    path = factory.getbasetemp() / f"demo-{customers}-seed{seed}.duckdb"
    truth = path.with_suffix(".json")
    if not truth.exists():
        from churnguard.datasets.simulator import simulate
        from churnguard.ingest import LoadSpec, ingest_tables

        sim = simulate(customers, seed=seed)
        part = path.with_suffix(".part")
        with churnguard.connect(part) as s:
            ingest_tables(s, [LoadSpec(n, t) for n, t in sim.tables.items()], as_of=sim.end)
            s.set_meta("dataset", "demo")
            s.set_meta("churn_definition", "contractual")
            s.set_meta("dataset_as_of", sim.end.isoformat())
        part.rename(path)
        truth.write_text(json.dumps(sim.truth), encoding="utf-8")
    return path, json.loads(truth.read_text(encoding="utf-8"))


# -- the web app: a scored demo store with users and cases, served over real HTTP -----------------

#: Users of the web store: name -> (role, branch, password).  AM-GZ-01 and AM-HZ-01 are owners
#: (customers.owner_id) of customers in Guangzhou and Hangzhou in the simulator.
WEB_USERS: dict[str, tuple[str, str | None, str]] = {
    "admin": ("admin", None, "admin-pass-1"),
    "analyst": ("analyst", "HQ", "analyst-pass-1"),
    "gd-manager": ("branch_manager", "GD", "gd-pass-123"),
    "zj-manager": ("branch_manager", "ZJ", "zj-pass-123"),
    "AM-GZ-01": ("account_manager", "GD-GZ", "am-gz-pass"),
    "AM-HZ-01": ("account_manager", "ZJ-HZ", "am-hz-pass"),
}
WEB_SECRET = "test-secret-of-the-web-tests-0123456789"
#: Driver categories the synthetic scores cycle through.
WEB_DRIVERS = ("usage", "price", "service", "competitor", "payment")


def seed_synthetic_scores(store: Store, *, as_of: dt.date, model_id: str = "synthetic") -> int:
    """Scores for every customer without a churn event, deterministic from the customer id (tests only)."""
    drivers = list(WEB_DRIVERS)
    store.execute(
        """
        INSERT INTO scores
        WITH base AS (
          SELECT c.customer_id, (hash(c.customer_id) % 997) / 997.0 AS p, v.clv,
                 CAST(hash(c.customer_id) % 5 AS BIGINT) AS k
          FROM customers c LEFT JOIN customer_value v ON v.customer_id = c.customer_id
          WHERE c.customer_id NOT IN (SELECT customer_id FROM churn_events)
        )
        SELECT customer_id, CAST($as_of AS DATE), $model, 30, p,
               CASE WHEN p >= 0.7 THEN 'high' WHEN p >= 0.4 THEN 'medium' ELSE 'low' END,
               round(p * coalesce(clv, 500), 2), $drivers[k + 1],
               to_json([{'feature': 'f_' || $drivers[k + 1], 'category': $drivers[k + 1], 'contribution': p,
                         'value': 1.0, 'text_en': 'reason ' || $drivers[k + 1] || ' of ' || customer_id,
                         'text_zh': '原因 ' || $drivers[k + 1]}])::VARCHAR,
               round((1 - p) * 90, 1), TIMESTAMP '2025-12-31 06:00:00'
        FROM base
        """,
        {"as_of": as_of, "model": model_id, "drivers": drivers},
    )
    return int(store.execute("SELECT count(*) FROM scores").fetchone()[0])


def build_web_store(factory: pytest.TempPathFactory, customers: int = 2_000) -> Path:
    """The demo operator at ``customers`` with value segments, synthetic scores, the :data:`WEB_USERS`
    and retention cases for the 30 riskiest customers of Guangdong and of Zhejiang; built once per session."""
    path = factory.getbasetemp() / f"web-{customers}.duckdb"
    if path.exists():
        return path
    from churnguard.auth.users import add_user
    from churnguard.retention.cases import open_cases
    from churnguard.segments import segment_customers

    demo, _ = build_demo_store(factory, customers=customers)
    part = path.with_suffix(".part")
    shutil.copyfile(demo, part)
    with churnguard.connect(part) as s:
        segment_customers(s)
        as_of = dt.date.fromisoformat(s.get_meta("dataset_as_of") or "2025-12-31")
        seed_synthetic_scores(s, as_of=as_of)
        for name, (role, branch, password) in WEB_USERS.items():
            add_user(s, name, role=role, branch_id=branch, password=password)
        for province in ("GD", "ZJ"):
            picked = s.execute(
                """
                SELECT s.customer_id, 'retain' AS kind, s.probability AS priority, 'call' AS action,
                       s.value_at_risk AS expected_gain
                FROM scores s JOIN customers c USING (customer_id)
                WHERE c.branch_id LIKE ? || '-%' ORDER BY s.probability DESC, s.customer_id LIMIT 30
                """,
                [province],
            ).df()
            open_cases(s, picked, actor="test")
    part.rename(path)
    return path


class LiveServer:
    """The churnguard app under uvicorn in a background thread, on a free loopback port, over a real store."""

    def __init__(self, store_path: Path, *, secret: str = WEB_SECRET, **options: Any) -> None:
        self.store_path = store_path
        self.secret = secret
        self.options = options
        self.base_url = ""

    def __enter__(self) -> LiveServer:
        import socket
        import threading
        import time

        import uvicorn

        from churnguard.api import create_app

        app = create_app(f"duckdb:///{self.store_path}", secret=self.secret, **self.options)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live server over a private copy of the web store (one per test module)."""
    source = build_web_store(tmp_path_factory)
    folder = tmp_path_factory.mktemp("web")
    path = folder / "web.duckdb"
    shutil.copyfile(source, path)
    with LiveServer(path) as server:
        yield server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """A real PostgreSQL server for the session (Debian's binaries; see tests/pgserver.py)."""
    import os
    import tempfile

    from pgserver import PgServer

    if os.environ.get("CHURNGUARD_TEST_PG_URL"):
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="cg-pg-"))
    server = PgServer(folder).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: Any) -> str:
    """The URL of a fresh, empty PostgreSQL database on the test server."""
    import os

    from pgserver import create_database

    admin = os.environ.get("CHURNGUARD_TEST_PG_URL") or pg_server.admin_url
    return create_database(admin)


# -- the web store with a trained early-warning model and its full scoring (scoring tests) --------


def build_scored_web_store(factory: pytest.TempPathFactory) -> Path:
    """The web store (:func:`build_web_store`) with an events model trained on it (4 monthly dates) as
    the active model, and every active customer scored on the default day; built once per session."""
    path = factory.getbasetemp() / "web-scored.duckdb"
    if path.exists():
        return path
    from churnguard.predict.events import score_store, train_from_store

    source = build_web_store(factory)
    part = path.with_suffix(".part")
    shutil.copyfile(source, part)
    with churnguard.connect(part) as s:
        train_from_store(s, horizon_days=30, count=4, folds=2, out=factory.getbasetemp() / "web-scored-model")
        score_store(s)
    part.rename(path)
    return path


# -- the web store on PostgreSQL, and `churnguard serve` in a child process (tests/test_pg_*.py) ---


def pg_admin_url(pg_server: Any) -> str:
    import os

    return os.environ.get("CHURNGUARD_TEST_PG_URL") or pg_server.admin_url


def clone_database(admin_url: str, template_url: str) -> str:
    """A new database copied from ``template_url``'s (``CREATE DATABASE … TEMPLATE``); its URL."""
    import uuid

    import psycopg

    name = "cg_" + uuid.uuid4().hex[:12]
    template = template_url.rsplit("/", 1)[1].split("?", 1)[0]
    with psycopg.connect(admin_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


@pytest.fixture(scope="session")
def pg_web_template(pg_server: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PostgreSQL database holding the web store (:func:`build_web_store`), built once per session.

    A template: tests clone it (:func:`clone_database`) and never connect to it themselves."""
    from pgserver import create_database

    from churnguard.store.transfer import copy_store

    url = create_database(pg_admin_url(pg_server))
    with churnguard.connect(build_web_store(tmp_path_factory), read_only=True) as duck, churnguard.connect(url) as pg:
        copy_store(duck, pg)
    return url


class ServedProcess:
    """``churnguard --db URL serve`` in a child process on a free loopback port (several workers allowed)."""

    def __init__(self, db: str, *, workers: int = 1, secret: str = WEB_SECRET, timeout: float = 120) -> None:
        self.db, self.workers, self.secret, self.timeout = db, workers, secret, timeout
        self.base_url = ""

    def __enter__(self) -> ServedProcess:
        import socket
        import subprocess
        import sys
        import tempfile
        import time

        import httpx

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        cmd = [sys.executable, "-m", "churnguard", "--db", self.db, "serve", "--port", str(port)]
        cmd += ["--workers", str(self.workers), "--secret", self.secret, "--no-warm"]
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + self.timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"churnguard serve exited ({self.proc.returncode}): {self.output()}")
            try:
                if httpx.get(f"{self.base_url}/openapi.json", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"churnguard serve did not answer in {self.timeout:.0f} s: {self.output()}")
            time.sleep(0.2)
        return self

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")[-4000:]

    def worker_pids(self) -> list[int]:
        """The server's worker processes (children of the supervisor), from /proc."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                if parent == self.proc.pid and "spawn_main" in (stat.parent / "cmdline").read_text():
                    pids.append(int(stat.parent.name))
            except (OSError, IndexError, ValueError):  # a process that ended meanwhile
                continue
        return sorted(pids)

    def __exit__(self, *exc: object) -> None:
        import os
        import signal
        import subprocess

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the supervisor and its workers (its own session)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.log.close()
