"""Event-based early warning: train on the store's own tables, score every active customer.

Training (``churnguard model train --db URL --horizon 30d``):

1. observation dates: the last ``count`` month starts whose horizon ends by the data's as-of
   date (a label needs the whole horizon observed);
2. point-in-time features and labels at every date (:func:`churnguard.features.build_features`:
   features from data before the date, label = churn within the horizon after it);
3. a time-based backtest (train on earlier dates, test on each later one), then the model on
   every date but the last (the validation date chooses the calibration) and its quality on the
   last date, which it never saw;
4. a Cox proportional-hazards view on the same features (expected time to churn, concordance);
5. the model directory and a ``model_runs`` row (the registry).

Scoring (``churnguard score --as-of DATE``) builds the features at the date for every active
customer, predicts, explains (top reasons in words, en and zh) and writes one ``scores`` row per
customer, with ``value_at_risk = probability × value``, value as the retention playbooks define
it (:func:`churnguard.retention.value.customer_value_sql`: CLV from ``customer_value``, else the
trailing 12-month margin).
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnguard.errors import ChurnguardError, ConfigError
from churnguard.store.connection import Store

#: Columns of the feature frame that describe the row, not the customer's behaviour.
NON_FEATURES = ("customer_id", "as_of", "label", "days_to_churn", "churned")
#: Risk bands: ``high`` = the top 10 % of the validation scores, ``medium`` = the next 20 %.
BAND_SHARES = (("high", 0.10), ("medium", 0.30))
#: Rows the Cox model is fitted on at most (a random sample; the hazard fit is O(n·p²)).
COX_MAX_ROWS = 40_000


class ModelNotFoundError(ChurnguardError, LookupError):
    """No trained model to score with."""

    http_status = 404
    exit_code = 2


@dataclass
class EventTraining:
    """What :func:`train_from_store` did."""

    model_id: str
    path: Path
    horizon_days: int
    observation_dates: list[dt.date]
    rows: int
    positives: int
    test: dict[str, Any]
    backtest: list[dict[str, Any]]
    cox: dict[str, Any] | None
    drivers: list[dict[str, Any]]
    driver_categories: dict[str, float]
    training_seconds: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "path": str(self.path),
            "mode": "events",
            "horizon_days": self.horizon_days,
            "observation_dates": [d.isoformat() for d in self.observation_dates],
            "rows": self.rows,
            "positives": self.positives,
            "test": self.test,
            "backtest": self.backtest,
            "cox": self.cox,
            "drivers": self.drivers,
            "driver_categories": self.driver_categories,
            "training_seconds": round(self.training_seconds, 2),
            "notes": self.notes,
        }


@dataclass
class ScoringRun:
    """What :func:`score_store` wrote."""

    model_id: str
    as_of: dt.date
    customers: int
    bands: dict[str, int]
    mean_probability: float
    value_at_risk: float | None
    top_reasons: dict[str, int]
    seconds: float
    frame: pd.DataFrame | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "as_of": self.as_of.isoformat(),
            "customers": self.customers,
            "bands": self.bands,
            "mean_probability": round(self.mean_probability, 6),
            "value_at_risk": None if self.value_at_risk is None else round(self.value_at_risk, 2),
            "top_reasons": self.top_reasons,
            "seconds": round(self.seconds, 2),
        }


def default_model_dir(store: Store) -> Path:
    """Where models of a store live: ``<store folder>/models`` (``./models`` for in-memory stores).

    For a PostgreSQL store the folder is ``$CHURNGUARD_HOME`` (default: the working directory):
    every process that scores (the CLI, each API worker) must see the same folder.
    """
    folder = store.folder
    return Path("models") if folder is None else folder / "models"


def training_dates(store: Store, *, horizon_days: int, lead_days: int, count: int, every: str) -> list[dt.date]:
    """Observation dates whose horizon is fully observed: the last ``count`` of them, oldest first."""
    from churnguard.features import observation_dates
    from churnguard.metrics.activity import data_as_of

    data_end = data_as_of(store)
    dates = observation_dates(
        store, end=data_end - dt.timedelta(days=horizon_days + lead_days), every=every, count=count
    )
    if len(dates) < 3:
        raise ConfigError(
            f"the store's data end on {data_end}: with a {horizon_days}-day horizon only "
            f"{len(dates)} observation date(s) fit, and a time-based model needs at least 3. "
            "Fix: a shorter --horizon, more --observations, or more history."
        )
    return dates


def train_from_store(
    store: Store,
    *,
    horizon_days: int = 30,
    lead_days: int = 0,
    observations: str = "monthly",
    count: int = 12,
    algorithm: str = "blend",
    out: Path | None = None,
    seed: int = 0,
    cox: bool = True,
    folds: int = 3,
    max_rows: int | None = 60_000,
    progress: Any = None,
) -> EventTraining:
    """Train the early-warning model on the store's tables (see the module docstring)."""
    from churnguard.features import CATALOG, build_features
    from churnguard.predict import backtest, evaluate, train
    from churnguard.predict.registry import register

    def step(text: str) -> None:
        if progress is not None:
            progress(text)

    started = time.perf_counter()
    notes: list[str] = []
    dates = training_dates(store, horizon_days=horizon_days, lead_days=lead_days, count=count, every=observations)
    step(f"Building features at {len(dates)} observation dates")
    frame = build_features(store, dates, horizon_days=horizon_days, lead_days=lead_days, labels=True)
    if frame.empty or frame["label"].sum() == 0:
        raise ConfigError(
            f"no churn inside the {horizon_days}-day horizon after any of the {len(dates)} observation dates: "
            "nothing to learn. Fix: a longer --horizon or more history."
        )
    drop = [c for c in ("days_to_churn", "churned") if c in frame.columns]
    last = max(dates)
    # Honest test: the model may only learn outcomes known by the test date, so training dates end a
    # whole horizon (and lead) before it; the backtest folds keep the same gap.
    gap = horizon_days + lead_days
    history = frame[frame["as_of"] <= last - dt.timedelta(days=gap)]
    holdout = frame[frame["as_of"] == last]
    if max_rows is not None and len(history) > max_rows:
        # A uniform sample keeps the base rate (so calibration stays honest) and bounds the fit's time.
        history = history.sample(n=max_rows, random_state=seed).sort_values(["as_of", "customer_id"])
        notes.append(f"trained on a uniform sample of {max_rows:,} of the earlier dates' rows")
    step("Time-based backtest")
    backtest_folds = backtest(
        history.drop(columns=drop),
        label="label",
        time_col="as_of",
        folds=folds,
        gap_days=gap,
        id_col="customer_id",
        algorithm=algorithm,
        catalog=CATALOG,
        seed=seed,
    )
    step("Fitting the model on the earlier dates; testing on the last")
    model = train(
        history.drop(columns=drop),
        label="label",
        id_col="customer_id",
        time_col="as_of",
        algorithm=algorithm,
        catalog=CATALOG,
        seed=seed,
    )
    p = model.predict(holdout)
    test = evaluate(holdout["label"].to_numpy(), p)
    test["as_of"] = last.isoformat()
    cox_result = None
    if cox:
        step("Survival view (Cox proportional hazards)")
        from churnguard.predict.cox import fit_cox

        try:
            cox_result = fit_cox(history, holdout, features=model.features, seed=seed)
        except ChurnguardError as exc:
            notes.append(f"Cox model skipped: {exc}")
    model.meta.update(
        {
            "mode": "events",
            "horizon_days": horizon_days,
            "lead_days": lead_days,
            "observation_dates": [d.isoformat() for d in dates],
            "test": test,
            "backtest": backtest_folds,
            "bands": _band_cutoffs(p),
        }
    )
    if cox_result is not None:
        model.meta["cox"] = cox_result.summary()
    model.metrics = {**model.metrics, "test": test}
    path = Path(out) if out is not None else default_model_dir(store) / model.model_id
    model.save(path)
    if cox_result is not None:
        cox_result.save(path)
    seconds = time.perf_counter() - started
    model.meta["training_seconds"] = round(seconds, 2)
    model.meta["data_window"] = {"from": min(dates).isoformat(), "to": last.isoformat()}
    with store.transaction():  # the new model becomes the only active events model, atomically
        register(store, model, path, active=True)
        store.execute("UPDATE model_runs SET active = false WHERE mode = 'events' AND model_id <> ?", [model.model_id])
    importance = model.importance()
    drivers = importance.head(10).to_dict("records")
    by_category = importance.groupby("category")["share"].sum().sort_values(ascending=False)
    driver_categories = {str(k): round(float(v), 4) for k, v in by_category.items()}
    return EventTraining(
        model_id=model.model_id,
        path=path,
        horizon_days=horizon_days,
        observation_dates=dates,
        rows=len(frame),
        positives=int(frame["label"].sum()),
        test=test,
        backtest=backtest_folds,
        cox=None if cox_result is None else cox_result.summary(),
        drivers=drivers,
        driver_categories=driver_categories,
        training_seconds=seconds,
        notes=notes,
    )


def _band_cutoffs(p: np.ndarray) -> dict[str, float]:
    """Probability cut-offs of the risk bands, from the held-out scores' distribution."""
    return {band: float(np.quantile(p, 1 - share)) for band, share in BAND_SHARES}


def risk_bands(p: np.ndarray, cutoffs: dict[str, float]) -> np.ndarray:
    """``high`` at or above the high cut-off, ``medium`` at or above the medium one, else ``low``."""
    return np.where(p >= cutoffs["high"], "high", np.where(p >= cutoffs["medium"], "medium", "low"))


def resolve_model(store: Store, model: str | Path | None) -> tuple[str, Path]:
    """The model to score with: a directory, a model id from ``model_runs``, or the active events model."""
    if model is not None and Path(model).is_dir():
        meta = json.loads((Path(model) / "model.json").read_text())
        return meta["model_id"], Path(model)
    if model is not None:
        row = store.execute("SELECT model_id, path FROM model_runs WHERE model_id = ?", [str(model)]).fetchone()
        if row is None:
            raise ModelNotFoundError(
                f'model "{model}": no such directory and no such model id in model_runs. '
                "Fix: churnguard model list shows the trained models."
            )
        return row[0], Path(row[1])
    row = store.execute(
        "SELECT model_id, path FROM model_runs WHERE mode = 'events' AND active ORDER BY created_at DESC LIMIT 1"
    ).fetchone()
    if row is None:
        raise ModelNotFoundError(
            "no trained early-warning model in this store. Fix: churnguard model train --horizon 30d first."
        )
    return row[0], Path(row[1])


def _scored_frame(trained: Any, path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """Probability, risk band, reasons (en, zh) and expected days to churn of each row of a feature frame."""
    p = trained.predict(frame)
    explained = trained.reasons(frame, top=3, langs=("en", "zh"))
    cutoffs = trained.meta.get("bands") or _band_cutoffs(p)
    out = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype(str).to_numpy(),
            "probability": p.astype(float),
            "risk_band": risk_bands(p, cutoffs),
            "top_reason": explained["top_reason"].to_numpy(),
            "reasons": explained["reasons"].to_numpy(),
        }
    )
    out["expected_days_to_churn"] = _cox_days(path, frame)
    return out


def _stage(store: Store, name: str, frame: pd.DataFrame) -> None:
    """``frame`` as the new temp table ``name``."""
    store.execute("SELECT 1").fetchall()  # ends a result left open by an earlier fetchone(): register needs that
    store.raw.register(f"{name}_df", frame)
    try:
        store.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM {name}_df")
    finally:
        store.raw.unregister(f"{name}_df")


def _scores_select(store: Store, scored: str, targets: str) -> str:
    """The ``scores`` rows of the staged predictions ``scored``: value at risk = probability × value
    (:func:`churnguard.retention.value.customer_value_sql`, at the day before the as-of date)."""
    from churnguard.retention.value import customer_value_sql

    return f"""
    SELECT s.customer_id, CAST($as_of AS DATE) AS as_of, CAST($model_id AS VARCHAR) AS model_id,
           CAST($horizon AS INTEGER) AS horizon_days, s.probability, s.risk_band,
           s.probability * v.value AS value_at_risk, s.top_reason, s.reasons, s.expected_days_to_churn,
           CAST($scored_at AS TIMESTAMP) AS scored_at
    FROM {scored} s LEFT JOIN ({customer_value_sql(store, targets)}) v ON v.customer_id = s.customer_id"""


_SCORE_COLUMNS = (
    "customer_id, as_of, model_id, horizon_days, probability, risk_band, value_at_risk, "
    "top_reason, reasons, expected_days_to_churn, scored_at"
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def score_store(
    store: Store,
    *,
    as_of: dt.date | None = None,
    model: str | Path | None = None,
    keep_frame: bool = False,
) -> ScoringRun:
    """Score every customer active at ``as_of`` (default: the data's as-of date + 1 day) into ``scores``.

    The day's earlier scores are replaced (one scoring per day: the latest model's), atomically.
    """
    from churnguard.features import build_features
    from churnguard.metrics.activity import data_as_of
    from churnguard.predict import load_model

    started = time.perf_counter()
    model_id, path = resolve_model(store, model)
    trained = load_model(path)
    if as_of is None:
        as_of = data_as_of(store) + dt.timedelta(days=1)
    frame = build_features(store, as_of, labels=False)
    if frame.empty:
        raise ConfigError(f"no customer is active on {as_of}: nothing to score.")
    out = _scored_frame(trained, path, frame)
    p = out["probability"].to_numpy()
    horizon = int(trained.meta.get("horizon_days") or 30)
    params = {"as_of": as_of, "model_id": model_id, "horizon": horizon, "scored_at": _now()}
    suffix = uuid.uuid4().hex[:8]
    scored, targets = f"_cg_scored_{suffix}", f"_cg_targets_{suffix}"
    with store.transaction():
        _stage(store, scored, out)
        store.execute(
            f"CREATE TEMP TABLE {targets} AS SELECT customer_id, CAST(? AS DATE) - 1 AS w_to FROM {scored}",
            [as_of],
        )
        store.execute("DELETE FROM scores WHERE as_of = ?", [as_of])  # one scoring per day: the latest model's
        store.execute(f"INSERT INTO scores ({_SCORE_COLUMNS}) {_scores_select(store, scored, targets)}", params)
        store.execute(f"DROP TABLE {scored}")
        store.execute(f"DROP TABLE {targets}")
    var = store.execute(
        "SELECT sum(value_at_risk), count(value_at_risk) FROM scores WHERE as_of = ? AND model_id = ?",
        [as_of, model_id],
    ).fetchone()
    bands = out["risk_band"].value_counts().to_dict()
    return ScoringRun(
        model_id=model_id,
        as_of=as_of,
        customers=len(out),
        bands={b: int(bands.get(b, 0)) for b in ("high", "medium", "low")},
        mean_probability=float(p.mean()),
        value_at_risk=float(var[0]) if var[1] else None,
        top_reasons={str(k): int(v) for k, v in out["top_reason"].value_counts().items()},
        seconds=time.perf_counter() - started,
        frame=out if keep_frame else None,
    )


class ScoringConflictError(ChurnguardError):
    """Writing a batch's scores would leave the day's scoring run mixed or partial."""

    http_status = 409
    exit_code = 5


#: The message of an id no customer has.
NOT_FOUND_MESSAGE = "not found: no customer has this id."
#: What :func:`score_customers` returns, in this order.
CUSTOMER_SCORE_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "status",
    "message",
    "as_of",
    "model_id",
    "horizon_days",
    "probability",
    "risk_band",
    "value_at_risk",
    "top_reason",
    "reasons",
    "expected_days_to_churn",
    "scored_at",
)


def _check_run(store: Store, as_of: dt.date, model_id: str) -> None:
    """Refuse a batch that would mix two models on one day, or start a newer day than the latest run."""
    models = [r[0] for r in store.execute("SELECT DISTINCT model_id FROM scores WHERE as_of = ?", [as_of]).fetchall()]
    if models and set(models) != {model_id}:
        raise ScoringConflictError(
            f"the scores of {as_of} come from model {', '.join(sorted(map(str, models)))}, not from the active "
            f"model {model_id}: one day's scores come from one model. Fix: score every customer with "
            "the active model first (churnguard score, or POST /api/scores/run), then rescore single customers."
        )
    latest = store.execute("SELECT max(as_of) FROM scores").fetchone()[0]
    if not models and latest is not None and as_of > latest:
        raise ScoringConflictError(
            f"the latest scoring run is of {latest}; a batch scored on {as_of} would be the newest run with only "
            "its own customers, and the at-risk list would show nothing else. Fix: score every customer on "
            f"{as_of} first (churnguard score, or POST /api/scores/run), or pass as_of={latest}."
        )


def score_customers(
    store: Store,
    customer_ids: Sequence[str],
    *,
    as_of: dt.date | None = None,
    model: str | Path | None = None,
    write: bool = True,
) -> pd.DataFrame:
    """Score the given customers (one, or a batch) as :func:`score_store` scores everyone.

    Builds the point-in-time features of only these customers
    (``build_features(..., customers=customer_ids)``: each row equals the full build's), predicts
    with ``model`` (default: the active events model), and returns one row per distinct id, in
    the order given, with the columns of :data:`CUSTOMER_SCORE_COLUMNS`:

    - ``status``: ``scored``; ``not_active`` (no activity spell covers ``as_of``: churned before it,
      or not yet a customer) or ``not_found`` (no such customer) — those rows carry a ``message``
      and no score, and never fail the batch;
    - ``probability``, ``risk_band`` (the model's cut-offs), ``value_at_risk = probability × value``,
      ``top_reason``, ``reasons`` (JSON, en and zh texts), ``expected_days_to_churn`` (Cox view):
      the values ``score_store`` writes for these customers on the same day with the same model.

    ``as_of`` defaults to the data's as-of date + 1 day, as for :func:`score_store`.  With ``write``
    the scored rows replace these customers' rows of that day in ``scores``, in one transaction.  A
    write is refused (:class:`ScoringConflictError`) when the day's scores come from another model,
    or when the day is newer than the latest scoring run (a partial newest run would hide the full
    one from the at-risk list); ``write=False`` only computes.
    """
    from churnguard.features import build_features
    from churnguard.metrics.activity import data_as_of
    from churnguard.predict import load_model

    if isinstance(customer_ids, str):
        raise ConfigError(f'customer_ids: expected a list of customer ids, got the text "{customer_ids}".')
    ids = list(dict.fromkeys(str(c) for c in customer_ids))
    model_id, path = resolve_model(store, model)
    trained = load_model(path)
    if as_of is None:
        as_of = data_as_of(store) + dt.timedelta(days=1)
    horizon = int(trained.meta.get("horizon_days") or 30)
    result = pd.DataFrame({"customer_id": pd.Series(ids, dtype=object)})
    if not ids:
        return pd.DataFrame(columns=list(CUSTOMER_SCORE_COLUMNS))
    frame = build_features(store, as_of, labels=False, customers=ids)
    out = _scored_frame(trained, path, frame) if len(frame) else None
    suffix = uuid.uuid4().hex[:8]
    asked, scored, targets = f"_cg_ask_{suffix}", f"_cg_scored_{suffix}", f"_cg_targets_{suffix}"
    # to the microsecond: the batch is newer than a full run of the same second (readers key on max(scored_at))
    scored_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    params = {"as_of": as_of, "model_id": model_id, "horizon": horizon, "scored_at": scored_at}
    rows = pd.DataFrame(columns=["customer_id", *CUSTOMER_SCORE_COLUMNS[3:]])
    with store.transaction():
        _stage(store, asked, result)
        known_sql = f"SELECT c.customer_id FROM customers c JOIN {asked} a ON a.customer_id = c.customer_id"
        known = {r[0] for r in store.execute(known_sql).fetchall()}
        if out is not None:
            _stage(store, scored, out)
            store.execute(
                f"CREATE TEMP TABLE {targets} AS SELECT customer_id, CAST(? AS DATE) - 1 AS w_to FROM {scored}",
                [as_of],
            )
            select = _scores_select(store, scored, targets)
            if write:
                _check_run(store, as_of, model_id)
                store.execute(
                    f"DELETE FROM scores WHERE as_of = ? AND customer_id IN (SELECT customer_id FROM {scored})",
                    [as_of],
                )
                store.execute(f"INSERT INTO scores ({_SCORE_COLUMNS}) {select}", params)
            cur = store.execute(select, params)
            names = [d[0] for d in cur.description]
            rows = pd.DataFrame.from_records(cur.fetchall(), columns=names)
            store.execute(f"DROP TABLE {scored}")
            store.execute(f"DROP TABLE {targets}")
        store.execute(f"DROP TABLE {asked}")
    result = result.merge(rows, on="customer_id", how="left")
    scored_ids = set(rows["customer_id"])
    found = result["customer_id"].isin(known).to_numpy()
    done = result["customer_id"].isin(scored_ids).to_numpy()
    result["status"] = np.where(done, "scored", np.where(found, "not_active", "not_found"))
    result["message"] = np.where(
        done,
        None,
        np.where(
            found,
            f"not active on {as_of}: no activity spell covers that day (churned before it, or not yet a customer).",
            NOT_FOUND_MESSAGE,
        ),
    )
    result["as_of"] = as_of
    result["model_id"] = model_id
    result["horizon_days"] = horizon
    return result[list(CUSTOMER_SCORE_COLUMNS)]


def _cox_days(path: Path, frame: pd.DataFrame) -> np.ndarray:
    """Expected days to churn from the model's Cox view, where one was fitted (else NaN)."""
    from churnguard.predict.cox import load_cox

    cox = load_cox(path)
    if cox is None:
        return np.full(len(frame), np.nan)
    return cox.expected_days(frame)
