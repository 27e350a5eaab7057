"""sBG: the shifted-beta-geometric model of contractual retention (Fader & Hardie 2007).

Each customer renews every period with a constant probability ``1 − θ`` until they cancel; across
customers ``θ ~ Beta(α, β)``.  From the survivor counts ``n_0, n_1, …, n_T`` of one cohort::

    P(T = t) = B(α+1, β+t−1) / B(α, β)          (cancels in period t)
    S(t)     = B(α, β+t) / B(α, β)              (still active after t periods)
    ℓ        = Σ_{t=1..T} (n_{t−1} − n_t) ln P(T = t) + n_T ln S(T)

The retention rate of period t is ``r_t = S(t)/S(t−1) = (β+t−1)/(α+β+t−1)`` — it rises with t
because the customers most likely to cancel leave first.

Examples
--------
>>> m = ShiftedBetaGeoModel().fit([1000, 869, 743, 653, 593, 551, 517, 491])
>>> round(m.params_["alpha"], 3), round(m.params_["beta"], 3)
(0.668, 3.806)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from scipy.special import betaln, digamma

from churnguard.clv.base import ClvDataError, ParametricModel, as_float_array, collapse


class ShiftedBetaGeoModel(ParametricModel):
    """The sBG model fitted on a cohort's survivor counts (``alive_counts[0]`` = the cohort's size).

    Attributes (after ``fit``)
    --------------------------
    params_ : dict with ``alpha``, ``beta``.
    alive_counts_ : the counts it was fitted on.
    """

    _param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta")
    _model_name: ClassVar[str] = "sbg"
    _causes: ClassVar[tuple[str, ...]] = (
        "The counts are not survivors of one cohort (they rise somewhere, e.g. new sign-ups were added). "
        "Fix: count only the customers who started in the cohort's first period.",
        "Nobody cancels, or everybody cancels in the first period, so θ is not identified. "
        "Fix: use more periods or a different period length.",
    )

    def fit(self, alive_counts: Sequence[float]) -> ShiftedBetaGeoModel:
        """Fit on survivor counts ``n_0 ≥ n_1 ≥ … ≥ n_T`` (at least two periods)."""
        n = as_float_array(alive_counts, "alive_counts")
        if len(n) < 2:
            raise ClvDataError("alive_counts: expected the cohort size and at least one later count.")
        if (n < 0).any() or (np.diff(n) > 0).any():
            raise ClvDataError(
                f"alive_counts: expected non-negative counts that never rise, got {n.tolist()}. "
                "Fix: give the survivors of one cohort, starting with its size."
            )
        self.alive_counts_ = n
        t = np.arange(1, len(n), dtype=np.float64)
        # Rows: one per churn period, plus one for the survivors at the end (flag = 1).
        periods = np.concatenate([t, [t[-1]]])
        survivors = np.concatenate([np.zeros(len(t)), [1.0]])
        weights = np.concatenate([n[:-1] - n[1:], [n[-1]]])
        self._fit_data([periods, survivors], weights, n_observations=int(n[0]))
        return self

    def fit_durations(self, periods: Any, churned: Any) -> ShiftedBetaGeoModel:
        """Fit on individual lifetimes: ``periods`` renewals observed (≥ 1 for a churner: cancelled in that
        period) and ``churned`` (False = still active after ``periods`` periods, a censored observation).

        ℓ = Σ_churned ln P(T = t_i) + Σ_active ln S(t_i).
        """
        t = as_float_array(periods, "periods")
        c = np.asarray(churned, dtype=bool).reshape(-1)
        if len(c) != len(t) or len(t) == 0:
            raise ClvDataError("periods and churned must be non-empty and of the same length.")
        if (t < 0).any() or (t != np.round(t)).any() or (c & (t < 1)).any():
            raise ClvDataError(
                "periods: expected whole numbers of periods, ≥ 1 for customers who churned. "
                "Fix: count the period in which a customer cancelled as that customer's lifetime."
            )
        (ut, us), w = collapse([t, (~c).astype(np.float64)])
        self.alive_counts_ = np.array([float(len(t))])
        self._fit_data([ut, us], w, n_observations=len(t))
        return self

    def _starts(self, data: Sequence[np.ndarray], weights: np.ndarray) -> list[np.ndarray]:
        return [np.array([1.0, 1.0]), np.array([0.5, 3.0]), np.array([2.0, 2.0])]

    def _loglik_and_grad(self, theta: np.ndarray, data: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        alpha, beta = theta
        t, survivor = data
        is_s = survivor > 0
        base = betaln(alpha, beta)
        d_base_a = digamma(alpha) - digamma(alpha + beta)
        d_base_b = digamma(beta) - digamma(alpha + beta)
        # churn in period t: B(α+1, β+t−1)/B(α, β); survive t periods: B(α, β+t)/B(α, β)
        x1 = np.where(is_s, alpha, alpha + 1)
        y1 = np.where(is_s, beta + t, beta + t - 1)
        ll = betaln(x1, y1) - base
        psi_xy = digamma(x1 + y1)
        d_a = digamma(x1) - psi_xy - d_base_a
        d_b = digamma(y1) - psi_xy - d_base_b
        return ll, np.column_stack([d_a, d_b])

    def survival(self, t: Any) -> np.ndarray:
        """S(t) = B(α, β+t)/B(α, β): the share of the cohort still active after t periods."""
        alpha, beta = self._theta()
        t = np.asarray(t, dtype=np.float64)
        return np.exp(betaln(alpha, beta + t) - betaln(alpha, beta))

    def retention_rate(self, t: Any) -> np.ndarray:
        """r_t = (β+t−1)/(α+β+t−1): the share of those active after t−1 periods who renew in period t."""
        alpha, beta = self._theta()
        t = np.asarray(t, dtype=np.float64)
        return (beta + t - 1) / (alpha + beta + t - 1)

    def project(self, periods: int) -> list[float]:
        """Expected survivors of the fitted cohort in the next ``periods`` periods after the last count."""
        n = self.alive_counts_
        last = len(n) - 1
        return (n[0] * self.survival(np.arange(last + 1, last + 1 + periods))).tolist()

    def discounted_expected_residual_lifetime(self, *, discount: float, periods_alive: int = 0) -> float:
        """DERL: Σ_{k≥0} S(n+k+1)/S(n) / (1+d)^k for a customer who has renewed ``periods_alive`` times and is about
        to make the next renewal decision (Fader & Hardie 2010), summed until the terms vanish."""
        alpha, beta = self._theta()
        k = np.arange(0, 20000, dtype=np.float64)
        n = float(periods_alive)
        s = np.exp(betaln(alpha, beta + n + k + 1) - betaln(alpha, beta + n))
        return float(np.sum(s / (1 + discount) ** k))
