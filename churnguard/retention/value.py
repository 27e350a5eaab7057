"""Value at risk and expected gain: what a customer's churn would cost, and what an action is worth.

Definitions (docs/retention.md, "Prioritisation")::

    value(c)          = customer_value.clv                            where known (churnguard clv score)
                      = Σ margin of c's revenue transactions in (w_to − 365 days, w_to]   otherwise
                        (w_to = the as-of date; for a churned customer, the churn date)
    value at risk(c)  = P(churn within the horizon)(c) × value(c)     (retain)
                      = value(c)                                     (win-back: already lost, P = 1)
    expected gain(c, a) = value at risk(c) × save_rate(a) − cost(a)

A customer with neither a CLV nor a margin has an unknown value (``NULL``): no value at risk
and no expected gain; campaigns exclude them with the reason ``no_value``.

Unpaid debt (the malicious-arrears abandon rule)::

    debt(c, d) = Σ amount of c's transactions with kind = 'bill', ts ≤ d, and no payment by d
                 (paid_at IS NULL or paid_at > d), and — where a due_date column exists — due_date < d

It needs the ``transactions`` attribute columns ``kind`` and ``paid_at`` (the simulator writes
them); :func:`debt_available` says whether a store has them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from churnguard.metrics.loss import revenue_condition
from churnguard.store.connection import Store

#: Days of trailing margin used when a customer has no CLV.
MARGIN_WINDOW_DAYS = 365


def value_at_risk(probability: Any, value: Any) -> np.ndarray:
    """``P(churn within the horizon) × value`` (NaN where either is unknown)."""
    return np.asarray(probability, dtype=float) * np.asarray(value, dtype=float)


def expected_gain(value_at_risk: Any, save_rate: Any, cost: Any) -> np.ndarray:
    """``value at risk × save_rate − cost``: the money an action is expected to keep, net of its cost."""
    return np.asarray(value_at_risk, dtype=float) * np.asarray(save_rate, dtype=float) - np.asarray(cost, dtype=float)


def customer_value_sql(store: Store, targets: str, *, window_days: int = MARGIN_WINDOW_DAYS) -> str:
    """SQL selecting ``customer_id, clv, margin_12m, value, value_basis`` for the rows of ``targets``.

    ``targets`` is a table or CTE name with ``customer_id, w_to`` (the day the value is taken at).
    ``value = coalesce(clv, margin_12m)``; ``value_basis`` is ``clv``, ``margin_12m`` or NULL.
    The margin window is ``(w_to − window_days, w_to]`` by transaction day, revenue rows only
    (:func:`churnguard.metrics.loss.revenue_condition`).
    """
    cond = revenue_condition(store, "t")
    clv = "cv.clv" if store.has_table("customer_value") else "CAST(NULL AS DOUBLE)"
    join_cv = (
        "LEFT JOIN (SELECT customer_id, max(clv) AS clv FROM customer_value GROUP BY customer_id) cv "
        "ON cv.customer_id = g.customer_id"
        if store.has_table("customer_value")
        else ""
    )
    return f"""
    SELECT g.customer_id, {clv} AS clv, m.margin_12m,
           coalesce({clv}, m.margin_12m) AS value,
           CASE WHEN {clv} IS NOT NULL THEN 'clv' WHEN m.margin_12m IS NOT NULL THEN 'margin_12m' END AS value_basis
    FROM {targets} g
    LEFT JOIN (
      SELECT w.customer_id, sum(t.margin) AS margin_12m
      FROM {targets} w JOIN transactions t ON t.customer_id = w.customer_id
      WHERE {cond}
        AND CAST(t.ts AS DATE) <= w.w_to
        AND CAST(t.ts AS DATE) > w.w_to - CAST({int(window_days)} AS INTEGER)
      GROUP BY w.customer_id
    ) m ON m.customer_id = g.customer_id
    {join_cv}
    """


def debt_available(store: Store) -> bool:
    """Whether ``transactions`` carries the ``kind`` and ``paid_at`` columns that unpaid debt needs."""
    cols = {c for c, _ in store.columns("transactions")}
    return {"kind", "paid_at"} <= cols


def debt_sql(store: Store, targets: str) -> str:
    """SQL selecting ``customer_id, debt`` (unpaid bills at ``w_to``; 0 for none) for the rows of ``targets``.

    Only call it where :func:`debt_available` is true.
    """
    cols = {c for c, _ in store.columns("transactions")}
    due = "AND (t.due_date IS NULL OR t.due_date < w.w_to)" if "due_date" in cols else ""
    return f"""
    SELECT g.customer_id, coalesce(d.debt, 0) AS debt
    FROM {targets} g
    LEFT JOIN (
      SELECT w.customer_id, sum(t.amount) AS debt
      FROM {targets} w JOIN transactions t ON t.customer_id = w.customer_id
      WHERE lower(t.kind) = 'bill' AND t.amount IS NOT NULL
        AND CAST(t.ts AS DATE) <= w.w_to
        AND (t.paid_at IS NULL OR CAST(t.paid_at AS DATE) > w.w_to)
        {due}
      GROUP BY w.customer_id
    ) d ON d.customer_id = g.customer_id
    """


def customer_values(store: Store, customer_ids: list[str], as_of: dt.date) -> Any:
    """``customer_id, clv, margin_12m, value, value_basis`` of the given customers at ``as_of`` (a DataFrame)."""
    import pandas as pd

    frame = pd.DataFrame({"customer_id": list(customer_ids), "w_to": as_of})
    store.raw.register("_cg_value_targets", frame)
    try:
        return store.execute(customer_value_sql(store, "_cg_value_targets")).df()
    finally:
        store.raw.unregister("_cg_value_targets")
