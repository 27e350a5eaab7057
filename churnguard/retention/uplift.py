"""Uplift (who responds to treatment): the two-model approach on a measured campaign.

The two-model approach (a "T-learner") fits one success model per arm of a randomised campaign
and takes the difference::

    uplift(x) = P(success | x, treated) − P(success | x, control)

where success is "not churned within the horizon" (retain) or "won back" (win-back), and
``x`` holds what the campaign knew about the customer when it chose them (``campaign_members``:
churn probability, value, value at risk, tier, top reason).  Customers with the largest uplift
are the ones worth treating; the churn model alone ranks by risk, not by response.

It needs a campaign with a control group whose horizon has passed.  The arms are small next to a
churn model's training data (a 10 % control of a few thousand customers), so the model is kept
simple: logistic regression by default, or LightGBM with ``algorithm="lightgbm"``.
:func:`uplift_by_group` checks it: customers grouped by predicted uplift, each group's observed
treated − control difference.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np

from churnguard.errors import ConfigError
from churnguard.store.connection import Store

ALGORITHMS: tuple[str, ...] = ("logistic", "lightgbm")
#: The campaign_members columns used as features.
CAMPAIGN_FEATURES: tuple[str, ...] = ("probability", "value", "value_at_risk", "tier", "top_reason")


class TwoModelUplift:
    """Uplift by the two-model approach: a success model per arm; uplift = the difference of their predictions.

    Parameters
    ----------
    algorithm : ``logistic`` (scaled logistic regression) or ``lightgbm``.
    random_state : seed for the learners.

    Attributes (after :meth:`fit`)
    ------------------------------
    columns_ : the design-matrix columns (numeric features, then one-hot categories).
    model_treated_, model_control_ : the fitted classifiers.
    n_treated_, n_control_ : rows per arm.
    """

    def __init__(self, algorithm: str = "logistic", random_state: int = 0) -> None:
        self.algorithm = algorithm
        self.random_state = random_state

    def _learner(self) -> Any:
        if self.algorithm == "logistic":
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        if self.algorithm == "lightgbm":
            from lightgbm import LGBMClassifier

            return LGBMClassifier(
                n_estimators=200,
                learning_rate=0.05,
                num_leaves=15,
                min_child_samples=40,
                random_state=self.random_state,
                verbose=-1,
            )
        raise ConfigError(f'uplift algorithm: expected one of {", ".join(ALGORITHMS)}, got "{self.algorithm}".')

    def _design(self, X: Any, *, fit: bool) -> np.ndarray:
        import pandas as pd

        frame = pd.DataFrame(X).copy()
        for col in frame.columns:
            if frame[col].dtype == bool:
                frame[col] = frame[col].astype(float)
        categorical = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        numeric = [c for c in frame.columns if c not in categorical]
        if fit:
            self.numeric_ = numeric
            self.medians_ = {c: float(frame[c].median()) if frame[c].notna().any() else 0.0 for c in numeric}
            self.categories_ = {c: sorted(frame[c].astype(str).unique()) for c in categorical}
            self.columns_ = numeric + [f"{c}={v}" for c in categorical for v in self.categories_[c]]
        parts = [frame[c].astype(float).fillna(self.medians_[c]).to_numpy()[:, None] for c in self.numeric_]
        for c, values in self.categories_.items():
            text = frame[c].astype(str).to_numpy() if c in frame.columns else np.full(len(frame), "")
            parts.append((text[:, None] == np.asarray(values)[None, :]).astype(float))
        return np.hstack(parts) if parts else np.zeros((len(frame), 0))

    def fit(self, X: Any, y: Sequence[Any] | np.ndarray, treated: Sequence[Any] | np.ndarray) -> TwoModelUplift:
        """Fit the two arms' models.  ``y`` is 0/1 success, ``treated`` is True for the treated rows."""
        design = self._design(X, fit=True)
        y = np.asarray(y, dtype=float)
        t = np.asarray(treated, dtype=bool)
        if len(y) != len(design) or len(t) != len(design):
            raise ConfigError(f"uplift: X, y and treated must have the same length ({len(design)}).")
        for name, arm in (("treated", t), ("control", ~t)):
            if arm.sum() < 10 or len(np.unique(y[arm])) < 2:
                raise ConfigError(
                    f"uplift: the {name} arm needs at least 10 customers with both outcomes "
                    f"(got {int(arm.sum())} customers, {int(y[arm].sum())} successes)."
                )
        self.model_treated_ = self._learner().fit(design[t], y[t])
        self.model_control_ = self._learner().fit(design[~t], y[~t])
        self.n_treated_, self.n_control_ = int(t.sum()), int((~t).sum())
        return self

    def predict_arms(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(P(success | treated), P(success | control))`` for each row."""
        if not hasattr(self, "model_treated_"):
            raise ConfigError("uplift: call fit() before predict().")
        design = self._design(X, fit=False)
        return self.model_treated_.predict_proba(design)[:, 1], self.model_control_.predict_proba(design)[:, 1]

    def predict(self, X: Any) -> np.ndarray:
        """Predicted uplift: ``P(success | treated) − P(success | control)``."""
        p_t, p_c = self.predict_arms(X)
        return p_t - p_c


def uplift_by_group(uplift: Any, y: Any, treated: Any, *, groups: int = 5) -> Any:
    """Customers ranked by predicted uplift (highest first) in ``groups`` equal groups, with each
    group's mean predicted uplift and its observed ``p_treated − p_control`` (a DataFrame)."""
    import pandas as pd

    u = np.asarray(uplift, dtype=float)
    y = np.asarray(y, dtype=float)
    t = np.asarray(treated, dtype=bool)
    order = np.argsort(-u, kind="stable")
    group = np.empty(len(u), dtype=np.int64)
    group[order] = np.arange(len(u)) * groups // max(len(u), 1)
    rows = []
    for g in range(groups):
        m = group == g
        nt, nc = int((m & t).sum()), int((m & ~t).sum())
        pt = float(y[m & t].mean()) if nt else None
        pc = float(y[m & ~t].mean()) if nc else None
        rows.append(
            {
                "group": g + 1,
                "customers": int(m.sum()),
                "treated": nt,
                "control": nc,
                "predicted_uplift": float(u[m].mean()) if m.any() else None,
                "observed_uplift": None if pt is None or pc is None else pt - pc,
            }
        )
    return pd.DataFrame(rows)


def campaign_uplift(
    store: Store,
    campaign_id: str,
    *,
    algorithm: str = "logistic",
    as_of: dt.date | None = None,
    random_state: int = 0,
) -> tuple[TwoModelUplift, Any]:
    """Fit the two-model uplift on a measured campaign's members.

    Returns the model and the members (:func:`churnguard.retention.campaigns.member_outcomes`)
    with ``uplift``, ``p_treated`` and ``p_control`` columns.
    """
    from churnguard.retention.campaigns import member_outcomes

    frame = member_outcomes(store, campaign_id, as_of=as_of)
    features = frame[list(CAMPAIGN_FEATURES)].copy()
    features["probability"] = features["probability"].astype(float)
    model = TwoModelUplift(algorithm, random_state).fit(features, frame["success"], frame["arm"] == "treatment")
    p_t, p_c = model.predict_arms(features)
    out = frame.assign(p_treated=p_t, p_control=p_c, uplift=p_t - p_c)
    return model, out
