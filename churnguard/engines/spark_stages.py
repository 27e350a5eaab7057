"""The set-based stages on Spark, one function each: a lake in, the DuckDB-equal result out.

Every function takes ``source``: a lake folder (``churnguard export --to FOLDER`` wrote it) or a
store opened by :func:`open_lake`, and runs the *same* churnguard function that runs on DuckDB
(the SQL is translated at execution time, :mod:`churnguard.engines.spark_sql`).  So each result is
the object the DuckDB store gives for the same data, and equal to it (tests/test_spark_parity.py).

Open the lake once and pass the store when several stages run (a path opens and closes the lake
around one call; the Spark session itself is kept for the process)::

    from churnguard.engines.spark_stages import open_lake, churn_by_month_branch, cohort_matrix
    store = open_lake("/data/lake", master="local[2]")
    report = churn_by_month_branch(store)
    matrix = cohort_matrix(store, max_age=12)
    store.close()

Batch scoring (:func:`score_lake`): the features are built on Spark and collected as the
per-customer feature table (one row per active customer — small next to the events), then
scored in parallel by a pandas function (``mapInPandas``) that loads the saved model once per
partition, and written as Parquet.  The store's ``scores`` table is not written (the lake is
read-only); load the Parquet into a store where scores are wanted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from churnguard.store.connection import Store
from churnguard.store.spark import SparkStore, connect_spark, spark_session

#: A lake folder, or an open store (a Spark lake, or a DuckDB store: the same function runs on both).
Source = str | Path | Store


def open_lake(lake: str | Path, *, master: str | None = None, spark: Any = None) -> SparkStore:
    """Open the lake folder on a Spark session (``master``: ``local[2]``, ``spark://…``, ``sc://…``).

    The session is created (or reused) for the process and not stopped when the store closes.
    """
    return connect_spark(lake, spark=spark if spark is not None else spark_session(master))


@contextlib.contextmanager
def _opened(source: Source, master: str | None) -> Iterator[Store]:
    if isinstance(source, Store):  # an open store of any engine (DuckDB too: the reference)
        yield source
        return
    store = open_lake(source, master=master)
    try:
        yield store
    finally:
        store.close()


def _rules(store: Store, rules: Any) -> Any:
    from churnguard.metrics.activity import rules_for

    return rules if rules is not None else rules_for(store)


def churn_by_month_branch(
    source: Source,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    by: str | None = "branch",
    period: str | None = "month",
    definition: str = "standard",
    rules: Any = None,
    master: str | None = None,
) -> Any:
    """Churn counts and rates per month and branch: :func:`churnguard.metrics.churn_report` on Spark.

    ``start``/``end`` default to the twelve months ending on the data's as-of date.  Returns the
    :class:`~churnguard.metrics.churn.ChurnReport` (rates C_S / S per row, docs/metrics.md).
    """
    from churnguard.metrics.churn import churn_report, last_twelve_months

    with _opened(source, master) as store:
        rules = _rules(store, rules)
        if start is None or end is None:
            first, last = last_twelve_months(rules.as_of)
            start, end = start or first, end or last
        return churn_report(
            store,
            start=start,
            end=end,
            rules=rules,
            period=period,
            by=by,
            definition=definition,  # type: ignore[arg-type]
        )


def cohort_matrix(
    source: Source,
    *,
    period: str = "month",
    max_age: int = 24,
    by: str | None = None,
    rules: Any = None,
    master: str | None = None,
) -> Any:
    """The cohort retention matrix (:func:`churnguard.metrics.cohort_retention`) on Spark.

    retention(c, k) = customers of cohort c in a spell at the end of period k / |c|.
    """
    from churnguard.metrics.cohorts import cohort_retention

    with _opened(source, master) as store:
        return cohort_retention(store, rules=_rules(store, rules), period=period, max_age=max_age, by=by)


def implicit_churn_report(source: Source, *, master: str | None = None, **options: Any) -> Any:
    """Implicit churn (:func:`churnguard.metrics.implicit.implicit_churn`) on Spark; ``options`` as there.

    change = recent_rate / baseline_rate − 1; an implicit churner has change < −drop.
    """
    from churnguard.metrics.implicit import implicit_churn

    with _opened(source, master) as store:
        return implicit_churn(store, **options)


def rfm_segments(source: Source, *, window_days: int = 365, rules: Any = None, master: str | None = None) -> Any:
    """RFM scores and segment sizes (:func:`churnguard.segments.rfm.rfm_scores`) on Spark."""
    from churnguard.segments.rfm import rfm_scores

    with _opened(source, master) as store:
        return rfm_scores(store, window_days=window_days, rules=_rules(store, rules))


def rfm_inputs(source: Source, *, window_days: int = 365, rules: Any = None, master: str | None = None) -> Any:
    """The segmentation inputs, one row per customer of the population (pandas, sorted by customer_id).

    Columns of :func:`churnguard.segments.rfm.rfm_sql`: ``customer_id, active, recency_days,
    frequency, monetary, margin, n_margin, r_score, f_score, m_score, rfm_segment``.
    """
    from churnguard.segments.rfm import rfm_sql

    with _opened(source, master) as store:
        sql, params = rfm_sql(store, _rules(store, rules), window_days=window_days)
        return store.execute(f"SELECT * FROM ({sql}) ORDER BY customer_id", params).df()


def clv_summary(source: Source, *, time_unit: str = "week", master: str | None = None, **options: Any) -> Any:
    """Per-customer purchase summary (frequency, recency, T, monetary): :func:`churnguard.clv.summary.rfm_summary`."""
    from churnguard.clv.summary import rfm_summary

    with _opened(source, master) as store:
        return rfm_summary(store, time_unit=time_unit, **options)


def features(
    source: Source,
    as_of: dt.date | Sequence[dt.date] | None = None,
    *,
    count: int = 1,
    master: str | None = None,
    **options: Any,
) -> Any:
    """Point-in-time features (:func:`churnguard.features.build_features`) computed on Spark.

    ``as_of``: a date or dates (default: the last ``count`` month starts whose 30-day label horizon
    is observed).  The per-block aggregates run on Spark; the frame is assembled on the driver.
    """
    from churnguard.features.build import build_features, observation_dates
    from churnguard.metrics.activity import data_as_of

    with _opened(source, master) as store:
        if as_of is None:
            horizon = int(options.get("horizon_days", 30))
            as_of = observation_dates(store, end=data_as_of(store) - dt.timedelta(days=horizon), count=count)
        return build_features(store, list(as_of) if isinstance(as_of, list | tuple) else as_of, **options)


# -- batch scoring ----------------------------------------------------------------------------------


@dataclass
class LakeScoring:
    """What :func:`score_lake` wrote."""

    out: Path
    model_id: str
    as_of: dt.date
    customers: int
    partitions: int
    seconds: dict[str, float] = field(default_factory=dict)
    bands: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "model_id": self.model_id,
            "as_of": self.as_of.isoformat(),
            "customers": self.customers,
            "partitions": self.partitions,
            "bands": self.bands,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


#: The columns of a scores Parquet, in order (the store's ``scores`` columns that do not need the store).
SCORE_SCHEMA = (
    "customer_id string, as_of date, model_id string, horizon_days int, probability double, risk_band string, "
    "top_reason string, reasons string, expected_days_to_churn double"
)


def _model_files(path: Path) -> dict[str, bytes]:
    """Every file of a model folder, by relative name (shipped to the executors with the function)."""
    return {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()}


def _scorer(files: dict[str, bytes], as_of: dt.date) -> Any:
    """The ``mapInPandas`` function: restore the model once per partition, then score each batch."""

    def score(batches: Iterator[Any]) -> Iterator[Any]:
        import tempfile

        import numpy as np
        import pandas as pd

        from churnguard.predict import load_model
        from churnguard.predict.events import _band_cutoffs, _cox_days, risk_bands

        with tempfile.TemporaryDirectory(prefix="cg-model-") as tmp:
            folder = Path(tmp)
            for name, data in files.items():
                target = folder / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            trained = load_model(folder)
            horizon = int(trained.meta.get("horizon_days") or 30)
            for batch in batches:
                if batch.empty:
                    continue
                p = trained.predict(batch)
                explained = trained.reasons(batch, top=3, langs=("en", "zh"))
                cutoffs = trained.meta.get("bands") or _band_cutoffs(p)
                yield pd.DataFrame(
                    {
                        "customer_id": batch["customer_id"].astype(str).to_numpy(),
                        "as_of": as_of,
                        "model_id": trained.model_id,
                        "horizon_days": np.int32(horizon),
                        "probability": p.astype(float),
                        "risk_band": risk_bands(p, cutoffs),
                        "top_reason": explained["top_reason"].astype(object).to_numpy(),
                        "reasons": explained["reasons"].astype(str).to_numpy(),
                        "expected_days_to_churn": np.asarray(_cox_days(folder, batch), dtype=float),
                    }
                )

    return score


def _parallelism(spark: Any) -> int:
    """The session's default parallelism (cores), at most 64; 4 where it cannot be read (Spark Connect)."""
    try:
        return max(1, min(64, int(spark.sparkContext.defaultParallelism)))
    except Exception:  # Spark Connect sessions have no SparkContext
        return 4


def score_lake(
    lake: Source,
    model_path: str | Path,
    as_of: dt.date | None,
    out: str | Path,
    *,
    partitions: int | None = None,
    master: str | None = None,
) -> LakeScoring:
    """Score every customer active at ``as_of`` with a saved model; write the scores as Parquet to ``out``.

    Features are built on Spark (:func:`churnguard.features.build_features`, no labels), then
    scored with ``mapInPandas`` (the model folder travels with the function: no shared disk is
    needed on a cluster).  ``as_of`` defaults to the data's as-of date + 1 day, as ``churnguard
    score`` does.  Columns: :data:`SCORE_SCHEMA` (``reasons`` is JSON text; value at risk needs
    the store's value and is left to ``churnguard score`` on a store).

    Returns
    -------
    LakeScoring : customers scored, partitions, seconds per step, customers per risk band.
    """
    import pandas as pd

    from churnguard.errors import ConfigError
    from churnguard.features.build import build_features
    from churnguard.metrics.activity import data_as_of
    from churnguard.predict import load_model

    model_dir = Path(model_path)
    trained = load_model(model_dir)  # refuse a bad folder before any Spark work
    timings: dict[str, float] = {}
    with _opened(lake, master) as store:
        if not isinstance(store, SparkStore):
            raise ConfigError(f"score_lake scores a Spark lake, got {store}. Fix: churnguard score on a store.")
        if as_of is None:
            as_of = data_as_of(store) + dt.timedelta(days=1)
        t0 = time.perf_counter()
        frame = build_features(store, as_of, labels=False)
        timings["features"] = time.perf_counter() - t0
        if frame.empty:
            raise ConfigError(f"no customer is active on {as_of}: nothing to score.")
        t0 = time.perf_counter()
        spark = store.raw.spark
        table = frame.copy()
        for c in table.columns:  # categories travel as text; the model's plan maps the levels back
            if isinstance(table[c].dtype, pd.CategoricalDtype):
                table[c] = table[c].astype(object)
        n = partitions or _parallelism(spark)
        sdf = spark.createDataFrame(table).repartition(n)
        scored = sdf.mapInPandas(_scorer(_model_files(model_dir), as_of), SCORE_SCHEMA)
        scored.write.mode("overwrite").parquet(str(out))
        timings["scoring"] = time.perf_counter() - t0
        counts = {
            r["risk_band"]: int(r["count"]) for r in spark.read.parquet(str(out)).groupBy("risk_band").count().collect()
        }
    return LakeScoring(
        out=Path(out),
        model_id=trained.model_id,
        as_of=as_of,
        customers=len(frame),
        partitions=n,
        seconds=timings,
        bands={b: counts.get(b, 0) for b in ("high", "medium", "low")},
    )


__all__ = [
    "LakeScoring",
    "churn_by_month_branch",
    "clv_summary",
    "cohort_matrix",
    "features",
    "implicit_churn_report",
    "open_lake",
    "rfm_inputs",
    "rfm_segments",
    "score_lake",
]
