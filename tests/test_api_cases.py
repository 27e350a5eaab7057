"""Cases and campaigns over real HTTP: claim, update, assign, recycle through the case workflow, with scope,
roles and the audit log; campaigns created, listed and reported within the scope."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from conftest import WEB_USERS, LiveServer

import churnguard
from churnguard.auth import audit


@pytest.fixture(scope="module")
def api(web_server: LiveServer) -> dict[str, httpx.Client]:
    clients = {}
    for user, (_, _, password) in WEB_USERS.items():
        r = httpx.post(
            f"{web_server.base_url}/api/auth/token", json={"username": user, "password": password}, timeout=60
        )
        assert r.status_code == 200, r.text
        clients[user] = httpx.Client(
            base_url=web_server.base_url, headers={"Authorization": f"Bearer {r.json()['token']}"}, timeout=120
        )
    yield clients
    for c in clients.values():
        c.close()


def pool(c: httpx.Client) -> list[dict[str, Any]]:
    return c.get("/api/cases", params={"pool": "true", "limit": 500}).json()["rows"]


def audit_of(server: LiveServer, action: str, user: str) -> list[dict[str, Any]]:
    with churnguard.connect(server.store_path) as s:
        return audit.recent(s, action=action, user_id=user, limit=500)


def test_claim_update_close(web_server: LiveServer, api: dict[str, httpx.Client]) -> None:
    am = api["AM-GZ-01"]
    case = pool(am)[0]
    assert case["branch_id"] == "GD-GZ" and case["owner_id"] is None
    r = am.post(f"/api/cases/{case['case_id']}/claim")
    assert r.status_code == 200, r.text
    assert (r.json()["owner_id"], r.json()["status"]) == ("AM-GZ-01", "claimed")
    again = am.post(f"/api/cases/{case['case_id']}/claim")
    assert again.status_code == 409 and again.json()["error"]["code"] == "case_conflict"
    r = am.post(
        f"/api/cases/{case['case_id']}/update", json={"status": "contacted", "note": "called, offered a discount"}
    )
    assert r.status_code == 200 and r.json()["status"] == "contacted"
    bad = am.post(f"/api/cases/{case['case_id']}/update", json={"status": "won_back"})  # a retain case
    assert bad.status_code == 409 and bad.json()["error"]["code"] == "invalid_transition"
    r = am.post(f"/api/cases/{case['case_id']}/update", json={"status": "retained", "note": "accepted"})
    assert r.status_code == 200 and r.json()["closed_at"] is not None
    history = am.get(f"/api/cases/{case['case_id']}").json()["log"]
    assert [e["event"] for e in history][:3] == ["close", "contact", "claim"]
    assert am.get("/api/cases", params={"owner": "me", "open": "true"}).json()["total"] == 0
    assert any(a["target"] == case["case_id"] for a in audit_of(web_server, "case.claim", "AM-GZ-01"))
    assert len([a for a in audit_of(web_server, "case.update", "AM-GZ-01") if a["target"] == case["case_id"]]) == 2
    # the 360 shows the case and its history
    c360 = am.get(f"/api/customers/{case['customer_id']}").json()
    assert any(k["case_id"] == case["case_id"] and len(k["log"]) >= 3 for k in c360["cases"])


def test_who_may_claim(web_server: LiveServer, api: dict[str, httpx.Client]) -> None:
    case = pool(api["AM-GZ-01"])[0]
    for user, status in (("analyst", 403), ("gd-manager", 403), ("admin", 403), ("AM-HZ-01", 404)):
        r = api[user].post(f"/api/cases/{case['case_id']}/claim")
        assert r.status_code == status, (user, r.text)
    assert api["analyst"].post(f"/api/cases/{case['case_id']}/update", json={"note": "x"}).status_code == 403
    r = api["gd-manager"].post(f"/api/cases/{case['case_id']}/update", json={"note": "manager's note"})
    assert r.status_code == 200 and r.json()["owner_id"] is None


def test_claim_limit(web_server: LiveServer, api: dict[str, httpx.Client]) -> None:
    am = api["AM-GZ-01"]
    held = am.get("/api/cases", params={"owner": "me", "open": "true"}).json()["total"]
    with churnguard.connect(web_server.store_path) as s:
        s.execute("UPDATE users SET max_claims = ? WHERE user_id = 'AM-GZ-01'", [held + 1])
    try:
        first, second = pool(am)[:2]
        assert am.post(f"/api/cases/{first['case_id']}/claim").status_code == 200
        r = am.post(f"/api/cases/{second['case_id']}/claim")
        assert r.status_code == 409 and r.json()["error"]["code"] == "claim_limit"
    finally:
        with churnguard.connect(web_server.store_path) as s:
            s.execute("UPDATE users SET max_claims = 20 WHERE user_id = 'AM-GZ-01'")


def test_assign_and_recycle_stay_in_the_scope(web_server: LiveServer, api: dict[str, httpx.Client]) -> None:
    with churnguard.connect(web_server.store_path) as s:
        zj_before = s.execute("SELECT count(*) FROM cases WHERE branch_id LIKE 'ZJ-%' AND owner_id IS NULL").fetchone()
    assert api["AM-GZ-01"].post("/api/cases/assign", json={}).status_code == 403
    r = api["gd-manager"].post("/api/cases/assign", json={"strategy": "load"})
    assert r.status_code == 200, r.text
    assert set(r.json()["assigned"]) <= {"AM-GZ-01"}
    with churnguard.connect(web_server.store_path) as s:
        gz_pool = s.execute("SELECT count(*) FROM cases WHERE branch_id = 'GD-GZ' AND owner_id IS NULL").fetchone()[0]
        zj_after = s.execute("SELECT count(*) FROM cases WHERE branch_id LIKE 'ZJ-%' AND owner_id IS NULL").fetchone()
        held = s.execute("SELECT count(*) FROM cases WHERE owner_id = 'AM-GZ-01' AND closed_at IS NULL").fetchone()[0]
    assert zj_after == zj_before  # another province's pool is untouched
    assert gz_pool == 0 or held == 20  # Guangzhou's pool went to its account manager, up to the claim limit
    assert api["AM-GZ-01"].post("/api/cases/recycle").status_code == 403
    r = api["gd-manager"].post("/api/cases/recycle")
    assert r.status_code == 200 and isinstance(r.json()["recycled"], list)
    assert audit_of(web_server, "case.assign", "gd-manager") and audit_of(web_server, "case.recycle", "gd-manager")


def test_campaigns_are_scoped(web_server: LiveServer, api: dict[str, httpx.Client]) -> None:
    r = api["gd-manager"].post("/api/campaigns", json={"name": "ZJ push", "branch": "ZJ"})
    assert r.status_code == 404  # not their branch
    assert api["analyst"].post("/api/campaigns", json={"name": "x"}).status_code == 403
    r = api["admin"].post("/api/campaigns", json={"name": "Zhejiang retention", "branch": "ZJ", "control_share": 0.2})
    assert r.status_code == 200, r.text
    campaign_id = r.json()["campaign_id"]
    r = api["gd-manager"].post("/api/campaigns", json={"name": "Guangdong retention"})
    assert r.status_code == 200, r.text
    gd_id = r.json()["campaign_id"]
    listed = {g["campaign_id"] for g in api["gd-manager"].get("/api/campaigns").json()["campaigns"]}
    assert gd_id in listed and campaign_id not in listed
    assert api["gd-manager"].get(f"/api/campaigns/{campaign_id}").status_code == 404
    report = api["admin"].get(f"/api/campaigns/{campaign_id}").json()
    assert report["campaign_id"] == campaign_id and report["branch_id"] == "ZJ"
    assert {g["campaign_id"] for g in api["analyst"].get("/api/campaigns").json()["campaigns"]} >= {gd_id, campaign_id}
    assert audit_of(web_server, "campaign.create", "admin")
