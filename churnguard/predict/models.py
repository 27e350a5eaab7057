"""Training the early-warning models: logistic regression and LightGBM, calibrated.

:func:`train` turns a frame with a label column into a :class:`TrainedModel`:

1. the column plan (:func:`churnguard.predict.tabular.infer_plan`): which columns are features, how
   each is encoded, which are dropped and why;
2. a validation split: the latest dates of ``time_col`` when given (the model is judged on a later
   period than it learnt from), else a stratified random 20 % (``seed``);
3. the model on the training part:

   - ``logistic``: median imputation plus a missing-indicator per column with missing values,
     one-hot levels, every design column standardised (z = (x − mean) / sd), L2-penalised logistic
     regression with C ∈ {0.01, 0.1, 1, 10} chosen by validation log loss;
   - ``lightgbm``: gradient-boosted trees with native categorical splits and missing
     values left missing (:data:`LGBM_PARAMS`), early stopping on the validation log loss;
   - ``blend`` (default): both, and the blend of their log-odds
     m = w · m_lightgbm + (1 − w) · m_logistic with the weight w ∈ {0, 0.1, …, 1} of the lowest
     validation log loss; w = 1 keeps LightGBM alone and w = 0 the logistic regression (recorded
     as that algorithm), so the blend never does worse on validation than either model;
   - ``auto``: both, the one with the higher validation AUC is kept (recorded in the metadata);

4. calibration chosen on the validation predictions by 5-fold cross-validated Brier score among
   ``none`` (σ(margin)), ``platt`` (σ(a · margin + b)) and ``isotonic`` (a monotone step function
   of σ(margin)); ``none`` stays unless another lowers the Brier score by 0.5 % or more;
5. the validation metrics (:func:`churnguard.predict.evaluation.evaluate` on the cross-validated
   calibrated predictions), global importance, the logistic-regression driver table and partial
   dependence of the top drivers;
6. (``refit=True``) the model refitted on all rows with the chosen settings (the number of trees,
   C, the blend weight); the calibrator fitted on validation stays.

Every model also fits the logistic regression for its driver table: standardised coefficients with
their sign, the classic "which factors relate to churn" analysis.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import secrets
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnguard.predict.errors import ModelError, ModelFormatError, table_problem
from churnguard.predict.tabular import TablePlan, check_options, infer_plan, label_vector

#: Version 2 adds the blend (``blend_weight``); other models are still written as version 1.
FORMAT_VERSION = 2
ALGORITHMS = ("lightgbm", "logistic", "blend", "auto")
DEFAULT_ALGORITHM = "blend"
N_JOBS = 2
#: Below this many rows LightGBM runs on one thread: OpenMP threads cost more than they give on small
#: data, and far more when the machine's cores are busy.
THREADS_MIN_ROWS = 50_000
MODEL_FILE = "model.json"
BOOSTER_FILE = "booster.txt"
#: LightGBM settings for small and medium tables (deterministic for a given seed and thread count).
LGBM_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.03,
    "num_leaves": 7,
    "min_child_samples": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "cat_smooth": 10.0,
    "min_data_per_group": 50,
    "max_cat_to_onehot": 8,
    "max_bin": 255,
    "num_threads": N_JOBS,
    "deterministic": True,
    "force_col_wise": True,
    "verbose": -1,
}
MAX_ROUNDS = 2000
#: From this many training rows on, the learning rate is 0.05 (fewer trees, faster training).
FAST_RATE_ROWS = 50_000
#: ``num_leaves`` tried on the validation data (tables up to LEAVES_GRID_MAX_ROWS training rows).
#: Small trees keep the exact reasons fast: a tree's SHAP values are tabulated per cell of its
#: splits (:mod:`churnguard.predict.treeshap`), and the cells multiply with the features per tree.
LEAVES_GRID = (4, 7)
LEAVES_GRID_MAX_ROWS = 300_000
EARLY_STOPPING = 100
LOGISTIC_CS = (0.01, 0.1, 1.0, 10.0)
#: Weights of LightGBM's log-odds tried for the blend (the rest is the logistic regression's).
BLEND_WEIGHTS = tuple(k / 10 for k in range(11))
CALIBRATION_GAIN = 0.005
#: Rows used for the global importance and the partial dependence (a seeded sample of validation).
EXPLAIN_SAMPLE = 5000
PD_SAMPLE = 1000
PD_FEATURES = 5
PD_POINTS = 10
#: The logistic-regression driver table is fitted on at most this many rows (a seeded sample).
LOGISTIC_MAX_ROWS = 500_000
#: Risk bands from the validation scores: ``high`` = top 10 %, ``medium`` = the next 20 %.
BAND_SHARES = (("high", 0.10), ("medium", 0.30))


def threads_for(rows: int) -> int:
    """Threads for LightGBM on ``rows`` rows: 1 for small inputs, else :data:`N_JOBS`."""
    return 1 if rows < THREADS_MIN_ROWS else N_JOBS


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(q / (1 - q))


# -- calibration -----------------------------------------------------------------------------


class Calibrator:
    """Maps the raw log-odds (margin) to a calibrated probability.

    ``none``: p = σ(m); ``platt``: p = σ(a · m + b); ``isotonic``: p = linear interpolation of the
    fitted step function at σ(m) (clipped at the ends).
    """

    def __init__(self, method: str = "none", *, a: float = 1.0, b: float = 0.0, x=None, y=None) -> None:
        self.method = method
        self.a = float(a)
        self.b = float(b)
        self.x = None if x is None else np.asarray(x, dtype=np.float64)
        self.y = None if y is None else np.asarray(y, dtype=np.float64)

    def __call__(self, margin: np.ndarray) -> np.ndarray:
        m = np.asarray(margin, dtype=np.float64)
        if self.method == "platt":
            return sigmoid(self.a * m + self.b)
        if self.method == "isotonic" and self.x is not None and self.y is not None:
            return np.interp(sigmoid(m), self.x, self.y)
        return sigmoid(m)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method}
        if self.method == "platt":
            out.update(a=self.a, b=self.b)
        if self.method == "isotonic" and self.x is not None and self.y is not None:
            out.update(x=[float(v) for v in self.x], y=[float(v) for v in self.y])
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibrator:
        return cls(
            data.get("method", "none"), a=data.get("a", 1.0), b=data.get("b", 0.0), x=data.get("x"), y=data.get("y")
        )

    @classmethod
    def fit(cls, method: str, margin: np.ndarray, y: np.ndarray) -> Calibrator:
        if method == "platt":
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=1e6, max_iter=1000).fit(margin.reshape(-1, 1), y)
            return cls("platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
        if method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(sigmoid(margin), y)
            return cls("isotonic", x=iso.X_thresholds_, y=iso.y_thresholds_)
        return cls("none")


def choose_calibration(
    margin: np.ndarray, y: np.ndarray, *, seed: int = 0, folds: int = 5
) -> tuple[Calibrator, dict[str, Any], np.ndarray]:
    """Pick none / platt / isotonic by cross-validated Brier score on validation predictions.

    Returns the calibrator fitted on all of ``margin``, the per-method Brier scores, and the
    cross-validated calibrated predictions of the chosen method (honest validation probabilities).
    """
    none = sigmoid(margin)
    positives = int(y.sum())
    if positives < 2 * folds or len(y) - positives < 2 * folds:
        return Calibrator("none"), {"note": "too few validation rows of each class to calibrate"}, none
    from sklearn.model_selection import StratifiedKFold

    preds = {"none": none, "platt": np.empty_like(none), "isotonic": np.empty_like(none)}
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(margin, y):
        for method in ("platt", "isotonic"):
            preds[method][te] = Calibrator.fit(method, margin[tr], y[tr])(margin[te])
    brier = {m: float(np.mean((v - y) ** 2)) for m, v in preds.items()}
    best = min(("platt", "isotonic"), key=lambda m: brier[m])
    chosen = best if brier[best] < brier["none"] * (1 - CALIBRATION_GAIN) else "none"
    info = {"brier_cv": {m: round(v, 6) for m, v in brier.items()}, "folds": folds}
    return Calibrator.fit(chosen, margin, y), info, preds[chosen]


# -- logistic regression ---------------------------------------------------------------------


class LinearModel:
    """Standardised logistic regression over a design built from the column plan.

    Design columns: per numeric/binary/date feature its median-imputed value (and a 0/1
    missing-indicator when training had missing values); per categorical feature one 0/1 column per
    level.  z = (x − mean) / sd; margin = b + Σ_k β_k z_k.  A feature's contribution is the sum of
    β_k z_k over its design columns, so contributions + b = margin.
    """

    def __init__(
        self,
        columns: list[dict[str, Any]],
        medians: list[float | None],
        mean: np.ndarray,
        scale: np.ndarray,
        coef: np.ndarray | None = None,
        intercept: float = 0.0,
        c: float | None = None,
    ) -> None:
        self.columns = columns
        self.medians = medians
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.coef = None if coef is None else np.asarray(coef, dtype=np.float64)
        self.intercept = float(intercept)
        self.c = c

    @classmethod
    def design_for(cls, plan: TablePlan, X: np.ndarray) -> LinearModel:
        columns: list[dict[str, Any]] = []
        medians: list[float | None] = []
        for j, f in enumerate(plan.features):
            x = X[:, j]
            if f.kind == "categorical":
                medians.append(None)
                for code, level in enumerate(f.levels or []):
                    columns.append({"feature": j, "kind": "level", "code": code, "level": level})
                continue
            finite = x[np.isfinite(x)]
            medians.append(float(np.median(finite)) if finite.size else 0.0)
            columns.append({"feature": j, "kind": "value"})
            if finite.size < x.size:
                columns.append({"feature": j, "kind": "missing"})
        model = cls(columns, medians, np.zeros(len(columns)), np.ones(len(columns)))
        raw = model._raw(X)
        model.mean = raw.mean(axis=0)
        sd = raw.std(axis=0)
        model.scale = np.where(sd > 0, sd, 1.0)
        return model

    def _raw(self, X: np.ndarray) -> np.ndarray:
        out = np.empty((X.shape[0], len(self.columns)), dtype=np.float64)
        for k, col in enumerate(self.columns):
            x = X[:, col["feature"]]
            if col["kind"] == "value":
                out[:, k] = np.where(np.isfinite(x), x, self.medians[col["feature"]])
            elif col["kind"] == "missing":
                out[:, k] = ~np.isfinite(x)
            else:
                out[:, k] = x == col["code"]
        return out

    def design(self, X: np.ndarray) -> np.ndarray:
        """The standardised design matrix z."""
        return (self._raw(X) - self.mean) / self.scale

    def margin(self, X: np.ndarray) -> np.ndarray:
        assert self.coef is not None
        return self.design(X) @ self.coef + self.intercept

    def contributions(self, X: np.ndarray, n_features: int) -> np.ndarray:
        """(rows × features) β_k z_k summed per feature; their row sums + intercept = margin."""
        assert self.coef is not None
        z = self.design(X) * self.coef
        owner = np.array([c["feature"] for c in self.columns], dtype=np.int64)
        agg = np.zeros((len(self.columns), n_features))
        agg[np.arange(len(self.columns)), owner] = 1.0
        return z @ agg

    def fit(self, X: np.ndarray, y: np.ndarray, c: float) -> LinearModel:
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=c, max_iter=2000).fit(self.design(X), y)
        self.coef = lr.coef_[0].astype(np.float64)
        self.intercept = float(lr.intercept_[0])
        self.c = c
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "medians": self.medians,
            "mean": [float(v) for v in self.mean],
            "scale": [float(v) for v in self.scale],
            "coef": None if self.coef is None else [float(v) for v in self.coef],
            "intercept": self.intercept,
            "C": self.c,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinearModel:
        return cls(
            list(data["columns"]),
            list(data["medians"]),
            np.asarray(data["mean"]),
            np.asarray(data["scale"]),
            None if data.get("coef") is None else np.asarray(data["coef"]),
            float(data.get("intercept", 0.0)),
            data.get("C"),
        )

    def driver_table(self, plan: TablePlan) -> list[dict[str, Any]]:
        """Standardised coefficients with sign, largest |β| first (odds ratio per 1 sd = e^β)."""
        assert self.coef is not None
        rows = []
        for col, beta in zip(self.columns, self.coef, strict=True):
            f = plan.features[col["feature"]]
            term = f.name
            if col["kind"] == "level":
                term = f"{f.name} = {col['level']}"
            elif col["kind"] == "missing":
                term = f"{f.name} is missing"
            rows.append(
                {
                    "term": term,
                    "feature": f.name,
                    "category": f.category,
                    "coefficient": round(float(beta), 6),
                    "odds_ratio": round(float(math.exp(beta)), 6),
                    "direction": "raises churn" if beta > 0 else "lowers churn" if beta < 0 else "none",
                }
            )
        rows.sort(key=lambda r: -abs(r["coefficient"]))
        return rows


def _fit_logistic(
    plan: TablePlan, X: np.ndarray, y: np.ndarray, Xv: np.ndarray | None, yv: np.ndarray | None
) -> tuple[LinearModel, dict[str, Any]]:
    """Choose C on validation log loss (when given), fit; returns the model and the choice."""
    lin = LinearModel.design_for(plan, X)
    if Xv is None or yv is None or len(np.unique(yv)) < 2:
        return lin.fit(X, y, 1.0), {"C": 1.0}
    losses = {}
    best: LinearModel | None = None
    for c in LOGISTIC_CS:
        m = LinearModel.design_for(plan, X).fit(X, y, c)
        p = np.clip(sigmoid(m.margin(Xv)), 1e-12, 1 - 1e-12)
        losses[c] = float(-np.mean(yv * np.log(p) + (1 - yv) * np.log(1 - p)))
        if best is None or losses[c] < losses[best.c or 1.0]:
            best = m
    assert best is not None
    return best, {"C": best.c, "log_loss_by_C": {str(k): round(v, 6) for k, v in losses.items()}}


def log_loss(y: np.ndarray, margin: np.ndarray) -> float:
    """Mean log loss of σ(margin): −(1/n) Σ [y log p + (1 − y) log(1 − p)]."""
    p = np.clip(sigmoid(margin), 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def choose_blend_weight(
    margin_lightgbm: np.ndarray, margin_logistic: np.ndarray, y: np.ndarray
) -> tuple[float, dict[str, float]]:
    """The weight w ∈ :data:`BLEND_WEIGHTS` minimising the log loss of w · m_lightgbm + (1 − w) · m_logistic
    on validation rows (ties: the larger w); returns w and the log loss per weight."""
    losses = {w: log_loss(y, w * margin_lightgbm + (1 - w) * margin_logistic) for w in BLEND_WEIGHTS}
    best = min(sorted(losses, reverse=True), key=lambda w: losses[w])
    return best, {f"{w:.1f}": round(v, 6) for w, v in losses.items()}


# -- LightGBM --------------------------------------------------------------------------------


def _lgbm_params(seed: int, n_train: int, params: Mapping[str, Any] | None) -> dict[str, Any]:
    p = dict(LGBM_PARAMS)
    # small tables: fewer rows per leaf, or the trees cannot split at all
    p["min_child_samples"] = int(min(p["min_child_samples"], max(5, n_train // 50)))
    p["min_data_per_group"] = int(min(p["min_data_per_group"], max(5, n_train // 50)))
    p["seed"] = int(seed)
    p["num_threads"] = threads_for(n_train)
    if n_train >= FAST_RATE_ROWS:
        p["learning_rate"] = 0.05
    p.update(params or {})
    return p


def _fit_lightgbm(
    plan: TablePlan,
    X: np.ndarray,
    y: np.ndarray,
    Xv: np.ndarray | None,
    yv: np.ndarray | None,
    *,
    seed: int,
    params: Mapping[str, Any] | None,
    rounds: int | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Fit a booster; with validation data, early stopping picks the number of trees and (on tables
    up to :data:`LEAVES_GRID_MAX_ROWS` rows, unless ``params`` sets it) the validation log loss picks
    ``num_leaves`` from :data:`LEAVES_GRID`."""
    import lightgbm as lgb

    p = _lgbm_params(seed, len(y), params)
    cats = [j for j, f in enumerate(plan.features) if f.kind == "categorical"]
    names = [f"f{j}" for j in range(len(plan.features))]
    dtrain = lgb.Dataset(X, y, feature_name=names, categorical_feature=cats, free_raw_data=False)
    if rounds is not None or Xv is None or yv is None:
        n_rounds = rounds or 200
        booster = lgb.train(p, dtrain, num_boost_round=n_rounds)
        return booster, {"params": p, "rounds": n_rounds}
    dval = lgb.Dataset(Xv, yv, reference=dtrain, feature_name=names, categorical_feature=cats, free_raw_data=False)
    grid = [p["num_leaves"]]
    if "num_leaves" not in (params or {}) and len(y) <= LEAVES_GRID_MAX_ROWS:
        grid = list(LEAVES_GRID)
    tried: dict[int, float] = {}
    best: tuple[float, Any, dict[str, Any]] | None = None
    for leaves in grid:
        q = {**p, "num_leaves": leaves}
        booster = lgb.train(
            q,
            dtrain,
            num_boost_round=MAX_ROUNDS,
            valid_sets=[dval],
            valid_names=["validation"],
            callbacks=[lgb.early_stopping(EARLY_STOPPING, first_metric_only=True, verbose=False)],
        )
        loss = float(booster.best_score["validation"]["binary_logloss"])
        tried[leaves] = round(loss, 6)
        if best is None or loss < best[0]:
            best = (loss, booster, q)
    assert best is not None
    _, booster, q = best
    rounds_best = int(booster.best_iteration or booster.current_iteration())
    return booster, {"params": q, "rounds": rounds_best, "num_leaves_log_loss": tried}


# -- the trained model -----------------------------------------------------------------------


class TrainedModel:
    """A trained, calibrated churn model with its column plan and metadata.

    Attributes: ``model_id``, ``algorithm`` (lightgbm | logistic | blend), ``blend_weight`` (blend: the
    weight w of LightGBM's log-odds), ``features`` (feature names in model order), ``metrics`` (dict;
    ``validation`` holds :func:`evaluate` on validation data), ``meta`` (everything recorded in
    ``model.json``), ``plan``, ``catalog``.
    """

    def __init__(
        self,
        *,
        plan: TablePlan,
        algorithm: str,
        calibrator: Calibrator,
        booster: Any = None,
        linear: LinearModel | None = None,
        meta: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        model_id: str | None = None,
        catalog: Mapping[str, Any] | None = None,
        blend_weight: float | None = None,
    ) -> None:
        self.plan = plan
        self.algorithm = algorithm
        self.blend_weight = None if blend_weight is None else float(blend_weight)
        self.calibrator = calibrator
        self.booster = booster
        self.linear = linear
        self.meta: dict[str, Any] = dict(meta or {})
        self.metrics: dict[str, Any] = dict(metrics or {})
        self.model_id = model_id or new_model_id()
        self.catalog = catalog
        self._thresholds: list[np.ndarray] | None = None
        self._shap_tables: Any = None

    # -- shape ---------------------------------------------------------------------------
    @property
    def features(self) -> list[str]:
        return self.plan.names

    def __repr__(self) -> str:
        return f"TrainedModel({self.model_id!r}, {self.algorithm}, {len(self.features)} features)"

    def matrix(self, frame: pd.DataFrame, *, missing: str = "error", source: str = "table") -> np.ndarray:
        """The encoded feature matrix of ``frame`` (see :meth:`TablePlan.matrix`)."""
        return self.plan.matrix(frame, source=source, missing=missing)

    # -- prediction ----------------------------------------------------------------------
    def margin_matrix(self, X: np.ndarray) -> np.ndarray:
        """Raw log-odds for an encoded matrix (blend: w · m_lightgbm + (1 − w) · m_logistic)."""
        if self.booster is not None:
            threads = threads_for(X.shape[0])
            trees = np.asarray(self.booster.predict(X, raw_score=True, num_threads=threads), dtype=np.float64)
            if self.algorithm != "blend":
                return trees
            assert self.linear is not None and self.blend_weight is not None
            w = self.blend_weight
            return w * trees + (1 - w) * self.linear.margin(X)
        assert self.linear is not None
        return self.linear.margin(X)

    def predict_margin(self, frame: pd.DataFrame, *, missing: str = "error", source: str = "table") -> np.ndarray:
        """Raw (uncalibrated) log-odds of churn."""
        return self.margin_matrix(self.matrix(frame, missing=missing, source=source))

    def predict(self, frame: pd.DataFrame, *, missing: str = "error", source: str = "table") -> np.ndarray:
        """Calibrated churn probabilities, one per row of ``frame``.

        ``missing="fill"`` treats absent feature columns as missing values (default: an error naming
        them); ``source`` names the table in errors.
        """
        return self.calibrator(self.predict_margin(frame, missing=missing, source=source))

    def contributions_matrix(self, X: np.ndarray) -> np.ndarray:
        """(rows × (features + 1)) raw log-odds contributions; the last column is the base value.

        LightGBM: exact tree SHAP (``pred_contrib=True``); logistic regression: β · z per feature;
        blend: w · (tree SHAP) + (1 − w) · (β · z).  Each row sums to the raw margin.
        """
        from churnguard.predict.explain import contributions

        return contributions(self, X)

    def explain(
        self, frame: pd.DataFrame, top: int = 3, lang: str = "en", *, missing: str = "error", source: str = "table"
    ) -> pd.DataFrame:
        """Per row: ``reasons`` (list of {feature, category, contribution, value, text}) and ``top_reason``."""
        from churnguard.predict.explain import explain_frame

        return explain_frame(self, frame, top=top, lang=lang, missing=missing, source=source)

    def reasons(
        self,
        frame: pd.DataFrame,
        top: int = 3,
        langs: Sequence[str] = ("en", "zh"),
        *,
        missing: str = "error",
        source: str = "table",
    ) -> pd.DataFrame:
        """Fast columns for storing reasons: ``top_reason``, ``reason_1..top`` per language and ``reasons`` JSON."""
        from churnguard.predict.explain import reason_columns

        return reason_columns(self, frame, top=top, langs=langs, missing=missing, source=source)

    def score(
        self,
        frame: pd.DataFrame,
        *,
        id_col: str | None = None,
        top: int = 3,
        lang: str = "en",
        missing: str = "error",
        source: str = "table",
    ) -> pd.DataFrame:
        """id, probability, risk band, top reason, reason_1..top (text in ``lang``) and ``reasons`` (JSON)."""
        from churnguard.predict.explain import score_frame

        return score_frame(self, frame, id_col=id_col, top=top, lang=lang, missing=missing, source=source)

    def importance(self) -> pd.DataFrame:
        """Global importance: feature, category, importance (mean |contribution| in log-odds), share."""
        rows = self.meta.get("importance") or []
        return pd.DataFrame(rows, columns=["feature", "category", "importance", "share"])

    def drivers(self) -> pd.DataFrame:
        """The logistic-regression driver table (standardised coefficients with sign)."""
        cols = ["term", "feature", "category", "coefficient", "odds_ratio", "direction"]
        return pd.DataFrame(self.meta.get("drivers") or [], columns=cols)

    def partial_dependence(
        self, frame: pd.DataFrame | None = None, *, features: Sequence[str] | None = None, points: int = PD_POINTS
    ) -> list[dict[str, Any]]:
        """Mean predicted probability as one feature moves over its range (the others as they are)."""
        if frame is None:
            return list(self.meta.get("partial_dependence") or [])
        from churnguard.predict.explain import partial_dependence

        X = self.matrix(frame, missing="fill")
        return partial_dependence(self, X, features=features, points=points)

    # -- persistence ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        meta = {k: v for k, v in self.meta.items() if k not in _STRUCTURAL}
        blend = self.algorithm == "blend"
        return {
            # version 1 readers would score a blend as LightGBM alone: only blends need version 2
            "format_version": FORMAT_VERSION if blend else 1,
            "model_id": self.model_id,
            "algorithm": self.algorithm,
            **({"blend_weight": self.blend_weight} if blend else {}),
            **meta,
            "features": [
                {"name": f.name, "dtype": f.kind, "source": f.source, "category": f.category}
                for f in self.plan.features
            ],
            "dropped": self.plan.dropped,
            "metrics": self.metrics,
            "calibration": {**self.meta.get("calibration", {}), **self.calibrator.to_dict()},
            "plan": self.plan.to_dict(),
            "linear": None if self.linear is None else self.linear.to_dict(),
            "booster_file": BOOSTER_FILE if self.booster is not None else None,
        }

    def save(self, path: str | Path) -> Path:
        """Write ``model.json`` into the folder ``path``; for LightGBM (and the blend) also ``booster.txt``
        and, when the trees are small enough, ``shap_tables.npz`` (the tabulated exact SHAP values)."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        if self.booster is not None:
            from churnguard.predict.explain import shap_tables
            from churnguard.predict.treeshap import SAVE_MAX_ENTRIES, TABLES_FILE

            self.booster.save_model(str(folder / BOOSTER_FILE))
            tables = shap_tables(self)
            if tables.ok and tables.entries <= SAVE_MAX_ENTRIES:
                tables.save(folder / TABLES_FILE, model_id=self.model_id)
            elif (folder / TABLES_FILE).exists():
                (folder / TABLES_FILE).unlink()
        text = json.dumps(_plain(self.to_dict()), ensure_ascii=False, indent=1, allow_nan=False)
        tmp = folder / (MODEL_FILE + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(folder / MODEL_FILE)
        self.meta["path"] = str(folder.resolve())
        return folder


_STRUCTURAL = {
    "format_version",
    "model_id",
    "algorithm",
    "features",
    "dropped",
    "metrics",
    "plan",
    "linear",
    "booster_file",
    "blend_weight",
}


def _plain(o: Any) -> Any:
    """JSON-ready: numpy scalars to Python, NaN/inf to None, dates to ISO text."""
    if isinstance(o, dict):
        return {str(k): _plain(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_plain(v) for v in o]
    if isinstance(o, np.ndarray):
        return [_plain(v) for v in o.tolist()]
    if isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dt.date | dt.datetime):
        return o.isoformat()
    return o


def new_model_id(now: dt.datetime | None = None) -> str:
    """``m-YYYYmmddTHHMMSS-<6 hex>`` (UTC)."""
    now = now or dt.datetime.now(dt.UTC)
    return f"m-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def load_model(path: str | Path, *, catalog: Mapping[str, Any] | None = None) -> TrainedModel:
    """Restore a model saved by :meth:`TrainedModel.save`.

    A folder written by a newer format version is refused (:class:`ModelFormatError`).  The
    feature catalog is re-imported when the model was trained with a module-level catalog, unless
    ``catalog`` is given.
    """
    folder = Path(path)
    file = folder / MODEL_FILE
    if not file.exists():
        raise ModelFormatError(
            f"{folder}: expected a model folder with {MODEL_FILE}, found "
            + ("no such folder" if not folder.exists() else "no model.json")
            + ". Fix: give the --out folder of churnguard model train (churnguard model list shows them)."
        )
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{file}: expected model JSON, got an unreadable file ({exc}).") from None
    version = int(data.get("format_version", 0))
    if version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{file}: model format version {version}, but this churnguard reads up to version {FORMAT_VERSION}. "
            "Fix: upgrade churnguard (pip install -U churnguard), or train the model again with this version."
        )
    plan = TablePlan.from_dict(data["plan"])
    booster = None
    if data.get("booster_file"):
        import lightgbm as lgb

        bfile = folder / data["booster_file"]
        if not bfile.exists():
            raise ModelFormatError(f"{folder}: {data['booster_file']} is missing; the model folder is incomplete.")
        booster = lgb.Booster(model_file=str(bfile))
    linear = LinearModel.from_dict(data["linear"]) if data.get("linear") else None
    calibrator = Calibrator.from_dict(data.get("calibration", {}))
    if data["algorithm"] == "blend" and (booster is None or linear is None or data.get("blend_weight") is None):
        raise ModelFormatError(f"{file}: a blend needs booster_file, linear and blend_weight; the model is incomplete.")
    meta = {k: v for k, v in data.items() if k not in _STRUCTURAL}
    meta["path"] = str(folder.resolve())
    if catalog is None and meta.get("catalog"):
        catalog = _import_catalog(str(meta["catalog"]))
    return TrainedModel(
        plan=plan,
        algorithm=data["algorithm"],
        calibrator=calibrator,
        booster=booster,
        linear=linear,
        meta=meta,
        metrics=data.get("metrics", {}),
        model_id=data["model_id"],
        catalog=catalog,
        blend_weight=data.get("blend_weight"),
    )


def _catalog_ref(catalog: Mapping[str, Any] | None) -> str | None:
    """``module:NAME`` when ``catalog`` is a module-level object (so a loaded model can find it again)."""
    if catalog is None or not len(catalog):
        return None
    modules = {type(v).__module__ for v in catalog.values()}
    for module in modules:
        mod = sys.modules.get(module)
        if mod is None:
            continue
        for name, obj in vars(mod).items():
            if obj is catalog:
                return f"{module}:{name}"
    for mod_name in ("churnguard.features", "churnguard.features.catalog"):
        mod = sys.modules.get(mod_name)
        if mod is not None and getattr(mod, "CATALOG", None) is catalog:
            return f"{mod_name}:CATALOG"
    return None


def _import_catalog(ref: str) -> Mapping[str, Any] | None:
    import importlib

    module, _, name = ref.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


# -- training --------------------------------------------------------------------------------


def _split(
    frame: pd.DataFrame,
    y: np.ndarray,
    *,
    time_col: str | None,
    share: float,
    seed: int,
    source: str,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Boolean mask of validation rows and a description of the split."""
    n = len(y)
    if time_col is not None:
        from churnguard.predict.tabular import to_days

        days = to_days(frame[time_col], None)
        bad = int(np.isnan(days).sum())
        if bad:
            raise table_problem(
                source, time_col, "a date on every row of the time column", f"{bad:,} rows without a readable date"
            )
        dates, counts = np.unique(days, return_counts=True)
        if dates.size >= 2:
            # the latest k dates, k chosen so they hold about the validation share (one date at least,
            # and at least one date stays for training)
            cum = np.cumsum(counts[::-1])[: dates.size - 1]
            k = int(np.argmin(np.abs(cum - share * n))) + 1
            cut = dates[-k]
            mask = days >= cut
            info = {
                "kind": "time",
                "time_col": time_col,
                "train_from": _day(dates[0]),
                "train_to": _day(dates[-k - 1]),
                "validation_from": _day(cut),
                "validation_to": _day(dates[-1]),
            }
            return mask, info
        note = f"{time_col} holds one date only: a random validation split instead"
    else:
        note = None
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    _, val = train_test_split(idx, test_size=share, stratify=y, random_state=seed)
    mask = np.zeros(n, dtype=bool)
    mask[val] = True
    info: dict[str, Any] = {"kind": "random", "stratified": True, "seed": seed}
    if note:
        info["note"] = note
    return mask, info


def _day(days: float) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=int(days))).isoformat()


def train(
    frame: pd.DataFrame,
    *,
    label: str,
    id_col: str | None = None,
    time_col: str | None = None,
    algorithm: str = DEFAULT_ALGORITHM,
    catalog: Mapping[str, Any] | None = None,
    drop: Sequence[str] = (),
    seed: int = 0,
    positive: Any = None,
    mode: str = "snapshot",
    params: Mapping[str, Any] | None = None,
    validation_share: float = 0.2,
    refit: bool = True,
    source: str = "table",
) -> TrainedModel:
    """Train a calibrated churn model on ``frame`` (see the module docstring for the steps).

    Parameters
    ----------
    frame : one row per customer (or customer × observation date) with a ``label`` column.
    label : the label column; ``positive`` is its churned value (default: yes/true/1/churned).
    id_col : the customer id column (never a feature).
    time_col : a date column; the latest dates are the validation data (else a random 20 %).
    algorithm : ``blend`` (default: LightGBM and logistic log-odds blended with the weight of the lowest
        validation log loss), ``lightgbm``, ``logistic`` or ``auto`` (the better on validation AUC).
    catalog : feature name → spec with ``.category`` and ``.describe(value, lang)`` for reasons.
    drop : columns never to use (e.g. leaking scores).
    seed : seeds the split, LightGBM and the calibration folds.
    params : LightGBM settings overriding :data:`LGBM_PARAMS`.
    refit : refit the model on all rows with the settings chosen on validation.
    """
    if algorithm not in ALGORITHMS:
        raise ModelError(f'algorithm: expected one of {", ".join(ALGORITHMS)}, got "{algorithm}".')
    if not 0.05 <= validation_share <= 0.5:
        raise ModelError(f"validation share: expected 0.05 to 0.5, got {validation_share}.")
    started = time.perf_counter()
    check_options(frame, label=label, id_col=id_col, time_col=time_col)
    plan = infer_plan(
        frame,
        label=label,
        id_col=id_col,
        time_col=time_col,
        drop=drop,
        catalog=catalog,
        positive=positive,
        source=source,
    )
    y_all, _ = label_vector(frame, label, positive, source=source)
    keep = ~np.isnan(y_all)
    missing_labels = int((~keep).sum())
    if missing_labels:
        frame = frame.loc[keep]
    y = y_all[keep]
    positives = int(y.sum())
    if positives < 5 or len(y) - positives < 5:
        raise table_problem(
            source,
            label,
            "at least 5 churned and 5 non-churned rows to learn from",
            f"{positives:,} churned and {len(y) - positives:,} not",
            "check --label and --positive.",
        )
    X = plan.matrix(frame, source=source)
    val, split = _split(frame, y, time_col=time_col, share=validation_share, seed=seed, source=source)
    tr = ~val
    if len(np.unique(y[tr])) < 2 or len(np.unique(y[val])) < 2:
        raise table_problem(
            source,
            label,
            "churned and non-churned rows in both the training and the validation part",
            f"training {int(y[tr].sum())}/{int(tr.sum())}, validation {int(y[val].sum())}/{int(val.sum())} churned",
            "use more rows, or another --time-col.",
        )
    Xt, yt, Xv, yv = X[tr], y[tr], X[val], y[val]

    from sklearn.metrics import roc_auc_score

    # the logistic regression: a model of its own and, always, the driver table
    lr_rows = _sample_rows(len(yt), LOGISTIC_MAX_ROWS, seed)
    linear, lr_info = _fit_logistic(plan, Xt[lr_rows], yt[lr_rows], Xv, yv)
    candidates: dict[str, dict[str, Any]] = {
        "logistic": {"margin": linear.margin(Xv), "info": lr_info},
    }
    booster = None
    if algorithm in ("lightgbm", "auto", "blend"):
        booster, gb_info = _fit_lightgbm(plan, Xt, yt, Xv, yv, seed=seed, params=params)
        candidates["lightgbm"] = {
            "margin": np.asarray(booster.predict(Xv, raw_score=True, num_threads=threads_for(len(yv)))),
            "info": gb_info,
        }
    blend_weight: float | None = None
    blend_info = None
    if algorithm == "blend":
        blend_weight, losses = choose_blend_weight(
            candidates["lightgbm"]["margin"], candidates["logistic"]["margin"], yv
        )
        blend_info = {"weight_lightgbm": blend_weight, "log_loss_by_weight": losses}
        blend_margin = (
            blend_weight * candidates["lightgbm"]["margin"] + (1 - blend_weight) * candidates["logistic"]["margin"]
        )
        candidates["blend"] = {"margin": blend_margin, "info": blend_info}
    auc_by = {name: round(float(roc_auc_score(yv, c["margin"])), 6) for name, c in candidates.items()}
    if algorithm == "auto":
        chosen = max(("lightgbm", "logistic"), key=lambda a: auc_by[a])
    elif algorithm == "blend":
        chosen = {1.0: "lightgbm", 0.0: "logistic"}.get(blend_weight or 0.0, "blend")
    else:
        chosen = algorithm
    trees = chosen in ("lightgbm", "blend")
    margin_v = candidates[chosen]["margin"]
    calibrator, cal_info, p_val = choose_calibration(margin_v, yv, seed=seed)
    validation = _evaluate(yv, p_val)
    validation["auc_uncalibrated"] = auc_by[chosen]

    # refit on every row with the chosen settings
    refit_rows = None
    if refit:
        if trees:
            info = candidates["lightgbm"]["info"]
            booster, _ = _fit_lightgbm(plan, X, y, None, None, seed=seed, params=info["params"], rounds=info["rounds"])
        all_rows = _sample_rows(len(y), LOGISTIC_MAX_ROWS, seed)
        linear = LinearModel.design_for(plan, X[all_rows]).fit(X[all_rows], y[all_rows], linear.c or 1.0)
        refit_rows = len(y)
    model = TrainedModel(
        plan=plan,
        algorithm=chosen,
        calibrator=calibrator,
        booster=booster if trees else None,
        linear=linear if chosen in ("logistic", "blend") else None,
        catalog=catalog,
        blend_weight=blend_weight if chosen == "blend" else None,
    )
    # explanations computed once, on (a sample of) the validation rows
    sample = _sample_rows(len(yv), EXPLAIN_SAMPLE, seed)
    from churnguard.predict.explain import global_importance, partial_dependence

    importance = global_importance(model, Xv[sample])
    top_features = [r["feature"] for r in importance[:PD_FEATURES]]
    pd_sample = sample[:PD_SAMPLE]
    p_cut = np.sort(p_val)[::-1]
    bands = {band: float(p_cut[max(0, math.ceil(share * len(p_cut)) - 1)]) for band, share in BAND_SHARES}
    data_window = None
    if time_col is not None:
        from churnguard.predict.tabular import to_days

        d = to_days(frame[time_col], None)
        data_window = {"time_col": time_col, "from": _day(np.nanmin(d)), "to": _day(np.nanmax(d))}
        if split.get("kind") == "time":
            data_window["validation_from"] = split["validation_from"]
    seconds = time.perf_counter() - started
    model.meta.update(
        {
            "mode": mode,
            "algorithm_requested": algorithm,
            "created_at": dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
            "training_seconds": round(seconds, 3),
            "seed": seed,
            "churnguard_version": _version(),
            "source": source,
            "label": {
                "column": label,
                "positive": plan.positive,
                "rows": len(y),
                "positives": positives,
                "missing_label_rows": missing_labels,
            },
            "id_col": id_col,
            "time_col": time_col,
            "data_window": data_window,
            "split": {
                **split,
                "validation_share": validation_share,
                "train_rows": int(tr.sum()),
                "validation_rows": int(val.sum()),
                "refit_rows": refit_rows,
            },
            "n_rows": len(y),
            "calibration": cal_info,
            "validation_auc_by_algorithm": auc_by,
            "logistic": lr_info,
            "blend": blend_info,
            "lightgbm": None
            if not trees
            else {
                "best_iteration": candidates["lightgbm"]["info"]["rounds"],
                "params": {k: v for k, v in candidates["lightgbm"]["info"]["params"].items() if k != "verbose"},
                "num_leaves_log_loss": candidates["lightgbm"]["info"].get("num_leaves_log_loss"),
            },
            "importance": importance,
            "drivers": linear.driver_table(plan),
            "partial_dependence": partial_dependence(model, Xv[pd_sample], features=top_features),
            "threshold": {"top_k": validation["thresholds"]["top_k"]},
            "bands": bands,
            "catalog": _catalog_ref(catalog),
            "backtest": None,
        }
    )
    model.metrics = {"validation": validation}
    return model


def _evaluate(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    from churnguard.predict.evaluation import evaluate

    return evaluate(y, p)


def _sample_rows(n: int, limit: int, seed: int) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=limit, replace=False))


def _version() -> str:
    from churnguard import __version__

    return __version__
