"""Point-in-time features: by hand on a tiny store, no leakage, the demo operator, the catalog, the CLI."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import build_demo_store

import churnguard
from churnguard.errors import ConfigError
from churnguard.features import CATALOG, FeatureSpec, build_features, observation_dates
from churnguard.ingest import LoadSpec, ingest_tables
from churnguard.reasons import DRIVER_CODES

D = dt.date(2024, 5, 1)  # the observation date of the hand-made store
DATA_END = dt.date(2024, 6, 30)

BRANCHES = """\
branch_id,name,parent_id
HQ,Head office,
C1,City One,HQ
C2,City Two,HQ
"""
# A, B active at D; C churned before D; E starts on D (not yet a customer); F churns 20 days
# after D (inside a 30-day horizon), G 45 days after (outside it).
CUSTOMERS = """\
customer_id,branch_id,signup_date,plan,segment,tier_override,channel
A,C1,2023-01-01,pro,consumer,VIP,store
B,C1,2023-06-01,pro,consumer,,online
C,C2,2023-01-01,basic,consumer,,store
E,C2,2024-05-01,basic,consumer,,online
F,C2,2023-01-01,basic,business,,store
G,C2,2023-01-01,basic,consumer,,online
"""
SUBSCRIPTIONS = """\
customer_id,plan,start_date,end_date,recurring_revenue
A,basic,2023-01-01,2024-03-31,50
A,pro,2024-04-01,,80
B,pro,2023-06-01,,80
C,basic,2023-01-01,2024-02-29,50
E,basic,2024-05-01,,50
F,basic,2023-01-01,2024-05-20,50
G,basic,2023-01-01,2024-06-15,50
"""
CHURN_EVENTS = """\
customer_id,churn_date,voluntary,reason_code,destination
C,2024-02-29,true,competitor,RivalCo
F,2024-05-20,true,price,
G,2024-06-15,true,service,
"""
# Ages are days before D: 2024-04-30 23:59:59 is age 1; 2024-05-01 00:00 (= D) is never read.
EVENTS = """\
customer_id,ts,event_type,value
A,2024-05-01 00:00:00,data_mb,999
A,2024-04-30 23:59:59,data_mb,10
A,2024-04-28 12:00:00,call,5
A,2024-04-24 00:00:00,data_mb,20
A,2024-04-23 00:00:00,data_mb,30
A,2024-04-01 00:00:00,data_mb,40
A,2024-03-31 00:00:00,data_mb,50
A,2024-02-01 00:00:00,data_mb,60
A,2024-01-31 00:00:00,data_mb,70
B,2024-01-10 00:00:00,data_mb,5
"""
TRANSACTIONS = """\
customer_id,ts,amount,margin,product,kind,due_date,paid_at
A,2023-06-01 02:00:00,80,32,basic,bill,2023-06-20,2023-06-25 10:00:00
A,2024-01-01 02:00:00,80,32,basic,bill,2024-01-20,2024-01-15 10:00:00
A,2024-03-01 02:00:00,100,40,pro,bill,2024-03-20,2024-03-10 10:00:00
A,2024-03-10 10:00:00,100,,pro,payment,2024-03-20,2024-03-10 10:00:00
A,2024-03-20 12:00:00,20,10,pro,topup,,2024-03-20 12:00:00
A,2024-04-01 02:00:00,100,40,pro,bill,2024-04-20,2024-05-05 09:00:00
A,2024-04-15 12:00:00,50,25,pro,topup,,2024-04-15 12:00:00
"""
TICKETS = """\
customer_id,opened_at,resolved_at,category,satisfaction
A,2024-01-05 00:00:00,2024-01-05 12:00:00,billing,5
A,2024-04-10 09:00:00,2024-04-12 09:00:00,network,2
A,2024-04-20 10:00:00,2024-05-03 10:00:00,network,
A,2024-05-01 00:00:00,,billing,
"""
SURVEYS = """\
customer_id,ts,kind,score
A,2024-02-01 10:00:00,NPS,9
A,2024-04-15 10:00:00,NPS,6
A,2024-05-01 00:00:00,NPS,0
"""
TABLES = {
    "branches": BRANCHES,
    "customers": CUSTOMERS,
    "subscriptions": SUBSCRIPTIONS,
    "transactions": TRANSACTIONS,
    "events": EVENTS,
    "tickets": TICKETS,
    "surveys": SURVEYS,
    "churn_events": CHURN_EVENTS,
}


def load(store: churnguard.Store, write_csv: Callable[[str, str], Path], tables: dict[str, str], **kw: object) -> None:
    specs = [LoadSpec(name, write_csv(f"{name}-{len(text)}.csv", text)) for name, text in tables.items()]
    ingest_tables(store, specs, as_of=DATA_END, **kw)


@pytest.fixture
def tiny(store: churnguard.Store, write_csv: Callable[[str, str], Path]) -> churnguard.Store:
    load(store, write_csv, TABLES)
    store.set_meta("churn_definition", "contractual")
    store.set_meta("dataset_as_of", DATA_END.isoformat())
    return store


def row(frame: pd.DataFrame, customer: str, as_of: dt.date = D) -> pd.Series:
    rows = frame[(frame["customer_id"] == customer) & (frame["as_of"] == as_of)]
    assert len(rows) == 1, f"{customer} at {as_of}: {len(rows)} rows"
    return rows.iloc[0]


def test_rows_labels_and_survival_times(tiny: churnguard.Store) -> None:
    f = build_features(tiny, D, horizon_days=30)
    # C churned before D, E starts on D: neither is a customer at D.
    assert sorted(f["customer_id"]) == ["A", "B", "F", "G"]
    assert list(f.columns[:5]) == ["customer_id", "as_of", "label", "days_to_churn", "churned"]
    assert all(isinstance(d, dt.date) for d in f["as_of"]) and set(f["as_of"]) == {D}
    got = {c: (row(f, c)["label"], row(f, c)["days_to_churn"], row(f, c)["churned"]) for c in "ABFG"}
    # F churns on 05-20 (its last day): inside [D, D + 29]; G on 06-15, outside; A and B are
    # censored at the data end: 06-30 + 1 − 05-01 = 61 days.
    assert got == {"A": (0, 61, 0), "B": (0, 61, 0), "F": (1, 20, 1), "G": (0, 46, 1)}


def test_lead_gap_and_horizon(tiny: churnguard.Store) -> None:
    f = build_features(tiny, D, horizon_days=30, lead_days=20)
    # The horizon is now [D + 20, D + 49]: F (day 19 after D) churned in the gap, G is inside.
    assert row(f, "F")["label"] == 0 and row(f, "G")["label"] == 1
    assert build_features(tiny, D, horizon_days=45)["label"].sum() == 1  # G's last day is D + 45
    assert build_features(tiny, D, horizon_days=46)["label"].sum() == 2


def test_rows_past_the_data_end_are_dropped(tiny: churnguard.Store) -> None:
    late = dt.date(2024, 6, 15)  # 06-15 + 29 days runs past 06-30
    f = build_features(tiny, [D, late], horizon_days=30)
    assert set(f["as_of"]) == {D}
    g = build_features(tiny, [D, late], labels=False)
    assert set(g["as_of"]) == {D, late} and "label" not in g.columns
    assert sorted(g[g["as_of"] == late]["customer_id"]) == ["A", "B", "E", "G"]  # F gone, E started
    assert build_features(tiny, late, horizon_days=30).empty


def test_usage_windows_by_hand(tiny: churnguard.Store) -> None:
    a = row(build_features(tiny, D), "A")
    # At D itself (00:00) the 999 MB event is not read; 23:59:59 the day before is (age 1).
    assert (a["usage_events_7d"], a["usage_days_7d"]) == (3, 3)  # ages 1, 3, 7
    assert (a["usage_events_30d"], a["usage_days_30d"]) == (5, 5)  # + ages 8, 30
    assert (a["usage_events_90d"], a["usage_days_90d"]) == (7, 7)  # + ages 31, 90 (91 is out)
    assert a["usage_data_mb_7d"] == 30 and a["usage_data_mb_30d"] == 100 and a["usage_data_mb_90d"] == 210
    assert a["usage_call_7d"] == 5 and a["usage_call_90d"] == 5
    # last 30 days: 5 days, the 30 before: 1 → (5 − 1) / max(1, 1)
    assert a["usage_days_change_30d"] == 4 and a["usage_events_change_30d"] == 4
    assert a["usage_data_mb_change_30d"] == pytest.approx((100 - 50) / 50)
    # buckets (newest first) 5, 1, 1 days: slope (5 − 1) / 2 = 2 per month, over the mean 7/3
    assert a["usage_days_slope_90d"] == pytest.approx(2 / (7 / 3))
    assert a["usage_data_mb_per_day_30d"] == 20 and a["usage_events_per_day_30d"] == 1
    assert a["days_since_usage"] == 1
    b = row(build_features(tiny, D), "B")
    # B's only event is 112 days old: nothing in the windows, recency from further back.
    assert b["usage_events_90d"] == 0 and b["days_since_usage"] == 112
    assert b["usage_days_change_30d"] == 0 and b["usage_days_slope_90d"] == 0


def test_purchases_value_and_payments_by_hand(tiny: churnguard.Store) -> None:
    f = build_features(tiny, D)
    a = row(f, "A")
    assert (a["purchases_7d"], a["purchases_30d"], a["purchases_90d"]) == (0, 2, 4)  # payments never count
    assert (a["purchase_amount_30d"], a["purchase_amount_90d"]) == (150, 270)
    assert a["purchase_amount_change_30d"] == pytest.approx((50 - 20) / 20)  # top-ups; bills are left out
    assert a["days_since_purchase"] == 16
    # 12 months back from D: bills of 2023-06, 2024-01, -03, -04 and the two top-ups.
    assert a["revenue_12m"] == 430 and a["margin_12m"] == pytest.approx(179)
    assert a["bill_amount_change_90d"] == pytest.approx((100 - 80) / 80)
    # The April bill (due 04-20) is paid on 05-05: after D, so unpaid at D.
    assert (a["bills_unpaid"], a["bills_unpaid_90d"], a["unpaid_amount"]) == (1, 1, 100)
    # Bills issued in the last 90 days and due: March (on time, 0) and April (11 days so far).
    assert a["payment_delay_days_90d"] == pytest.approx(5.5)
    assert a["late_payments_365d"] == 1  # June 2023, paid 5 days late
    b = row(f, "B")
    assert b["revenue_12m"] == 0 and b["bills_unpaid"] == 0 and math.isnan(b["days_since_purchase"])
    assert math.isnan(b["payment_delay_days_90d"])
    # On 05-10 the April bill has been paid (late): no longer unpaid, one more late payment.
    later = row(build_features(tiny, dt.date(2024, 5, 10), labels=False), "A", dt.date(2024, 5, 10))
    assert later["bills_unpaid"] == 0 and later["late_payments_365d"] == 2


def test_service_and_account_by_hand(tiny: churnguard.Store) -> None:
    f = build_features(tiny, D)
    a = row(f, "A")
    assert (a["tickets_7d"], a["tickets_30d"], a["tickets_90d"]) == (0, 2, 2)  # the one at D is not read
    assert a["tickets_unresolved"] == 1  # resolved 05-03, after D
    assert a["ticket_open_days_max"] == pytest.approx(10 + 14 / 24)
    assert a["ticket_resolution_hours_mean"] == pytest.approx(30)  # 12 h and 48 h
    assert a["ticket_resolution_hours_max_90d"] == pytest.approx(48)
    assert a["ticket_satisfaction_min_90d"] == 2
    assert a["days_since_ticket"] == 11
    assert a["tickets_per_tenure_month"] == pytest.approx(3 / (486 / 30.4375))
    assert (a["nps_latest"], a["nps_change"], a["days_since_nps"]) == (6, -3, 16)
    assert a["recurring_revenue"] == 80 and a["recurring_revenue_change_90d"] == pytest.approx(0.6)
    assert a["plan"] == "pro" and a["plan_changes_180d"] == 1 and a["days_since_plan_change"] == 30
    assert (a["tenure_days"], a["previous_spells"], a["key_account"]) == (486, 0, 1)
    assert a["customer_channel"] == "store" and a["segment"] == "consumer"
    assert f["plan"].dtype == "category" and f["value_tier"].dtype == "category"
    # Branch C2: one churner in the last 90 days (C, to RivalCo) and two customers active at D.
    assert row(f, "F")["branch_competitor_share_90d"] == 1 and row(f, "F")["branch_churn_rate_90d"] == 0.5
    assert math.isnan(a["branch_competitor_share_90d"]) and a["branch_churn_rate_90d"] == 0
    b = row(f, "B")
    assert b["tickets_unresolved"] == 0 and math.isnan(b["ticket_open_days_max"]) and math.isnan(b["nps_latest"])
    assert b["tickets_per_tenure_month"] == 0 and b["unpaid_amount"] == 0 and b["plan_changes_180d"] == 0


def test_no_leakage(tiny: churnguard.Store, write_csv: Callable[[str, str], Path]) -> None:
    before = build_features(tiny, D, labels=False)
    load(
        tiny,
        write_csv,
        {
            "events": "customer_id,ts,event_type,value\nA,2024-05-01 00:00:00,data_mb,1\nB,2024-05-02,call,3\n",
            "transactions": (
                "customer_id,ts,amount,margin,product,kind,due_date,paid_at\n"
                "A,2024-05-01 02:00:00,100,40,pro,bill,2024-05-20,\n"
                "B,2024-05-05 10:00:00,70,30,pro,topup,,2024-05-05 10:00:00\n"
            ),
            "tickets": "customer_id,opened_at,resolved_at,category,satisfaction\nB,2024-05-02 08:00:00,,network,\n",
            "surveys": "customer_id,ts,kind,score\nB,2024-06-01 10:00:00,NPS,1\n",
        },
    )
    after = build_features(tiny, D, labels=False)
    assert tiny.execute("SELECT count(*) FROM events").fetchone()[0] == len(EVENTS.splitlines()) + 1
    pd.testing.assert_frame_equal(before, after)


def test_several_dates_are_one_build(tiny: churnguard.Store) -> None:
    dates = [dt.date(2024, 3, 1), dt.date(2024, 4, 1), D]
    together = build_features(tiny, dates, labels=False)
    apart = pd.concat([build_features(tiny, d, labels=False) for d in dates], ignore_index=True)
    for c in ("plan", "segment", "value_tier", "customer_channel"):  # categories differ by their level sets
        together[c], apart[c] = together[c].astype(str), apart[c].astype(str)
    # value_percentile ranks among each date's customers: the same either way.
    pd.testing.assert_frame_equal(together, apart, check_dtype=False)
    assert together["as_of"].is_monotonic_increasing


def test_options_and_observation_dates(tiny: churnguard.Store) -> None:
    f = build_features(tiny, D, windows=(14, 45), labels=False)
    assert "usage_events_14d" in f.columns and "usage_days_45d" in f.columns and "usage_events_7d" not in f.columns
    assert row(f, "A")["usage_events_14d"] == 4 and row(f, "A")["tickets_45d"] == 2
    assert "usage_events_14d" in CATALOG and CATALOG["usage_days_45d"].category == "usage"
    for bad in ({"horizon_days": 0}, {"lead_days": -1}, {"windows": (0, 30)}, {"windows": (400,)}):
        with pytest.raises(ConfigError):
            build_features(tiny, D, **bad)
    with pytest.raises(ConfigError):
        build_features(tiny, "31/01/2024")
    # Data begin 2023-06-01 (the first event or transaction): monthly from 90 days later to the data end.
    dates = observation_dates(tiny)
    assert dates[0] == dt.date(2023, 9, 1) and dates[-1] == dt.date(2024, 6, 1) and len(dates) == 10
    assert observation_dates(tiny, count=3) == [dt.date(2024, 4, 1), dt.date(2024, 5, 1), dt.date(2024, 6, 1)]
    assert observation_dates(tiny, start=dt.date(2024, 1, 1), end=dt.date(2024, 12, 31), every="quarterly") == [
        dt.date(2024, m, 1) for m in (1, 4, 7, 10)
    ]
    weekly = observation_dates(tiny, start=dt.date(2024, 4, 1), end=dt.date(2024, 4, 30), every="weekly")
    assert [d.weekday() for d in weekly] == [0] * 5 and weekly[0] == dt.date(2024, 4, 1)
    assert observation_dates(tiny, start=D, end=dt.date(2024, 5, 31), every="10d")[-1] == dt.date(2024, 5, 31)
    with pytest.raises(ConfigError):
        observation_dates(tiny, every="daily")
    with pytest.raises(ConfigError):
        observation_dates(tiny, start=D, end=dt.date(2024, 1, 1))


def test_a_store_without_optional_tables(store: churnguard.Store, write_csv: Callable[[str, str], Path]) -> None:
    """Non-contractual: transactions only, no kind / due_date / paid_at columns: those features are left out."""
    load(
        store,
        write_csv,
        {
            "branches": BRANCHES,
            "customers": "customer_id,branch_id,signup_date\nX,C1,2024-01-01\nY,C1,2024-01-01\n",
            "transactions": "customer_id,ts,amount\nX,2024-01-05 10:00:00,10\nX,2024-04-20 10:00:00,30\n"
            "Y,2024-01-07 10:00:00,20\nY,2024-03-01 10:00:00,5\n",
        },
    )
    f = build_features(store, D, labels=False)
    assert sorted(f["customer_id"]) == ["X", "Y"]  # within 90 days of their last purchase
    assert "bills_unpaid" not in f.columns and "usage_events_30d" not in f.columns and "nps_latest" not in f.columns
    assert row(f, "X")["purchases_30d"] == 1 and row(f, "X")["days_since_purchase"] == 11
    assert row(f, "Y")["revenue_12m"] == 25 and "margin_12m" not in f.columns  # no margins: tiers by revenue
    assert (row(f, "X")["value_tier"], row(f, "Y")["value_tier"]) == ("B", "C")  # A = top round(0.15 · 2) = 0
    assert (row(f, "X")["tenure_days"], row(f, "X")["previous_spells"]) == (11, 1)  # back after a 106-day gap
    assert "recurring_revenue" not in f.columns and "branch_churn_rate_90d" not in f.columns
    assert all(c in CATALOG for c in f.columns[2:])


# -- the demo operator ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    path, _ = build_demo_store(tmp_path_factory)
    with churnguard.connect(path, read_only=True) as s:
        dates = observation_dates(s, start=dt.date(2025, 1, 1), end=dt.date(2025, 11, 1))
        frame = build_features(s, dates, horizon_days=30)
        voluntary = s.execute(
            "SELECT customer_id, churn_date FROM churn_events WHERE voluntary AND reason_code <> 'natural'"
        ).df()
    frame.attrs["voluntary"] = voluntary
    return frame


def test_demo_label_rate_and_shape(demo: pd.DataFrame) -> None:
    assert sorted(set(demo["as_of"])) == [dt.date(2025, m, 1) for m in range(1, 12)]
    rates = demo.groupby("as_of")["label"].mean()
    assert rates.between(0.01, 0.05).all(), rates
    assert demo.groupby("as_of").size().between(11_000, 14_000).all()
    assert not demo.duplicated(["customer_id", "as_of"]).any()


def test_demo_voluntary_churners_use_less_before_they_leave(demo: pd.DataFrame) -> None:
    """docs/simulator.md: usage falls over the three months before a voluntary churn (×0.9, 0.75, 0.6)."""
    churn = demo.attrs["voluntary"]
    churn["churn_date"] = pd.to_datetime(churn["churn_date"]).dt.date
    pos = demo[demo["label"] == 1].merge(churn, on="customer_id")
    pos = pos[[a <= c < a + dt.timedelta(days=30) for a, c in zip(pos["as_of"], pos["churn_date"], strict=True)]]
    stay = demo[demo["churned"] == 0]
    assert len(pos) > 500
    for col in ("usage_days_slope_90d", "usage_data_mb_slope_90d", "usage_days_change_30d"):
        assert pos[col].mean() < stay[col].mean() - 0.1, col
    assert pos["usage_data_mb_change_30d"].median() < stay["usage_data_mb_change_30d"].median() - 0.05
    assert pos["usage_data_mb_30d"].median() < 0.5 * stay["usage_data_mb_30d"].median()
    share = lambda f: (f["usage_data_mb_30d"] / f["usage_data_mb_90d"].where(f["usage_data_mb_90d"] > 0)).mean()  # noqa: E731
    assert share(pos) < share(stay) - 0.05


# -- the catalog ------------------------------------------------------------------------------------------


def test_every_emitted_column_has_a_catalog_entry(demo: pd.DataFrame, tiny: churnguard.Store) -> None:
    frames = [demo, build_features(tiny, D, windows=(7, 14, 30, 90, 180))]
    for frame in frames:
        for name in frame.columns[5:]:
            spec = CATALOG.get(name)
            assert isinstance(spec, FeatureSpec), name
            assert spec.name == name and spec.category in DRIVER_CODES
            assert spec.description_en.strip() and re.search(r"[\u4e00-\u9fff]", spec.description_zh), name
            assert pd.api.types.is_numeric_dtype(frame[name]) or frame[name].dtype == "category", name
    assert "no_such_feature" not in CATALOG and CATALOG.get("no_such_feature") is None
    assert "customer_id" not in CATALOG and "label" not in CATALOG
    with pytest.raises(KeyError):
        CATALOG["no_such_feature"]


def test_describe_in_words(demo: pd.DataFrame) -> None:
    c = CATALOG
    assert c["usage_days_change_30d"].describe(-0.6) == "usage days fell 60 % in the last 30 days vs the 30 before"
    assert c["usage_days_change_30d"].describe(-0.6, "zh") == "最近30天使用天数比前30天下降60%"
    assert c["usage_days_change_30d"].describe(0.25) == "usage days rose 25 % in the last 30 days vs the 30 before"
    assert c["usage_data_mb_change_30d"].describe(-0.5) == (
        "data use (MB) fell 50 % in the last 30 days vs the 30 before"
    )
    assert c["tickets_unresolved"].describe(2) == "2 unresolved tickets"
    assert c["tickets_unresolved"].describe(1) == "1 unresolved ticket"
    assert c["tickets_unresolved"].describe(2, "zh") == "2个未解决工单"
    assert c["usage_days_slope_90d"].describe(-0.2) == "usage days falling 20 % a month over the last 90 days"
    assert c["days_since_usage"].describe(45.0) == "45 days since the last usage"
    assert c["nps_latest"].describe(None) == "Latest NPS answer (0–10) before the date: unknown"
    assert c["plan"].describe("smart", "zh") == "套餐smart"
    assert c["key_account"].describe(1) == "key account: yes"
    assert c["branch_competitor_share_90d"].describe(0.45) == (
        "45 % of the branch's recent churners went to a competitor"
    )
    assert c["value_percentile"].describe(0.9) == "in the top 10 % of customers by value"
    for name in demo.columns[5:]:
        values = demo[name].dropna()
        value = values.iloc[len(values) // 2] if len(values) else None
        if isinstance(value, np.generic):
            value = value.item()
        for lang in ("en", "zh"):
            text = CATALOG[name].describe(value, lang)
            assert text and "{" not in text and "nan" not in text.lower(), (name, text)
            if lang == "zh":
                assert re.search(r"[\u4e00-\u9fff]", text), (name, text)


# -- the CLI -------------------------------------------------------------------------------------------------


def cli(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHURNGUARD_DB": str(db)}
    return subprocess.run(
        [sys.executable, "-m", "churnguard", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_features_build(tiny: churnguard.Store, tmp_path: Path) -> None:
    db = Path(tiny.url.path)
    tiny.close()
    out = tmp_path / "features.parquet"
    r = cli(
        "features", "build", "--as-of", "2024-05-01", "--horizon", "30d", "--out", str(out), "--format", "json", db=db
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["rows"] == 4 and data["label_rate"] == 0.25 and data["out"] == str(out)
    by_name = {f["name"]: f for f in data["features"]}
    assert by_name["tickets_unresolved"]["category"] == "service" and by_name["tickets_unresolved"]["mean"] == 0.25
    written = pd.read_parquet(out)
    assert len(written) == 4 and "usage_days_change_30d" in written.columns
    r = cli("--lang", "zh", "features", "build", "--as-of", "2024-05-01", db=db)
    assert r.returncode == 0, r.stderr
    assert "tickets_unresolved" in r.stdout and "服务" in r.stdout and "缺失" in r.stdout
    r = cli("features", "build", "--as-of", "2024-05-01", "--horizon", "soon", "--format", "json", db=db)
    assert r.returncode == 2 and "horizon" in json.loads(r.stderr)["error"]["message"]
