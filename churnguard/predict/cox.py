"""The survival view of early warning: Cox proportional hazards on the point-in-time features.

Each feature row is a customer at an observation date, followed until churn or the end of the
data: duration ``days_to_churn``, event ``churned``.  The model is

    h(t | x) = h0(t) · exp(β · z),   z = (x − median-imputed mean) / sd  (standardised features)

fitted by lifelines (ridge penalty 0.05 for stability with correlated behaviour features).
Its quality is the concordance index on the held-out (latest) observation date: the share of
comparable pairs whose predicted risk order matches the order in which they churned.

The expected time to churn is the restricted mean survival time within the follow-up the data
allow (τ = the longest observed duration):

    E[T ∧ τ | x] = ∫₀^τ S(t | x) dt,   S(t | x) = exp(−H0(t) · exp(β · z))

computed from the saved coefficients and baseline on a grid, so scoring needs no lifelines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnguard.errors import ChurnguardError

COX_FILE = "cox.json"
PENALIZER = 0.05
GRID_POINTS = 64
MAX_ROWS = 40_000


class CoxFitError(ChurnguardError):
    """The Cox model could not be fitted on these features."""

    exit_code = 3


@dataclass
class CoxModel:
    """A fitted Cox model: what scoring needs, as plain numbers."""

    features: list[str]
    centre: np.ndarray
    scale: np.ndarray
    fill: np.ndarray
    beta: np.ndarray
    offset: float
    grid: np.ndarray
    baseline: np.ndarray  # H0 on the grid
    concordance_train: float
    concordance_test: float | None
    rows: int
    events: int

    def _z(self, frame: pd.DataFrame) -> np.ndarray:
        x = np.column_stack([pd.to_numeric(frame[f], errors="coerce").to_numpy(dtype=float) for f in self.features])
        x = np.where(np.isnan(x), self.fill, x)
        return (x - self.centre) / self.scale

    def risk(self, frame: pd.DataFrame) -> np.ndarray:
        """The relative hazard exp(β·z − offset) of each row."""
        return np.exp(self._z(frame) @ self.beta - self.offset)

    def expected_days(self, frame: pd.DataFrame, *, chunk: int = 200_000) -> np.ndarray:
        """Restricted mean days to churn within the follow-up (see the module docstring)."""
        widths = np.diff(np.concatenate([[0.0], self.grid]))
        out = np.empty(len(frame))
        risk = self.risk(frame)
        for lo in range(0, len(frame), chunk):  # chunks of rows bound the memory (rows × grid)
            r = risk[lo : lo + chunk, None]
            surv = np.exp(-self.baseline[None, :] * r)
            left = np.concatenate([np.ones((len(r), 1)), surv[:, :-1]], axis=1)
            out[lo : lo + chunk] = ((left + surv) / 2 * widths).sum(axis=1)
        return out

    def summary(self) -> dict[str, Any]:
        order = np.argsort(-np.abs(self.beta))
        return {
            "concordance_train": round(self.concordance_train, 4),
            "concordance_test": None if self.concordance_test is None else round(self.concordance_test, 4),
            "rows": self.rows,
            "events": self.events,
            "follow_up_days": float(self.grid[-1]),
            "hazard_ratios": [
                {"feature": self.features[i], "hazard_ratio_per_sd": round(float(np.exp(self.beta[i])), 4)}
                for i in order[:10]
            ],
        }

    def save(self, path: Path) -> None:
        data = {
            "features": self.features,
            "centre": self.centre.tolist(),
            "scale": self.scale.tolist(),
            "fill": self.fill.tolist(),
            "beta": self.beta.tolist(),
            "offset": self.offset,
            "grid": self.grid.tolist(),
            "baseline": self.baseline.tolist(),
            "concordance_train": self.concordance_train,
            "concordance_test": self.concordance_test,
            "rows": self.rows,
            "events": self.events,
        }
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / COX_FILE).write_text(json.dumps(data))


def load_cox(path: Path) -> CoxModel | None:
    """The Cox model saved beside a model, or ``None`` when none was fitted."""
    file = Path(path) / COX_FILE
    if not file.exists():
        return None
    d = json.loads(file.read_text())
    arr = {k: np.asarray(d[k], dtype=float) for k in ("centre", "scale", "fill", "beta", "grid", "baseline")}
    return CoxModel(
        features=list(d["features"]),
        offset=float(d["offset"]),
        concordance_train=float(d["concordance_train"]),
        concordance_test=d["concordance_test"],
        rows=int(d["rows"]),
        events=int(d["events"]),
        **arr,
    )


def fit_cox(
    train: pd.DataFrame,
    test: pd.DataFrame | None = None,
    *,
    features: list[str],
    duration: str = "days_to_churn",
    event: str = "churned",
    seed: int = 0,
) -> CoxModel:
    """Fit the Cox model on ``train`` (numeric features only), scored for concordance on ``test``."""
    from lifelines import CoxPHFitter
    from lifelines.utils import concordance_index

    numeric = [f for f in features if f in train.columns and pd.api.types.is_numeric_dtype(train[f])]
    if train[event].sum() < 10 or not numeric:
        raise CoxFitError("fewer than 10 churns or no numeric features: no Cox model")
    sample = train.sample(n=MAX_ROWS, random_state=seed) if len(train) > MAX_ROWS else train
    x = sample[numeric].astype(float)
    fill = x.median().fillna(0.0)
    x = x.fillna(fill)
    centre, scale = x.mean(), x.std(ddof=0)
    keep = [f for f in numeric if scale[f] > 0]
    z = (x[keep] - centre[keep]) / scale[keep]
    data = z.assign(_duration=np.maximum(sample[duration].to_numpy(dtype=float), 0.5), _event=sample[event].to_numpy())
    cph = CoxPHFitter(penalizer=PENALIZER)
    try:
        cph.fit(data, duration_col="_duration", event_col="_event")
    except Exception as exc:  # lifelines raises ConvergenceError and numpy errors
        raise CoxFitError(f"the Cox fit did not converge: {exc}") from exc
    beta = cph.params_[keep].to_numpy(dtype=float)
    offset = float(np.asarray(cph._norm_mean[keep], dtype=float) @ beta) if hasattr(cph, "_norm_mean") else 0.0
    h0 = cph.baseline_cumulative_hazard_.iloc[:, 0]
    tau = float(h0.index.max())
    grid = np.linspace(tau / GRID_POINTS, tau, GRID_POINTS)
    baseline = np.interp(grid, h0.index.to_numpy(dtype=float), h0.to_numpy(dtype=float))
    model = CoxModel(
        features=keep,
        centre=centre[keep].to_numpy(),
        scale=scale[keep].to_numpy(),
        fill=fill[keep].to_numpy(),
        beta=beta,
        offset=offset,
        grid=grid,
        baseline=baseline,
        concordance_train=float(cph.concordance_index_),
        concordance_test=None,
        rows=len(sample),
        events=int(sample[event].sum()),
    )
    if test is not None and len(test) and test[event].sum() > 0:
        model.concordance_test = float(
            concordance_index(test[duration].to_numpy(), -model.risk(test), test[event].to_numpy())
        )
    return model
