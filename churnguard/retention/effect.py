"""Measured effect of an action: treated vs control, a difference of proportions with its confidence interval.

For a binary outcome (retained / not; won back / not) in two randomised arms:

    p_t = x_t / n_t,   p_c = x_c / n_c,   effect = p_t − p_c

Pooled (one stratum): **Newcombe's hybrid score interval** (Newcombe 1998, method 10), built from
the two Wilson score intervals ``[l_t, u_t]`` and ``[l_c, u_c]``::

    low  = effect − sqrt((p_t − l_t)² + (u_c − p_c)²)
    high = effect + sqrt((u_t − p_t)² + (p_c − l_c)²)

    Wilson: (p + z²/2n ± z·sqrt(p(1−p)/n + z²/4n²)) / (1 + z²/n)

It keeps its coverage near the nominal level for small samples and rates near 0 or 1, where the
Wald interval does not.  ``method="wald"`` gives ``effect ± z · sqrt(p_t(1−p_t)/n_t + p_c(1−p_c)/n_c)``.

Stratified (the campaigns' design: randomised within tier × branch strata): the effect on the
treated, weighting each stratum ``s`` that has both arms by its treated customers::

    effect = Σ_s w_s (p_ts − p_cs),   w_s = n_ts / Σ_s n_ts
    var    = Σ_s w_s² (σ²_t / n_ts + σ²_c / n_cs)                      Wald interval: effect ± z·sqrt(var)
    σ²_a   = p̃_a (1 − p̃_a),   p̃_a = (Σ_s x_as + 1) / (Σ_s n_as + 2)        (arm a, measured strata)

σ²_a is the arm's Bernoulli variance with Agresti & Caffo's (2000) add-one adjustment, in place of
each stratum's own ``p(1 − p)/n``: small strata get one- or two-customer control groups, whose own
variance is zero or wild, and a rare outcome gives zero variance everywhere.  With per-stratum
variances the interval covered the truth in 85 % of simulated 800-customer campaigns; with σ²_a,
94 % (and 95.5 % for an outcome of 1–5 %, 97 % where the strata's rates differ from 2 % to 60 %:
conservative, since the overall variance includes the between-strata part).  tests/test_effect.py
checks the coverage.

A stratum without a control (or without treated customers) cannot be measured; its treated
customers are counted as ``unmeasured``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from churnguard.errors import ConfigError

CI_METHODS: tuple[str, ...] = ("newcombe", "wald")


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise ConfigError(f"confidence level: expected a number between 0 and 1 like 0.95, got {level!r}.")
    return NormalDist().inv_cdf(0.5 + level / 2)


def _scalar(a: np.ndarray) -> Any:
    return float(a) if np.ndim(a) == 0 else a


def wilson_interval(x: Any, n: Any, *, level: float = 0.95) -> tuple[Any, Any]:
    """Wilson score interval for a proportion ``x / n`` (arrays allowed; NaN where n = 0)."""
    z = _z(level)
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return _scalar(centre - half), _scalar(centre + half)


@dataclass(frozen=True)
class DifferenceCI:
    """A difference of two proportions, ``p_treated − p_control``, with its confidence interval.

    Fields are floats, or arrays when the inputs were arrays.
    """

    x_treated: Any
    n_treated: Any
    x_control: Any
    n_control: Any
    p_treated: Any
    p_control: Any
    difference: Any
    low: Any
    high: Any
    level: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}


def difference_ci(
    x_treated: Any,
    n_treated: Any,
    x_control: Any,
    n_control: Any,
    *,
    level: float = 0.95,
    method: str = "newcombe",
) -> DifferenceCI:
    """``p_t − p_c`` and its confidence interval: Newcombe's hybrid score (default) or Wald.

    Examples
    --------
    >>> r = difference_ci(8279, 45489, 8502, 44700)   # cookie_cats: 7-day retention, gate_40 − gate_30
    >>> round(r.difference * 100, 2), round(r.low * 100, 2), round(r.high * 100, 2)
    (-0.82, -1.33, -0.31)
    """
    if method not in CI_METHODS:
        raise ConfigError(f'interval method: expected one of {", ".join(CI_METHODS)}, got "{method}".')
    z = _z(level)
    xt, nt, xc, nc = (np.asarray(v, dtype=float) for v in (x_treated, n_treated, x_control, n_control))
    with np.errstate(invalid="ignore", divide="ignore"):
        pt, pc = xt / nt, xc / nc
        d = pt - pc
        if method == "wald":
            half = z * np.sqrt(pt * (1 - pt) / nt + pc * (1 - pc) / nc)
            low, high = d - half, d + half
        else:
            lt, ut = (np.asarray(v) for v in wilson_interval(xt, nt, level=level))
            lc, uc = (np.asarray(v) for v in wilson_interval(xc, nc, level=level))
            low = d - np.sqrt((pt - lt) ** 2 + (uc - pc) ** 2)
            high = d + np.sqrt((ut - pt) ** 2 + (pc - lc) ** 2)
    return DifferenceCI(
        _scalar(xt),
        _scalar(nt),
        _scalar(xc),
        _scalar(nc),
        _scalar(pt),
        _scalar(pc),
        _scalar(d),
        _scalar(low),
        _scalar(high),
        level,
        method,
    )


@dataclass(frozen=True)
class StratifiedDifference:
    """The stratified effect on the treated (module docstring) with its Wald interval."""

    difference: float
    low: float
    high: float
    se: float
    level: float
    strata: int
    strata_measured: int
    n_treated: int
    n_control: int
    unmeasured_treated: int
    method: str = (
        "stratified difference of proportions, weights = treated per stratum; "
        "Wald interval with each arm's add-one variance"
    )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def stratified_difference(
    x_treated: Any, n_treated: Any, x_control: Any, n_control: Any, *, level: float = 0.95
) -> StratifiedDifference:
    """Per-stratum counts (arrays, one entry per stratum) → the stratified effect on the treated."""
    z = _z(level)
    xt, nt, xc, nc = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (x_treated, n_treated, x_control, n_control))
    ok = (nt > 0) & (nc > 0)
    if not ok.any():
        nan = float("nan")
        return StratifiedDifference(nan, nan, nan, nan, level, int(nt.size), 0, 0, 0, int(nt.sum()))
    pt, pc = xt[ok] / nt[ok], xc[ok] / nc[ok]
    w = nt[ok] / nt[ok].sum()
    d = float(np.sum(w * (pt - pc)))
    var_t = _add_one_variance(xt[ok], nt[ok])
    var_c = _add_one_variance(xc[ok], nc[ok])
    se = float(np.sqrt(np.sum(w * w * (var_t / nt[ok] + var_c / nc[ok]))))
    return StratifiedDifference(
        difference=d,
        low=d - z * se,
        high=d + z * se,
        se=se,
        level=level,
        strata=int(nt.size),
        strata_measured=int(ok.sum()),
        n_treated=int(nt[ok].sum()),
        n_control=int(nc[ok].sum()),
        unmeasured_treated=int(nt[~ok].sum()),
    )


def _add_one_variance(x: np.ndarray, n: np.ndarray) -> float:
    """``p̃ (1 − p̃)`` with ``p̃ = (Σ x + 1) / (Σ n + 2)``: an arm's 0/1 variance, never zero."""
    p = (float(np.sum(x)) + 1) / (float(np.sum(n)) + 2)
    return p * (1 - p)


@dataclass(frozen=True)
class Effect:
    """Result of :func:`estimate_effect`: the pooled difference, and the stratified one where strata were given."""

    outcome: str
    pooled: DifferenceCI
    stratified: StratifiedDifference | None = None
    by_stratum: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "pooled": self.pooled.to_dict(),
            "stratified": None if self.stratified is None else self.stratified.to_dict(),
            "by_stratum": self.by_stratum,
        }


def estimate_effect(
    frame: Any,
    *,
    outcome: str,
    arm: str,
    treated: Any = "treatment",
    control: Any = "control",
    strata: str | None = None,
    level: float = 0.95,
    method: str = "newcombe",
) -> Effect:
    """Effect of treatment on a 0/1 ``outcome`` in a randomised experiment held in a DataFrame.

    ``effect = P(outcome | treated) − P(outcome | control)``; rows whose ``arm`` is neither
    ``treated`` nor ``control`` are ignored.  With ``strata``, also the stratified effect on the
    treated and one row per stratum.
    """
    for col in (outcome, arm, *(() if strata is None else (strata,))):
        if col not in frame.columns:
            raise ConfigError(f'effect: column "{col}" not found; the frame has {", ".join(map(str, frame.columns))}.')
    y = frame[outcome]
    if y.isna().any():
        raise ConfigError(f'effect: outcome "{outcome}" has missing values; expected 0/1 for every row.')
    y = y.astype(float)
    if not y.isin([0.0, 1.0]).all():
        raise ConfigError(f'effect: outcome "{outcome}" must be 0/1 or true/false.')
    is_t = (frame[arm] == treated).to_numpy()
    is_c = (frame[arm] == control).to_numpy()
    yv = y.to_numpy()
    pooled = difference_ci(yv[is_t].sum(), is_t.sum(), yv[is_c].sum(), is_c.sum(), level=level, method=method)
    if strata is None:
        return Effect(outcome, pooled)
    import pandas as pd

    parts = pd.DataFrame({"s": frame[strata].to_numpy(), "t": is_t, "c": is_c, "y": yv})
    parts["yt"] = parts["y"] * parts["t"]
    parts["yc"] = parts["y"] * parts["c"]
    agg = parts.groupby("s", sort=True, dropna=False)[["t", "c", "yt", "yc"]].sum()
    strat = stratified_difference(agg["yt"], agg["t"], agg["yc"], agg["c"], level=level)
    rows = []
    for s, r in agg.iterrows():
        nt, nc = int(r["t"]), int(r["c"])
        pt = r["yt"] / nt if nt else None
        pc = r["yc"] / nc if nc else None
        rows.append(
            {
                "stratum": s,
                "n_treated": nt,
                "n_control": nc,
                "p_treated": pt,
                "p_control": pc,
                "difference": None if pt is None or pc is None else pt - pc,
            }
        )
    return Effect(outcome, pooled, strat, rows)
