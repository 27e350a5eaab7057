"""The shared base of the CLV models: maximum-likelihood fitting, convergence reports, errors.

Each model (:mod:`~churnguard.clv.bgnbd`, :mod:`~churnguard.clv.gamma_gamma`, :mod:`~churnguard.clv.sbg`)
supplies only its math — a vectorised log-likelihood with its analytic gradient per observation —
and this base does the rest, lifelines-style:

* the data are collapsed to their distinct rows with integer weights (``np.unique``), so a million
  customers with a few thousand distinct ``(x, t_x, T)`` triples cost a few thousand evaluations;
* the weighted mean negative log-likelihood is minimised with L-BFGS-B in log-parameter space
  (``θ = exp(η)``, so every parameter stays positive and the gradient is ``∂ℓ/∂η = θ ∂ℓ/∂θ``),
  from the model's sensible starting points, keeping the best converged run;
* the result is reported (``params_``, ``log_likelihood_``, ``converged_``, ``n_iter_``) and a fit
  that cannot converge raises :class:`FitError` with a numbered list of likely causes and fixes.

The scikit-learn estimator contract holds: ``__init__`` only stores keyword arguments, ``fit``
validates and returns ``self``, learned attributes end in ``_``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from churnguard.errors import ChurnguardError


class FitError(ChurnguardError, RuntimeError):
    """A model could not be fitted (the optimiser did not converge, or the likelihood is not finite)."""

    http_status = 422
    exit_code = 5


class ClvDataError(ChurnguardError, ValueError):
    """The data handed to a CLV model do not fit its assumptions (negative counts, t_x > T, no amounts)."""

    http_status = 400
    exit_code = 3


class ClvWarning(UserWarning):
    """A CLV result is partial or rests on suspect data (no amounts, zero-spend buyers left out)."""


@dataclass(frozen=True)
class FitResult:
    """What a fit produced, ready for JSON: the ``clv fit`` command prints :meth:`to_dict`."""

    model: str
    params: dict[str, float]
    log_likelihood: float
    converged: bool
    iterations: int
    n_observations: int
    n_distinct: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "params": dict(self.params),
            "log_likelihood": self.log_likelihood,
            "converged": self.converged,
            "iterations": self.iterations,
            "n_observations": self.n_observations,
            "n_distinct": self.n_distinct,
        }
        out.update(self.extra)
        return out


def collapse(columns: Sequence[np.ndarray], weights: np.ndarray | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """The distinct rows of ``columns`` and how many times (or how much weight) each occurs.

    Rows are compared exactly (after conversion to float64), so collapsing never changes the
    likelihood: ``Σ_i ℓ(row_i) = Σ_k w_k ℓ(distinct_k)``.
    """
    cols = [np.asarray(c, dtype=np.float64).reshape(-1) for c in columns]
    n = len(cols[0])
    # Hash each column to integer codes, combine them into one key, and hash the key: linear time,
    # unlike np.unique(axis=0), which sorts rows as structured records.
    key = np.zeros(n, dtype=np.int64)
    span = 1
    for c in cols:
        codes, uniques = pd.factorize(c)
        size = max(len(uniques), 1)
        if span * size >= 2**62:  # cannot overflow: re-hash the key so far first
            key, kept = pd.factorize(key)
            span = max(len(kept), 1)
        key = key * size + codes
        span *= size
    inverse, uniq_keys = pd.factorize(key)
    first = np.empty(len(uniq_keys), dtype=np.int64)
    first[inverse] = np.arange(n, dtype=np.int64)  # any row of a group represents it: they are identical
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    counts = np.bincount(inverse, weights=w, minlength=len(uniq_keys))
    return [c[first] for c in cols], counts


class ParametricModel:
    """Base of the maximum-likelihood CLV models.

    A subclass sets ``_param_names`` and ``_model_name``, implements
    :meth:`_loglik_and_grad` (per-row log-likelihood and its gradient with respect to the
    natural parameters) and :meth:`_starts` (starting points), and calls :meth:`_fit_data`
    from its ``fit``.

    Parameters
    ----------
    tol : float
        Gradient tolerance of L-BFGS-B (on the mean negative log-likelihood in log-parameter space).
    max_iter : int
        Iteration limit per start.
    try_all_starts : bool
        Run every starting point and keep the best (default: stop at the first that converges; the
        others are fallbacks).
    """

    _param_names: ClassVar[tuple[str, ...]] = ()
    _model_name: ClassVar[str] = ""
    _causes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, tol: float = 1e-9, max_iter: int = 2000, try_all_starts: bool = False) -> None:
        self.tol = tol
        self.max_iter = max_iter
        self.try_all_starts = try_all_starts

    # -- what a model supplies ----------------------------------------------------------------
    def _loglik_and_grad(self, theta: np.ndarray, data: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Per-row log-likelihood (shape ``(n,)``) and gradient ``∂ℓ_i/∂θ_j`` (shape ``(n, k)``)."""
        raise NotImplementedError

    def _starts(self, data: Sequence[np.ndarray], weights: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    # -- the fitting machinery ----------------------------------------------------------------
    def log_likelihood(self, theta: Sequence[float], data: Sequence[np.ndarray], weights: np.ndarray) -> float:
        """The weighted total log-likelihood ``Σ_k w_k ℓ(θ; row_k)``."""
        ll, _ = self._loglik_and_grad(np.asarray(theta, dtype=np.float64), data)
        return float(np.dot(weights, ll))

    def _objective(
        self, eta: np.ndarray, data: Sequence[np.ndarray], weights: np.ndarray, total: float
    ) -> tuple[float, np.ndarray]:
        theta = np.exp(eta)
        ll, grad = self._loglik_and_grad(theta, data)
        value = -float(np.dot(weights, ll)) / total
        g = -(weights @ grad) / total * theta
        if not (math.isfinite(value) and np.all(np.isfinite(g))):
            return 1e100, np.zeros_like(eta)
        return value, g

    def _fit_data(self, data: Sequence[np.ndarray], weights: np.ndarray, *, n_observations: int) -> None:
        total = float(weights.sum())
        best: Any = None
        messages: list[str] = []
        for start in self._starts(data, weights):
            eta0 = np.log(np.asarray(start, dtype=np.float64))
            res = minimize(
                self._objective,
                eta0,
                args=(data, weights, total),
                jac=True,
                method="L-BFGS-B",
                bounds=[(-20.0, 20.0)] * len(eta0),
                options={"maxiter": self.max_iter, "gtol": self.tol, "ftol": 1e-15, "maxcor": 20},
            )
            ok = bool(np.isfinite(res.fun) and res.fun < 1e99 and _gradient_small(res))
            messages.append(f"start {np.round(start, 4).tolist()}: {res.message} (mean −LL {res.fun:.6g})")
            if ok and (best is None or res.fun < best.fun - 1e-12):
                best = res
            if best is not None and not self.try_all_starts:
                break  # later starts are fallbacks for a failed fit
        if best is None:
            raise FitError(self._failure_message(messages, n_observations))
        theta = np.exp(best.x)
        self.params_ = dict(zip(self._param_names, (float(v) for v in theta), strict=True))
        self.log_likelihood_ = -float(best.fun) * total
        self.converged_ = True
        self.n_iter_ = int(best.nit)
        self.n_observations_ = int(n_observations)
        self.n_distinct_ = len(weights)
        self.optimizer_message_ = str(best.message)

    def _failure_message(self, messages: list[str], n: int) -> str:
        causes = "\n".join(f"  {i}. {c}" for i, c in enumerate(self._causes, start=1))
        runs = "\n".join(f"  - {m}" for m in messages)
        return (
            f"{self._model_name}: the maximum-likelihood fit on {n:,} observations did not converge from any "
            f"starting point.\nOptimiser runs:\n{runs}\nLikely causes and fixes:\n{causes}"
        )

    # -- reports ------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise FitError(f"{type(self).__name__} is not fitted yet. Fix: call fit(...) first.")

    def _theta(self) -> tuple[float, ...]:
        self._check_fitted()
        return tuple(self.params_[k] for k in self._param_names)

    def result(self, **extra: Any) -> FitResult:
        """The fit as a :class:`FitResult` (``extra`` entries are added to its JSON)."""
        self._check_fitted()
        return FitResult(
            model=self._model_name,
            params=dict(self.params_),
            log_likelihood=self.log_likelihood_,
            converged=self.converged_,
            iterations=self.n_iter_,
            n_observations=self.n_observations_,
            n_distinct=self.n_distinct_,
            extra=extra,
        )

    def summary(self) -> str:
        """A short human-readable report of the fit."""
        r = self.result()
        params = ", ".join(f"{k} = {v:.4f}" for k, v in r.params.items())
        return (
            f"{r.model}: {params}; log-likelihood {r.log_likelihood:.2f}; converged {r.converged} "
            f"in {r.iterations} iterations; {r.n_observations:,} observations ({r.n_distinct:,} distinct)"
        )

    def __repr__(self) -> str:
        if hasattr(self, "params_"):
            inner = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            return f"{type(self).__name__}(fitted: {inner})"
        return f"{type(self).__name__}()"


def _gradient_small(res: Any) -> bool:
    """L-BFGS-B's own verdict, or a stationary point by the projected gradient (``ABNORMAL`` line searches
    at the optimum happen when the objective is flat to machine precision)."""
    if res.success:
        return True
    jac = getattr(res, "jac", None)
    return jac is not None and bool(np.max(np.abs(jac)) < 1e-5)


def as_float_array(values: Any, name: str) -> np.ndarray:
    """``values`` as a 1-d float64 array, refusing missing values (they are never silently zero)."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if np.isnan(arr).any():
        bad = int(np.flatnonzero(np.isnan(arr))[0])
        raise ClvDataError(f"{name}: expected numbers, got a missing value at row {bad + 1}. Fix: fill or drop it.")
    return arr
