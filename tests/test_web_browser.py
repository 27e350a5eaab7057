"""The dashboard in a real headless Chromium (Debian's, driven by Playwright with ``executable_path``) against the
live app: log in as each role, drill down from head office to a branch to a customer, claim a case and record
a contact, and check what each role can and cannot see.  A screenshot of each main page goes to
``tests/artifacts/`` (git-ignored) for review.  One browser for the module; a fresh context (cookies) per user.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import WEB_USERS, LiveServer

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (make system-deps)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


class Session:
    """One user's browser context: every console error and failed request is collected."""

    def __init__(self, browser: Any, server: LiveServer, user: str) -> None:
        self.server = server
        self.context = browser.new_context(viewport={"width": 1366, "height": 860}, locale="en-US")
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))
        self.page.route(re.compile(r"^(?!http://127\.0\.0\.1).*"), lambda route: route.abort())  # nothing off-box
        self.login(user)

    def login(self, user: str) -> None:
        self.page.goto(self.server.base_url + "/login")
        self.page.fill("input[name=username]", user)
        self.page.fill("input[name=password]", WEB_USERS[user][2])
        self.page.click("#login-form button[type=submit]")
        self.page.wait_for_load_state("networkidle")

    def goto(self, path: str) -> Any:
        response = self.page.goto(self.server.base_url + path)
        self.page.wait_for_load_state("networkidle")
        return response

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


def column(page: Any, table: str, attribute: str) -> list[str]:
    return page.eval_on_selector_all(f"{table} tbody tr", f"rows => rows.map(r => r.getAttribute('{attribute}'))")


def test_login_page_and_a_wrong_password(browser: Any, web_server: LiveServer) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 860})
    page.goto(web_server.base_url + "/overview")
    assert "/login" in page.url
    page.screenshot(path=str(ARTIFACTS / "login.png"))
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "not-the-password")
    page.click("#login-form button[type=submit]")
    assert page.locator(".error").inner_text() == "Wrong user name or password."
    page.close()


def test_head_office_drills_down_to_a_branch_and_a_customer(browser: Any, web_server: LiveServer) -> None:
    s = Session(browser, web_server, "admin")
    page = s.page
    assert page.url.endswith("/overview")
    page.wait_for_selector("#chart-trend .main-svg")
    page.wait_for_selector("#chart-reasons .main-svg")
    assert "Whole company" in page.locator("#scope-title").inner_text()
    assert set(column(page, "#branch-table", "data-branch")) == {"GD", "ZJ", "JS", "SC", "HB"}
    s.shot("overview-admin")
    page.click("#branch-table tr[data-branch=GD] a.drill")
    page.wait_for_url("**/branches/GD*")
    page.wait_for_selector("#chart-trend .main-svg")
    assert "Guangdong" in page.locator("#scope-title").inner_text()
    assert set(column(page, "#branch-table", "data-branch")) <= {"GD-GZ", "GD-SZ", "GD-DG", "GD"}
    s.shot("branch-gd")
    first = page.locator("#at-risk-table tbody tr").first.get_attribute("data-customer")
    page.click("#at-risk-table tbody tr >> nth=0 >> a")
    page.wait_for_url(f"**/customers/{first}")
    page.wait_for_selector("#chart-activity .main-svg")
    assert page.locator("#customer-title").inner_text() == f"Customer {first}"
    assert page.locator("#reasons li").count() >= 1
    s.shot("customer-360")
    page.click("#lang-toggle")
    page.wait_for_load_state("networkidle")
    assert page.locator("#customer-title").inner_text() == f"客户 {first}"
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    s.shot("customer-360-zh")
    s.goto("/overview")  # the language choice sticks (cookie)
    assert "客户流失总览" in page.locator("#scope-title").inner_text()
    s.shot("overview-admin-zh")
    s.goto("/at-risk?lang=en&band=high")
    assert page.locator("#at-risk-table tbody tr").count() == 50
    assert "high" in set(page.eval_on_selector_all("#at-risk-table .band", "els => els.map(e => e.textContent)"))
    s.shot("at-risk")
    s.goto("/docs")
    assert page.locator("#endpoints tbody tr").count() >= 20
    s.shot("api-docs")
    assert s.errors == []
    s.close()


def test_branch_manager_sees_only_their_province(browser: Any, web_server: LiveServer) -> None:
    s = Session(browser, web_server, "gd-manager")
    page = s.page
    assert "Guangdong" in page.locator("#scope-title").inner_text()
    branches = set(column(page, "#at-risk-table", "data-customer"))
    assert branches  # the top at-risk list has rows …
    cities = page.eval_on_selector_all("#at-risk-table tbody tr td:nth-child(2)", "els => els.map(e => e.textContent)")
    assert set(cities) <= {"Guangzhou City", "Shenzhen City", "Dongguan City"}  # … all in Guangdong
    s.shot("overview-branch-manager")
    response = s.goto("/branches/ZJ")
    assert response.status == 404 and "not found" in page.locator("#error-message").inner_text()
    response = s.goto("/at-risk?branch=ZJ")
    assert response.status == 404
    s.goto("/at-risk")
    options = page.eval_on_selector_all("select[name=branch] option", "els => els.map(e => e.value)")
    assert set(options) == {"", "GD", "GD-GZ", "GD-SZ", "GD-DG"}
    s.close()


def test_account_manager_claims_a_case_and_records_a_contact(browser: Any, web_server: LiveServer) -> None:
    s = Session(browser, web_server, "AM-GZ-01")
    page = s.page
    assert page.url.endswith("/worklist")
    nav = page.locator("header nav").inner_text()
    assert "Overview" not in nav and "Campaigns" not in nav
    s.shot("worklist-before")
    case_id = page.locator("form.claim-form").first.get_attribute("action").split("/")[2]
    page.click("form.claim-form >> nth=0 >> button")
    page.wait_for_url("**/worklist?done=claimed*")
    assert case_id in page.locator("#notice").inner_text()
    mine = page.locator(f".case.mine[data-case='{case_id}']")
    assert mine.count() == 1
    mine.locator("select[name=status]").select_option("contacted")
    mine.locator("input[name=note]").fill("Called; offered the loyalty discount")
    mine.locator("button[type=submit]").click()
    page.wait_for_url("**/worklist?done=updated*")
    mine = page.locator(f".case.mine[data-case='{case_id}']")
    assert "contacted" in mine.inner_text()
    s.shot("worklist-after")
    mine.locator("a").first.click()
    page.wait_for_selector("#customer-title")
    assert "Called; offered the loyalty discount" in page.locator(f".case[data-case='{case_id}']").inner_text()
    s.shot("customer-360-account-manager")
    assert s.errors == []
    assert s.goto("/overview").url.endswith("/worklist")  # company figures are not for account managers
    assert s.goto("/campaigns").status == 403
    s.close()
