"""Time-based backtest: train on earlier dates, test on each later one.

The distinct dates of ``time_col`` are sorted.  With at most :data:`DISCRETE_DATES` distinct
dates (observation dates of a point-in-time data set), fold k of ``folds`` tests on the k-th of
the last ``folds`` dates; otherwise the rows are cut by date into ``folds + 1`` blocks of about
equal size and fold k tests on block k + 1.  Each fold trains (:func:`churnguard.predict.train`,
its own time-based validation inside) only on rows dated before the test period, and at least
``gap_days`` before it — so no fold ever trains on a date at or after one it tests on.  With a
horizon of h days, ``gap_days = h`` keeps every training label resolved before the test date.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from churnguard.predict.errors import ModelError, table_problem

DISCRETE_DATES = 60


def _day(d: float) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=int(d))).isoformat()


def backtest_periods(days: np.ndarray, folds: int) -> list[tuple[float, float]]:
    """The test periods [from, to] (days since 1970), oldest first."""
    dates = np.unique(days[np.isfinite(days)])
    if dates.size < folds + 1:
        raise ModelError(
            f"backtest: {folds} folds need at least {folds + 1} distinct dates, the time column has {dates.size}. "
            "Fix: fewer folds, or more observation dates."
        )
    if dates.size <= DISCRETE_DATES:
        return [(float(d), float(d)) for d in dates[-folds:]]
    edges = np.quantile(days[np.isfinite(days)], np.linspace(0, 1, folds + 2))
    periods = []
    for k in range(1, folds + 1):
        lo, hi = edges[k], edges[k + 1]
        later = dates[dates >= lo]
        lo = float(later[0]) if later.size else float(lo)
        periods.append((lo, float(hi)))
    return periods


def backtest(
    frame: pd.DataFrame,
    *,
    label: str,
    time_col: str,
    folds: int = 3,
    gap_days: int = 0,
    **train_kwargs: Any,
) -> list[dict[str, Any]]:
    """Per fold: train/test date ranges, row counts and the test metrics (auc, pr_auc, lift_at_10, brier, ece).

    ``train_kwargs`` go to :func:`churnguard.predict.train` (``id_col``, ``algorithm``, ``catalog``,
    ``seed``, ``drop``, ``positive`` …).
    """
    from churnguard.predict.evaluation import evaluate
    from churnguard.predict.models import train
    from churnguard.predict.tabular import label_vector, to_days

    if folds < 1:
        raise ModelError(f"backtest: expected at least 1 fold, got {folds}.")
    if time_col not in frame.columns:
        raise table_problem("table", time_col, "the time column", "no such column")
    days = to_days(frame[time_col], None)
    periods = backtest_periods(days, folds)
    y_all, _ = label_vector(frame, label, train_kwargs.get("positive"), source=train_kwargs.get("source", "table"))
    out: list[dict[str, Any]] = []
    for k, (lo, hi) in enumerate(periods, start=1):
        test = (days >= lo) & (days <= hi) & ~np.isnan(y_all)
        train_rows = (days < lo) & (days <= lo - gap_days)
        fold: dict[str, Any] = {
            "fold": k,
            "test_from": _day(lo),
            "test_to": _day(hi),
            "n_test": int(test.sum()),
            "positives_test": int(np.nansum(y_all[test])),
            "n_train": int(train_rows.sum()),
        }
        if train_rows.any():
            fold["train_from"] = _day(float(np.nanmin(days[train_rows])))
            fold["train_to"] = _day(float(np.nanmax(days[train_rows])))
        try:
            model = train(frame.loc[train_rows], label=label, time_col=time_col, **train_kwargs)
        except (ModelError, ValueError) as exc:
            fold["skipped"] = str(exc).splitlines()[0]
            out.append(fold)
            continue
        p = model.predict(frame.loc[test])
        y = y_all[test]
        metrics = evaluate(y, p)
        fold.update({m: metrics[m] for m in ("auc", "pr_auc", "lift_at_10", "brier", "ece")})
        fold["algorithm"] = model.algorithm
        out.append(fold)
    return out


def backtest_summary(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and range of the folds' AUC and lift (folds that ran)."""
    ran = [f for f in folds if f.get("auc") is not None]
    if not ran:
        return {"folds": len(folds), "ran": 0}
    auc = np.array([f["auc"] for f in ran])
    lift = np.array([f["lift_at_10"] for f in ran if f.get("lift_at_10") is not None])
    return {
        "folds": len(folds),
        "ran": len(ran),
        "auc_mean": round(float(auc.mean()), 6),
        "auc_min": round(float(auc.min()), 6),
        "auc_max": round(float(auc.max()), 6),
        "lift_at_10_mean": round(float(lift.mean()), 6) if lift.size else None,
    }
