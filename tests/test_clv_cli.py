"""``churnguard clv …`` run as a child process against real DuckDB files: the command contract of issue 4."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.test_cli import cg

CDNOW = Path("/work/shared/data/cdnow")


def test_fit_bgnbd_summary_json_contract() -> None:
    r = cg(
        "clv", "fit", "--model", "bgnbd", "--summary", str(CDNOW / "cdnow_customers_summary.csv"), "--format", "json"
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["model"] == "bgnbd" and out["converged"] is True
    assert set(out["params"]) == {"r", "alpha", "a", "b"}
    assert out["params"]["r"] == pytest.approx(0.2426, abs=1e-4)
    assert out["params"]["b"] == pytest.approx(2.4258, abs=1e-4)
    assert out["log_likelihood"] == pytest.approx(-9582.4, abs=0.05)


def test_summary_files_accept_our_and_lifetimes_headers(tmp_path: Path) -> None:
    from churnguard.cli.clv_cmds import read_summary
    from churnguard.errors import ConfigError

    ours = tmp_path / "ours.csv"
    ours.write_text("customer_id,frequency,recency,T\nA,2,30.43,38.86\nB,0,0,38.86\n")
    theirs = tmp_path / "theirs.csv"
    theirs.write_text("ID,x,t_x,T\nA,2,30.43,38.86\nB,0,0,38.86\n")
    needed = ("frequency", "recency", "T")
    a, b = (read_summary(p, needed) for p in (ours, theirs))
    assert a[["customer_id", *needed]].equals(b[["customer_id", *needed]])
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,frequency,recency\nA,1,2\n")
    with pytest.raises(ConfigError, match="missing T"):
        read_summary(bad, needed)


def test_fit_gamma_gamma_and_sbg() -> None:
    r = cg(
        "clv", "fit", "--model", "gamma-gamma", "--summary",
        str(CDNOW / "cdnow_customers_summary_with_transactions.csv"), "--format", "json",
    )  # fmt: skip
    out = json.loads(r.stdout)
    assert out["model"] == "gamma-gamma" and set(out["params"]) == {"p", "q", "v"}
    assert out["params"]["p"] == pytest.approx(6.25, abs=5e-3)
    r = cg("clv", "fit", "--model", "sbg", "--alive-counts", "1000,869,743,653,593,551,517,491", "--project", "5",
           "--format", "json")  # fmt: skip
    out = json.loads(r.stdout)
    assert out["params"]["alpha"] == pytest.approx(0.668, abs=5e-4)
    assert out["params"]["beta"] == pytest.approx(3.806, abs=5e-4)
    assert len(out["projection"]) == 5 and out["projection"][0] == pytest.approx(468, rel=0.05)


def test_fit_bad_input_exits_non_zero_and_names_the_problem() -> None:
    r = cg("clv", "fit", "--model", "sbg", "--alive-counts", "100,120")
    assert r.returncode == 3 and "never rise" in r.stderr


def test_transactions_score_and_holdout_on_a_store(tmp_path: Path) -> None:
    db = str(tmp_path / "s.duckdb")
    assert cg("--db", db, "datasets", "load", "cdnow-sample").returncode == 0
    r = cg("--db", db, "clv", "fit", "--transactions", "--calibration-end", "1997-09-30", "--time-unit", "week",
           "-f", "json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["params"]["r"] == pytest.approx(0.2426, abs=1e-3)
    r = cg("--db", db, "clv", "score", "--horizon-months", "12", "--discount", "0.01", "--margin", "0.3", "-f", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["customers"] == 2357 and out["as_of"] == "1998-06-30" and out["total_clv"] > 0
    con = duckdb.connect(db, read_only=True)
    assert con.execute("SELECT count(*), count(clv), count(p_alive) FROM customer_value").fetchone() == (2357,) * 3
    con.close()
    r = cg("--db", db, "clv", "holdout", "--calibration-end", "1997-09-30", "-f", "json")
    out = json.loads(r.stdout)
    assert out["actual_total"] > 0 and out["by_frequency"][0]["frequency"] == "0"
    r = cg("--db", db, "clv", "holdout", "--calibration-end", "1997-09-30")
    assert r.returncode == 0 and "By calibration frequency" in r.stdout
