"""The real CLI, run as a child process against real DuckDB files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from churnguard.store import LATEST_VERSION

CLI = [sys.executable, "-m", "churnguard"]

BRANCHES = "branch_id,name,parent_id\nHQ,Head office,\nGD,Guangdong,HQ\nGZ,Guangzhou,GD\n"
CUSTOMERS = "customer_id,branch_id,signup_date,plan\nC1,GZ,2024-01-05,basic\nC2,GZ,2024-02-05,premium\n"


def cg(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    # The caller's own CHURNGUARD_* settings must not leak into the tests.
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNGUARD_")}
    full_env.update({"COLUMNS": "200", **(env or {})})
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=300)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, text in {"branches": BRANCHES, "customers": CUSTOMERS}.items():
        p = tmp_path / f"{name}.csv"
        p.write_text(text, encoding="utf-8")
        out[name] = p
    return out


def test_help_lists_the_commands() -> None:
    r = cg("--help")
    assert r.returncode == 0
    for command in ("demo", "ingest", "tables", "branches", "schema", "migrate", "datasets", "simulate"):
        assert command in r.stdout


def test_version() -> None:
    r = cg("--version")
    assert r.returncode == 0
    assert r.stdout.startswith("churnguard ")


def test_ingest_then_tables_as_json(tmp_path: Path, files: dict[str, Path]) -> None:
    db = str(tmp_path / "s.duckdb")
    r = cg("--db", db, "ingest", "branches", str(files["branches"]), "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["rows_added"] == 3
    r = cg("--db", db, "ingest", "customers", str(files["customers"]), "-f", "json")
    assert json.loads(r.stdout)["rows_added"] == 2
    r = cg("--db", db, "tables", "--format", "json")
    data = json.loads(r.stdout)
    counts = {t["table"]: t["rows"] for t in data["tables"]}
    assert counts["branches"] == 3 and counts["customers"] == 2 and counts["events"] == 0
    customers = next(t for t in data["tables"] if t["table"] == "customers")
    assert (customers["first"], customers["last"]) == ("2024-01-05", "2024-02-05")
    # The same load again adds nothing.
    r = cg("--db", db, "ingest", "customers", str(files["customers"]), "-f", "json")
    assert json.loads(r.stdout)["rows_added"] == 0
    assert json.loads(r.stdout)["rows_skipped"] == 2


def test_bad_file_exits_non_zero_names_the_place_and_loads_nothing(tmp_path: Path, files: dict[str, Path]) -> None:
    db = str(tmp_path / "s.duckdb")
    cg("--db", db, "ingest", "branches", str(files["branches"]))
    bad = tmp_path / "bad.csv"
    bad.write_text(CUSTOMERS + "C3,GZ,31/01/24,basic\n", encoding="utf-8")
    r = cg("--db", db, "ingest", "customers", str(bad))
    assert r.returncode == 3
    assert 'bad.csv line 4, column signup_date: expected a date like 2024-01-31, got "31/01/24"' in r.stderr
    assert "format" in r.stderr  # the fix
    assert duckdb.connect(db, read_only=True).execute("SELECT count(*) FROM customers").fetchone()[0] == 0
    r = cg("--db", db, "ingest", "customers", str(bad), "--format", "json")
    assert r.returncode == 3
    problem = json.loads(r.stderr)["error"]["problems"][0]
    assert problem == {
        "source": "bad.csv",
        "line": 4,
        "column": "signup_date",
        "expected": "a date like 2024-01-31",
        "got": '"31/01/24"',
        "fix": problem["fix"],
    }


def test_db_from_environment(tmp_path: Path, files: dict[str, Path]) -> None:
    db = tmp_path / "env.duckdb"
    r = cg("ingest", "branches", str(files["branches"]), env={"CHURNGUARD_DB": str(db)}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert db.exists()
    assert not (tmp_path / "churnguard.duckdb").exists()


def test_default_store_is_churnguard_duckdb_in_the_working_folder(tmp_path: Path) -> None:
    r = cg("tables", "-f", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "churnguard.duckdb").exists()


def test_unknown_table_and_unsupported_backend_are_usage_errors(tmp_path: Path, files: dict[str, Path]) -> None:
    r = cg("--db", str(tmp_path / "s.duckdb"), "ingest", "clients", str(files["customers"]))
    assert r.returncode == 2
    assert 'unknown table "clients"' in r.stderr
    r = cg("--db", "mysql://localhost/x", "tables")
    assert r.returncode == 2
    assert 'unknown backend "mysql"' in r.stderr
    r = cg("--db", "postgresql://ana:pw@127.0.0.1:1/x", "tables")  # nothing listens on port 1
    assert r.returncode != 0
    assert "cannot connect to PostgreSQL" in r.stderr and "pw@" not in r.stderr


def test_schema_and_migrate_as_json(tmp_path: Path) -> None:
    r = cg("schema", "--format", "json")
    tables = json.loads(r.stdout)
    assert [t["table"] for t in tables] == [
        "branches",
        "customers",
        "subscriptions",
        "transactions",
        "events",
        "tickets",
        "surveys",
        "churn_events",
    ]
    r = cg("--db", str(tmp_path / "m.duckdb"), "migrate", "--format", "json")
    data = json.loads(r.stdout)
    assert data["from_version"] == 0 and [m["version"] for m in data["applied"]] == list(range(1, LATEST_VERSION + 1))
    r = cg("--db", str(tmp_path / "m.duckdb"), "migrate", "--format", "json")
    assert json.loads(r.stdout)["applied"] == []


def test_chinese_labels(tmp_path: Path, files: dict[str, Path]) -> None:
    db = str(tmp_path / "s.duckdb")
    cg("--db", db, "ingest", "branches", str(files["branches"]))
    r = cg("--db", db, "--lang", "zh", "branches")
    assert r.returncode == 0
    assert "组织架构" in r.stdout and "客户数" in r.stdout
    r = cg("--db", db, "--lang", "fr", "tables")
    assert r.returncode == 2
    assert "expected one of en, zh" in r.stderr


def test_demo_builds_and_summarises_the_store_without_serving(tmp_path: Path) -> None:
    db = str(tmp_path / "demo.duckdb")
    r = cg("--db", db, "demo", "--customers", "2000", "--no-serve", "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    counts = {t["table"]: t["rows"] for t in data["tables"]}
    assert counts["customers"] == 2000
    assert all(counts[t] > 0 for t in counts), counts
    assert data["steps"][:2] == ["simulate", "load"]
    assert data["branches"][0]["level"] == 0 and data["branches"][0]["customers"] == 2000
    assert {b["level"] for b in data["branches"]} == {0, 1}
    # The whole pipeline ran: a model tested on a month it never saw, scores, a campaign with cases.
    assert data["steps"][-5:] == ["train", "score", "users", "campaign", "report"]
    model, scores, campaign = data["model"], data["scores"], data["campaign"]
    assert 0.5 < model["test"]["auc"] <= 1 and model["test"]["as_of"] == model["observation_dates"][-1]
    assert scores["customers"] > 0 and sum(scores["bands"].values()) == scores["customers"]
    assert campaign["campaign_id"].startswith("CMP-")
    with duckdb.connect(db, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM scores").fetchone()[0] == scores["customers"]
        assert con.execute("SELECT count(*) FROM cases").fetchone()[0] == campaign["cases_opened"]
        assert con.execute("SELECT count(*) FROM users WHERE role = 'admin'").fetchone()[0] == 1
    # The readable summary names the tables and the branches.
    r = cg("--db", db, "demo", "--customers", "2000", "--no-serve")
    assert r.returncode == 0, r.stderr
    assert "events" in r.stdout and "Head office" in r.stdout and "Early warning: model" in r.stdout


def test_demo_refuses_to_overwrite_other_data(tmp_path: Path, files: dict[str, Path]) -> None:
    db = str(tmp_path / "mine.duckdb")
    cg("--db", db, "ingest", "branches", str(files["branches"]))
    cg("--db", db, "ingest", "customers", str(files["customers"]))
    r = cg("--db", db, "demo", "--customers", "500", "--no-serve")
    assert r.returncode == 2
    assert "already holds data" in r.stderr and "--force" in r.stderr
    assert duckdb.connect(db, read_only=True).execute("SELECT count(*) FROM customers").fetchone()[0] == 2


def test_simulate_then_ingest_all_of_a_csv_folder(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    r = cg(
        "simulate", "--customers", "1500", "--chunk", "1000", "--out", str(out), "--file-format", "csv", "-f", "json"
    )
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["files"]["events"]) == 2  # two chunks, two parts
    db = str(tmp_path / "s.duckdb")
    r = cg("--db", db, "ingest-all", str(out), "--dry-run", "-f", "json")
    assert r.returncode == 0, r.stderr
    planned = {x["table"]: x["rows_added"] for x in json.loads(r.stdout)["loads"]}
    assert planned["customers"] == 1500
    assert duckdb.connect(db, read_only=True).execute("SELECT count(*) FROM customers").fetchone()[0] == 0
    r = cg("--db", db, "ingest-all", str(out), "-f", "json")
    assert r.returncode == 0, r.stderr
    loaded = {x["table"]: x["rows_added"] for x in json.loads(r.stdout)["loads"]}
    assert loaded == planned
    con = duckdb.connect(db, read_only=True)
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == loaded["events"] > 0
    con.close()
    # Again: nothing new.
    r = cg("--db", db, "ingest-all", str(out), "-f", "json")
    assert all(x["rows_added"] == 0 for x in json.loads(r.stdout)["loads"])


def test_datasets_list_and_load(tmp_path: Path) -> None:
    r = cg("datasets", "list", "--format", "json")
    names = [d["name"] for d in json.loads(r.stdout)]
    assert {"telco", "telco-cltv", "cdnow", "grocery"} <= set(names)
    db = str(tmp_path / "g.duckdb")
    r = cg("--db", db, "datasets", "load", "grocery", "-f", "json")
    assert r.returncode == 0, r.stderr
    added = {x["table"]: x["rows_added"] for x in json.loads(r.stdout)["loads"]}
    assert added == {"branches": 1, "customers": 1525, "transactions": 10483}
    r = cg("--db", db, "datasets", "load", "nope")
    assert r.returncode == 2 and 'unknown data set "nope"' in r.stderr


def test_usage_errors_print_usage_and_exit_2() -> None:
    r = cg("metrics", "churn", "--from", "2024-01-01")
    assert r.returncode == 2
    assert "Missing option '--to'" in r.stderr and "Traceback" not in r.stderr
    r = cg("no-such-command")
    assert r.returncode == 2 and "No such command" in r.stderr
