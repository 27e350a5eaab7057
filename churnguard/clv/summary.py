"""RFM summaries from the store's transactions, computed in the engine (lifetimes' conventions).

Transactions are first collapsed to purchase *days* (several purchases on one day are one purchase,
their amounts summed).  For each customer whose first purchase day ``d_0`` is on or before the end of
the calibration period ``c``, with purchase days ``d_0 < d_1 < … < d_x`` up to ``c``::

    frequency      x   = number of purchase days − 1          (repeat purchases)
    recency        t_x = (d_x − d_0) / u                       (0 when x = 0)
    T                  = (c − d_0) / u
    monetary_value     = mean day amount over d_1 … d_x         (0 when x = 0; NULL when amounts are missing)

where ``u`` is the time unit in days (day 1, week 7, month 365.25/12).  With a holdout period
``(c, h]`` two more columns count the purchase days in it (``frequency_holdout``) and give its length
(``duration_holdout``, in units).  These are the definitions of the CDNOW summaries in the BG/NBD
literature (e.g. customer 1 of the CDNOW sample: x = 2, t_x = 30.43, T = 38.86 weeks at c = 1997-09-30).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from churnguard.clv.base import ClvDataError
from churnguard.store.connection import Store

#: Days per time unit.
TIME_UNITS: dict[str, float] = {"day": 1.0, "week": 7.0, "month": 365.25 / 12}


def unit_days(time_unit: str) -> float:
    try:
        return TIME_UNITS[time_unit]
    except KeyError:
        raise ClvDataError(f'time unit: expected one of {", ".join(TIME_UNITS)}, got "{time_unit}".') from None


def rfm_summary(
    store: Store,
    *,
    calibration_end: dt.date | None = None,
    observation_end: dt.date | None = None,
    time_unit: str = "week",
) -> pd.DataFrame:
    """One row per customer: ``customer_id, frequency, recency, T, monetary_value`` (+ holdout columns).

    Parameters
    ----------
    store : an open store with transactions.
    calibration_end : last day of the calibration period (default: ``observation_end``).
    observation_end : last day of the data (default: the store's as-of date).  When it is after
        ``calibration_end``, ``frequency_holdout`` and ``duration_holdout`` are added.
    time_unit : day, week or month.
    """
    from churnguard.metrics import rules_for

    u = unit_days(time_unit)
    if observation_end is None:
        observation_end = rules_for(store).as_of
    if calibration_end is None:
        calibration_end = observation_end
    if calibration_end > observation_end:
        raise ClvDataError(
            f"calibration end {calibration_end} is after the end of the data {observation_end}. "
            "Fix: choose an earlier --calibration-end."
        )
    from churnguard.metrics.loss import purchase_condition

    # Payments, refunds and credits (a ``kind`` column) are cash movements, not purchases.
    purchases = purchase_condition(store)
    sql = f"""
        WITH days AS (
          SELECT customer_id, CAST(ts AS DATE) AS day, sum(amount) AS amount, count(amount) AS n_amount
          FROM transactions t
          WHERE CAST(ts AS DATE) <= $obs_end AND {purchases}
          GROUP BY customer_id, CAST(ts AS DATE)
        ), ranked AS (
          SELECT *, min(day) OVER (PARTITION BY customer_id) AS first_day FROM days
        ), cal AS (
          SELECT
            customer_id,
            count(*) FILTER (WHERE day <= $cal_end) - 1 AS frequency,
            date_diff('day', min(first_day), max(day) FILTER (WHERE day <= $cal_end)) / $u AS recency,
            date_diff('day', min(first_day), CAST($cal_end AS DATE)) / $u AS "T",
            coalesce(avg(amount) FILTER (WHERE day <= $cal_end AND day > first_day), 0.0) AS monetary_value,
            count(*) FILTER (WHERE day <= $cal_end AND day > first_day AND n_amount = 0) AS missing_amounts,
            count(*) FILTER (WHERE day > $cal_end) AS frequency_holdout
          FROM ranked
          GROUP BY customer_id
          HAVING min(first_day) <= $cal_end
        )
        SELECT customer_id, frequency, recency, "T",
               CASE WHEN missing_amounts > 0 THEN NULL ELSE monetary_value END AS monetary_value,
               frequency_holdout,
               date_diff('day', CAST($cal_end AS DATE), CAST($obs_end AS DATE)) / $u AS duration_holdout
        FROM cal
        ORDER BY customer_id
    """
    df = store.execute(sql, {"cal_end": calibration_end, "obs_end": observation_end, "u": u}).df()
    if df.empty:
        raise ClvDataError(
            f"no customer made a purchase on or before {calibration_end}. "
            "Fix: load transactions (churnguard ingest transactions FILE) or choose a later calibration end."
        )
    df["frequency"] = df["frequency"].astype("int64")
    df["frequency_holdout"] = df["frequency_holdout"].astype("int64")
    if calibration_end == observation_end:
        df = df.drop(columns=["frequency_holdout", "duration_holdout"])
    df.attrs.update({"calibration_end": calibration_end, "observation_end": observation_end, "time_unit": time_unit})
    return df
