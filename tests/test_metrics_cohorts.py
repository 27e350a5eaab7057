"""Cohort retention on a tiny store computed by hand, on the demo store, and through the CLI."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

import churnguard
from churnguard.errors import ConfigError
from churnguard.ingest import LoadSpec
from churnguard.metrics import ActivityRules, rules_for
from churnguard.metrics.cohorts import cohort_retention, observation_start

D = dt.date


def R(x: float) -> float:
    """Shares are reported to 6 decimals."""
    return round(x, 6)


AS_OF = D(2024, 6, 30)
RULES = ActivityRules(definition="contractual", grace_days=30, as_of=AS_OF)
BRANCHES = pa.table(
    {
        "branch_id": ["HQ", "GD", "ZJ"],
        "name": ["Head office", "Guangdong", "Zhejiang"],
        "parent_id": [None, "HQ", "HQ"],
    }
)
# id, branch, plan, subscriptions [(start, end)]
PEOPLE = [
    ("A", "GD", "basic", [("2024-01-05", None)]),  # stays
    ("B", "GD", "basic", [("2024-01-06", "2024-01-20")]),  # gone in the signup month
    ("C", "GD", "pro", [("2024-01-10", "2024-02-29")]),  # the last day of February: gone at its end
    ("D", "GD", "pro", [("2024-01-15", "2024-03-10"), ("2024-04-15", None)]),  # leaves, comes back
    ("E", "GD", "basic", [("2024-01-31", "2024-04-02")]),
    ("F", "ZJ", "basic", [("2024-02-10", None)]),  # the February cohort
    ("Z", "ZJ", "basic", [("2023-12-15", None)]),  # an earlier cohort
]


def load_people(path: Path, people: list[tuple], events: pa.Table | None = None) -> churnguard.Store:
    s = churnguard.connect(path)
    customers = pa.table(
        {
            "customer_id": [p[0] for p in people],
            "branch_id": [p[1] for p in people],
            "signup_date": [p[3][0][0] for p in people],
            "plan": [p[2] for p in people],
            "segment": ["consumer"] * len(people),
        }
    )
    subs = [(p[0], p[2], start, end) for p in people for start, end in p[3]]
    subscriptions = pa.table(
        {
            "customer_id": [x[0] for x in subs],
            "plan": [x[1] for x in subs],
            "start_date": [x[2] for x in subs],
            "end_date": [x[3] for x in subs],
        }
    )
    specs = [LoadSpec("branches", BRANCHES), LoadSpec("customers", customers), LoadSpec("subscriptions", subscriptions)]
    if events is not None:
        specs.append(LoadSpec("events", events))
    churnguard.ingest_tables(s, specs, as_of=AS_OF)
    return s


@pytest.fixture
def store(tmp_path: Path) -> Iterator[churnguard.Store]:
    s = load_people(tmp_path / "c.duckdb", PEOPLE)
    yield s
    s.close()


def test_monthly_matrix_by_hand(store) -> None:
    m = cohort_retention(store, rules=RULES, start=D(2024, 1, 1), max_age=6)
    by_cohort = {c["cohort"]: c for c in m.cohorts}
    assert list(by_cohort) == ["2024-01", "2024-02"]  # Z's December cohort is before --from
    jan = by_cohort["2024-01"]
    assert jan["size"] == 5
    # Ends of Jan … Jun: B gone in January; C gone on Feb 29 (its last day counts as gone);
    # D gone in March and back in April (retained again); E gone in April; July is after the as-of date.
    assert jan["retained"] == [4, 3, 2, 2, 2, 2, None]
    assert jan["retention"] == [0.8, 0.6, 0.4, 0.4, 0.4, 0.4, None]
    assert by_cohort["2024-02"]["retention"] == [1.0, 1.0, 1.0, 1.0, 1.0, None, None]
    # Size-weighted over the cohorts that reached the age: (4 + 1) / 6, …, age 5 only January.
    assert m.average_retention == [R(5 / 6), R(4 / 6), 0.5, 0.5, 0.5, 0.4, None]
    d = m.to_dict()
    assert {"cohorts", "period", "max_age", "average_retention"} <= set(d)
    assert d["cohorts"][0]["retention"][-1] is None and d["max_age"] == 6


def test_quarters_branch_and_groups(store) -> None:
    q = cohort_retention(store, rules=RULES, start=D(2024, 1, 1), period="quarter", max_age=2)
    assert [(c["cohort"], c["size"], c["retention"]) for c in q.cohorts] == [("2024-Q1", 6, [0.5, 0.5, None])]
    # The Q1 cohort at the end of March: A, E, F; at the end of June: A, D (back), F.
    zj = cohort_retention(store, rules=RULES, start=D(2024, 1, 1), branch="ZJ", max_age=1)
    assert [(c["cohort"], c["size"]) for c in zj.cohorts] == [("2024-02", 1)]
    by_plan = cohort_retention(store, rules=RULES, start=D(2024, 1, 1), by="plan", max_age=1)
    rows = {(c["group"], c["cohort"]): c["retention"] for c in by_plan.cohorts}
    assert rows == {
        ("basic", "2024-01"): [R(2 / 3)] * 2,
        ("basic", "2024-02"): [1.0, 1.0],
        ("pro", "2024-01"): [1.0, 0.5],
    }
    groups = {g["group"]: g for g in by_plan.to_dict()["groups"]}
    assert groups["pro"]["average_retention"] == [1.0, 0.5] and groups["basic"]["size"] == 4


def test_default_start_is_where_the_data_begin_and_earlier_cells_are_unknown(tmp_path: Path) -> None:
    # The first activity row is on 2024-02-01: cohorts start there by default, and a cell whose
    # day is earlier is None even when an earlier cohort is asked for (only its survivors were seen).
    events = pa.table({"customer_id": ["A"], "ts": [dt.datetime(2024, 2, 1, 9)], "event_type": ["login"]})
    s = load_people(tmp_path / "o.duckdb", PEOPLE, events)
    try:
        assert observation_start(s) == D(2024, 2, 1)
        assert [c["cohort"] for c in cohort_retention(s, rules=RULES).cohorts] == ["2024-02"]  # F only
        jan = cohort_retention(s, rules=RULES, start=D(2024, 1, 1), max_age=2).cohorts[0]
        assert jan["retention"] == [None, 0.6, 0.4]
        s.set_meta("dataset_start", "2023-01-01")  # a recorded start wins
        assert observation_start(s) == D(2023, 1, 1)
        assert [c["cohort"] for c in cohort_retention(s, rules=RULES).cohorts] == ["2023-12", "2024-01", "2024-02"]
    finally:
        s.close()


def test_bad_options_are_clear_errors(store) -> None:
    with pytest.raises(ConfigError, match="--period: expected month or quarter"):
        cohort_retention(store, rules=RULES, period="week")
    with pytest.raises(ConfigError, match="--max-age"):
        cohort_retention(store, rules=RULES, max_age=-1)
    with pytest.raises(ConfigError, match="--by: expected one of branch, plan, segment"):
        cohort_retention(store, rules=RULES, by="colour")
    with pytest.raises(ConfigError, match="expected from ≤ to"):
        cohort_retention(store, rules=RULES, start=D(2024, 3, 1), end=D(2024, 2, 1))
    with pytest.raises(ConfigError, match='branch "XX"'):
        cohort_retention(store, rules=RULES, branch="XX")


# -- the demo store (built once per session, shared through a file in pytest's base temp folder) -----------

DEMO_CUSTOMERS = 4000


def demo_file(factory: pytest.TempPathFactory) -> Path:
    """A demo store (seed 7), built on first use and reused by every test module that asks."""
    path = factory.getbasetemp() / f"demo-{DEMO_CUSTOMERS}-seed7.duckdb"
    if not path.exists():
        from churnguard.datasets.simulator import simulate

        sim = simulate(DEMO_CUSTOMERS, seed=7)
        part = path.with_suffix(".part")
        with churnguard.connect(part) as s:
            churnguard.ingest_tables(s, [LoadSpec(n, t) for n, t in sim.tables.items()], as_of=sim.end)
            s.set_meta("churn_definition", "contractual")
            s.set_meta("dataset_as_of", sim.end.isoformat())
        part.rename(path)
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[churnguard.Store]:
    with churnguard.connect(demo_file(tmp_path_factory), read_only=True) as s:
        yield s


def test_demo_cohorts_retain_less_with_age_and_prepaid_least(demo) -> None:
    rules = rules_for(demo)
    m = cohort_retention(demo, rules=rules)
    assert m.start == D(2023, 1, 1) and len(m.cohorts) == 36  # the simulated period, month by month
    avg = m.average_retention
    assert avg[0] > avg[6] > avg[12] > avg[24] > 0.4
    assert m.cohorts[-1]["retention"][1:] == [None] * 24  # December 2025: only its own month has ended
    plans = {g["group"]: g["average_retention"] for g in cohort_retention(demo, rules=rules, by="plan").groups}
    assert plans["prepaid"][12] < plans["smart"][12] < plans["family"][12]


def cg(*args: str) -> subprocess.CompletedProcess:
    """Run the real CLI in a child process, without the caller's CHURNGUARD_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNGUARD_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "churnguard", *args], capture_output=True, text=True, env=env, timeout=120
    )


def cg_here(*args: str) -> str:
    """Run the same Typer app in this process and return its output (for the tables: a child process
    would re-import everything, lifelines included, seconds on a small machine, to test only rendering)."""
    from typer.testing import CliRunner

    from churnguard.cli.app import app

    out = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", "CHURNGUARD_DB": None, "CHURNGUARD_LANG": None})
    assert out.exit_code == 0, out.output
    return out.output


def test_cli_cohorts_json_and_table(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    db = tmp_path / "demo.duckdb"
    shutil.copyfile(demo_file(tmp_path_factory), db)
    r = cg("--db", str(db), "metrics", "cohorts", "--from", "2025-01-01", "--max-age", "6", "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["period"] == "month" and data["max_age"] == 6 and len(data["cohorts"]) == 12
    first = data["cohorts"][0]
    assert first["cohort"] == "2025-01" and len(first["retention"]) == 7 and first["size"] > 0
    assert data["average_retention"][0] >= data["average_retention"][6]
    out = cg_here("--db", str(db), "metrics", "cohorts", "--period", "quarter", "--branch", "GD", "--max-age", "4")
    assert "Cohort retention" in out and "2025-Q4" in out and "%" in out and "Average" in out
    assert "客户群保留率" in cg_here("--db", str(db), "--lang", "zh", "metrics", "cohorts", "--from", "2025-07-01")
    r = cg("--db", str(db), "metrics", "cohorts", "--period", "week", "-f", "json")
    assert r.returncode != 0 and "--period: expected month or quarter" in r.stderr
