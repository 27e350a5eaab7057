"""The API over real HTTP on a PostgreSQL store: ``churnguard --db postgresql://… serve --workers 2`` in a child
process over a copy of the web store, against the same store in DuckDB served in-process (the fixture
``web_server``): login, the overview, the at-risk list, the customer 360 and the branch scope (an id of another
branch answers 404 like a missing one) give the same answers on both engines.  Also: a dashboard session and
the login lock hold across the workers, and ``--workers`` above 1 is refused on a DuckDB store."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import WEB_SECRET, WEB_USERS, LiveServer, ServedProcess, clone_database, pg_admin_url

import churnguard
from churnguard.api.services.figures import period_for
from churnguard.metrics import churn_report, rules_for

GD = {"GD", "GD-GZ", "GD-SZ", "GD-DG"}


@pytest.fixture(scope="module")
def pg_store_url(pg_server: Any, pg_web_template: str) -> str:
    return clone_database(pg_admin_url(pg_server), pg_web_template)


@pytest.fixture(scope="module")
def served(pg_store_url: str) -> Iterator[ServedProcess]:
    with ServedProcess(pg_store_url, workers=2) as server:
        yield server


def tokens_of(base_url: str) -> dict[str, str]:
    out = {}
    with httpx.Client(base_url=base_url, timeout=60) as c:
        for user, (_, _, password) in WEB_USERS.items():
            r = c.post("/api/auth/token", json={"username": user, "password": password})
            assert r.status_code == 200, r.text
            out[user] = r.json()["token"]
    return out


@pytest.fixture(scope="module")
def pg_tokens(served: ServedProcess) -> dict[str, str]:
    return tokens_of(served.base_url)


@pytest.fixture(scope="module")
def duck_tokens(web_server: LiveServer) -> dict[str, str]:
    return tokens_of(web_server.base_url)


def get(base_url: str, token: str, path: str, **params: Any) -> httpx.Response:
    with httpx.Client(base_url=base_url, timeout=120, headers={"Authorization": f"Bearer {token}"}) as c:
        return c.get(path, params=params) if params else c.get(path)


@pytest.fixture(scope="module")
def truth(pg_store_url: str) -> dict[str, Any]:
    """What each scope holds, read from the PostgreSQL store with plain SQL on branch id prefixes."""
    with churnguard.connect(pg_store_url) as s:

        def one(sql: str) -> Any:
            return s.execute(sql).fetchone()[0]

        scored = "SELECT s.customer_id FROM scores s JOIN customers c ON c.customer_id = s.customer_id"
        return {
            "scored_gd": {r[0] for r in s.execute(scored + " WHERE c.branch_id LIKE 'GD-%'").fetchall()},
            "zj_customer": one("SELECT min(customer_id) FROM customers WHERE branch_id LIKE 'ZJ-%'"),
            "gd_customer": one("SELECT min(customer_id) FROM customers WHERE branch_id = 'GD-SZ'"),
            "gz_own": one("SELECT min(customer_id) FROM customers WHERE owner_id = 'AM-GZ-01'"),
            "zj_case": one("SELECT min(case_id) FROM cases WHERE branch_id LIKE 'ZJ-%'"),
        }


def test_login_and_the_refused_password(served: ServedProcess) -> None:
    assert len(served.worker_pids()) == 2
    with httpx.Client(base_url=served.base_url, timeout=60) as c:
        r = c.post("/api/auth/token", json={"username": "gd-manager", "password": WEB_USERS["gd-manager"][2]})
        assert r.status_code == 200 and r.json()["user"]["branch_id"] == "GD"
        token = r.json()["token"]
        bad = c.post("/api/auth/token", json={"username": "gd-manager", "password": "not-the-password"})
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "authentication"
        # the token works whichever worker answers (both read the same database)
        for _ in range(6):
            me = c.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200 and me.json()["user"]["user_id"] == "gd-manager"
            assert set(me.json()["scope"]["branches"]) == GD
        assert c.get("/api/at-risk").status_code == 401


@pytest.mark.parametrize(("branch", "months"), [("GD-GZ", 12), ("GD", 6)])
def test_overview_on_postgresql_matches_churn_report_and_duckdb(
    served: ServedProcess,
    pg_tokens: dict[str, str],
    pg_store_url: str,
    web_server: LiveServer,
    duck_tokens: dict[str, str],
    branch: str,
    months: int,
) -> None:
    with churnguard.connect(pg_store_url) as s:
        p = period_for(s, months)
        cur = churn_report(s, start=p["start"], end=p["end"], rules=rules_for(s), by="branch", branch=branch)
    dates = {"from": p["start"].isoformat(), "to": p["end"].isoformat()}
    r = get(served.base_url, pg_tokens["admin"], "/api/metrics/overview", branch=branch, **dates)
    assert r.status_code == 200, r.text
    got = r.json()
    head = got["headline"]
    for k in ("start_customers", "new_customers", "churned_customers", "end_customers", "churned_from_start"):
        assert head[k] == cur.totals[k], k
    assert head["churned_customers"] > 0 and head["churn_rate"] == cur.totals["churn_rate"]
    assert {b["branch"] for b in got["branches"]} == {row["branch"] for row in cur.rows}
    duck = get(web_server.base_url, duck_tokens["admin"], "/api/metrics/overview", branch=branch, **dates).json()
    assert got["headline"] == duck["headline"]
    assert got["branches"] == duck["branches"] and got["trend"] == duck["trend"]


def all_at_risk(base_url: str, token: str, **params: Any) -> tuple[int, list[dict]]:
    seen: list[dict] = []
    offset = 0
    while True:
        page = get(base_url, token, "/api/at-risk", limit=500, offset=offset, **params).json()
        seen += page["rows"]
        offset += 500
        if offset >= page["total"]:
            return page["total"], seen


def test_at_risk_list_is_scoped_and_equals_duckdbs(
    served: ServedProcess,
    pg_tokens: dict[str, str],
    truth: dict[str, Any],
    web_server: LiveServer,
    duck_tokens: dict[str, str],
) -> None:
    total, rows = all_at_risk(served.base_url, pg_tokens["gd-manager"])
    assert total == len(truth["scored_gd"]) > 0
    assert {r["customer_id"] for r in rows} == truth["scored_gd"]
    assert {r["branch_id"] for r in rows} <= GD
    high_total, high = all_at_risk(served.base_url, pg_tokens["gd-manager"], band="high", sort="probability")
    probs = [r["probability"] for r in high]
    assert 0 < high_total < total and probs == sorted(probs, reverse=True)
    _, duck_high = all_at_risk(web_server.base_url, duck_tokens["gd-manager"], band="high", sort="probability")
    assert [r["customer_id"] for r in high] == [r["customer_id"] for r in duck_high]
    r = get(served.base_url, pg_tokens["gd-manager"], "/api/at-risk", branch="ZJ")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_customer_360_and_the_scoped_404(
    served: ServedProcess,
    pg_tokens: dict[str, str],
    truth: dict[str, Any],
    web_server: LiveServer,
    duck_tokens: dict[str, str],
) -> None:
    am = pg_tokens["AM-GZ-01"]
    page = get(served.base_url, am, f"/api/customers/{truth['gz_own']}")
    assert page.status_code == 200, page.text
    c360 = page.json()
    assert c360["customer_id"] == truth["gz_own"] and c360["profile"]["branch_id"] == "GD-GZ"
    duck = get(web_server.base_url, duck_tokens["AM-GZ-01"], f"/api/customers/{truth['gz_own']}").json()
    for key in ("tier", "branch", "branch_path", "activity"):
        assert c360[key] == duck[key], key
    for key in ("subscriptions", "tickets", "surveys", "churn_events", "cases"):
        assert len(c360[key]) == len(duck[key]), key
    assert (c360["score"] or {}).get("probability") == pytest.approx((duck["score"] or {}).get("probability"))
    assert get(served.base_url, am, f"/api/customers/{truth['gd_customer']}").status_code == 404  # not theirs
    # a manager guessing another branch's customer or case gets the 404 of an id that does not exist
    for path in (f"/api/customers/{truth['zj_customer']}", f"/api/cases/{truth['zj_case']}"):
        r = get(served.base_url, pg_tokens["gd-manager"], path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (path, r.text)
        missing_path = path.rsplit("/", 1)[0] + "/NO-SUCH"
        missing = get(served.base_url, pg_tokens["gd-manager"], missing_path)
        assert missing.status_code == 404
        assert missing.json()["error"]["message"].replace("NO-SUCH", "X") == r.json()["error"]["message"].replace(
            path.rsplit("/", 1)[1], "X"
        )
        assert get(served.base_url, pg_tokens["admin"], path).status_code == 200


def test_dashboard_session_and_login_lock_across_workers(served: ServedProcess, pg_store_url: str) -> None:
    from churnguard.auth.users import add_user

    with churnguard.connect(pg_store_url) as s:
        add_user(s, "pg-locked", role="analyst", branch_id="HQ", password="pg-locked-pass-1")
    with httpx.Client(base_url=served.base_url, timeout=60) as c:
        page = c.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf, page.text
        form = {"username": "admin", "password": WEB_USERS["admin"][2], "csrf_token": csrf.group(1), "next": "/"}
        r = c.post("/login", data=form)
        assert r.status_code == 303 and "cg_session" in c.cookies, r.text
        # the session (a row in PostgreSQL, the cookie signed with the shared secret) works on every worker
        assert all(c.get("/api/auth/me").json()["user"]["user_id"] == "admin" for _ in range(6))
        # five failed logins lock the name, whichever worker counted them (audit_log in the database)
        codes = [
            c.post("/api/auth/token", json={"username": "pg-locked", "password": "wrong-password"}).status_code
            for _ in range(6)
        ]
        assert codes == [401] * 5 + [429]
        locked = c.post("/api/auth/token", json={"username": "pg-locked", "password": "pg-locked-pass-1"})
        assert locked.status_code == 429 and locked.json()["error"]["code"] == "too_many_attempts"


def test_several_workers_are_refused_on_a_duckdb_store(tmp_path: Path) -> None:
    store = tmp_path / "one-writer.duckdb"
    churnguard.connect(store).close()
    cmd = [sys.executable, "-m", "churnguard", "--db", str(store), "serve", "--workers", "2", "--secret", WEB_SECRET]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    message = " ".join((done.stdout + done.stderr).split())
    assert "--workers 2: a DuckDB store is one file that one process writes" in message
    assert "postgresql://" in message
