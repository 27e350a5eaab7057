"""Gamma-Gamma: the spend per transaction of repeat buyers (Fader, Hardie & Lee 2005b; Colombo & Jiang 1999).

A customer's transaction values are ``Gamma(p, ν)``; across customers ``ν ~ Gamma(q, v)``.  A customer
with ``x`` repeat transactions of mean value ``z̄`` contributes (up to a term free of the parameters)::

    ℓ = lnΓ(px+q) − lnΓ(px) − lnΓ(q) + q ln v + (px−1) ln z̄ + px ln x − (px+q) ln(x z̄ + v)

The conditional expected average spend is a weighted mean of the population mean ``pv/(q−1)`` and
the customer's own mean::

    E[Z | x, z̄] = (q−1)/(px+q−1) · pv/(q−1) + px/(px+q−1) · z̄ = p(v + x z̄)/(px + q − 1)

Only customers with ``x > 0`` and ``z̄ > 0`` carry information; the model assumes spend is
independent of the purchase process.

Examples
--------
>>> m = GammaGammaModel().fit(frequency=[1, 2, 5], monetary_value=[20.0, 30.0, 25.0])  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from scipy.special import digamma, gammaln

from churnguard.clv.base import ClvDataError, ClvWarning, ParametricModel, as_float_array, collapse


class GammaGammaModel(ParametricModel):
    """The Gamma-Gamma spend model, fitted on the distinct ``(x, z̄)`` pairs of repeat buyers.

    Attributes (after ``fit``)
    --------------------------
    params_ : dict with ``p``, ``q``, ``v``.
    """

    _param_names: ClassVar[tuple[str, ...]] = ("p", "q", "v")
    _model_name: ClassVar[str] = "gamma-gamma"
    _causes: ClassVar[tuple[str, ...]] = (
        "monetary_value is the mean of all purchases including the first one, or a total rather than a mean. "
        "Fix: use the mean value of the repeat purchases.",
        "Very few repeat buyers, or all with the same spend. Fix: use a longer period or more customers.",
        "Spend is strongly correlated with frequency, which the model assumes away. Fix: check "
        "corr(frequency, monetary_value) and segment customers before fitting.",
    )

    def fit(self, frequency: Any, monetary_value: Any, weights: Any | None = None) -> GammaGammaModel:
        """Fit on per-customer repeat purchases ``frequency`` (x) and mean repeat spend ``monetary_value``.

        Customers with ``frequency == 0`` are skipped (they carry no spend information); a missing or
        non-positive spend for a repeat buyer is an error, not a silent zero.
        """
        x = as_float_array(frequency, "frequency")
        z = np.asarray(monetary_value, dtype=np.float64).reshape(-1)
        if len(x) != len(z):
            raise ClvDataError("frequency and monetary_value must have the same length.")
        w_in = None if weights is None else as_float_array(weights, "weights")
        keep = x > 0
        missing = np.isnan(z[keep])
        if missing.any() or not keep.any():
            raise ClvDataError(
                "Gamma-Gamma needs a positive mean spend (monetary_value) for every repeat buyer, but "
                f"{int(missing.sum()):,} repeat buyers have none. "
                "Fix: load transaction amounts, or use BG/NBD alone (expected transactions and P(alive)) "
                "or the simple margin × r ÷ (1 + d − r) formula."
            )
        if (z[keep] < 0).any():
            raise ClvDataError("monetary_value: expected amounts ≥ 0, got negative means. Fix: drop refunds first.")
        zero = keep & (z <= 0)
        if zero.any():
            warnings.warn(
                f"Gamma-Gamma: {int(zero.sum()):,} repeat buyers spent 0 on average (free purchases); the model "
                "needs positive spend, so they are left out of the fit (their expected spend is still predicted).",
                ClvWarning,
                stacklevel=2,
            )
            keep = keep & ~zero
        if keep.sum() < 2:
            raise ClvDataError("Gamma-Gamma needs at least two repeat buyers with positive spend; found fewer.")
        (ux, uz), w = collapse([x[keep], z[keep]], None if w_in is None else w_in[keep])
        self._fit_data([ux, uz], w, n_observations=int(w.sum()))
        return self

    def _starts(self, data: Sequence[np.ndarray], weights: np.ndarray) -> list[np.ndarray]:
        _, z = data
        mean = float(np.dot(weights, z) / weights.sum())
        return [np.array([2.0, 3.0, mean]), np.array([1.0, 1.0, 1.0]), np.array([5.0, 5.0, 4.0 * mean / 5.0])]

    def _loglik_and_grad(self, theta: np.ndarray, data: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        p, q, v = theta
        x, z = data
        px = p * x
        log_xz_v = np.log(x * z + v)
        ll = (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(v)
            + (px - 1) * np.log(z)
            + px * np.log(x)
            - (px + q) * log_xz_v
        )
        psi = digamma(px + q)
        d_p = x * (psi - digamma(px) + np.log(z) + np.log(x) - log_xz_v)
        d_q = psi - digamma(q) + np.log(v) - log_xz_v
        d_v = q / v - (px + q) / (x * z + v)
        return ll, np.column_stack([d_p, d_q, d_v])

    def conditional_expected_average_profit(self, frequency: Any, monetary_value: Any) -> np.ndarray:
        """E[Z | x, z̄] = p(v + x z̄)/(px + q − 1); the population mean pv/(q−1) when x = 0."""
        p, q, v = self._theta()
        x = np.asarray(frequency, dtype=np.float64)
        z = np.nan_to_num(np.asarray(monetary_value, dtype=np.float64), nan=0.0)
        z = np.where(x > 0, z, 0.0)
        return p * (v + x * z) / (p * x + q - 1)

    def population_mean_spend(self) -> float:
        """E[Z] = pv/(q−1) (infinite when q ≤ 1)."""
        p, q, v = self._theta()
        return float(p * v / (q - 1)) if q > 1 else float("inf")
