"""Per-customer CLV into the store, and the calibration / holdout check.

Non-contractual CLV (BG/NBD × Gamma-Gamma), over ``H`` months with margin share ``m`` and monthly
discount rate ``d``; ``τ`` is one month in the summary's time unit and ``E_i[X(t)]`` the BG/NBD
conditional expected number of purchases in the next ``t`` units::

    CLV_i = Σ_{k=1..H} m · E[Z_i] · (E_i[X(kτ)] − E_i[X((k−1)τ)]) / (1 + d)^k

``E[Z_i]`` is the Gamma-Gamma conditional expected spend per purchase.  ``expected_transactions`` is
``E_i[X(Hτ)]`` and ``p_alive`` the BG/NBD P(alive | x, t_x, T), both at the store's as-of date.
Without amounts (the grocery data) Gamma-Gamma cannot be fitted: expected transactions and P(alive)
are still written, ``clv`` stays empty, and the result says why.

Contractual stores (subscriptions, no transactions) use sBG on every customer's tenure in months —
the months each customer stayed, censored for those still active — and a subscriber with tenure
``n`` months and monthly revenue ``M_i`` gets::

    CLV_i = Σ_{k=1..H} m · M_i · S(n+k)/S(n) / (1 + d)^k

with ``S`` the fitted sBG survival function; ``p_alive`` is 1 (the subscription is active) and
``expected_transactions`` the expected number of paid months in the horizon, Σ S(n+k)/S(n).
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from churnguard.clv.base import ClvDataError, ClvWarning
from churnguard.clv.bgnbd import BetaGeoModel
from churnguard.clv.gamma_gamma import GammaGammaModel
from churnguard.clv.sbg import ShiftedBetaGeoModel
from churnguard.clv.summary import rfm_summary, unit_days
from churnguard.store.connection import Store


@dataclass(frozen=True)
class ClvScores:
    """What ``score_customers`` computed and wrote."""

    as_of: dt.date
    model: str
    horizon_months: int
    discount: float
    margin: float
    customers: int
    total_clv: float | None
    mean_clv: float | None
    mean_p_alive: float
    expected_transactions: float
    fits: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    frame: pd.DataFrame | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "model": self.model,
            "horizon_months": self.horizon_months,
            "discount": self.discount,
            "margin": self.margin,
            "customers": self.customers,
            "total_clv": self.total_clv,
            "mean_clv": self.mean_clv,
            "mean_p_alive": self.mean_p_alive,
            "expected_transactions": self.expected_transactions,
            "fits": self.fits,
            "notes": list(self.notes),
        }


def discounted_clv(
    bgnbd: BetaGeoModel,
    spend: np.ndarray,
    summary: pd.DataFrame,
    *,
    horizon_months: int,
    discount: float,
    margin: float,
    months_in_units: float,
) -> np.ndarray:
    """Σ_{k=1..H} margin · spend · ΔE[X]_k / (1+d)^k  (see the module docstring); vectorised over customers."""
    x, tx, big_t = (summary[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T"))
    total = np.zeros(len(summary))
    prev = np.zeros(len(summary))
    for k in range(1, horizon_months + 1):
        cum = bgnbd.conditional_expected_number_of_purchases_up_to_time(k * months_in_units, x, tx, big_t)
        total += (cum - prev) / (1 + discount) ** k
        prev = cum
    return margin * spend * total


def score_customers(
    store: Store,
    *,
    horizon_months: int = 12,
    discount: float = 0.01,
    margin: float = 0.3,
    time_unit: str = "week",
    approach: str | None = None,
) -> ClvScores:
    """Fit the store's CLV models on all its data to the as-of date, write ``customer_value`` and report.

    ``approach``: ``non_contractual`` (BG/NBD × Gamma-Gamma on transactions) or ``contractual`` (sBG
    on subscription tenure × recurring revenue); by default the store's churn definition decides
    (a contractual store with subscriptions — the demo operator, IBM Telco — is scored with sBG, even
    if it also has bills among its transactions; a store without transactions is contractual).

    Only the columns ``expected_transactions, p_alive, clv, clv_model, as_of, updated_at`` are written:
    an existing row (by ``customer_id``) is updated, keeping its other columns; a new customer gets a row.
    """
    from churnguard.metrics import rules_for

    if horizon_months < 1:
        raise ClvDataError(f"--horizon-months: expected a whole number ≥ 1, got {horizon_months}.")
    if not (0 < margin <= 1):
        raise ClvDataError(f"--margin: expected a share of revenue in (0, 1], got {margin}.")
    if discount <= -1:
        raise ClvDataError(f"--discount: expected a monthly rate > −1 (e.g. 0.01), got {discount}.")
    rules = rules_for(store)
    as_of = rules.as_of
    has_tx = store.execute("SELECT count(*) > 0 FROM transactions").fetchone()[0]
    has_subs = store.execute("SELECT count(*) > 0 FROM subscriptions").fetchone()[0]
    if approach is None:
        approach = (
            "contractual" if (rules.definition == "contractual" and has_subs) or not has_tx else "non_contractual"
        )
    if approach not in ("contractual", "non_contractual"):
        raise ClvDataError(f'CLV approach: expected contractual or non_contractual, got "{approach}".')
    if approach == "non_contractual":
        scores, fits, notes, model = _non_contractual(store, as_of, horizon_months, discount, margin, time_unit)
    else:
        scores, fits, notes, model = _contractual(store, as_of, horizon_months, discount, margin)
    _write(store, scores, as_of, model)
    clv = scores["clv"]
    has_clv = bool(clv.notna().any())
    return ClvScores(
        as_of=as_of,
        model=model,
        horizon_months=horizon_months,
        discount=discount,
        margin=margin,
        customers=len(scores),
        total_clv=float(clv.sum()) if has_clv else None,
        mean_clv=float(clv.mean()) if has_clv else None,
        mean_p_alive=float(scores["p_alive"].mean()),
        expected_transactions=float(scores["expected_transactions"].sum()),
        fits=fits,
        notes=notes,
        frame=scores,
    )


def _non_contractual(
    store: Store, as_of: dt.date, horizon: int, discount: float, margin: float, time_unit: str
) -> tuple[pd.DataFrame, dict[str, Any], list[str], str]:
    summary = rfm_summary(store, observation_end=as_of, time_unit=time_unit)
    bg = BetaGeoModel().fit(summary["frequency"], summary["recency"], summary["T"])
    months = (365.25 / 12) / unit_days(time_unit)
    x, tx, big_t = (summary[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T"))
    out = pd.DataFrame({"customer_id": summary["customer_id"]})
    out["expected_transactions"] = bg.conditional_expected_number_of_purchases_up_to_time(
        horizon * months, x, tx, big_t
    )
    out["p_alive"] = bg.conditional_probability_alive(x, tx, big_t)
    fits: dict[str, Any] = {"bgnbd": bg.result().to_dict()}
    notes: list[str] = []
    repeat = summary["frequency"] > 0
    if summary.loc[repeat, "monetary_value"].isna().any() or not repeat.any():
        notes.append(
            "No transaction amounts for repeat buyers, so Gamma-Gamma cannot be fitted and CLV is left empty; "
            "expected transactions and P(alive) are written. Fix: load amounts to get CLV."
        )
        warnings.warn(notes[-1], ClvWarning, stacklevel=3)
        out["clv"] = np.nan
        return out, fits, notes, "bgnbd"
    gg = GammaGammaModel().fit(summary["frequency"], summary["monetary_value"])
    fits["gamma-gamma"] = gg.result().to_dict()
    spend = gg.conditional_expected_average_profit(summary["frequency"], summary["monetary_value"])
    out["clv"] = discounted_clv(
        bg, spend, summary, horizon_months=horizon, discount=discount, margin=margin, months_in_units=months
    )
    return out, fits, notes, "bgnbd+gamma-gamma"


def _contractual(
    store: Store, as_of: dt.date, horizon: int, discount: float, margin: float
) -> tuple[pd.DataFrame, dict[str, Any], list[str], str]:
    subs = store.execute(
        """
        SELECT customer_id,
               min(start_date) AS start_date,
               CASE WHEN bool_or(end_date IS NULL OR end_date > $as_of) THEN NULL ELSE max(end_date) END AS end_date,
               sum(recurring_revenue) FILTER (WHERE end_date IS NULL OR end_date > $as_of) AS mrr
        FROM subscriptions
        WHERE start_date <= $as_of
        GROUP BY customer_id
        ORDER BY customer_id
        """,
        {"as_of": as_of},
    ).df()
    if subs.empty:
        raise ClvDataError(
            "the store has neither transactions nor subscriptions, so there is nothing to value. "
            "Fix: load a data set (churnguard datasets load cdnow-sample) or ingest transactions."
        )
    end = pd.to_datetime(subs["end_date"]).fillna(pd.Timestamp(as_of))
    months = ((end - pd.to_datetime(subs["start_date"])).dt.days / (365.25 / 12)).to_numpy()
    active = subs["end_date"].isna().to_numpy()
    # A customer who cancelled in month n contributes P(T = n) (n ≥ 1); an active one S(n).
    tenure = np.where(active, np.floor(months), np.maximum(np.ceil(months), 1.0))
    sbg = ShiftedBetaGeoModel().fit_durations(tenure, churned=~active)
    k = np.arange(1, horizon + 1, dtype=np.float64)
    surv = sbg.survival(tenure[:, None] + k[None, :]) / sbg.survival(tenure)[:, None]
    disc = (1 + discount) ** -k
    out = pd.DataFrame({"customer_id": subs["customer_id"]})
    out["expected_transactions"] = np.where(active, surv.sum(axis=1), 0.0)
    out["p_alive"] = active.astype(float)
    mrr = subs["mrr"].to_numpy(dtype=np.float64)
    out["clv"] = np.where(active, margin * np.nan_to_num(mrr) * (surv * disc).sum(axis=1), 0.0)
    notes = ["Contractual store: sBG on monthly tenure (censored for active subscribers); CLV from current MRR."]
    return out, {"sbg": sbg.result().to_dict()}, notes, "sbg"


def _write(store: Store, scores: pd.DataFrame, as_of: dt.date, model: str) -> None:
    """Upsert our columns into ``customer_value`` by ``customer_id``; other columns are kept."""
    frame = scores[["customer_id", "expected_transactions", "p_alive", "clv"]].copy()
    frame["clv"] = frame["clv"].astype("float64")
    store.raw.register("_clv_scores", frame)
    try:
        with store.transaction():
            params = {"as_of": as_of, "model": model}
            store.execute(
                """
                UPDATE customer_value AS cv SET
                  expected_transactions = s.expected_transactions,
                  p_alive = s.p_alive,
                  clv = s.clv,
                  clv_model = $model,
                  as_of = $as_of,
                  updated_at = now()::TIMESTAMP
                FROM _clv_scores AS s
                WHERE cv.customer_id = s.customer_id
                """,
                params,
            )
            store.execute(
                """
                INSERT INTO customer_value
                  (customer_id, as_of, expected_transactions, p_alive, clv, clv_model, updated_at)
                SELECT s.customer_id, $as_of, s.expected_transactions, s.p_alive, s.clv, $model, now()::TIMESTAMP
                FROM _clv_scores AS s
                WHERE NOT EXISTS (SELECT 1 FROM customer_value cv WHERE cv.customer_id = s.customer_id)
                """,
                params,
            )
    finally:
        store.raw.unregister("_clv_scores")


@dataclass(frozen=True)
class HoldoutCheck:
    """Predicted vs actual repeat purchases (purchase days) in the holdout period."""

    calibration_end: dt.date
    observation_end: dt.date
    time_unit: str
    fit: dict[str, Any]
    customers: int
    predicted_total: float
    actual_total: int
    by_frequency: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "calibration_end": self.calibration_end.isoformat(),
            "observation_end": self.observation_end.isoformat(),
            "time_unit": self.time_unit,
            "fit": self.fit,
            "customers": self.customers,
            "predicted_total": self.predicted_total,
            "actual_total": self.actual_total,
            "error_pct": 100.0 * (self.predicted_total - self.actual_total) / self.actual_total
            if self.actual_total
            else None,
            "by_frequency": self.by_frequency,
        }


def holdout_check(
    store: Store,
    *,
    calibration_end: dt.date,
    observation_end: dt.date | None = None,
    time_unit: str = "week",
    max_bucket: int = 7,
) -> HoldoutCheck:
    """Fit BG/NBD on purchases up to ``calibration_end`` and compare its forecast for the holdout
    ``(calibration_end, observation_end]`` with the purchase days that happened there, in total and by
    calibration frequency (0, 1, …, ``max_bucket``+) — the conditional-expectation check of
    Fader, Hardie & Lee (2005, fig. 4)."""
    from churnguard.metrics import rules_for

    if observation_end is None:
        observation_end = rules_for(store).as_of
    if calibration_end >= observation_end:
        raise ClvDataError(
            f"--calibration-end {calibration_end} leaves no holdout period before the end of the data "
            f"({observation_end}). Fix: choose an earlier date."
        )
    s = rfm_summary(store, calibration_end=calibration_end, observation_end=observation_end, time_unit=time_unit)
    bg = BetaGeoModel().fit(s["frequency"], s["recency"], s["T"])
    s["predicted"] = bg.conditional_expected_number_of_purchases_up_to_time(
        s["duration_holdout"], s["frequency"], s["recency"], s["T"]
    )
    s["bucket"] = np.minimum(s["frequency"], max_bucket)
    rows = []
    for bucket, g in s.groupby("bucket", sort=True):
        rows.append(
            {
                "frequency": f"{int(bucket)}+" if bucket == max_bucket else str(int(bucket)),
                "customers": len(g),
                "actual_mean": float(g["frequency_holdout"].mean()),
                "predicted_mean": float(g["predicted"].mean()),
                "actual_total": int(g["frequency_holdout"].sum()),
                "predicted_total": float(g["predicted"].sum()),
            }
        )
    return HoldoutCheck(
        calibration_end=calibration_end,
        observation_end=observation_end,
        time_unit=time_unit,
        fit=bg.result().to_dict(),
        customers=len(s),
        predicted_total=float(s["predicted"].sum()),
        actual_total=int(s["frequency_holdout"].sum()),
        by_frequency=rows,
    )
