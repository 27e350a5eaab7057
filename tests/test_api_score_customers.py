"""Scoring one customer or a batch over real HTTP: scope, results, validation, audit, the customer page.

The server runs over a copy of the scored web store (an early-warning model trained on it, every
active customer scored on the default day).  Out-of-scope ids must come back exactly like unknown
ids (``not_found``, the same message, no score) and their stored scores must stay untouched; the
one-customer endpoint answers 404 for both, as the customer 360 does.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import WEB_USERS, LiveServer, build_scored_web_store

import churnguard
from churnguard.auth import audit


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    source = build_scored_web_store(tmp_path_factory)
    path = tmp_path_factory.mktemp("score-api") / "web.duckdb"
    shutil.copyfile(source, path)
    with LiveServer(path) as live:
        yield live


@pytest.fixture(scope="module")
def tokens(server: LiveServer) -> dict[str, str]:
    out = {}
    with httpx.Client(base_url=server.base_url, timeout=60) as c:
        for user, (_, _, password) in WEB_USERS.items():
            r = c.post("/api/auth/token", json={"username": user, "password": password})
            assert r.status_code == 200, r.text
            out[user] = r.json()["token"]
    return out


def api(server: LiveServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=120, headers={"Authorization": f"Bearer {token}"})


def query(server: LiveServer, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    # a second connection of the same process to the server's file (DuckDB shares the instance)
    with churnguard.connect(server.store_path) as s:
        return s.execute(sql, list(params)).fetchall()


LATEST = "SELECT s.customer_id, s.probability, s.scored_at FROM scores s JOIN customers c USING (customer_id) "
LATEST += "WHERE s.as_of = (SELECT max(as_of) FROM scores) "


def test_one_customer_is_rescored_and_the_customer_360_shows_the_new_row(
    server: LiveServer, tokens: dict[str, str]
) -> None:
    customer_id, probability, scored_at = query(server, LATEST + "ORDER BY s.customer_id LIMIT 1")[0]
    with api(server, tokens["admin"]) as c:
        r = c.post(f"/api/customers/{customer_id}/score")
        assert r.status_code == 200, r.text
        got = r.json()
        page = c.get(f"/api/customers/{customer_id}").json()
    assert got["status"] == "scored" and got["written"] is True and got["customer_id"] == customer_id
    assert got["probability"] == pytest.approx(probability, abs=1e-9)
    assert got["risk_band"] in ("high", "medium", "low") and got["reasons"][0]["text_zh"]
    (new_at,) = query(server, "SELECT max(scored_at) FROM scores WHERE customer_id = ?", customer_id)[0]
    assert new_at > scored_at
    assert page["score"]["probability"] == pytest.approx(probability, abs=1e-9)
    assert page["score"]["scored_at"] == got["scored_at"][:19]
    with api(server, tokens["admin"]) as c:
        preview = c.post(f"/api/customers/{customer_id}/score", json={"write": False}).json()
    assert preview["written"] is False and preview["probability"] == pytest.approx(probability, abs=1e-9)
    assert query(server, "SELECT max(scored_at) FROM scores WHERE customer_id = ?", customer_id)[0][0] == new_at


def test_a_branch_managers_batch_scores_its_subtree_and_reports_other_ids_as_not_found(
    server: LiveServer, tokens: dict[str, str]
) -> None:
    gd = [r[0] for r in query(server, LATEST + "AND c.branch_id LIKE 'GD-%' ORDER BY s.customer_id LIMIT 3")]
    zj = query(server, LATEST + "AND c.branch_id LIKE 'ZJ-%' ORDER BY s.customer_id LIMIT 2")
    gone = query(
        server,
        "SELECT min(e.customer_id) FROM churn_events e JOIN customers c USING (customer_id) "
        "WHERE c.branch_id LIKE 'GD-%' AND e.churn_date < (SELECT max(as_of) FROM scores) - 60",
    )[0][0]
    ids = [gd[0], zj[0][0], "NO-SUCH-CUSTOMER", gd[1], zj[1][0], gone, gd[2]]
    with api(server, tokens["gd-manager"]) as c:
        r = c.post("/api/scores/customers", json={"customer_ids": ids, "write": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["customer_id"] for x in body["results"]] == ids
    status = {x["customer_id"]: x for x in body["results"]}
    assert [status[i]["status"] for i in gd] == ["scored"] * 3
    assert status[gone]["status"] == "not_active" and "not active" in status[gone]["message"]
    unknown = status["NO-SUCH-CUSTOMER"]
    for customer_id, _, _ in zj:  # exactly what an unknown id gets: nothing about the customer
        assert {**status[customer_id], "customer_id": None} == {**unknown, "customer_id": None}
    assert unknown["status"] == "not_found" and unknown["probability"] is None and unknown["reasons"] is None
    assert (body["requested"], body["scored"], body["not_active"], body["not_found"]) == (7, 3, 1, 3)
    assert body["written"] is True
    for customer_id, _, scored_at in zj:  # never scored
        assert query(server, "SELECT scored_at FROM scores WHERE customer_id = ? AND as_of = ?", customer_id,
                     body["as_of"]) == [(scored_at,)]  # fmt: skip
    rows = audit_rows(server, "score.run")
    mine = [r for r in rows if r["user_id"] == "gd-manager"]
    assert mine and '"customers": 3' in mine[0]["detail"] and '"requested": 7' in mine[0]["detail"]


def audit_rows(server: LiveServer, action: str) -> list[dict[str, Any]]:
    with churnguard.connect(server.store_path) as s:
        return audit.recent(s, action=action, limit=1000)


def test_an_account_manager_scores_only_their_own_customers(server: LiveServer, tokens: dict[str, str]) -> None:
    own = query(
        server,
        LATEST + "AND (c.owner_id = 'AM-GZ-01' OR c.customer_id IN (SELECT customer_id FROM cases "
        "WHERE owner_id = 'AM-GZ-01')) ORDER BY s.customer_id LIMIT 1",
    )
    other = query(
        server,
        LATEST + "AND c.branch_id = 'GD-GZ' AND c.owner_id IS DISTINCT FROM 'AM-GZ-01' AND c.customer_id NOT IN "
        "(SELECT customer_id FROM cases WHERE owner_id = 'AM-GZ-01') ORDER BY s.customer_id LIMIT 1",
    )[0][0]
    with api(server, tokens["AM-GZ-01"]) as c:
        denied = c.post(f"/api/customers/{other}/score")
        unknown = c.post("/api/customers/NO-SUCH-CUSTOMER/score")
        batch = c.post("/api/scores/customers", json={"customer_ids": [other, *(r[0] for r in own)]}).json()
    assert denied.status_code == 404 and unknown.status_code == 404
    assert denied.json()["error"]["message"].replace(other, "X") == unknown.json()["error"]["message"].replace(
        "NO-SUCH-CUSTOMER", "X"
    )
    assert own, "the simulator gives AM-GZ-01 customers of their own"
    assert [x["status"] for x in batch["results"]] == ["not_found", "scored"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_ids": [f"C{i:07d}" for i in range(1001)]}, "customer_ids"),
        ({"customer_ids": []}, "customer_ids"),
        ({}, "customer_ids"),
        ({"customer_ids": ["C0000001", ""]}, "customer_ids.1"),
        ({"customer_ids": ["C0000001"], "write": "maybe"}, "write"),
    ],
)
def test_invalid_batches_name_the_field(
    server: LiveServer, tokens: dict[str, str], body: dict[str, Any], field: str
) -> None:
    with api(server, tokens["analyst"]) as c:
        r = c.post("/api/scores/customers", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error" and error["field"] == field


def test_the_endpoints_are_in_the_openapi_schema_with_their_response_models(server: LiveServer) -> None:
    schema = httpx.get(f"{server.base_url}/openapi.json", timeout=30).json()
    batch = schema["paths"]["/api/scores/customers"]["post"]
    one = schema["paths"]["/api/customers/{customer_id}/score"]["post"]
    assert batch["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ScoreBatch")
    assert one["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SingleScore")
    request = schema["components"]["schemas"]["ScoreCustomersRequest"]["properties"]["customer_ids"]
    assert request["maxItems"] == 1000 and request["minItems"] == 1
    assert set(schema["components"]["schemas"]["CustomerScore"]["properties"]["status"]["enum"]) == {
        "scored",
        "not_active",
        "not_found",
    }


def web_login(c: httpx.Client, user: str) -> None:
    page = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text
    r = c.post("/login", data={"username": user, "password": WEB_USERS[user][2], "csrf_token": token.group(1)})
    assert r.status_code == 303, r.text


@pytest.mark.parametrize(
    ("lang", "button", "notice"), [("en", "Rescore now", "churn probability"), ("zh", "立即重新评分", "流失概率")]
)
def test_the_customer_page_rescores_with_its_button(
    server: LiveServer, tokens: dict[str, str], lang: str, button: str, notice: str
) -> None:
    customer_id, probability, scored_at = query(
        server, LATEST + "AND c.branch_id LIKE 'ZJ-%' ORDER BY s.customer_id DESC LIMIT 1"
    )[0]
    with httpx.Client(base_url=server.base_url, timeout=120, cookies={"cg_lang": lang}) as c:
        web_login(c, "zj-manager")
        page = c.get(f"/customers/{customer_id}")
        assert button in page.text and f'action="/customers/{customer_id}/rescore"' in page.text
        forged = c.post(f"/customers/{customer_id}/rescore", data={"csrf_token": "wrong"})
        assert forged.status_code == 403
        csrf = re.search(r'id="rescore-form">\s*<input type="hidden" name="csrf_token" value="([^"]+)"', page.text)
        assert csrf, page.text
        r = c.post(f"/customers/{customer_id}/rescore", data={"csrf_token": csrf.group(1)}, follow_redirects=True)
    shown = f"{probability * 100:.1f}%"
    assert r.status_code == 200 and f'id="customer-probability">{shown}<' in r.text
    assert re.search(rf'id="notice">[^<]*{re.escape(notice)}[^<]*{re.escape(shown)}', r.text)
    (new_at,) = query(server, "SELECT max(scored_at) FROM scores WHERE customer_id = ?", customer_id)[0]
    assert new_at > scored_at


def test_without_a_trained_model_scoring_answers_404_and_the_page_offers_no_button(
    web_server: LiveServer,
) -> None:
    customer_id = query(web_server, "SELECT min(customer_id) FROM customers WHERE branch_id LIKE 'GD-%'")[0][0]
    with httpx.Client(base_url=web_server.base_url, timeout=60) as c:
        token = c.post("/api/auth/token", json={"username": "admin", "password": WEB_USERS["admin"][2]}).json()
        headers = {"Authorization": f"Bearer {token['token']}"}
        r = c.post(f"/api/customers/{customer_id}/score", headers=headers)
        web_login(c, "admin")
        page = c.get(f"/customers/{customer_id}")
    assert r.status_code == 404 and "no trained early-warning model" in r.json()["error"]["message"]
    assert page.status_code == 200 and "rescore-form" not in page.text


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian chromium is not installed")
def test_the_rescore_button_in_a_real_browser(server: LiveServer) -> None:
    from playwright.sync_api import sync_playwright

    customer_id, probability, _ = query(
        server, LATEST + "AND c.branch_id LIKE 'GD-%' ORDER BY s.customer_id DESC LIMIT 1"
    )[0]
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1366, "height": 860}, locale="en-US")
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route(re.compile(r"^(?!http://127\.0\.0\.1).*"), lambda route: route.abort())  # nothing off-box
        page.goto(server.base_url + "/login")
        page.fill("input[name=username]", "gd-manager")
        page.fill("input[name=password]", WEB_USERS["gd-manager"][2])
        page.click("#login-form button[type=submit]")
        page.wait_for_load_state("networkidle")
        page.goto(f"{server.base_url}/customers/{customer_id}")
        page.click("#rescore-button")
        page.wait_for_selector("#notice")
        notice = page.locator("#notice").inner_text()
        shown = page.locator("#customer-probability").inner_text()
        Path(__file__).parent.joinpath("artifacts").mkdir(exist_ok=True)
        page.screenshot(path=str(Path(__file__).parent / "artifacts" / "customer-360-rescored.png"))
        browser.close()
    assert f"{probability * 100:.1f}%" == shown and shown in notice and "Rescored" in notice
    assert errors == []
