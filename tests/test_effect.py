"""The effect estimator: a real randomised test (cookie_cats), published intervals, and campaigns with a known effect.

Also the control-group split it relies on (stratified, exact counts, seeded).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnguard.errors import ConfigError
from churnguard.retention.control import control_counts, split_control
from churnguard.retention.effect import difference_ci, estimate_effect, stratified_difference, wilson_interval

COOKIE_CATS = Path("/work/shared/data/cookie_cats/cookie_cats.csv.gz")
Z95 = 1.959963984540054


@pytest.fixture(scope="module")
def cookie_cats() -> pd.DataFrame:
    return pd.read_csv(COOKIE_CATS)


def reference_newcombe(x1: int, n1: int, x0: int, n0: int) -> tuple[float, float, float]:
    """Newcombe's method 10 written out from the paper, in plain numpy (independent of the code under test)."""

    def wilson(x: int, n: int) -> tuple[float, float]:
        p = x / n
        a = 2 * n * p + Z95**2
        b = Z95 * np.sqrt(Z95**2 + 4 * n * p * (1 - p))
        return (a - b) / (2 * (n + Z95**2)), (a + b) / (2 * (n + Z95**2))

    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson(x1, n1)
    l0, u0 = wilson(x0, n0)
    d = p1 - p0
    return d, d - np.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + np.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)


def test_cookie_cats_seven_day_retention(cookie_cats: pd.DataFrame) -> None:
    # the reference, straight from the CSV with numpy
    y = cookie_cats["retention_7"].to_numpy(dtype=float)
    g40 = (cookie_cats["version"] == "gate_40").to_numpy()
    x1, n1, x0, n0 = int(y[g40].sum()), int(g40.sum()), int(y[~g40].sum()), int((~g40).sum())
    assert (n0, n1) == (44_700, 45_489)  # SOURCE.md: control gate_30, treatment gate_40
    p1, p0 = x1 / n1, x0 / n0
    wald_half = Z95 * np.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    ref_d, ref_lo, ref_hi = reference_newcombe(x1, n1, x0, n0)

    effect = estimate_effect(cookie_cats, outcome="retention_7", arm="version", treated="gate_40", control="gate_30")
    got = effect.pooled
    assert got.method == "newcombe" and got.level == 0.95
    assert (got.x_treated, got.n_treated, got.x_control, got.n_control) == (x1, n1, x0, n0)
    assert got.difference == pytest.approx(ref_d, abs=1e-12)
    assert (got.low, got.high) == (pytest.approx(ref_lo, abs=1e-12), pytest.approx(ref_hi, abs=1e-12))
    # the published figures: 19.02 % vs 18.20 %, gate_40 keeps 0.82 pp FEWER players after 7 days
    assert p0 == pytest.approx(0.190201, abs=5e-7) and p1 == pytest.approx(0.182000, abs=5e-7)
    assert got.difference * 100 == pytest.approx(-0.82, abs=0.005)
    assert got.low * 100 == pytest.approx(-1.33, abs=0.005) and got.high * 100 == pytest.approx(-0.31, abs=0.005)
    assert got.high < 0  # significant: the gate at level 40 lowers 7-day retention
    # Wald agrees to 1e-6 at this size
    wald = difference_ci(x1, n1, x0, n0, method="wald")
    assert wald.low == pytest.approx(ref_d - wald_half, abs=1e-12)
    assert wald.high == pytest.approx(ref_d + wald_half, abs=1e-12)
    assert abs(wald.low - got.low) < 1e-6


def test_cookie_cats_one_day_retention_is_not_significant(cookie_cats: pd.DataFrame) -> None:
    e = estimate_effect(cookie_cats, outcome="retention_1", arm="version", treated="gate_40", control="gate_30")
    assert e.pooled.p_control == pytest.approx(0.448188, abs=5e-7)
    assert e.pooled.p_treated == pytest.approx(0.442283, abs=5e-7)
    assert e.pooled.low < 0 < e.pooled.high  # −0.59 pp, CI [−1.24, +0.06] pp


@pytest.mark.parametrize(
    ("counts", "expected"),
    [  # Newcombe (1998), Statistics in Medicine 17:873–890, Table II, method 10
        ((56, 70, 48, 80), (0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.1705, 0.8090)),
        ((6, 7, 2, 7), (0.0582, 0.8062)),
        ((5, 56, 0, 29), (-0.0381, 0.1926)),
        ((0, 10, 0, 20), (-0.1611, 0.2775)),
        ((10, 10, 0, 20), (0.6791, 1.0000)),
    ],
)
def test_newcombe_matches_the_published_table(counts: tuple[int, ...], expected: tuple[float, float]) -> None:
    r = difference_ci(*counts)
    assert (round(r.low, 4), round(r.high, 4)) == expected


def test_wilson_interval_and_bad_options() -> None:
    lo, hi = wilson_interval(81, 263)  # Newcombe (1998a) single-proportion example: 0.2553 to 0.3662
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)
    with pytest.raises(ConfigError, match="level"):
        difference_ci(1, 2, 1, 2, level=95)
    with pytest.raises(ConfigError, match="method"):
        difference_ci(1, 2, 1, 2, method="exact")
    with pytest.raises(ConfigError, match="0/1"):
        estimate_effect(pd.DataFrame({"y": [0, 2], "a": ["treatment", "control"]}), outcome="y", arm="a")


def simulate_campaigns(
    reps: int, n: int, share: float, tau: float, base_by_tier: list[float], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic campaigns: tier × branch strata, churn rates by tier and branch, a true churn reduction ``tau``.

    Returns the stratified estimates and their interval ends, and the pooled (Newcombe) coverage flags.
    """
    rng = np.random.default_rng(seed)
    ids = np.array([f"C{i:06d}" for i in range(n)])
    est, low, high, pooled_cover = (np.empty(reps) for _ in range(4))
    for r in range(reps):
        tier = rng.choice(4, n, p=[0.05, 0.15, 0.25, 0.55])
        branch = rng.integers(0, 13, n)
        strata = tier * 100 + branch
        control = split_control(ids, strata, share=share, seed=r)
        treated = ~control
        churn = np.asarray(base_by_tier)[tier] + 0.01 * (branch % 3) - tau * treated
        retained = (rng.random(n) >= churn).astype(float)  # success = not churned
        _, s = np.unique(strata, return_inverse=True)
        counts = [np.bincount(s, weights=w) for w in (retained * treated, treated, retained * control, control)]
        st = stratified_difference(*counts)
        est[r], low[r], high[r] = st.difference, st.low, st.high
        p = difference_ci(counts[0].sum(), counts[1].sum(), counts[2].sum(), counts[3].sum())
        pooled_cover[r] = p.low <= tau <= p.high
    return est, low, high, pooled_cover


@pytest.mark.parametrize(
    ("n", "share", "tau", "base"),
    [
        (4000, 0.1, 0.05, [0.10, 0.15, 0.20, 0.30]),  # a typical campaign
        (800, 0.1, 0.05, [0.10, 0.15, 0.20, 0.30]),  # small: many strata with 1–2 controls
        (1000, 0.2, 0.0, [0.01, 0.02, 0.03, 0.05]),  # no effect, a rare outcome
    ],
)
def test_known_effect_is_covered_about_95_percent_and_unbiased(
    n: int, share: float, tau: float, base: list[float]
) -> None:
    reps = 400
    est, low, high, pooled_cover = simulate_campaigns(reps, n, share, tau, base, seed=n + int(share * 100))
    coverage = np.mean((low <= tau) & (tau <= high))
    assert 0.90 <= coverage <= 0.99, coverage
    assert 0.90 <= pooled_cover.mean() <= 0.99, pooled_cover.mean()
    # unbiased: the mean estimate is within 3 standard errors of the truth
    assert abs(est.mean() - tau) < 3 * est.std(ddof=1) / np.sqrt(reps)


# -- the control-group split -----------------------------------------------------------------------


def test_control_split_takes_exactly_round_share_n_per_stratum() -> None:
    sizes = np.arange(1, 41)
    strata = np.repeat(np.arange(40), sizes)
    ids = np.array([f"c{i:05d}" for i in range(strata.size)])
    for share in (0.1, 0.25, 0.5):
        control = split_control(ids, strata, share=share, seed=3)
        got = np.bincount(strata, weights=control).astype(int)
        assert list(got) == list(np.floor(sizes * share + 0.5).astype(int))
    assert list(control_counts([4, 5, 15, 25], 0.1)) == [0, 1, 2, 3]  # halves round up


def test_control_split_is_seeded_and_independent_of_row_order() -> None:
    rng = np.random.default_rng(1)
    ids = np.array([f"c{i:05d}" for i in range(2000)])
    strata = rng.choice(np.array(["A|x", "B|x", "C|y"]), 2000)
    a = split_control(ids, strata, share=0.1, seed=42)
    perm = rng.permutation(2000)
    b = split_control(ids[perm], strata[perm], share=0.1, seed=42)
    assert np.array_equal(a[perm], b)  # same customers, same arms, whatever the order
    c = split_control(ids, strata, share=0.1, seed=43)
    assert not np.array_equal(a, c) and a.sum() == c.sum() == 200
    with pytest.raises(ConfigError, match="control share"):
        split_control(ids, strata, share=1.0)
    with pytest.raises(ConfigError, match="repeated"):
        split_control(np.array(["x", "x"]), None, share=0.5)
    assert split_control(ids, None, share=0.0).sum() == 0


# -- uplift (two-model approach) ----------------------------------------------------------------------


def test_two_model_uplift_finds_who_responds() -> None:
    from churnguard.retention.uplift import TwoModelUplift, uplift_by_group

    rng = np.random.default_rng(3)
    n = 8000
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    tier = rng.choice(np.array(["A", "B", "C"]), n)
    treated = rng.random(n) < 0.5
    logit0 = -0.5 + 0.6 * x2 + 0.4 * (tier == "B")
    p0 = 1 / (1 + np.exp(-logit0))
    p1 = 1 / (1 + np.exp(-(logit0 + np.where(x1 > 0, 1.2, 0.0))))  # only customers with x1 > 0 respond
    y = rng.random(n) < np.where(treated, p1, p0)
    X = pd.DataFrame({"x1": x1, "x2": x2, "tier": tier})
    fit, test = slice(0, n // 2), slice(n // 2, n)
    model = TwoModelUplift("logistic").fit(X[fit], y[fit], treated[fit])
    u = model.predict(X[test])
    assert np.corrcoef(u, (p1 - p0)[test])[0, 1] > 0.6
    groups = uplift_by_group(u, y[test], treated[test], groups=4)
    assert list(groups["customers"]) == [1000] * 4
    # held-out customers: the top quarter by predicted uplift responds, the bottom quarter does not
    assert groups["observed_uplift"].iloc[0] > 0.15 > groups["observed_uplift"].iloc[-1] + 0.1
    with pytest.raises(ConfigError, match="control arm"):
        TwoModelUplift().fit(X[:50], y[:50], np.ones(50, dtype=bool))
    with pytest.raises(ConfigError, match="algorithm"):
        TwoModelUplift("forest").fit(X[fit], y[fit], treated[fit])
