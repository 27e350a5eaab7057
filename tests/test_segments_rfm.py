"""RFM scores and segments on a tiny store computed by hand (docs/segments.md, "RFM")."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

import churnguard
from churnguard.errors import ConfigError
from churnguard.ingest import LoadSpec
from churnguard.metrics import rules_for
from churnguard.segments import rfm_scores
from churnguard.segments.rfm import SEGMENT_CASE, rfm_sql

D = dt.date
AS_OF = D(2025, 6, 30)
BRANCHES = pa.table({"branch_id": ["HQ"], "name": ["Head office"], "parent_id": [None]})

# Customer j = 1..10 buys j times, 10 each (frequency j, monetary 10·j, so F = M = ceil(j / 2)),
# the last time RECENCY[j] days before the as-of date; R is then fixed by the order of RECENCY.
RECENCY = {10: 1, 1: 2, 5: 3, 2: 4, 8: 5, 6: 6, 7: 7, 3: 8, 9: 9, 4: 10}
EXPECTED = {  # j: (R, F, M, segment)
    10: (5, 5, 5, "champions"),
    1: (5, 1, 1, "new"),
    5: (4, 3, 3, "potential_loyalist"),
    2: (4, 1, 1, "promising"),
    8: (3, 4, 4, "loyal"),
    6: (3, 3, 3, "need_attention"),
    7: (2, 4, 4, "at_risk"),
    3: (2, 2, 2, "hibernating"),
    9: (1, 5, 5, "cant_lose_them"),
    4: (1, 2, 2, "hibernating"),
}


def build(tmp_path: Path) -> churnguard.Store:
    tx: list[tuple[str, dt.datetime, float, float | None, str]] = []
    for j, rec in RECENCY.items():
        for i in range(j):
            day = AS_OF - dt.timedelta(days=rec + i)
            tx.append((f"c{j:02d}", dt.datetime(day.year, day.month, day.day, 12), 10.0, 2.0, "bill"))
    # a payment repeats a bill: cash, not revenue
    tx.append(("c10", dt.datetime(2025, 6, 29, 13), 999.0, None, "payment"))
    # c11 bought once 200 days ago: churned 110 days ago (90 days without activity), inside the window
    tx.append(("c11", dt.datetime(2024, 12, 12, 9), 50.0, 5.0, "bill"))
    # c12 churned long before the window: not in the RFM population
    tx.append(("c12", dt.datetime(2023, 1, 5, 9), 70.0, 7.0, "bill"))
    ids = sorted({t[0] for t in tx})
    customers = pa.table(
        {"customer_id": ids, "branch_id": ["HQ"] * len(ids), "signup_date": [D(2023, 1, 1)] * len(ids)}
    )
    transactions = pa.table(
        {
            "customer_id": [t[0] for t in tx],
            "ts": [t[1] for t in tx],
            "amount": [t[2] for t in tx],
            "margin": [t[3] for t in tx],
            "kind": [t[4] for t in tx],
        }
    )
    s = churnguard.connect(tmp_path / "rfm.duckdb")
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


def per_customer(store: churnguard.Store) -> dict[str, tuple]:
    sql, params = rfm_sql(store, rules_for(store), window_days=365)
    rows = store.execute(
        f"SELECT customer_id, recency_days, frequency, monetary, r_score, f_score, m_score, rfm_segment FROM ({sql})",
        params,
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_quintile_scores_and_segments_by_hand(store: churnguard.Store) -> None:
    got = per_customer(store)
    for j, (r, f, m, seg) in EXPECTED.items():
        rec, freq, money, *scores = got[f"c{j:02d}"]
        assert (rec, freq, money) == (RECENCY[j], j, 10.0 * j), j  # the payment of c10 is not revenue
        assert tuple(scores) == (r, f, m, seg), j


def test_churned_customers_are_lost_without_scores(store: churnguard.Store) -> None:
    got = per_customer(store)
    assert got["c11"] == (200, 1, 50.0, None, None, None, "lost")
    assert "c12" not in got  # churned before the window


def test_report_sizes_and_value_shares(store: churnguard.Store) -> None:
    report = rfm_scores(store)
    assert (report.as_of, report.customers, report.active, report.churned) == (AS_OF, 11, 10, 1)
    assert report.monetary == 600.0  # 10·(1 + … + 10) + 50
    rows = {r["segment"]: r for r in report.rows}
    assert len(rows) == 11  # every named segment, empty ones too
    assert rows["hibernating"]["customers"] == 2
    assert rows["hibernating"]["monetary"] == 70.0  # c03 30 + c04 40
    assert rows["champions"]["share_value"] == pytest.approx(100 / 600, abs=1e-6)
    assert rows["lost"] == {
        "segment": "lost",
        "customers": 1,
        "share_customers": pytest.approx(1 / 11, abs=1e-6),
        "active": 0,
        "churned": 1,
        "monetary": 50.0,
        "share_value": pytest.approx(50 / 600, abs=1e-6),
    }
    assert rows["about_to_sleep"]["customers"] == 0
    assert sum(r["customers"] for r in report.rows) == 11


def test_the_segment_map_covers_every_cell(store: churnguard.Store) -> None:
    """The R×FM map of the docs, cell by cell: FM = (F + M + 1) // 2."""
    expected = {}
    for r in range(1, 6):
        for fm in range(1, 6):
            if r == 5 and fm >= 4:
                seg = "champions"
            elif r in (3, 4) and fm >= 4:
                seg = "loyal"
            elif r >= 4 and fm in (2, 3):
                seg = "potential_loyalist"
            elif r == 5:
                seg = "new"
            elif r == 4:
                seg = "promising"
            elif r == 3:
                seg = "need_attention" if fm == 3 else "about_to_sleep"
            elif fm == 5:
                seg = "cant_lose_them"
            elif fm >= 3:
                seg = "at_risk"
            elif r == 1 and fm == 1:
                seg = "lost"
            else:
                seg = "hibernating"
            expected[(r, fm)] = seg
    got = store.execute(
        f"""SELECT r_score, fm, {SEGMENT_CASE} FROM (
              SELECT r AS r_score, fm, true AS active FROM range(1, 6) a(r), range(1, 6) b(fm))"""
    ).fetchall()
    assert {(r, fm): seg for r, fm, seg in got} == expected
    assert set(expected.values()) == {
        "champions", "loyal", "potential_loyalist", "new", "promising", "need_attention",
        "about_to_sleep", "at_risk", "cant_lose_them", "hibernating", "lost",
    }  # fmt: skip


def test_fm_rounds_half_up(store: churnguard.Store) -> None:
    # F = 4, M = 5 -> FM = 5 (R 1: can't lose them); F = 1, M = 2 -> FM = 2 (R 3: about to sleep)
    got = store.execute(
        f"""SELECT {SEGMENT_CASE} FROM (
              SELECT r_score, (f + m + 1) // 2 AS fm, true AS active
              FROM (VALUES (1, 4, 5), (3, 1, 2)) v(r_score, f, m))"""
    ).fetchall()
    assert [g[0] for g in got] == ["cant_lose_them", "about_to_sleep"]


def test_branch_scope_and_bad_branch(store: churnguard.Store) -> None:
    assert rfm_scores(store, branch="HQ").customers == 11
    with pytest.raises(ConfigError, match="branch"):
        rfm_scores(store, branch="NOPE")
