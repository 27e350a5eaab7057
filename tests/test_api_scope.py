"""Branch scope over real HTTP: each role sees its subtree (account managers: their own customers and cases)
through every endpoint — lists, counts, exports, single ids — and nothing else.

Choice: an id outside the caller's scope answers **404, exactly like an id that does not exist**, so a
guess cannot tell "exists elsewhere" from "does not exist".  403 is kept for what a role may never do
(an analyst claiming a case, an account manager reading company figures), which reveals nothing about data.

The expectations are computed straight from the store with plain SQL on branch id prefixes (the
simulator's city ids are ``<province>-<city>``), independently of the app's scope CTE.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from conftest import WEB_USERS, LiveServer

import churnguard
from churnguard.auth import audit

GD = {"GD", "GD-GZ", "GD-SZ", "GD-DG"}


@pytest.fixture(scope="module")
def tokens(web_server: LiveServer) -> dict[str, str]:
    out = {}
    with httpx.Client(base_url=web_server.base_url, timeout=60) as c:
        for user, (_, _, password) in WEB_USERS.items():
            r = c.post("/api/auth/token", json={"username": user, "password": password})
            assert r.status_code == 200, r.text
            out[user] = r.json()["token"]
    return out


@pytest.fixture(scope="module")
def truth(web_server: LiveServer) -> dict[str, Any]:
    """What each scope holds, from the store directly."""
    with churnguard.connect(web_server.store_path) as s:

        def ids(sql: str, *params: Any) -> set[str]:
            return {r[0] for r in s.execute(sql, list(params)).fetchall()}

        scored = "SELECT s.customer_id FROM scores s JOIN customers c USING (customer_id)"
        return {
            "scored_all": ids(scored),
            "scored_gd": ids(scored + " WHERE c.branch_id LIKE 'GD-%'"),
            "scored_am_gz": ids(
                scored + " WHERE c.owner_id = 'AM-GZ-01' OR c.customer_id IN "
                "(SELECT customer_id FROM cases WHERE owner_id = 'AM-GZ-01')"
            ),
            "zj_customer": s.execute("SELECT min(customer_id) FROM customers WHERE branch_id LIKE 'ZJ-%'").fetchone()[
                0
            ],
            "gd_customer": s.execute("SELECT min(customer_id) FROM customers WHERE branch_id = 'GD-SZ'").fetchone()[0],
            "gz_own": s.execute("SELECT min(customer_id) FROM customers WHERE owner_id = 'AM-GZ-01'").fetchone()[0],
            "gz_other": s.execute(
                "SELECT min(customer_id) FROM customers WHERE branch_id = 'GD-GZ' AND owner_id <> 'AM-GZ-01' "
                "AND customer_id NOT IN (SELECT customer_id FROM cases)"
            ).fetchone()[0],
            "zj_case": s.execute("SELECT min(case_id) FROM cases WHERE branch_id LIKE 'ZJ-%'").fetchone()[0],
            "gd_cases": ids("SELECT case_id FROM cases WHERE branch_id LIKE 'GD-%'"),
            "gz_pool": ids("SELECT case_id FROM cases WHERE branch_id = 'GD-GZ' AND owner_id IS NULL"),
            "all_customers": s.execute("SELECT count(*) FROM customers").fetchone()[0],
            "gd_customers": s.execute("SELECT count(*) FROM customers WHERE branch_id LIKE 'GD-%'").fetchone()[0],
        }


def get(server: LiveServer, token: str, path: str, **params: Any) -> httpx.Response:
    with httpx.Client(base_url=server.base_url, timeout=120, headers={"Authorization": f"Bearer {token}"}) as c:
        return c.get(path, params=params) if params else c.get(path)


def all_at_risk(server: LiveServer, token: str, **params: Any) -> tuple[int, set[str], list[dict]]:
    seen: list[dict] = []
    total = None
    offset = 0
    while True:
        page = get(server, token, "/api/at-risk", limit=500, offset=offset, **params).json()
        total = page["total"]
        seen += page["rows"]
        offset += 500
        if offset >= total:
            break
    return total, {r["customer_id"] for r in seen}, seen


def test_branch_manager_lists_and_counts_only_their_subtree(
    web_server: LiveServer, tokens: dict[str, str], truth: dict[str, Any]
) -> None:
    total, ids, rows = all_at_risk(web_server, tokens["gd-manager"])
    assert total == len(truth["scored_gd"]) > 0
    assert ids == truth["scored_gd"]
    assert {r["branch_id"] for r in rows} <= GD
    summary = get(web_server, tokens["gd-manager"], "/api/scores/summary").json()
    assert summary["scored"] == len(truth["scored_gd"])
    branches = get(web_server, tokens["gd-manager"], "/api/branches").json()["branches"]
    assert {b["branch_id"] for b in branches} == GD
    assert next(b for b in branches if b["branch_id"] == "GD")["subtree_customers"] == truth["gd_customers"]
    cases = get(web_server, tokens["gd-manager"], "/api/cases", limit=500).json()
    assert cases["total"] == len(truth["gd_cases"]) and {k["case_id"] for k in cases["rows"]} == truth["gd_cases"]
    segments = get(web_server, tokens["gd-manager"], "/api/segments").json()
    assert 0 < sum(t["customers"] for t in segments["tiers"]) <= truth["gd_customers"]
    users = {u["user_id"] for u in get(web_server, tokens["gd-manager"], "/api/users").json()["users"]}
    assert users == {"gd-manager", "AM-GZ-01"}


def test_filters_and_sorting_stay_inside_the_scope(
    web_server: LiveServer, tokens: dict[str, str], truth: dict[str, Any]
) -> None:
    _, ids, rows = all_at_risk(web_server, tokens["gd-manager"], band="high", sort="probability")
    assert ids <= truth["scored_gd"] and {r["risk_band"] for r in rows} == {"high"}
    probs = [r["probability"] for r in rows]
    assert probs == sorted(probs, reverse=True)
    sub_total, sub_ids, _ = all_at_risk(web_server, tokens["gd-manager"], branch="GD-GZ")
    assert 0 < sub_total < len(truth["scored_gd"]) and sub_ids <= truth["scored_gd"]
    r = get(web_server, tokens["gd-manager"], "/api/at-risk", branch="ZJ")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "path",
    [
        "/api/customers/{zj_customer}",
        "/api/cases/{zj_case}",
        "/api/metrics/overview?branch=ZJ",
        "/api/metrics/churn?branch=ZJ-HZ",
        "/api/metrics/loss?branch=ZJ",
        "/api/metrics/cohorts?branch=ZJ",
        "/api/metrics/alerts?branch=ZJ",
        "/api/metrics/reasons?branch=ZJ",
        "/api/segments?branch=ZJ",
        "/api/at-risk?branch=ZJ",
        "/api/at-risk.csv?branch=ZJ",
    ],
)
def test_branch_manager_guessing_another_branch_gets_404(
    web_server: LiveServer, tokens: dict[str, str], truth: dict[str, Any], path: str
) -> None:
    url = path.format(**truth)
    r = get(web_server, tokens["gd-manager"], url)
    assert r.status_code == 404, (url, r.text)
    assert r.json()["error"]["code"] == "not_found"
    # and the same id that simply does not exist answers the same way
    if "{" in path:
        missing = get(web_server, tokens["gd-manager"], path.format(zj_customer="NO-SUCH", zj_case="NO-SUCH"))
        assert missing.status_code == 404
        assert missing.json()["error"]["message"].replace("NO-SUCH", "X") == r.json()["error"]["message"].replace(
            url.rsplit("/", 1)[1], "X"
        )
    # the admin reaches it
    assert get(web_server, tokens["admin"], url).status_code == 200


def test_branch_manager_cannot_write_another_branchs_case(
    web_server: LiveServer, tokens: dict[str, str], truth: dict[str, Any]
) -> None:
    headers = {"Authorization": f"Bearer {tokens['gd-manager']}"}
    with httpx.Client(base_url=web_server.base_url, headers=headers, timeout=60) as c:
        r = c.post(f"/api/cases/{truth['zj_case']}/update", json={"note": "peeking"})
        assert r.status_code == 404
        r = c.post("/api/cases/assign", json={"case_ids": [truth["zj_case"]]})
        assert r.status_code == 404
    with churnguard.connect(web_server.store_path) as s:
        log = s.execute("SELECT count(*) FROM case_log WHERE case_id = ? AND note = 'peeking'", [truth["zj_case"]])
        assert log.fetchone()[0] == 0


def test_export_is_scoped_and_audited(web_server: LiveServer, tokens: dict[str, str], truth: dict[str, Any]) -> None:
    r = get(web_server, tokens["gd-manager"], "/api/at-risk.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {row["customer_id"] for row in rows} == truth["scored_gd"]
    assert {row["branch_id"] for row in rows} <= GD
    with churnguard.connect(web_server.store_path) as s:
        found = audit.recent(s, action="export.at_risk", user_id="gd-manager")
    assert found and found[0]["target"] == "GD"


def test_metrics_are_computed_for_the_subtree(web_server: LiveServer, tokens: dict[str, str]) -> None:
    from churnguard.metrics import churn_report, rules_for
    from churnguard.reports import default_range

    with churnguard.connect(web_server.store_path) as s:
        rules = rules_for(s)
        start, end = default_range(rules)
        expected = churn_report(s, start=start, end=end, rules=rules, by="branch", branch="GD")
    got = get(web_server, tokens["gd-manager"], "/api/metrics/churn", by="branch").json()
    assert got["branch"] == "GD"
    assert got["churned_customers"] == expected.totals["churned_customers"]
    assert {r["branch"] for r in got["rows"]} == {r["branch"] for r in expected.rows} <= GD
    overview = get(web_server, tokens["gd-manager"], "/api/metrics/overview").json()
    assert overview["headline"]["churn_rate"] == expected.totals["churn_rate"]
    assert {r["branch"] for r in overview["branches"]} <= GD
    company = get(web_server, tokens["admin"], "/api/metrics/overview").json()
    assert {r["branch"] for r in company["branches"]} == {"GD", "ZJ", "JS", "SC", "HB"}


def test_account_manager_sees_own_customers_and_cases(
    web_server: LiveServer, tokens: dict[str, str], truth: dict[str, Any]
) -> None:
    token = tokens["AM-GZ-01"]
    total, ids, _ = all_at_risk(web_server, token)
    assert ids == truth["scored_am_gz"] and total == len(ids) > 0
    assert get(web_server, token, f"/api/customers/{truth['gz_own']}").status_code == 200
    assert get(web_server, token, f"/api/customers/{truth['gz_other']}").status_code == 404  # same city, not theirs
    assert get(web_server, token, f"/api/customers/{truth['gd_customer']}").status_code == 404
    cases = get(web_server, token, "/api/cases", limit=500).json()["rows"]
    assert {k["case_id"] for k in cases if k["owner_id"] is None} <= truth["gz_pool"]
    assert all(k["owner_id"] in (None, "AM-GZ-01") and k["branch_id"] == "GD-GZ" for k in cases)
    for path in ("/api/metrics/overview", "/api/metrics/churn", "/api/segments", "/api/models", "/api/campaigns"):
        r = get(web_server, token, path)
        assert r.status_code == 403 and r.json()["error"]["code"] == "access_denied", path


ROLE_MATRIX = [
    # (user, path, status)
    ("admin", "/api/metrics/overview", 200),
    ("analyst", "/api/metrics/overview", 200),
    ("gd-manager", "/api/metrics/overview", 200),
    ("AM-GZ-01", "/api/metrics/overview", 403),
    ("admin", "/api/metrics/cohorts", 200),
    ("analyst", "/api/metrics/loss", 200),
    ("AM-GZ-01", "/api/metrics/loss", 403),
    ("admin", "/api/segments", 200),
    ("analyst", "/api/models", 200),
    ("AM-GZ-01", "/api/models", 403),
    ("admin", "/api/users", 200),
    ("gd-manager", "/api/users", 200),
    ("analyst", "/api/users", 403),
    ("AM-GZ-01", "/api/users", 403),
    ("admin", "/api/at-risk", 200),
    ("analyst", "/api/at-risk", 200),
    ("AM-GZ-01", "/api/at-risk", 200),
    ("AM-GZ-01", "/api/branches", 200),
    ("admin", "/api/cases", 200),
    ("AM-GZ-01", "/api/cases", 200),
    ("analyst", "/api/campaigns", 200),
    ("AM-GZ-01", "/api/campaigns", 403),
]


@pytest.mark.parametrize(("user", "path", "status"), ROLE_MATRIX)
def test_role_matrix(web_server: LiveServer, tokens: dict[str, str], user: str, path: str, status: int) -> None:
    r = get(web_server, tokens[user], path)
    assert r.status_code == status, r.text


def test_analyst_and_admin_see_the_whole_company(
    web_server: LiveServer, tokens: dict[str, str], truth: dict[str, Any]
) -> None:
    for user in ("admin", "analyst"):
        total, ids, _ = all_at_risk(web_server, tokens[user])
        assert total == len(truth["scored_all"]) and ids == truth["scored_all"]
        branches = get(web_server, tokens[user], "/api/branches").json()["branches"]
        assert next(b for b in branches if b["branch_id"] == "HQ")["subtree_customers"] == truth["all_customers"]
    assert get(web_server, tokens["analyst"], f"/api/customers/{truth['zj_customer']}").status_code == 200


def test_scoring_is_the_admins_and_takes_only_model_ids(web_server: LiveServer, tokens: dict[str, str]) -> None:
    def post(user: str, body: dict[str, Any]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {tokens[user]}"}
        with httpx.Client(base_url=web_server.base_url, headers=headers, timeout=60) as c:
            return c.post("/api/scores/run", json=body)

    for user in ("analyst", "gd-manager", "AM-GZ-01"):
        assert post(user, {}).status_code == 403
    r = post("admin", {"model_id": "/tmp"})  # never a path: only ids of model_runs
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = post("admin", {})  # the web store has synthetic scores but no trained model
    assert r.status_code in (404, 501), r.text
