"""The periodic churn report end to end: a demo store, the real CLI, and the page in a real headless Chromium.

The browser is Debian's Chromium (``make system-deps`` installs it), driven by Playwright with
``executable_path``: no browser download, no network.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import churnguard
from churnguard.metrics import churn_report, rules_for
from churnguard.reports import default_range, previous_range
from churnguard.reports.data import SECTION_IDS

CLI = [sys.executable, "-m", "churnguard"]
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
SCREENSHOTS = {"en": Path("/tmp/churnguard-report-en.png"), "zh": Path("/tmp/churnguard-report-zh.png")}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNGUARD_")}
    env["COLUMNS"] = "200"
    return env


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 3,000-customer demo store built by ``churnguard demo`` (whose report step writes the English
    report of the whole company next to the store), and the figures the reports must show."""
    folder = tmp_path_factory.mktemp("report")
    db = folder / "demo.duckdb"
    r = subprocess.run(
        [*CLI, "--db", str(db), "demo", "-n", "3000", "--no-serve", "--format", "json"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    with churnguard.connect(db) as store:
        rules = rules_for(store)
        start, end = default_range(rules)
        expected = churn_report(store, start=start, end=end, rules=rules, by="branch")
        gd = churn_report(store, start=start, end=end, rules=rules, branch="GD")
        provinces = store.execute("SELECT branch_id, name, name_zh FROM branches WHERE level = 1").fetchall()
    return {
        "folder": folder,
        "db": db,
        "demo": json.loads(r.stdout),
        "start": start,
        "end": end,
        "expected": expected,
        "gd": gd,
        "provinces": provinces,
    }


@pytest.fixture(scope="module")
def cli_reports(demo: dict[str, Any]) -> dict[str, tuple[Path, dict[str, Any]]]:
    """``churnguard report --format json``, two at once, each on its own copy of the store:
    ``zh`` for the whole company, ``gd`` in English for Guangdong, whose store has early-warning scores."""
    folder = demo["folder"]
    for name in ("zh", "gd"):
        shutil.copyfile(demo["db"], folder / f"{name}.duckdb")
    with churnguard.connect(folder / "zh.duckdb") as store:
        store.execute("DELETE FROM scores")  # the zh report shows the section before any scoring
    with churnguard.connect(folder / "gd.duckdb") as store:
        # Scores as the early-warning model writes them: two scorings, the latest counts.
        store.execute("DELETE FROM scores")
        store.execute(
            """INSERT INTO scores (customer_id, as_of, model_id, probability, reasons)
               SELECT c.customer_id, d.as_of, 'm-test',
                      CASE WHEN c.customer_id = (SELECT min(customer_id) FROM customers WHERE branch_id = 'GD-SZ')
                           AND d.as_of = DATE '2025-11-30' THEN 0.97 ELSE 0.10 END AS probability,
                      '[{"feature": "usage_days_change_30d", "category": "usage", "contribution": 1.2,
                         "text_en": "usage fell 60 % in 30 days", "text_zh": "近30天使用量下降60%"}]'
               FROM customers c, (VALUES (DATE '2025-10-31'), (DATE '2025-11-30')) d(as_of)"""
        )
    args = {"zh": ["--lang", "zh"], "gd": ["--lang", "en", "--branch", "GD"]}
    procs = {}
    for name, extra in args.items():
        out = folder / f"report-{name}.html"
        cmd = [*CLI, "--db", str(folder / f"{name}.duckdb"), "report", *extra, "--out", str(out), "--format", "json"]
        procs[name] = (
            out,
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()),
        )
    found = {}
    for name, (out, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        found[name] = (out, json.loads(stdout))
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the report tests render the report in Debian's Chromium. "
            "Fix: run `make system-deps` (it installs Chromium), then run the tests again."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


def open_report(browser: Any, path: Path) -> tuple[Any, list[str], list[str]]:
    """Open the file in a laptop-sized page; return the page, its console errors and every URL it requested."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.resolve().as_uri())
    page.wait_for_selector(".js-plotly-plot .main-svg")
    return page, errors, requests


def assert_charts_rendered(page: Any) -> int:
    charts = page.locator(".chart")
    n = charts.count()
    assert n >= 9, f"expected the report's charts, found {n}"
    for i in range(n):
        assert charts.nth(i).locator(".js-plotly-plot .main-svg").count() >= 1, f"chart {i} did not render"
    return n


# --- the CLI and the file ----------------------------------------------------------------------


def test_cli_prints_the_file_its_sections_and_the_headline(
    demo: dict[str, Any], cli_reports: dict[str, tuple[Path, dict[str, Any]]]
) -> None:
    for name, totals in (("zh", demo["expected"].totals), ("gd", demo["gd"].totals)):
        out, result = cli_reports[name]
        assert result["out"] == str(out) and out.exists()
        assert [s["id"] for s in result["sections"]] == list(SECTION_IDS)
        status = {s["id"]: s["status"] for s in result["sections"]}
        assert status.pop("at_risk") == ("ok" if name == "gd" else "not_computed")  # only gd's store has scores
        assert set(status.values()) == {"ok"}, status
        h = result["headline"]
        assert (h["from"], h["to"]) == (demo["start"].isoformat(), demo["end"].isoformat())
        for key in ("start_customers", "churned_customers", "end_customers", "churn_rate", "retention_rate"):
            assert h[key] == totals[key], (name, key)
        assert h["lost_revenue"] > 0 and h["previous"]["churn_rate"] is not None


def test_the_files_are_self_contained_with_plotly_inlined_once(
    demo: dict[str, Any], cli_reports: dict[str, tuple[Path, dict[str, Any]]]
) -> None:
    from plotly.offline import get_plotlyjs

    header = get_plotlyjs()[:200].split("\n")[1]  # "* plotly.js vX.Y.Z"
    assert header.startswith("* plotly.js v")
    for out in [Path(demo["demo"]["report"]), *(out for out, _ in cli_reports.values())]:
        html = out.read_text(encoding="utf-8")
        assert html.count(header) == 1
        assert not re.search(r"<script[^>]*\ssrc\s*=", html, re.I), "a script is loaded from elsewhere"
        # Outside the scripts (plotly.js itself holds URLs in strings: links it can draw, not fetches).
        markup = re.sub(r"<script\b[^>]*>.*?</script>", "", html, flags=re.S | re.I)
        assert not re.search(r"<link\b", markup, re.I), "a stylesheet or font is linked"
        assert not re.search(r"@import|@font-face|url\(", markup, re.I), "CSS fetches something"
        assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", markup, re.I), "something is fetched from the web"
        assert html.count("Plotly.newPlot(") == html.count('class="chart"')


# --- in the browser ----------------------------------------------------------------------------


def test_english_report_shows_the_figures_in_chromium(browser: Any, demo: dict[str, Any]) -> None:
    """The report that ``churnguard demo`` wrote next to the store: the whole company, in English."""
    expected = demo["expected"]
    path = Path(demo["demo"]["report"])
    assert path == demo["folder"] / "demo-report.html"
    page, errors, requests = open_report(browser, path)
    try:
        assert page.locator("h1").inner_text() == "Periodic churn report"
        rate = page.locator(".kpi-churn_rate .kpi-value").inner_text()
        assert rate == f"{expected.totals['churn_rate'] * 100:.2f} %"
        table = page.locator("#branches table").first
        for branch_id, name, _ in demo["provinces"]:
            row = table.locator(f'tr[data-branch="{branch_id}"]')
            assert row.locator("td").first.inner_text() == name
            want = next(r for r in expected.rows if r["branch"] == branch_id)["churn_rate"]
            assert row.locator(".rate-value").inner_text() == f"{want * 100:.2f} %"
        # Drill-down: each province's cities, folded until opened.
        drill = page.locator('details.drill[data-branch="GD"]')
        assert not drill.locator("table").is_visible()
        drill.locator("summary").click()
        assert drill.locator('tr[data-branch="GD-GZ"]').is_visible()
        n = assert_charts_rendered(page)
        # The demo trained and scored before writing the report: its most likely churners, with reasons in words.
        at_risk = page.locator("#at_risk table tbody tr")
        assert at_risk.count() == 15
        assert re.search(r"\d+\.\d %", at_risk.first.locator("td.num").inner_text())
        assert "text_en" not in page.locator("#at_risk").inner_text()
        assert "Data as of" in page.locator("#source").inner_text()
        page.screenshot(path=str(SCREENSHOTS["en"]), full_page=True)
    finally:
        page.close()
    assert errors == []
    assert all(u.startswith("file://") for u in requests), requests
    assert n >= 9


def test_chinese_report_shows_the_figures_in_chromium(
    browser: Any, demo: dict[str, Any], cli_reports: dict[str, tuple[Path, dict[str, Any]]]
) -> None:
    expected = demo["expected"]
    page, errors, requests = open_report(browser, cli_reports["zh"][0])
    try:
        assert page.locator("html").get_attribute("lang") == "zh-CN"
        assert page.locator("h1").inner_text() == "阶段性客户流失情况总结与分析报告"
        assert page.locator(".kpi-churn_rate .kpi-label").inner_text() == "客户流失率"
        assert page.locator(".kpi-churn_rate .kpi-value").inner_text() == f"{expected.totals['churn_rate'] * 100:.2f}%"
        assert "流失变动率" in page.locator("#headline").inner_text()
        table = page.locator("#branches table").first
        for branch_id, _, name_zh in demo["provinces"]:
            assert table.locator(f'tr[data-branch="{branch_id}"] td').first.inner_text() == name_zh
        assert_charts_rendered(page)
        assert page.locator("#at_risk .message").inner_text().startswith("尚未计算流失预警得分")
        page.screenshot(path=str(SCREENSHOTS["zh"]), full_page=True)
    finally:
        page.close()
    assert errors == []
    assert all(u.startswith("file://") for u in requests), requests


# --- the Python API, the demo, scope and scores ------------------------------------------------


def test_a_branch_report_drills_into_its_cities_and_lists_scored_customers(
    demo: dict[str, Any], cli_reports: dict[str, tuple[Path, dict[str, Any]]]
) -> None:
    gd = demo["gd"].totals
    html = cli_reports["gd"][0].read_text(encoding="utf-8")
    assert "Guangdong Province · " in html
    assert f'data-value="{gd["churn_rate"]}">{gd["churn_rate"] * 100:.2f} %<' in html
    branches = html[html.index('<section id="branches"') : html.index('<section id="trend"')]
    for city in ("GD-GZ", "GD-SZ", "GD-DG"):
        assert f'<tr data-branch="{city}">' in branches
    assert 'data-branch="ZJ' not in branches
    with churnguard.connect(demo["db"]) as store:
        top = store.execute("SELECT min(customer_id) FROM customers WHERE branch_id = 'GD-SZ'").fetchone()[0]
        outsider = store.execute("SELECT min(customer_id) FROM customers WHERE branch_id = 'ZJ-HZ'").fetchone()[0]
    at_risk = html[html.index('<section id="at_risk"') : html.index('<section id="source"')]
    assert "not computed" not in at_risk and outsider not in at_risk
    assert at_risk.index(top) < at_risk.index("10.0 %") and "97.0 %" in at_risk and "2025-11-30" in at_risk
    assert "2025-10-31" not in at_risk
    assert "usage fell 60 % in 30 days" in at_risk and "text_en" not in at_risk


def test_periods() -> None:
    from churnguard.metrics.activity import ActivityRules
    from churnguard.reports.periods import settled_until

    as_of = dt.date(2025, 12, 31)
    assert default_range(ActivityRules("contractual", as_of=as_of)) == (dt.date(2025, 1, 1), as_of)
    assert default_range(ActivityRules("non_contractual", as_of=dt.date(2025, 3, 15))) == (
        dt.date(2024, 3, 1),
        dt.date(2025, 2, 28),
    )
    assert settled_until(ActivityRules("contractual", grace_days=30, as_of=as_of)) == dt.date(2025, 12, 1)
    assert settled_until(ActivityRules("non_contractual", as_of=as_of)) == as_of
    assert previous_range(dt.date(2025, 1, 1), dt.date(2025, 6, 30)) == (dt.date(2024, 7, 1), dt.date(2024, 12, 31))
    assert previous_range(dt.date(2025, 1, 10), dt.date(2025, 1, 19)) == (dt.date(2024, 12, 31), dt.date(2025, 1, 9))


def test_cli_refuses_half_a_range_and_unknown_languages(demo: dict[str, Any]) -> None:
    db = str(demo["db"])
    r = subprocess.run(
        [*CLI, "--db", db, "report", "--from", "2025-01-01"], capture_output=True, text=True, env=_env(), timeout=120
    )
    assert r.returncode == 2 and "--from and --to" in r.stderr
    r = subprocess.run(
        [*CLI, "--db", db, "report", "--lang", "fr", "--out", str(demo["folder"] / "x.html")],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert r.returncode == 2 and "--lang" in r.stderr and not (demo["folder"] / "x.html").exists()


# --- customer value -----------------------------------------------------------------------------


def test_the_value_section_shows_the_stored_tiers_with_their_churn(browser: Any, demo: dict[str, Any]) -> None:
    """The demo stores tiers, RFM, lifecycle and CLV before writing its report: the value section shows them."""
    page, errors, _ = open_report(browser, Path(demo["demo"]["report"]))
    try:
        section = page.locator("#value")
        assert section.locator("h2").inner_text().endswith("Customer value")
        for tier in ("A", "B", "C"):
            assert section.locator(f'tr[data-tier="{tier}"]').count() == 1
        for chart in ("chart-value-tiers", "chart-value-rfm", "chart-value-stages"):
            assert section.locator(f"#{chart} .main-svg").count() >= 1, chart
        assert section.locator('[data-key="clv_total"]').count() == 1
        assert section.locator("#chart-value-holdout").count() == 0  # contractual: no BG/NBD check
        section.screenshot(path="/tmp/churnguard-report-value.png")
    finally:
        page.close()
    assert errors == []
    with churnguard.connect(demo["db"]) as store:
        rules = rules_for(store)
        rows = churn_report(store, start=demo["start"], end=demo["end"], rules=rules, by="tier").rows
    html = Path(demo["demo"]["report"]).read_text(encoding="utf-8")
    value = html[html.index('<section id="value"') : html.index('<section id="loss"')]
    a = next(r for r in rows if r["tier"] == "A")["churn_rate"]
    assert f'data-value="{a}">{a * 100:.2f} %<' in value


def test_a_non_contractual_report_shows_the_bgnbd_holdout_check(browser: Any, tmp_path: Path) -> None:
    from churnguard.clv.score import holdout_check
    from churnguard.datasets.real import load_dataset
    from churnguard.reports import write_churn_report
    from churnguard.reports.data import HOLDOUT_TIME_UNIT, holdout_calibration_end

    out = {lang: tmp_path / f"cdnow-{lang}.html" for lang in ("en", "zh")}
    with churnguard.connect(tmp_path / "cdnow.duckdb") as store:
        load_dataset(store, "cdnow-sample")
        rules = rules_for(store)
        assert rules.definition == "non_contractual"
        start, end = default_range(rules)
        for lang, path in out.items():
            write_churn_report(store, path, start=start, end=end, lang=lang, rules=rules)
        cal_end, fallback = holdout_calibration_end(store, rules, start)
        expected = holdout_check(store, calibration_end=cal_end, time_unit=HOLDOUT_TIME_UNIT)
        # A period ending at the as-of date leaves < 8 weeks after its start: calibrate to the data's middle.
        late, fell_back = holdout_calibration_end(store, rules, rules.as_of - dt.timedelta(days=20))
        assert fell_back and late == dt.date(1997, 1, 1) + (rules.as_of - dt.date(1997, 1, 1)) / 2
    assert cal_end == start - dt.timedelta(days=1) and not fallback
    page, errors, _ = open_report(browser, out["en"])
    try:
        section = page.locator("#value")
        assert section.locator("#chart-value-holdout .main-svg").count() >= 1
        predicted = section.locator('[data-key="holdout_predicted_total"] .kpi-value')
        actual = section.locator('[data-key="holdout_actual_total"] .kpi-value')
        assert float(predicted.get_attribute("data-value")) == expected.predicted_total
        assert int(actual.get_attribute("data-value")) == expected.actual_total
        assert predicted.inner_text() == f"{expected.predicted_total:,.1f}"
        assert actual.inner_text() == f"{expected.actual_total:,}"
        # No segmentation stored yet: the section says how to compute it.
        assert "churnguard segment run" in section.locator(".message").inner_text()
        section.screenshot(path="/tmp/churnguard-report-holdout.png")
    finally:
        page.close()
    assert errors == []
    zh = out["zh"].read_text(encoding="utf-8")
    assert "BG/NBD 模型留出期检验" in zh and 'id="chart-value-holdout"' in zh
