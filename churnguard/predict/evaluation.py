"""Evaluation of churn probabilities: ranking, lift, calibration and the contact threshold.

Every number is computed from two arrays: ``y`` (1 = churned, 0 = stayed) and ``p`` (the
predicted probability of churn).  Rows are ranked by ``p`` descending (a stable sort, so ties
keep their input order).  With n rows and P positives, base rate b = P / n:

- **ROC AUC**: the probability that a random churner is ranked above a random stayer
  (ties count one half) — ``sklearn.metrics.roc_auc_score``.
- **PR AUC**: average precision, Σ_k (R_k − R_{k−1}) · P_k over the ranked list —
  ``sklearn.metrics.average_precision_score``.
- **Lift at 10 %** (top-decile lift): with m = ⌈0.1 · n⌉ top-ranked rows,
  lift = (churners among the m / m) / b.
- **Lift curve**: rank r (0-based) falls in decile ⌊10 r / n⌋ + 1; per decile its rows, churners,
  rate, lift = rate / b, the cumulative lift and the cumulative capture (share of all churners
  found in deciles 1…d).
- **Brier score**: (1/n) Σ (p_i − y_i)².
- **Calibration curve** and **expected calibration error** (10 equal-width bins [0, 0.1), …,
  [0.9, 1.0]): ECE = Σ_b (n_b / n) · |mean p in b − churn rate in b|.
- **Confusion matrix** at threshold t: contacted = p ≥ t; tp, fp, fn, tn.
- **Threshold by top-k**: t = the p of the ⌈k · n⌉-th ranked row (k = 10 % by default); ties at t
  are contacted too.
- **Threshold by expected value** (when value, contact cost and save rate are given): contacting
  customer i is worth p_i · v_i · s − c (value at risk × save rate − contact cost).  The threshold is
  the t that maximises EV(t) = Σ_{p_i ≥ t} (p_i · v_i · s − c), cut only between distinct p; when
  no t gives EV > 0 nobody is contacted (t above the largest p).  The value realised on the labels,
  Σ_{p_i ≥ t} (y_i · v_i · s − c), is reported beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from churnguard.predict.errors import ModelError

TOP_K = 0.10
BINS = 10


def evaluate(
    y_true: Sequence[float] | np.ndarray,
    p: Sequence[float] | np.ndarray,
    *,
    value: float | Sequence[float] | np.ndarray | None = None,
    contact_cost: float | None = None,
    save_rate: float | None = None,
    threshold: float | None = None,
    top_k: float = TOP_K,
    bins: int = BINS,
) -> dict[str, Any]:
    """Score probabilities ``p`` against outcomes ``y_true`` (see the module docstring for formulas).

    Returns a JSON-ready dict with ``n``, ``positives``, ``base_rate``, ``auc``, ``pr_auc``,
    ``lift_at_10``, ``lift_curve``, ``brier``, ``ece``, ``calibration``, ``threshold``,
    ``threshold_method`` (given | expected_value | top_k), ``thresholds`` (each method's choice) and
    ``confusion`` {tp, fp, fn, tn, precision, recall, contacted}.  ``auc``, ``pr_auc`` and lift are
    ``None`` when ``y_true`` holds one class only.

    Examples
    --------
    >>> r = evaluate([1, 0, 1, 0], [0.9, 0.8, 0.3, 0.1], threshold=0.5)
    >>> r["auc"], r["confusion"]["tp"], r["brier"]
    (0.75, 1, 0.2875)
    """
    y = np.asarray(y_true, dtype=np.float64).ravel()
    prob = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != prob.shape:
        raise ModelError(f"evaluate: y_true has {y.size} values but p has {prob.size}.")
    if y.size == 0:
        raise ModelError("evaluate: no rows to evaluate.")
    if np.isnan(y).any() or np.isnan(prob).any():
        raise ModelError("evaluate: y_true and p must not contain missing values.")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ModelError("evaluate: y_true must be 0/1 (1 = churned).")
    n = int(y.size)
    positives = int(y.sum())
    base = positives / n
    two_classes = 0 < positives < n
    order = np.argsort(-prob, kind="stable")
    ranked_y = y[order]

    auc = pr_auc = None
    if two_classes:
        from sklearn.metrics import average_precision_score, roc_auc_score

        auc = float(roc_auc_score(y, prob))
        pr_auc = float(average_precision_score(y, prob))
    top_m = max(1, math.ceil(0.10 * n))
    lift10 = float(ranked_y[:top_m].mean() / base) if positives else None

    thresholds: dict[str, Any] = {"top_k": top_k_threshold(prob, top_k)}
    if value is not None and contact_cost is not None and save_rate is not None:
        thresholds["expected_value"] = expected_value_threshold(
            prob, y, value=value, contact_cost=contact_cost, save_rate=save_rate
        )
    if threshold is not None:
        chosen, method = float(threshold), "given"
    elif "expected_value" in thresholds:
        chosen, method = thresholds["expected_value"]["threshold"], "expected_value"
    else:
        chosen, method = thresholds["top_k"]["threshold"], "top_k"

    return {
        "n": n,
        "positives": positives,
        "base_rate": round(base, 6),
        "auc": _r(auc),
        "pr_auc": _r(pr_auc),
        "lift_at_10": _r(lift10),
        "brier": _r(float(np.mean((prob - y) ** 2))),
        "ece": _r(expected_calibration_error(y, prob, bins=bins)),
        "threshold": float(chosen),
        "threshold_method": method,
        "thresholds": thresholds,
        "confusion": confusion(y, prob, chosen),
        "lift_curve": lift_curve(y, prob) if positives else [],
        "calibration": calibration_curve(y, prob, bins=bins),
    }


def _r(v: float | None, digits: int = 6) -> float | None:
    return None if v is None else round(float(v), digits)


def confusion(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    """tp, fp, fn, tn with contacted = p ≥ threshold; precision and recall (``None`` when undefined)."""
    y = np.asarray(y, dtype=np.float64)
    hit = np.asarray(p, dtype=np.float64) >= threshold
    tp = int(np.sum(hit & (y == 1)))
    fp = int(np.sum(hit & (y == 0)))
    fn = int(np.sum(~hit & (y == 1)))
    tn = int(np.sum(~hit & (y == 0)))
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "contacted": tp + fp,
        "precision": _r(tp / (tp + fp)) if tp + fp else None,
        "recall": _r(tp / (tp + fn)) if tp + fn else None,
    }


def lift_curve(y: np.ndarray, p: np.ndarray, *, groups: int = 10) -> list[dict[str, Any]]:
    """Per decile of the ranking: rows, churners, rate, lift, cumulative lift and capture."""
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    order = np.argsort(-np.asarray(p, dtype=np.float64), kind="stable")
    ranked = y[order]
    prob = np.asarray(p, dtype=np.float64)[order]
    decile = (np.arange(n) * groups) // n
    total = ranked.sum()
    base = total / n
    rows_d = np.bincount(decile, minlength=groups)
    pos_d = np.bincount(decile, weights=ranked, minlength=groups)
    out = []
    cum_rows = cum_pos = 0.0
    for d in range(groups):
        if rows_d[d] == 0:
            continue
        cum_rows += rows_d[d]
        cum_pos += pos_d[d]
        rate = pos_d[d] / rows_d[d]
        in_d = prob[decile == d]
        out.append(
            {
                "decile": d + 1,
                "rows": int(rows_d[d]),
                "churners": int(pos_d[d]),
                "rate": _r(rate),
                "lift": _r(rate / base) if base else None,
                "cumulative_lift": _r((cum_pos / cum_rows) / base) if base else None,
                "capture": _r(cum_pos / total) if total else None,
                "min_p": _r(float(in_d.min())),
                "max_p": _r(float(in_d.max())),
            }
        )
    return out


def calibration_curve(y: np.ndarray, p: np.ndarray, *, bins: int = BINS) -> list[dict[str, Any]]:
    """Equal-width bins of p: rows, mean predicted probability and observed churn rate per bin."""
    y = np.asarray(y, dtype=np.float64)
    prob = np.asarray(p, dtype=np.float64)
    idx = np.clip(np.floor(prob * bins).astype(np.int64), 0, bins - 1)
    count = np.bincount(idx, minlength=bins)
    sum_p = np.bincount(idx, weights=prob, minlength=bins)
    sum_y = np.bincount(idx, weights=y, minlength=bins)
    out = []
    for b in range(bins):
        c = int(count[b])
        out.append(
            {
                "bin": b + 1,
                "lo": round(b / bins, 6),
                "hi": round((b + 1) / bins, 6),
                "rows": c,
                "mean_p": _r(sum_p[b] / c) if c else None,
                "observed": _r(sum_y[b] / c) if c else None,
            }
        )
    return out


def expected_calibration_error(y: np.ndarray, p: np.ndarray, *, bins: int = BINS) -> float:
    """ECE = Σ_b (n_b / n) · |mean p_b − observed rate_b| over equal-width bins."""
    y = np.asarray(y, dtype=np.float64)
    prob = np.asarray(p, dtype=np.float64)
    idx = np.clip(np.floor(prob * bins).astype(np.int64), 0, bins - 1)
    sum_p = np.bincount(idx, weights=prob, minlength=bins)
    sum_y = np.bincount(idx, weights=y, minlength=bins)
    return float(np.sum(np.abs(sum_p - sum_y)) / y.size)


def top_k_threshold(p: np.ndarray, k: float = TOP_K) -> dict[str, Any]:
    """The threshold that contacts the top ``k`` share: the p of the ⌈k·n⌉-th ranked row."""
    if not 0 < k <= 1:
        raise ModelError(f"top-k share: expected a number in (0, 1], got {k}.")
    prob = np.sort(np.asarray(p, dtype=np.float64))[::-1]
    m = max(1, math.ceil(k * prob.size))
    t = float(prob[m - 1])
    return {"threshold": t, "share": k, "contacted": int(np.sum(prob >= t))}


def expected_value_threshold(
    p: np.ndarray,
    y: np.ndarray | None = None,
    *,
    value: float | Sequence[float] | np.ndarray,
    contact_cost: float,
    save_rate: float,
) -> dict[str, Any]:
    """The threshold that maximises the expected value of contacting everyone at or above it.

    EV(t) = Σ_{p_i ≥ t} (p_i · v_i · s − c); ``value`` is one number or one per row.  Returns the
    threshold, the customers contacted, the expected value and (with ``y``) the value realised on
    the labels, Σ_{p_i ≥ t} (y_i · v_i · s − c).
    """
    prob = np.asarray(p, dtype=np.float64)
    v = np.broadcast_to(np.asarray(value, dtype=np.float64), prob.shape)
    if np.isnan(v).any():
        v = np.nan_to_num(v, nan=0.0)
    if not 0 <= save_rate <= 1:
        raise ModelError(f"save rate: expected a share in [0, 1], got {save_rate}.")
    if contact_cost < 0:
        raise ModelError(f"contact cost: expected a number ≥ 0, got {contact_cost}.")
    order = np.argsort(-prob, kind="stable")
    ps = prob[order]
    gain = ps * v[order] * save_rate - contact_cost
    cum = np.cumsum(gain)
    # a cut may fall only after the last row of a run of equal p
    ends = np.flatnonzero(np.r_[ps[1:] != ps[:-1], True])
    best = ends[np.argmax(cum[ends])] if ends.size else -1
    if best < 0 or cum[best] <= 0:
        t = float(ps[0]) + 1e-9 if ps.size else 1.0
        contacted, ev = 0, 0.0
    else:
        t = float(ps[best])
        contacted, ev = int(best + 1), float(cum[best])
    out: dict[str, Any] = {
        "threshold": t,
        "contacted": contacted,
        "expected_value": round(ev, 4),
        "break_even_p": None,
    }
    if np.ndim(value) == 0 and float(value) * save_rate > 0:
        out["break_even_p"] = _r(contact_cost / (float(value) * save_rate))
    if y is not None:
        yy = np.asarray(y, dtype=np.float64)[order]
        realised = yy * v[order] * save_rate - contact_cost
        out["realised_value"] = round(float(realised[:contacted].sum()), 4)
    return out


def summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of an :func:`evaluate` result (for tables and the registry)."""
    keys = ("n", "positives", "auc", "pr_auc", "lift_at_10", "brier", "ece", "threshold")
    return {k: metrics.get(k) for k in keys}
