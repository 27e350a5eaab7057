"""BG/NBD: the beta-geometric / negative binomial model of repeat purchasing (Fader, Hardie & Lee 2005).

While alive, a customer buys as a Poisson process with rate ``λ ~ Gamma(r, α)``; after each purchase
they drop out with probability ``p ~ Beta(a, b)``.  A customer is summarised by ``x`` (repeat purchases),
``t_x`` (time of the last purchase since the first) and ``T`` (time since the first purchase).

Log-likelihood of one customer (Fader, Hardie & Lee 2005, eq. 6)::

    A1 = lnΓ(r+x) − lnΓ(r) + r ln α
    A2 = lnΓ(a+b) + lnΓ(b+x) − lnΓ(b) − lnΓ(a+b+x)
    A3 = −(r+x) ln(α+T)
    A4 = ln a − ln(b+x−1) − (r+x) ln(α+t_x)            (x > 0 only)
    ℓ  = A1 + A2 + ln(e^A3 + [x>0] e^A4)

Examples
--------
>>> import pandas as pd
>>> df = pd.read_csv("/work/shared/data/cdnow/cdnow_customers_summary.csv")  # doctest: +SKIP
>>> m = BetaGeoModel().fit(df["frequency"], df["recency"], df["T"])       # doctest: +SKIP
>>> {k: round(v, 4) for k, v in m.params_.items()}                        # doctest: +SKIP
{'r': 0.2426, 'alpha': 4.4135, 'a': 0.7929, 'b': 2.4258}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from scipy.special import digamma, gammaln, hyp2f1

from churnguard.clv.base import ClvDataError, ParametricModel, as_float_array, collapse


class BetaGeoModel(ParametricModel):
    """The BG/NBD model, fitted by maximum likelihood on the distinct ``(x, t_x, T)`` triples.

    Attributes (after ``fit``)
    --------------------------
    params_ : dict with ``r``, ``alpha``, ``a``, ``b``.
    log_likelihood_ : the maximised total log-likelihood.
    converged_, n_iter_, n_observations_, n_distinct_ : how the fit went.
    """

    _param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    _model_name: ClassVar[str] = "bgnbd"
    _causes: ClassVar[tuple[str, ...]] = (
        "Time units differ between columns (recency in days, T in weeks). Fix: use one unit for recency and T.",
        "Frequency counts all purchases instead of repeat purchases (the first purchase is not counted). "
        "Fix: frequency = number of purchase days − 1.",
        "Almost nobody makes a repeat purchase, so the dropout process is not identified. Fix: use a longer "
        "calibration period or a coarser time unit.",
        "Recency > T or negative values in the summary. Fix: rebuild it with churnguard.clv.summary.rfm_summary.",
    )

    def fit(self, frequency: Any, recency: Any, T: Any, weights: Any | None = None) -> BetaGeoModel:
        """Fit on per-customer ``frequency`` (x), ``recency`` (t_x) and ``T``; optional ``weights`` (counts)."""
        x = as_float_array(frequency, "frequency")
        tx = as_float_array(recency, "recency")
        big_t = as_float_array(T, "T")
        validate_rft(x, tx, big_t)
        (ux, utx, uT), w = collapse([x, tx, big_t], None if weights is None else as_float_array(weights, "weights"))
        # The special functions depend on x alone, which takes few distinct values: evaluate them once per value.
        xv, xi = np.unique(ux, return_inverse=True)
        self._fit_data([ux, utx, uT, xv, xi.reshape(-1)], w, n_observations=int(w.sum()))
        return self

    def _starts(self, data: Sequence[np.ndarray], weights: np.ndarray) -> list[np.ndarray]:
        x, _, big_t = data[:3]
        # Method-of-moments-ish start for the purchase rate: mean rate ≈ r/α.
        rate = max(float(np.dot(weights, x + 1) / np.dot(weights, np.maximum(big_t, 1e-9))), 1e-6)
        return [np.array([1.0, 1.0 / rate, 1.0, 1.0]), np.array([0.5, 0.5 / rate, 0.5, 2.0]), np.ones(4)]

    def _loglik_and_grad(self, theta: np.ndarray, data: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        r, alpha, a, b = theta
        x, tx, big_t = data[:3]
        if len(data) > 3:
            xv, xi = data[3], data[4]
        else:
            xv, xi = np.unique(x, return_inverse=True)
        # terms in x only, on the distinct x values
        pos_v = xv > 0
        bx1_v = np.where(pos_v, b + xv - 1.0, 1.0)
        a1_v = gammaln(r + xv) - gammaln(r) + r * np.log(alpha)
        a2_v = gammaln(a + b) + gammaln(b + xv) - gammaln(b) - gammaln(a + b + xv)
        psi_ab, psi_abx_v = digamma(a + b), digamma(a + b + xv)
        dr_v = digamma(r + xv) - digamma(r) + np.log(alpha)
        da_v = psi_ab - psi_abx_v
        db_v = psi_ab + digamma(b + xv) - digamma(b) - psi_abx_v
        log_a_bx1_v = np.where(pos_v, np.log(a) - np.log(bx1_v), -np.inf)
        # terms per row
        rx = r + x
        log_at = np.log(alpha + big_t)
        log_atx = np.log(alpha + tx)
        a3 = -rx * log_at
        a4 = log_a_bx1_v[xi] - rx * log_atx
        lse = np.logaddexp(a3, a4)
        ll = (a1_v + a2_v)[xi] + lse
        w3 = np.exp(a3 - lse)
        w4 = np.exp(a4 - lse)
        d_r = dr_v[xi] - w3 * log_at - w4 * log_atx
        d_alpha = r / alpha - rx * (w3 / (alpha + big_t) + w4 / (alpha + tx))
        d_a = da_v[xi] + w4 / a
        d_b = db_v[xi] - w4 / bx1_v[xi]
        return ll, np.column_stack([d_r, d_alpha, d_a, d_b])

    # -- predictions ---------------------------------------------------------------------------
    def conditional_probability_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """P(alive | x, t_x, T) = 1 / (1 + [x>0] · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x))."""
        r, alpha, a, b = self._theta()
        x, tx, big_t = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, T))
        log_ratio = (r + x) * (np.log(alpha + big_t) - np.log(alpha + tx))
        odds = np.where(x > 0, np.exp(np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + log_ratio), 0.0)
        return 1.0 / (1.0 + odds)

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: Any, frequency: Any, recency: Any, T: Any
    ) -> np.ndarray:
        """E[X(T, T+t) | x, t_x, T] (Fader, Hardie & Lee 2005, eq. 10)::

        (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) · ₂F₁(r+x, b+x; a+b+x−1; t/(α+T+t))]
        ─────────────────────────────────────────────────────────────────────────────────
                    1 + [x>0] · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x)
        """
        r, alpha, a, b = self._theta()
        t, x, tx, big_t = (np.asarray(v, dtype=np.float64) for v in (t, frequency, recency, T))
        z = t / (alpha + big_t + t)
        head = (a + b + x - 1) / (a - 1)
        body = 1.0 - np.exp((r + x) * np.log((alpha + big_t) / (alpha + big_t + t))) * hyp2f1(
            r + x, b + x, a + b + x - 1, z
        )
        return head * body * self.conditional_probability_alive(x, tx, big_t)

    def expected_number_of_purchases_up_to_time(self, t: Any) -> np.ndarray:
        """E[X(t)] for a new customer: (a+b−1)/(a−1) · [1 − (α/(α+t))^r · ₂F₁(r, b; a+b−1; t/(α+t))]."""
        r, alpha, a, b = self._theta()
        t = np.asarray(t, dtype=np.float64)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def validate_rft(x: np.ndarray, tx: np.ndarray, big_t: np.ndarray) -> None:
    """Refuse summaries that no customer can have: negative values, fractional counts, t_x > T."""
    if not (len(x) == len(tx) == len(big_t)):
        raise ClvDataError("frequency, recency and T must have the same length.")
    if len(x) == 0:
        raise ClvDataError("no customers to fit. Fix: check the summary file or the calibration period.")
    checks = [
        (x < 0, "frequency ≥ 0"),
        (x != np.round(x), "a whole number of repeat purchases"),
        (tx < 0, "recency ≥ 0"),
        (tx > big_t + 1e-9, "recency ≤ T"),
        ((x == 0) & (tx != 0), "recency = 0 when frequency = 0"),
    ]
    for bad, expected in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ClvDataError(
                f"summary row {i + 1}: expected {expected}, got frequency={x[i]:g}, recency={tx[i]:g}, T={big_t[i]:g}. "
                "Fix: rebuild the summary with `churnguard clv fit --transactions` or check the time units."
            )
