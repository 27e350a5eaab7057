"""The overview over real HTTP: a city's and a province's figures, served from the churn counts of every branch
computed in one grouped query, equal what :func:`churnguard.metrics.churn_report` gives for that branch."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from conftest import WEB_USERS, LiveServer

import churnguard
from churnguard.api.services.figures import period_for
from churnguard.metrics import churn_report, rules_for


@pytest.fixture(scope="module")
def client(web_server: LiveServer) -> httpx.Client:
    with httpx.Client(base_url=web_server.base_url, timeout=120) as c:
        r = c.post("/api/auth/token", json={"username": "admin", "password": WEB_USERS["admin"][2]})
        assert r.status_code == 200, r.text
        c.headers["Authorization"] = f"Bearer {r.json()['token']}"
        yield c


@pytest.mark.parametrize(("branch", "months"), [("GD-GZ", 12), ("GD-SZ", 3), ("GD", 6)])
def test_overview_matches_churn_report(web_server: LiveServer, client: httpx.Client, branch: str, months: int) -> None:
    with churnguard.connect(web_server.store_path) as s:
        p = period_for(s, months)
    dates = {"from": p["start"].isoformat(), "to": p["end"].isoformat()}
    r = client.get("/api/metrics/overview", params={"branch": branch, **dates})
    assert r.status_code == 200, r.text
    got: dict[str, Any] = r.json()
    with churnguard.connect(web_server.store_path) as s:
        rules = rules_for(s)
        cur = churn_report(s, start=p["start"], end=p["end"], rules=rules, by="branch", branch=branch)
        prev = churn_report(s, start=p["prev_start"], end=p["prev_end"], rules=rules, by="branch", branch=branch)
        trend = churn_report(s, start=p["start"], end=p["end"], rules=rules, period="month", branch=branch).rows
    assert got["branch"] == branch and got["from"] == p["start"].isoformat()
    head = got["headline"]
    for k in ("start_customers", "new_customers", "churned_customers", "end_customers", "churned_from_start"):
        assert head[k] == cur.totals[k], k
    assert head["churned_customers"] > 0
    assert head["churn_rate"] == cur.totals["churn_rate"]
    assert head["previous_rate"] == prev.totals["churn_rate"]
    want_rows = {row["branch"]: row for row in cur.rows}
    assert {b["branch"] for b in got["branches"]} == set(want_rows)
    prev_rates = {row["branch"]: row["churn_rate"] for row in prev.rows}
    for b in got["branches"]:
        want = want_rows[b["branch"]]
        assert b["direct"] == (b["branch"] == branch)
        for k in ("start_customers", "churned_customers", "end_customers", "churn_rate"):
            assert b[k] == want[k], (b["branch"], k)
        assert b["previous_rate"] == prev_rates.get(b["branch"])
    if branch == "GD":
        assert {"GD-GZ", "GD-SZ"} <= set(want_rows)
    assert got["trend"] == [
        {"period": t["period"], "churn_rate": t["churn_rate"], "churned": t["churned_customers"]} for t in trend
    ]
