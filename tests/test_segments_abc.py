"""ABC value tiers on a tiny store computed by hand, and on the demo store (docs/segments.md, "ABC")."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

import churnguard
from churnguard.errors import ConfigError
from churnguard.ingest import LoadSpec
from churnguard.metrics import rules_for
from churnguard.segments import abc_tiers
from churnguard.segments.abc import abc_sql

D = dt.date
AS_OF = D(2025, 6, 30)
BRANCHES = pa.table({"branch_id": ["HQ"], "name": ["Head office"], "parent_id": [None]})
# v01 … v10: trailing-year margin 50, 20, 10, 10, 5, 5, 0, 0, 0, 0 (total 100); revenue = margin + 100.
MARGINS = [50.0, 20.0, 10.0, 10.0, 5.0, 5.0, 0.0, 0.0, 0.0, 0.0]


def build(tmp_path: Path, *, with_margin: bool = True) -> churnguard.Store:
    tx: list[tuple[str, dt.datetime, float, float | None]] = []
    for j, m in enumerate(MARGINS, start=1):
        tx.append((f"v{j:02d}", dt.datetime(2025, 6, 1, 10), m + 100.0, m if with_margin else None))
    tx.append(("v11", dt.datetime(2025, 6, 2, 10), 5000.0, 1000.0 if with_margin else None))  # VIP by hand
    tx.append(("v12", dt.datetime(2025, 6, 3, 10), 80.0, None))  # no margin recorded
    tx.append(("v01", dt.datetime(2024, 5, 1, 10), 900.0, 900.0 if with_margin else None))  # before the window
    ids = sorted({t[0] for t in tx})
    customers = pa.table(
        {
            "customer_id": ids,
            "branch_id": ["HQ"] * len(ids),
            "signup_date": [D(2024, 1, 1)] * len(ids),
            "tier_override": ["VIP" if i == "v11" else None for i in ids],
        }
    )
    transactions = pa.table(
        {
            "customer_id": [t[0] for t in tx],
            "ts": [t[1] for t in tx],
            "amount": [t[2] for t in tx],
            "margin": [t[3] for t in tx],
        }
    )
    s = churnguard.connect(tmp_path / "abc.duckdb")
    churnguard.ingest_tables(
        s,
        [LoadSpec("branches", BRANCHES), LoadSpec("customers", customers), LoadSpec("transactions", transactions)],
        as_of=AS_OF,
    )
    s.set_meta("dataset_as_of", AS_OF.isoformat())
    return s


@pytest.fixture
def store(tmp_path: Path) -> churnguard.Store:
    s = build(tmp_path)
    yield s
    s.close()


def tiers(store: churnguard.Store, **options: object) -> dict[str, str | None]:
    sql, params = abc_sql(store, rules_for(store), **options)  # type: ignore[arg-type]
    return dict(store.execute(f"SELECT customer_id, tier FROM ({sql})", params).fetchall())


def test_by_count(store: churnguard.Store) -> None:
    # n = 10 ranked (v11 overridden, v12 without margin): A = rank ≤ round(0.2·10) = 2, B = rank ≤ round(0.5·10) = 5
    got = tiers(store, a_share=0.2, b_share=0.3, by="count")
    assert [k for k, t in sorted(got.items()) if t == "A"] == ["v01", "v02"]
    assert [k for k, t in sorted(got.items()) if t == "B"] == ["v03", "v04", "v05"]  # v05 before v06: id breaks the tie
    assert got["v11"] is None and got["v12"] is None
    report = abc_tiers(store, a_share=0.2, b_share=0.3, by="count")
    rows = {r["tier"]: r for r in report.rows}
    assert (report.customers, report.value, report.unranked) == (10, 100.0, 1)
    assert (rows["A"]["customers"], rows["A"]["value"], rows["A"]["share_value"]) == (2, 70.0, 0.7)
    assert (rows["B"]["share_customers"], rows["B"]["value"], rows["B"]["min_value"]) == (0.3, 25.0, 5.0)
    assert (rows["C"]["customers"], rows["C"]["share_value"]) == (5, 0.05)
    assert report.overrides == [{"tier": "VIP", "customers": 1, "value": 1000.0}]


def test_by_value_pareto(store: churnguard.Store) -> None:
    # cumulative margin before each customer: 0, 50, 70, 80, 90, 95, 100, …
    # A: before < 70 -> v01, v02 (together exactly 70 %); B: before < 90 -> v03, v04; C: the rest
    got = tiers(store, a_share=0.7, b_share=0.2, by="value")
    assert {k for k, t in got.items() if t == "A"} == {"v01", "v02"}
    assert {k for k, t in got.items() if t == "B"} == {"v03", "v04"}
    # A at 60 %: v02 crosses the line (50 < 60 ≤ 70) and is in A
    got = tiers(store, a_share=0.6, b_share=0.2, by="value")
    assert {k for k, t in got.items() if t == "A"} == {"v01", "v02"}
    assert {k for k, t in got.items() if t == "B"} == {"v03"}  # before 70 < 80; v04's before 80 is not
    report = abc_tiers(store, by="value")  # defaults 0.70 / 0.20
    assert (report.a_share, report.b_share) == (0.7, 0.2)
    assert [r["customers"] for r in report.rows] == [2, 2, 6]
    assert [r["share_value"] for r in report.rows] == [0.7, 0.2, 0.1]


def test_revenue_basis(store: churnguard.Store) -> None:
    report = abc_tiers(store, basis="revenue", a_share=0.1, b_share=0.1)
    # v12 (80, no margin) is ranked on revenue: 11 customers; A = round(1.1) = 1
    assert report.customers == 11 and report.unranked == 0
    assert report.value == 100.0 + 10 * 100.0 + 80.0  # Σ (margin + 100) over v01–v10, plus v12
    assert report.rows[0]["value"] == 150.0


def test_clv_basis_needs_clv(store: churnguard.Store) -> None:
    with pytest.raises(ConfigError, match="clv score"):
        abc_tiers(store, basis="clv")
    store.execute(
        "INSERT INTO customer_value (customer_id, clv, clv_model) "
        "SELECT customer_id, CAST(substr(customer_id, 2) AS DOUBLE), 'simple' FROM customers"
    )
    got = tiers(store, basis="clv", a_share=0.2, b_share=0.3)
    assert {k for k, t in got.items() if t == "A"} == {"v10", "v12"}  # highest CLV; v11 keeps VIP


def test_no_margin_at_all(tmp_path: Path) -> None:
    s = build(tmp_path, with_margin=False)
    with pytest.raises(ConfigError, match="--basis revenue"):
        abc_tiers(s)
    s.close()


@pytest.mark.parametrize(
    "options",
    [{"basis": "profit"}, {"by": "pareto"}, {"a_share": 0.0}, {"a_share": 0.8, "b_share": 0.3}],
)
def test_bad_options(store: churnguard.Store, options: dict) -> None:
    with pytest.raises(ConfigError):
        abc_tiers(store, **options)


def test_demo_a_tier_is_15_percent_with_a_larger_share_of_value(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    from conftest import build_demo_store

    path, _ = build_demo_store(tmp_path_factory)
    copy = tmp_path / "demo.duckdb"
    shutil.copyfile(path, copy)
    with churnguard.connect(copy) as s:
        report = abc_tiers(s)
    a, b, c = report.rows
    assert a["share_customers"] == pytest.approx(0.15, abs=0.001)
    assert b["share_customers"] == pytest.approx(0.25, abs=0.001)
    assert a["share_value"] > 2 * a["share_customers"]  # 15 % of customers, about a third of the margin
    assert a["share_value"] > b["share_value"] / b["share_customers"] * a["share_customers"]
    assert c["share_value"] < c["share_customers"]
    assert report.overrides and report.overrides[0]["tier"] == "VIP"
