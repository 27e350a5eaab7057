"""Storing segments in customer_value, and the ``churnguard segment`` commands (docs/segments.md)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from conftest import build_demo_store
from test_segments_rfm import AS_OF, build
from typer.testing import CliRunner

import churnguard
from churnguard.cli.app import app
from churnguard.metrics import churn_report, rules_for
from churnguard.segments import segment_customers

ENV = {"COLUMNS": "200", "CHURNGUARD_DB": None, "CHURNGUARD_LANG": None}


def cg(*args: str) -> object:
    return CliRunner().invoke(app, list(args), env=ENV)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shared demo store with ``segment run`` done once."""
    path, _ = build_demo_store(tmp_path_factory)
    copy = tmp_path_factory.mktemp("seg") / "demo.duckdb"
    shutil.copyfile(path, copy)
    r = cg("--db", str(copy), "segment", "run", "--format", "json")
    assert r.exit_code == 0, r.output
    return copy


def test_segment_customers_upserts_and_keeps_clv(tmp_path: Path) -> None:
    s = build(tmp_path)
    # written before by the CLV engineer (c01) and a stale row for a customer no longer segmented
    s.execute("INSERT INTO customer_value (customer_id, clv, p_alive, clv_model) VALUES ('c01', 123.5, 0.9, 'bgnbd')")
    s.execute("INSERT INTO customer_value (customer_id, tier, clv) VALUES ('gone', 'A', 7.0)")
    run = segment_customers(s, basis="revenue")
    assert run.as_of == AS_OF
    assert run.written == {"updated": 1, "inserted": 11, "cleared": 1}  # c01..c12 (c12 churned: lifecycle only)
    rows = {
        r[0]: r[1:]
        for r in s.execute(
            "SELECT customer_id, clv, p_alive, clv_model, rfm_segment, tier, value_basis, lifecycle_stage, as_of "
            "FROM customer_value"
        ).fetchall()
    }
    assert s.execute("SELECT count(*) = count(DISTINCT customer_id) FROM customer_value").fetchone()[0]
    assert rows["c01"][:3] == (123.5, 0.9, "bgnbd")
    assert rows["c01"][3:] == ("new", "C", "revenue", "new", AS_OF)
    assert rows["c10"][3:6] == ("champions", "A", "revenue")
    assert rows["c12"][3:6] == (None, None, None) and rows["c12"][6] == "churned"
    assert rows["gone"][:5] == (7.0, None, None, None, None)  # its CLV stays, its stale tier goes
    # a second run updates the same rows
    again = segment_customers(s, basis="revenue")
    assert again.written == {"updated": 12, "inserted": 0, "cleared": 0}
    assert s.execute("SELECT count(*) FROM customer_value").fetchone()[0] == 13
    s.close()


def test_run_then_churn_by_tier_has_a_b_c(demo: Path) -> None:
    with churnguard.connect(demo) as s:
        rules = rules_for(s)
        report = churn_report(s, start=dt.date(2025, 1, 1), end=rules.as_of, rules=rules, by="tier")
        stored = s.execute(
            "SELECT tier, count(*) FROM customer_value WHERE tier IS NOT NULL GROUP BY 1 ORDER BY 1"
        ).fetchall()
    tiers = {r["tier"] for r in report.rows}
    assert {"A", "B", "C"} <= tiers
    assert [t for t, _ in stored] == ["A", "B", "C", "VIP"]
    a = {r["tier"]: r for r in report.rows}
    assert a["A"]["churn_rate"] < a["C"]["churn_rate"]  # key accounts churn less in the demo


def test_cli_json_outputs(demo: Path) -> None:
    r = cg("--db", str(demo), "segment", "abc", "--by", "value", "--a-share", "0.7", "--b-share", "0.2", "-f", "json")
    assert r.exit_code == 0, r.output
    body = json.loads(r.output)
    assert body["by"] == "value" and body["rows"][0]["share_value"] == pytest.approx(0.7, abs=0.001)
    r = cg("--db", str(demo), "segment", "rfm", "--format", "json")
    body = json.loads(r.output)
    assert len(body["rows"]) == 11 and sum(x["customers"] for x in body["rows"]) == body["customers"]
    r = cg("--db", str(demo), "segment", "lifecycle", "--format", "json")
    body = json.loads(r.output)
    assert [x["stage"] for x in body["rows"]] == ["new", "growth", "maturity", "decline", "churned"]
    assert body["customers"] == 20_000


def test_cli_tables_in_both_languages(demo: Path) -> None:
    r = cg("--db", str(demo), "--lang", "zh", "segment", "lifecycle")
    assert r.exit_code == 0, r.output
    assert "成长期" in r.output and "衰退期" in r.output
    r = cg("--db", str(demo), "segment", "rfm")
    assert "Champions" in r.output and "Can't Lose Them" in r.output
    r = cg("--db", str(demo), "--lang", "zh", "segment", "abc")
    assert "A 类" in r.output and "VIP" in r.output


def test_cli_bad_option_is_a_clear_error(demo: Path) -> None:
    r = cg("--db", str(demo), "segment", "abc", "--basis", "profit")
    assert r.exit_code != 0
    assert "--basis" in str(r.exception) or "--basis" in r.output
