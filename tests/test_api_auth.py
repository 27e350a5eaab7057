"""The API over real HTTP (uvicorn on loopback, a real DuckDB file): login, tokens, sessions, CSRF, the
error envelope and validation errors that name the field."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from conftest import WEB_USERS, LiveServer

import churnguard
from churnguard.auth import audit


def client(server: LiveServer, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=60)


def token_for(server: LiveServer, user: str) -> str:
    with client(server) as c:
        r = c.post("/api/auth/token", json={"username": user, "password": WEB_USERS[user][2]})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def web_login(c: httpx.Client, user: str, password: str | None = None) -> httpx.Response:
    page = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text
    return c.post(
        "/login",
        data={"username": user, "password": password or WEB_USERS[user][2], "csrf_token": token.group(1), "next": "/"},
    )


def audit_rows(server: LiveServer, action: str) -> list[dict[str, Any]]:
    # a second connection of the same process to the server's file (DuckDB shares the instance)
    with churnguard.connect(server.store_path) as s:
        return audit.recent(s, action=action, limit=1000)


def test_token_login_and_me(web_server: LiveServer) -> None:
    token = token_for(web_server, "gd-manager")
    with client(web_server, token) as c:
        me = c.get("/api/auth/me").json()
    assert me["user"]["role"] == "branch_manager" and me["via"] == "token"
    assert set(me["scope"]["branches"]) == {"GD", "GD-GZ", "GD-SZ", "GD-DG"}
    assert "password_hash" not in str(me)
    assert any(r["user_id"] == "gd-manager" for r in audit_rows(web_server, "login.success"))


def test_wrong_password_is_401_in_the_envelope_and_audited(web_server: LiveServer) -> None:
    with client(web_server) as c:
        r = c.post("/api/auth/token", json={"username": "admin", "password": "not-it"})
        unknown = c.post("/api/auth/token", json={"username": "nobody", "password": "not-it"})
    assert r.status_code == 401 and unknown.status_code == 401
    assert r.json()["error"]["code"] == "authentication"
    assert r.json()["error"]["message"] == unknown.json()["error"]["message"]  # no user enumeration
    failures = [row["user_id"] for row in audit_rows(web_server, "login.failure")]
    assert "admin" in failures and "nobody" in failures


@pytest.mark.parametrize("path", ["/api/at-risk", "/api/customers/C0000001", "/api/metrics/overview", "/api/cases"])
def test_no_credentials_is_401(web_server: LiveServer, path: str) -> None:
    with client(web_server) as c:
        r = c.get(path)
        bad = c.get(path, headers={"Authorization": "Bearer cg_forged-token-0000000000000000000000"})
    assert r.status_code == 401 and bad.status_code == 401
    assert r.json()["error"]["code"] == "authentication"
    assert r.headers["www-authenticate"] == "Bearer"


def test_logout_revokes_the_token(web_server: LiveServer) -> None:
    token = token_for(web_server, "analyst")
    with client(web_server, token) as c:
        assert c.get("/api/auth/me").status_code == 200
        assert c.post("/api/auth/logout").status_code == 200
        assert c.get("/api/auth/me").status_code == 401


def test_validation_errors_name_the_field(web_server: LiveServer) -> None:
    token = token_for(web_server, "admin")
    with client(web_server, token) as c:
        cases = {
            "/api/at-risk?limit=abc": "limit",
            "/api/at-risk?limit=100000": "limit",
            "/api/at-risk?sort=name": "sort",
            "/api/at-risk?reason=weather": "reason",
            "/api/metrics/churn?by=colour": "by",
            "/api/metrics/churn?from=2025-13-01": "from",
            "/api/metrics/churn?from=2025-06-01&to=2025-01-01": "to",
        }
        for path, field in cases.items():
            r = c.get(path)
            assert r.status_code == 422, (path, r.text)
            body = r.json()["error"]
            assert body["code"] == "validation_error" and body["field"] == field, (path, body)
            assert body["message"].startswith(f"{field}:")
        r = c.post("/api/auth/token", json={"username": "admin"})
        assert r.status_code == 422 and r.json()["error"]["field"] == "password"
        r = c.post("/api/cases/K-1/update", json={"note": "x" * 5000})
        assert r.status_code == 422 and r.json()["error"]["field"] == "note"


def test_unknown_routes_and_methods_use_the_envelope(web_server: LiveServer) -> None:
    token = token_for(web_server, "admin")
    with client(web_server, token) as c:
        r = c.get("/api/no-such-thing")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = c.delete("/api/at-risk")
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_web_login_needs_its_csrf_token(web_server: LiveServer) -> None:
    with client(web_server) as c:
        c.get("/login")
        r = c.post("/login", data={"username": "admin", "password": WEB_USERS["admin"][2], "next": "/"})
        assert r.status_code == 403
        assert "cg_session" not in c.cookies
        r = c.post("/login", data={"username": "admin", "password": WEB_USERS["admin"][2], "csrf_token": "forged"})
        assert r.status_code == 403 and "cg_session" not in c.cookies
    with client(web_server) as c:
        r = web_login(c, "admin", "wrong-password")
        assert r.status_code == 401 and "cg_session" not in c.cookies
        r = web_login(c, "admin")
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert "cg_session" in c.cookies


def test_every_state_change_by_cookie_needs_the_csrf_token(web_server: LiveServer) -> None:
    with client(web_server) as c:
        web_login(c, "AM-GZ-01")
        page = c.get("/worklist")
        assert page.status_code == 200
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        case_id = re.search(r'action="/cases/([^"/]+)/claim"', page.text).group(1)  # type: ignore[union-attr]
        for path in (f"/cases/{case_id}/claim", f"/api/cases/{case_id}/claim", "/logout", "/api/auth/logout"):
            r = c.post(path)
            assert r.status_code == 403, (path, r.status_code)
            r = c.post(path, data={"csrf_token": "wrong"})
            assert r.status_code == 403, (path, r.status_code)
        # still logged in, nothing claimed
        assert c.get("/api/auth/me").status_code == 200
        assert c.get(f"/api/cases/{case_id}").json()["owner_id"] is None
        # with the token (form field or header) it works
        r = c.post(f"/cases/{case_id}/claim", data={"csrf_token": csrf})
        assert r.status_code == 303, r.text
        assert c.get(f"/api/cases/{case_id}").json()["owner_id"] == "AM-GZ-01"
        r = c.post("/logout", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 303
        assert c.get("/api/auth/me").status_code == 401


def test_pages_redirect_to_login_and_security_headers(web_server: LiveServer) -> None:
    with client(web_server) as c:
        r = c.get("/overview?months=3")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/overview%3Fmonths%3D3"
        r = c.get("/login?next=//evil.example/x")
        assert 'name="next" value="/"' in r.text
        for name in ("content-security-policy", "x-frame-options", "x-content-type-options", "server-timing"):
            assert name in r.headers
        assert "cdn" not in r.headers["content-security-policy"]


def test_serve_demo_prints_the_demo_users_and_serves(tmp_path_factory: pytest.TempPathFactory) -> None:
    import os
    import shutil
    import socket
    import subprocess
    import sys
    import time

    from conftest import build_web_store

    db = tmp_path_factory.mktemp("serve") / "demo.duckdb"
    shutil.copyfile(build_web_store(tmp_path_factory), db)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNGUARD_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "churnguard", "--db", str(db), "serve", "--demo", "--port", str(port), "--no-warm"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while not any("Dashboard and API on" in line for line in lines):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
            lines.append(proc.stdout.readline())  # type: ignore[union-attr]
        printed = {line.split()[0]: line.split()[1:3] for line in lines if line.startswith("  ")}
        assert printed["admin"] == ["admin-demo", "admin"]
        assert printed["gd-manager"] == ["manager-demo", "branch_manager"]
        assert [v[1] for v in printed.values()].count("account_manager") == 2
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                r = httpx.post(f"{base}/api/auth/token", json={"username": "admin", "password": "admin-demo"})
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert r.status_code == 200
        assert httpx.get(f"{base}/login").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# -- login throttling -----------------------------------------------------------------------------


def _throttle_user(server: LiveServer, name: str) -> str:
    """A fresh analyst for one throttling test (the shared demo users must not get locked)."""
    from churnguard.auth.users import add_user

    with churnguard.connect(server.store_path) as s:
        add_user(s, name, role="analyst", branch_id="HQ", password="right-pass-1")
    return "right-pass-1"


def _token_attempt(c: httpx.Client, user: str, password: str) -> httpx.Response:
    return c.post("/api/auth/token", json={"username": user, "password": password})


def test_five_failures_lock_the_name_even_for_the_right_password(web_server: LiveServer) -> None:
    from churnguard.auth.throttle import MAX_FAILED_LOGINS

    right = _throttle_user(web_server, "throttle-a")
    _throttle_user(web_server, "throttle-b")
    with client(web_server) as c:
        first = [_token_attempt(c, "throttle-a", "wrong-pass").status_code for _ in range(MAX_FAILED_LOGINS)]
        locked = _token_attempt(c, "throttle-a", right)
        other = _token_attempt(c, "throttle-b", right)
    assert first == [401] * MAX_FAILED_LOGINS
    assert locked.status_code == 429, locked.text
    assert locked.json()["error"]["code"] == "too_many_attempts"
    assert "try again" in locked.json()["error"]["message"]
    assert "token" not in locked.json()
    assert other.status_code == 200, other.text  # another user is unaffected
    assert [r["user_id"] for r in audit_rows(web_server, "login.locked")].count("throttle-a") == 1
    # the refused attempt did not check the password: it is neither a failure nor a success
    assert "throttle-a" not in [r["user_id"] for r in audit_rows(web_server, "login.success")]
    assert [r["user_id"] for r in audit_rows(web_server, "login.failure")].count("throttle-a") == MAX_FAILED_LOGINS


def test_unknown_names_are_throttled_the_same_way(web_server: LiveServer) -> None:
    with client(web_server) as c:
        codes = [_token_attempt(c, "no-such-user-x", "wrong-pass").status_code for _ in range(6)]
        body = _token_attempt(c, "no-such-user-x", "wrong-pass").json()
    assert codes == [401] * 5 + [429]
    assert body["error"]["code"] == "too_many_attempts"


def test_the_web_form_is_throttled_too(web_server: LiveServer) -> None:
    right = _throttle_user(web_server, "throttle-web")
    with httpx.Client(base_url=web_server.base_url, timeout=60) as c:
        codes = [web_login(c, "throttle-web", "wrong-pass").status_code for _ in range(5)]
        locked = web_login(c, "throttle-web", right)
    assert codes == [401] * 5
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.text and 'name="csrf_token"' in locked.text
    assert "cg_session" not in str(locked.headers.get("set-cookie", ""))
    with client(web_server) as api:  # the lock is per name, whichever door the failures came through
        assert _token_attempt(api, "throttle-web", right).status_code == 429


def test_failures_older_than_the_window_do_not_count(web_server: LiveServer) -> None:
    import datetime as dt

    from churnguard.auth.throttle import FAILURE_WINDOW, MAX_FAILED_LOGINS

    right = _throttle_user(web_server, "throttle-old")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with churnguard.connect(web_server.store_path) as s:
        for i in range(MAX_FAILED_LOGINS):  # old failures, just outside the window
            audit.record(
                s, "login.failure", user_id="throttle-old", now=now - FAILURE_WINDOW - dt.timedelta(seconds=30 + i)
            )
        for i in range(MAX_FAILED_LOGINS - 1):  # recent ones, one short of the limit
            audit.record(s, "login.failure", user_id="throttle-old", now=now - dt.timedelta(minutes=1 + i))
    with client(web_server) as c:
        ok = _token_attempt(c, "throttle-old", right)  # a success does not reset the recent failures …
        fail = _token_attempt(c, "throttle-old", "wrong-pass")  # … so one more failure locks the name
        locked = _token_attempt(c, "throttle-old", right)
    assert ok.status_code == 200, ok.text
    assert fail.status_code == 401
    assert locked.status_code == 429
