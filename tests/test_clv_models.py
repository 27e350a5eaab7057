"""CLV models pinned to published results (Fader, Hardie & Lee 2005; Fader & Hardie 2007) and fitted on
the bundled data sets, with summaries built from a real DuckDB store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad

import churnguard
from churnguard.clv import (
    BetaGeoModel,
    ClvDataError,
    ClvWarning,
    FitError,
    GammaGammaModel,
    ShiftedBetaGeoModel,
    simple_clv,
)
from churnguard.clv.score import holdout_check, score_customers
from churnguard.clv.summary import rfm_summary
from churnguard.datasets.real import load_dataset

CDNOW = Path("/work/shared/data/cdnow")
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]
CALIBRATION_END = dt.date(1997, 9, 30)  # week 39 of the CDNOW cohort (T = 38.86 weeks for a 1 Jan buyer)


@pytest.fixture(scope="module")
def cdnow_summary() -> pd.DataFrame:
    return pd.read_csv(CDNOW / "cdnow_customers_summary.csv")


@pytest.fixture(scope="module")
def bgnbd(cdnow_summary: pd.DataFrame) -> BetaGeoModel:
    return BetaGeoModel().fit(cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> churnguard.Store:
    store = churnguard.connect(tmp_path_factory.mktemp("clv") / "cdnow_sample.duckdb")
    load_dataset(store, "cdnow-sample")
    yield store
    store.close()


# -- BG/NBD ---------------------------------------------------------------------------------------
def test_bgnbd_reproduces_fader_hardie_lee(bgnbd: BetaGeoModel) -> None:
    expected = {"r": 0.2426, "alpha": 4.4135, "a": 0.7929, "b": 2.4258}
    for k, v in expected.items():
        assert bgnbd.params_[k] == pytest.approx(v, abs=6e-5), k
    assert bgnbd.log_likelihood_ == pytest.approx(-9582.4, abs=0.05)
    assert bgnbd.converged_ and bgnbd.n_iter_ > 0
    assert bgnbd.n_observations_ == 2357 and bgnbd.n_distinct_ < 2357


def test_bgnbd_conditional_expectation_and_p_alive(bgnbd: BetaGeoModel) -> None:
    e = bgnbd.conditional_expected_number_of_purchases_up_to_time(39, 2, 30.43, 38.86)
    assert float(e) == pytest.approx(1.226, abs=5e-4)
    # P(alive) equals lifetimes 0.11.3's value for the same fit (0.72660914) and is 1 for x = 0 by definition.
    assert float(bgnbd.conditional_probability_alive(2, 30.43, 38.86)) == pytest.approx(0.726609, abs=1e-5)
    p = bgnbd.conditional_probability_alive([0, 1, 5], [0, 1.71, 20.0], [38.86] * 3)
    np.testing.assert_allclose(p, [1.0, 0.212227, 0.287309], atol=1e-5)


def test_bgnbd_unconditional_expectation_matches_hardie_spreadsheet(bgnbd: BetaGeoModel) -> None:
    got = bgnbd.expected_number_of_purchases_up_to_time([0.1429, 1, 3, 31.8571, 32, 78])
    np.testing.assert_allclose(got, [0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576], atol=1.5e-3)


def test_bgnbd_gradient_is_analytic_and_right(cdnow_summary: pd.DataFrame) -> None:
    m = BetaGeoModel()
    data = [cdnow_summary[c].to_numpy(float) for c in ("frequency", "recency", "T")]
    theta = np.array([0.3, 4.0, 0.8, 2.0])
    rel = check_grad(
        lambda th: m._loglik_and_grad(th, data)[0].sum(), lambda th: m._loglik_and_grad(th, data)[1].sum(0), theta
    )
    assert rel < 1e-2  # finite differences on a sum of ~2,357 terms


def test_bgnbd_weights_equal_repeated_rows(cdnow_summary: pd.DataFrame) -> None:
    head = cdnow_summary.head(300)
    doubled = pd.concat([head, head])
    a = BetaGeoModel().fit(doubled["frequency"], doubled["recency"], doubled["T"])
    b = BetaGeoModel().fit(head["frequency"], head["recency"], head["T"], weights=np.full(300, 2.0))
    for k in a.params_:
        assert a.params_[k] == pytest.approx(b.params_[k], rel=1e-6)


def test_bgnbd_estimator_contract() -> None:
    m = BetaGeoModel(tol=1e-8)
    assert m.tol == 1e-8 and not hasattr(m, "params_")
    with pytest.raises(FitError, match="not fitted"):
        m.conditional_probability_alive(1, 1, 2)
    assert m.fit([1, 0, 2, 3], [1, 0, 3, 4], [5, 5, 5, 5]) is m


def test_bgnbd_refuses_impossible_summaries() -> None:
    with pytest.raises(ClvDataError, match="recency ≤ T"):
        BetaGeoModel().fit([1], [6.0], [5.0])
    with pytest.raises(ClvDataError, match="missing value"):
        BetaGeoModel().fit([1, np.nan], [1.0, 0.0], [5.0, 5.0])


def test_fit_failure_lists_causes() -> None:
    class Hopeless(BetaGeoModel):
        def _objective(self, eta, data, weights, total):  # type: ignore[no-untyped-def]
            return float("nan"), np.zeros_like(eta)

    with pytest.raises(FitError) as info:
        Hopeless().fit([1, 0], [1.0, 0.0], [5.0, 5.0])
    text = str(info.value)
    assert "did not converge" in text and "  1. " in text and "  2. " in text
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, churnguard.errors.ChurnguardError)


# -- Gamma-Gamma ----------------------------------------------------------------------------------
def test_gamma_gamma_reproduces_fader_hardie() -> None:
    df = pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv")
    m = GammaGammaModel().fit(df["x"], df["zbar"])
    assert m.n_observations_ == 946  # repeat buyers only
    assert m.params_["p"] == pytest.approx(6.25, abs=5e-3)
    assert m.params_["q"] == pytest.approx(3.74, abs=5e-3)
    assert m.params_["v"] == pytest.approx(15.44, abs=1e-2)
    got = m.conditional_expected_average_profit(df["x"][:10], df["zbar"][:10])
    np.testing.assert_allclose(got, [24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17], atol=0.011)


def test_gamma_gamma_without_amounts_is_a_clear_error() -> None:
    with pytest.raises(ClvDataError, match="Fix: load transaction amounts"):
        GammaGammaModel().fit([2, 1, 0], [np.nan, np.nan, np.nan])


# -- sBG ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("counts", "alpha", "beta", "ll", "actual_8_12"),
    [
        (HIGH_END, 0.668, 3.806, -1611.2, [468, 445, 427, 409, 394]),
        (REGULAR, 0.704, 1.182, -1680.3, [223, 207, 194, 183, 173]),
    ],
)
def test_sbg_reproduces_fader_hardie_2007(
    counts: list[int], alpha: float, beta: float, ll: float, actual_8_12: list[int]
) -> None:
    m = ShiftedBetaGeoModel().fit(counts)
    assert m.params_["alpha"] == pytest.approx(alpha, abs=5e-4)
    assert m.params_["beta"] == pytest.approx(beta, abs=5e-4)
    assert m.log_likelihood_ == pytest.approx(ll, abs=0.05)
    # Tolerance: the 2007 paper's projections of years 8–12 are within 5 % of the actual survivors
    # (largest gap: high end, year 12, 378 vs 394).
    np.testing.assert_allclose(m.project(5), actual_8_12, rtol=0.05)


def test_sbg_individual_durations_equal_counts() -> None:
    n = np.array(REGULAR)
    churn_periods = np.repeat(np.arange(1, 8), (n[:-1] - n[1:]))
    periods = np.concatenate([churn_periods, np.full(n[-1], 7)])
    churned = np.concatenate([np.ones(len(churn_periods), bool), np.zeros(n[-1], bool)])
    m = ShiftedBetaGeoModel().fit_durations(periods, churned)
    assert m.params_["alpha"] == pytest.approx(0.704, abs=5e-4)
    assert m.params_["beta"] == pytest.approx(1.182, abs=5e-4)


def test_sbg_refuses_rising_counts() -> None:
    with pytest.raises(ClvDataError, match="never rise"):
        ShiftedBetaGeoModel().fit([100, 80, 90])


def test_simple_clv() -> None:
    assert simple_clv(margin=100.0, retention=0.8, discount=0.1) == pytest.approx(100 * 0.8 / 0.3)
    with pytest.raises(ClvDataError):
        simple_clv(margin=100.0, retention=80, discount=0.1)


# -- summaries from the store and the bundled data sets -------------------------------------------
def test_summary_from_store_equals_the_published_cdnow_summary(sample_store: churnguard.Store) -> None:
    s = rfm_summary(sample_store, calibration_end=CALIBRATION_END)
    ids = sample_store.execute("SELECT customer_id, CAST(sample_id AS INTEGER) AS sample_id FROM customers").df()
    ref = pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv")
    j = s.merge(ids, on="customer_id").merge(ref, left_on="sample_id", right_on="ID")
    assert len(j) == 2357
    assert (j["frequency"] == j["x"]).all()
    np.testing.assert_allclose(j["recency"], j["t_x"], atol=0.005)  # the CSV is rounded to 2 decimals
    np.testing.assert_allclose(j["T_x"], j["T_y"], atol=0.005)
    np.testing.assert_allclose(j["monetary_value"], j["zbar"], atol=0.0051)
    m = BetaGeoModel().fit(s["frequency"], s["recency"], s["T"])
    assert m.params_["r"] == pytest.approx(0.2426, abs=1e-3)
    assert m.params_["a"] == pytest.approx(0.7929, abs=2e-3)


@pytest.mark.parametrize("dataset", ["cdnow", "grocery"])
def test_fits_converge_on_bundled_data(dataset: str, tmp_path: Path) -> None:
    with churnguard.connect(tmp_path / "s.duckdb") as store:
        load_dataset(store, dataset)
        s = rfm_summary(store)
        m = BetaGeoModel().fit(s["frequency"], s["recency"], s["T"])
        assert m.converged_ and np.isfinite(m.log_likelihood_)
        if dataset == "cdnow":
            assert len(s) == 23570
            with pytest.warns(ClvWarning, match="spent 0"):
                g = GammaGammaModel().fit(s["frequency"], s["monetary_value"])
            assert g.converged_ and g.params_["q"] > 1
        else:
            with pytest.raises(ClvDataError, match="positive mean spend"):
                GammaGammaModel().fit(s["frequency"], s["monetary_value"])


def test_score_writes_only_clv_columns(sample_store: churnguard.Store) -> None:
    sample_store.execute("DELETE FROM customer_value")
    sample_store.execute(
        "INSERT INTO customer_value (customer_id, tier, rfm_segment) VALUES ('00004', 'A', 'Champions')"
    )
    r = score_customers(sample_store, horizon_months=12, discount=0.01, margin=0.3)
    assert r.model == "bgnbd+gamma-gamma" and r.customers == 2357 and r.as_of == dt.date(1998, 6, 30)
    rows = sample_store.execute(
        "SELECT count(*), count(DISTINCT customer_id), count(clv), min(p_alive) >= 0, max(p_alive) <= 1 "
        "FROM customer_value"
    ).fetchone()
    assert rows == (2357, 2357, 2357, True, True)
    kept = sample_store.execute(
        "SELECT tier, rfm_segment, clv_model, as_of, clv > 0 FROM customer_value WHERE customer_id = '00004'"
    ).fetchone()
    assert kept == ("A", "Champions", "bgnbd+gamma-gamma", dt.date(1998, 6, 30), True)
    # Scoring again updates in place: still one row per customer.
    score_customers(sample_store)
    assert sample_store.execute("SELECT count(*) FROM customer_value").fetchone()[0] == 2357
    # CLV rises with the horizon and falls with the discount rate.
    longer = score_customers(sample_store, horizon_months=24)
    dearer = score_customers(sample_store, discount=0.05)
    assert longer.total_clv > r.total_clv > dearer.total_clv


def test_score_without_amounts_writes_p_alive_and_says_why(tmp_path: Path) -> None:
    with churnguard.connect(tmp_path / "g.duckdb") as store:
        load_dataset(store, "grocery")
        with pytest.warns(ClvWarning, match="no transaction amounts|No transaction amounts"):
            r = score_customers(store)
        assert r.total_clv is None and r.model == "bgnbd"
        n, n_clv, n_alive = store.execute("SELECT count(*), count(clv), count(p_alive) FROM customer_value").fetchone()
        assert (n, n_clv, n_alive) == (1525, 0, 1525)


def test_holdout_check_on_cdnow_sample(sample_store: churnguard.Store) -> None:
    h = holdout_check(sample_store, calibration_end=CALIBRATION_END).to_dict()
    assert h["fit"]["params"]["r"] == pytest.approx(0.2426, abs=1e-3)
    assert h["customers"] == 2357
    assert h["actual_total"] == sum(b["actual_total"] for b in h["by_frequency"])
    assert h["predicted_total"] == pytest.approx(sum(b["predicted_total"] for b in h["by_frequency"]))
    zero = h["by_frequency"][0]
    # Fader, Hardie & Lee (2005, fig. 4): customers with no repeat purchase make ~0.24 in weeks 40–78.
    assert zero["frequency"] == "0" and zero["actual_mean"] == pytest.approx(0.24, abs=0.01)
    assert zero["predicted_mean"] == pytest.approx(0.23, abs=0.01)
    assert abs(h["error_pct"]) < 20


def test_a_contractual_store_is_scored_with_sbg_even_with_bills(tmp_path: Path) -> None:
    from conftest import build_demo_store

    from churnguard.clv.score import score_customers

    class Factory:  # build_demo_store needs only getbasetemp()
        def getbasetemp(self) -> Path:
            return tmp_path

    path, _ = build_demo_store(Factory(), customers=2000)  # type: ignore[arg-type]
    with churnguard.connect(path) as s:
        result = score_customers(s)
        assert result.model == "sbg"  # contractual: subscriptions, although bills are transactions too
        n, with_clv = s.execute("SELECT count(*), count(clv) FROM customer_value").fetchone()
        assert n == 2000 and with_clv > 0
        assert score_customers(s, approach="non_contractual").model.startswith("bgnbd")


def test_the_summary_leaves_payments_out(tmp_path: Path) -> None:
    import pyarrow as pa

    from churnguard.clv.summary import rfm_summary
    from churnguard.ingest import LoadSpec

    s = churnguard.connect(tmp_path / "p.duckdb")
    churnguard.ingest_tables(
        s,
        [
            LoadSpec("branches", pa.table({"branch_id": ["HQ"], "name": ["Head office"]})),
            LoadSpec("customers", pa.table({"customer_id": ["A"], "branch_id": ["HQ"], "signup_date": ["2024-01-01"]})),
            LoadSpec(
                "transactions",
                pa.table(
                    {
                        "customer_id": ["A", "A", "A", "A"],
                        "ts": ["2024-01-01", "2024-01-05", "2024-02-01", "2024-02-03"],
                        "amount": [10.0, 10.0, 30.0, 30.0],
                        "kind": ["bill", "payment", "bill", "payment"],
                    }
                ),
            ),
        ],
    )
    summary = rfm_summary(s, observation_end=dt.date(2024, 3, 1), time_unit="day")
    row = summary.iloc[0]
    assert (row["frequency"], row["recency"], row["monetary_value"]) == (1, 31, 30.0)  # two bills; payments are cash
