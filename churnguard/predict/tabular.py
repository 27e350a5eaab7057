"""Snapshot tables with no mapping: read a file, infer what each column is, encode it for a model.

A *snapshot table* has one row per customer (or per customer and observation date) and a label
column.  :func:`infer_plan` decides, column by column, what the model sees:

==================  ==========================================================================
column              becomes
==================  ==========================================================================
numbers             a numeric feature; missing stays missing (never zero)
numeric text        numbers (``"29.85"``; blanks, ``NA``, ``-`` … are missing, not zero)
yes/no, true/false  a 0/1 feature (the positive word is 1)
dates               days before the row's ``time_col`` date, else before the table's latest date
low-cardinality     a categorical feature (LightGBM native categorical; one-hot for the
text                logistic regression); the 100 most common levels with ≥ 5 rows (≥ 1 in
                    tables under 1,000 rows); rarer and unseen levels are missing
identifiers         dropped: a different text or whole number on (nearly) every row, or an
                    ``…id`` name with more than 50 distinct values
free / high-        dropped: more than 50 distinct values *and* more than 5 % of rows distinct
cardinality text    (names, comments, addresses) — they would be memorised, not learnt
constant / empty    dropped
==================  ==========================================================================

Every dropped column is recorded with its reason (``TablePlan.dropped``), and the plan is
saved with the model as JSON, so scoring applies exactly the same encoding.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnguard.errors import ValidationError
from churnguard.predict.errors import ModelError, TableError, table_problem

#: Cell values that mean "no value" in text columns (compared lower-cased, stripped).
NA_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "-", "--", "?", "#n/a", "nil", "missing"})
#: Two-valued text read as 0/1: (word for 1, word for 0), compared lower-cased.
BINARY_WORDS = (("yes", "no"), ("y", "n"), ("true", "false"), ("t", "f"), ("是", "否"))
#: Label values taken as "churned" when ``positive`` is not given (lower-cased).
POSITIVE_WORDS = (
    "yes",
    "y",
    "true",
    "t",
    "1",
    "1.0",
    "churn",
    "churned",
    "left",
    "lost",
    "exited",
    "attrited",
    "cancelled",
    "canceled",
    "是",
)
#: Text columns with more distinct values than this *and* ...
HIGH_CARDINALITY_DISTINCT = 50
#: ... a larger share of distinct values than this are dropped as free / high-cardinality text.
HIGH_CARDINALITY_SHARE = 0.05
#: A share of distinct values at or above this (in 20+ rows) makes a text column identifier-like.
NEAR_UNIQUE_SHARE = 0.9
#: Categorical levels kept (the most common first).
MAX_LEVELS = 100
#: Date formats tried, in order, on text columns that look like dates.
DATE_FORMATS = ("ISO8601", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d-%m-%Y", "%m-%d-%Y")

_ID_NAME = re.compile(r"(^|[^a-z])(id|uuid|guid|key)$|^(id|uuid|guid)([^a-z]|$)|(?<=[a-z])(ID|Id)$|编号$|账号$")

#: Driver category from a column name: the first rule whose keyword starts a word of the name wins.
CATEGORY_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("competitor", ("competitor", "rival", "竞争")),
    ("payment", ("payment", "paperless", "arrear", "overdue", "debt", "late", "autopay", "缴费", "欠费", "支付")),
    ("price", ("charge", "price", "fee", "bill", "tariff", "cost", "discount", "资费", "价格", "费用")),
    ("tenure", ("tenure", "months", "month", "seniority", "since", "在网", "网龄")),
    (
        "product",
        (
            "contract",
            "plan",
            "product",
            "internet",
            "streaming",
            "security",
            "backup",
            "protection",
            "device",
            "phone",
            "lines",
            "package",
            "套餐",
            "产品",
        ),
    ),
    ("service", ("support", "ticket", "complaint", "service", "satisfaction", "nps", "csat", "投诉", "服务")),
    (
        "usage",
        ("usage", "minutes", "minute", "data", "login", "logins", "calls", "sessions", "traffic", "使用", "流量"),
    ),
    ("value", ("value", "revenue", "clv", "cltv", "ltv", "spend", "margin", "价值", "收入")),
)


def driver_category(name: str) -> str:
    """The driver category of a column from its name (keyword rules above; ``other`` when none fits).

    ``age`` counts as tenure only as a word of its own ("account age"), not inside "usage".
    """
    words = _words(name)
    if "age" in words and any(w in words for w in ("account", "customer", "contract", "subscription")):
        return "tenure"
    for code, keys in CATEGORY_KEYWORDS:
        for w in words:
            if any(w.startswith(k) for k in keys):
                return code
    return "other"


def _words(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
    return [w for w in re.split(r"[^0-9a-zA-Z\u4e00-\u9fff]+", spaced.lower()) if w]


def looks_like_id_name(name: str) -> bool:
    """``customer_id``, ``customerID``, ``CustomerId``, ``id``, ``uuid``, ``客户编号`` …"""
    return bool(_ID_NAME.search(name.strip())) or name.strip().lower() in ("id", "uuid", "guid")


# -- reading files ---------------------------------------------------------------------------


def read_table(path: str | Path, *, sheet: str | None = None, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """Read a CSV (delimiter sniffed), TSV, Parquet, JSON-lines or Excel file into a frame.

    Text files are read as text (every column a string) so that :func:`infer_plan` decides the
    types — a blank ``TotalCharges`` stays missing, a ``0012`` id keeps its zeros.  Parquet keeps its
    own types.  A bad file raises :class:`~churnguard.predict.errors.TableError` naming the file.
    """
    import duckdb

    from churnguard.ingest import readers

    p = Path(path)
    con = duckdb.connect()
    try:
        try:
            staged = readers.stage(con, p, sheet=sheet)
            with readers.reading(staged):
                frame = con.execute(f"SELECT * FROM {staged.relation}", staged.params).df()
        except ValidationError as exc:
            raise TableError(exc.problems, total=exc.total) from None
        except duckdb.Error as exc:
            raise table_problem(p.name, None, "a readable table", str(exc).splitlines()[0]) from None
    finally:
        con.close()
    if frame.empty:
        raise table_problem(p.name, None, "at least one data row", "none", "check the file.")
    for c in text_columns:
        if c in frame.columns and frame[c].dtype != object:
            frame[c] = frame[c].astype("string").astype(object)
    return frame


# -- the plan --------------------------------------------------------------------------------


@dataclass
class ColumnPlan:
    """How one input column becomes one model feature."""

    name: str
    kind: str  # numeric | binary | categorical | date
    source: str  # what the column held: number, numeric text, yes/no, boolean, text, category, date
    category: str  # driver code
    levels: list[str] | None = None  # categorical: level i has code i; binary: [word for 0, word for 1]
    grid: list[float] | None = None  # numeric/date: training percentiles 0, 1, …, 100
    median: float | None = None
    missing_share: float = 0.0
    distinct: int = 0
    date_format: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnPlan:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class TablePlan:
    """The column plan of a training table: features in model order, dropped columns with reasons."""

    features: list[ColumnPlan]
    dropped: list[dict[str, str]] = field(default_factory=list)
    label: str | None = None
    positive: str | None = None
    id_col: str | None = None
    time_col: str | None = None
    input_columns: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": [f.to_dict() for f in self.features],
            "dropped": self.dropped,
            "label": self.label,
            "positive": self.positive,
            "id_col": self.id_col,
            "time_col": self.time_col,
            "input_columns": self.input_columns,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TablePlan:
        return cls(
            features=[ColumnPlan.from_dict(f) for f in data["features"]],
            dropped=list(data.get("dropped", [])),
            label=data.get("label"),
            positive=data.get("positive"),
            id_col=data.get("id_col"),
            time_col=data.get("time_col"),
            input_columns=list(data.get("input_columns", [])),
        )

    def matrix(self, frame: pd.DataFrame, *, source: str = "table", missing: str = "error") -> np.ndarray:
        """Encode ``frame`` as the model's float matrix (rows × features; NaN = missing).

        ``missing="error"`` (default) raises :class:`TableError` when a feature column is absent;
        ``missing="fill"`` treats absent columns as all missing.
        """
        absent = [f.name for f in self.features if f.name not in frame.columns]
        if absent and missing != "fill":
            raise table_problem(
                source,
                absent[0],
                "the columns the model was trained with",
                f"no column{'s' if len(absent) > 1 else ''} {', '.join(absent[:8])}"
                + (f" (and {len(absent) - 8} more)" if len(absent) > 8 else ""),
                "add the column(s), or score with --allow-missing-columns to treat them as missing.",
            )
        n = len(frame)
        out = np.full((n, len(self.features)), np.nan, dtype=np.float64)
        reference = None
        for j, f in enumerate(self.features):
            if f.name not in frame.columns:
                continue
            col = frame[f.name]
            if f.kind == "numeric":
                out[:, j] = to_numbers(col)
            elif f.kind == "binary":
                out[:, j] = _binary_codes(col, f.levels or ["0", "1"])
            elif f.kind == "categorical":
                out[:, j] = _level_codes(col, f.levels or [])
            else:
                if reference is None:
                    reference = self._reference_days(frame)
                out[:, j] = reference - to_days(col, f.date_format)
        return out

    def _reference_days(self, frame: pd.DataFrame) -> np.ndarray:
        """Days since 1970 of each row's reference date: its time column, else the table's latest date."""
        if self.time_col and self.time_col in frame.columns:
            return to_days(frame[self.time_col], None)
        latest = -np.inf
        for f in self.features:
            if f.kind == "date" and f.name in frame.columns:
                d = to_days(frame[f.name], f.date_format)
                if np.isfinite(d).any():
                    latest = max(latest, float(np.nanmax(d)))
        return np.full(len(frame), latest if np.isfinite(latest) else np.nan)

    def display_values(self, j: int, codes: np.ndarray) -> np.ndarray:
        """The readable value of feature ``j`` for encoded values (level text for categorical/binary)."""
        f = self.features[j]
        if f.kind in ("categorical", "binary") and f.levels:
            levels = np.asarray([*list(f.levels), None], dtype=object)
            idx = np.where(np.isfinite(codes), codes, len(f.levels)).astype(np.int64)
            return levels[np.clip(idx, 0, len(f.levels))]
        return codes


# -- encoding helpers ------------------------------------------------------------------------


def clean_text(col: pd.Series) -> pd.Series:
    """Strings, stripped, with the :data:`NA_TOKENS` as missing (pyarrow-backed, vectorised)."""
    s = col.astype("string[pyarrow]").str.strip()
    lower = s.str.lower()
    return s.mask(lower.isin(list(NA_TOKENS)) | s.isna())


def _distinct(col: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Codes of the distinct raw values (−1 = missing) and those values: text columns are cleaned
    and parsed once per distinct value, not once per row."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype(object)
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    return np.asarray(codes), pd.Series(np.asarray(uniques, dtype=object), dtype=object)


def _take(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``values[codes]`` with NaN where the code is −1."""
    out = np.full(codes.shape[0], np.nan)
    ok = codes >= 0
    out[ok] = values[codes[ok]]
    return out


def to_numbers(col: pd.Series) -> np.ndarray:
    """Floats; text is parsed (blanks and NA words are missing, unparsable text is missing)."""
    if pd.api.types.is_bool_dtype(col):
        return col.astype("float64").to_numpy()
    if pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype):
        return pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()
    codes, uniques = _distinct(col)
    parsed = pd.to_numeric(clean_text(uniques), errors="coerce").astype("float64").to_numpy()
    return _take(parsed, codes)


def _binary_codes(col: pd.Series, levels: Sequence[str]) -> np.ndarray:
    if pd.api.types.is_bool_dtype(col) or (
        pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype)
    ):
        v = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()
        return np.where(np.isin(v, (0.0, 1.0)), v, np.nan)
    codes, uniques = _distinct(col)
    lower = clean_text(uniques).str.lower().to_numpy(dtype=object, na_value=None)
    neg, pos = levels[0].lower(), levels[1].lower()
    value = np.where(lower == pos, 1.0, np.where(lower == neg, 0.0, np.nan))
    return _take(value, codes)


def _as_text(col: pd.Series) -> pd.Series:
    if isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype(object)
    if pd.api.types.is_float_dtype(col):
        # 1.0 and 1 are the same level
        col = col.map(lambda v: v if pd.isna(v) else (str(int(v)) if float(v).is_integer() else str(v)))
    return clean_text(col)


def _level_codes(col: pd.Series, levels: Sequence[str]) -> np.ndarray:
    codes, uniques = _distinct(col)
    if len(uniques) and all(isinstance(v, float | np.floating) for v in uniques.head(20)):
        uniques = uniques.astype("float64")
    level = pd.Categorical(_as_text(uniques), categories=list(levels)).codes.astype(np.float64)
    level[level < 0] = np.nan
    return _take(level, codes)


def to_days(col: pd.Series, fmt: str | None) -> np.ndarray:
    """Days since 1970-01-01 (float; NaN when missing or unparsable)."""
    d = col if pd.api.types.is_datetime64_any_dtype(col) else _parse_dates(col, fmt)
    values = pd.to_datetime(d, errors="coerce")
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_localize(None)
    ns = values.to_numpy(dtype="datetime64[ns]")
    out = ns.astype("datetime64[D]").astype(np.float64)
    out[np.isnat(ns)] = np.nan
    return out


def _parse_dates(col: pd.Series, fmt: str | None) -> pd.Series:
    if col.dtype == object:
        first = col.dropna().head(1)
        if len(first) and isinstance(first.iloc[0], dt.date | np.datetime64):
            return pd.to_datetime(col, errors="coerce")
    text = clean_text(col.astype(object) if isinstance(col.dtype, pd.CategoricalDtype) else col)
    return pd.to_datetime(text.astype(object), format=fmt or "ISO8601", errors="coerce")


def _date_format(text: pd.Series) -> str | None:
    """The first of :data:`DATE_FORMATS` that parses every non-missing value, or ``None``."""
    sample = text.dropna()
    if sample.empty:
        return None
    head = sample.head(200).astype(str)
    if not head.str.match(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?$").all():
        return None
    for fmt in DATE_FORMATS:
        parsed = pd.to_datetime(sample.astype(str), format=fmt, errors="coerce")
        if parsed.notna().all():
            return fmt
    return None


# -- inference -------------------------------------------------------------------------------


def infer_plan(
    frame: pd.DataFrame,
    *,
    label: str | None,
    id_col: str | None = None,
    time_col: str | None = None,
    drop: Iterable[str] = (),
    catalog: Mapping[str, Any] | None = None,
    positive: Any = None,
    source: str = "table",
) -> TablePlan:
    """Decide, for every column of ``frame``, whether and how it becomes a feature (see the module doc)."""
    drop = list(drop)
    for role, col in (("label", label), ("id", id_col), ("time", time_col)):
        if col is not None and col not in frame.columns:
            raise _no_column(source, col, frame, f"the {role} column")
    for col in drop:
        if col not in frame.columns:
            raise _no_column(source, col, frame, "a column to drop (--drop)")
    if len(frame) == 0:
        raise table_problem(source, None, "at least one row", "an empty table")
    features: list[ColumnPlan] = []
    dropped: list[dict[str, str]] = []
    reserved = {label: "the label", id_col: "the customer id (--id)", time_col: "the time column (--time-col)"}
    for name in frame.columns:
        if name in reserved and name is not None:
            if name != label:
                dropped.append({"column": str(name), "reason": reserved[name]})
            continue
        if name in drop:
            dropped.append({"column": str(name), "reason": "dropped on request (--drop)"})
            continue
        spec = catalog.get(name) if catalog is not None else None
        plan, reason = infer_column(str(name), frame[name], trusted=spec is not None)
        if plan is None:
            dropped.append({"column": str(name), "reason": reason or "not usable"})
            continue
        if spec is not None and getattr(spec, "category", None):
            plan.category = str(spec.category)
        features.append(plan)
    if not features:
        raise table_problem(
            source,
            None,
            "at least one usable feature column",
            "none: " + "; ".join(f"{d['column']} ({d['reason']})" for d in dropped[:6]),
            "check the file has the customers' attributes, not only ids and free text.",
        )
    positive_text = None
    if label is not None:
        _, positive_text = label_vector(frame, label, positive, source=source)
    return TablePlan(
        features=features,
        dropped=dropped,
        label=label,
        positive=positive_text,
        id_col=id_col,
        time_col=time_col,
        input_columns=[str(c) for c in frame.columns],
    )


def _no_column(source: str, col: str, frame: pd.DataFrame, what: str) -> TableError:
    names = ", ".join(map(str, list(frame.columns)[:30]))
    return table_problem(source, col, f"{what} {col!r}", f"no such column; the columns are {names}", None)


def infer_column(name: str, col: pd.Series, *, trusted: bool = False) -> tuple[ColumnPlan | None, str | None]:
    """One column's plan, or ``(None, reason)`` when it is dropped.

    ``trusted`` columns (in a feature catalog) are never dropped as identifiers or free text.
    """
    n = len(col)
    if pd.api.types.is_bool_dtype(col):
        return _finish(name, "binary", "boolean", col.astype("float64"), levels=["False", "True"])
    if pd.api.types.is_datetime64_any_dtype(col):
        return _date_plan(name, col, None)
    if pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype):
        return _numeric_plan(name, pd.to_numeric(col, errors="coerce").astype("float64"), "number", trusted)
    if isinstance(col.dtype, pd.CategoricalDtype) and trusted:
        text = _as_text(col)
        return _categorical_plan(name, text, "category", n)
    text = _as_text(col)
    present = text.dropna()
    if present.empty:
        return None, "empty: no values"
    counts = present.value_counts()
    distinct = len(counts)
    if distinct == 1:
        return None, f'constant: every row is "{counts.index[0]}"'
    lowered = {str(v).lower() for v in counts.index}
    for pos, neg in BINARY_WORDS:
        if lowered <= {pos, neg}:
            spelled = {str(v).lower(): str(v) for v in counts.index}
            codes = _binary_codes(text.astype(object), [spelled[neg], spelled[pos]])
            return _finish(name, "binary", "yes/no", pd.Series(codes), levels=[spelled[neg], spelled[pos]])
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.notna().all():
        values = pd.to_numeric(text, errors="coerce").astype("float64")
        return _numeric_plan(name, values, "numeric text", trusted)
    fmt = _date_format(present)
    if fmt is not None:
        return _date_plan(name, text.astype(object), fmt)
    if not trusted:
        share = distinct / len(present)
        if looks_like_id_name(name) and distinct > HIGH_CARDINALITY_DISTINCT:
            return None, f"identifier: named like an id, {distinct:,} distinct values"
        if share >= NEAR_UNIQUE_SHARE and len(present) >= 20:
            mean_len = float(present.head(1000).str.len().mean())
            spaces = float(present.head(1000).str.contains(" ").mean())
            kind = "free text" if mean_len > 25 and spaces > 0.5 else "identifier-like text"
            return None, f"{kind}: {distinct:,} distinct values in {len(present):,} rows (would be memorised)"
        if distinct > HIGH_CARDINALITY_DISTINCT and share > HIGH_CARDINALITY_SHARE:
            return None, (
                f"high-cardinality text: {distinct:,} distinct values ({share:.0%} of rows; "
                f"more than {HIGH_CARDINALITY_DISTINCT} and {HIGH_CARDINALITY_SHARE:.0%}) would overfit"
            )
    return _categorical_plan(name, text, "text", n, counts=counts)


def _categorical_plan(
    name: str, text: pd.Series, source: str, n: int, counts: pd.Series | None = None
) -> tuple[ColumnPlan | None, str | None]:
    if counts is None:
        counts = text.dropna().value_counts()
    if len(counts) == 0:
        return None, "empty: no values"
    if len(counts) == 1:
        return None, f'constant: every row is "{counts.index[0]}"'
    min_rows = 5 if n >= 1000 else 1
    ordered = sorted(((int(c), str(v)) for v, c in counts.items()), key=lambda t: (-t[0], t[1]))
    levels = [v for c, v in ordered if c >= min_rows][:MAX_LEVELS]
    if len(levels) < 2:
        return None, f"too few common values: {len(counts):,} distinct, none with {min_rows}+ rows"
    plan = ColumnPlan(
        name=name,
        kind="categorical",
        source=source,
        category=driver_category(name),
        levels=levels,
        missing_share=round(float(text.isna().mean()), 6),
        distinct=len(counts),
    )
    return plan, None


def _numeric_plan(name: str, values: pd.Series, source: str, trusted: bool) -> tuple[ColumnPlan | None, str | None]:
    present = values.dropna()
    if present.empty:
        return None, "empty: no values"
    distinct = int(present.nunique())
    if distinct == 1:
        return None, f"constant: every row is {_fmt(float(present.iloc[0]))}"
    if not trusted:
        if looks_like_id_name(name) and distinct > HIGH_CARDINALITY_DISTINCT:
            return None, f"identifier: named like an id, {distinct:,} distinct values"
        whole = bool(np.all(np.mod(present.to_numpy(), 1) == 0))
        if whole and distinct == len(present) and len(present) >= 100:
            return None, f"identifier-like: a different whole number on every one of {len(present):,} rows"
    return _finish(name, "numeric", source, values)


def _date_plan(name: str, col: pd.Series, fmt: str | None) -> tuple[ColumnPlan | None, str | None]:
    days = to_days(col, fmt)
    finite = days[np.isfinite(days)]
    if finite.size == 0:
        return None, "empty: no dates"
    if np.unique(finite).size == 1:
        return None, "constant: one date on every row"
    plan, reason = _finish(name, "date", "date", pd.Series(days), fmt=fmt)
    return plan, reason


def _finish(
    name: str, kind: str, source: str, values: pd.Series, *, levels: list[str] | None = None, fmt: str | None = None
) -> tuple[ColumnPlan | None, str | None]:
    v = values.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return None, "empty: no values"
    if np.unique(finite).size == 1:
        return None, f"constant: every row is {_fmt(float(finite[0]))}"
    grid = None
    if kind in ("numeric", "date"):
        grid = [float(x) for x in np.percentile(finite, np.arange(101))]
    return (
        ColumnPlan(
            name=name,
            kind=kind,
            source=source,
            category=driver_category(name),
            levels=levels,
            grid=grid,
            median=float(np.median(finite)),
            missing_share=round(float(1 - finite.size / max(len(v), 1)), 6),
            distinct=int(np.unique(finite).size),
            date_format=fmt,
        ),
        None,
    )


# -- the label -------------------------------------------------------------------------------


def label_vector(
    frame: pd.DataFrame, label: str, positive: Any = None, *, source: str = "table"
) -> tuple[np.ndarray, str]:
    """The label as floats (1 = churned, 0 = not, NaN = missing) and the positive value as text.

    Without ``positive``: a 0/1 or boolean column; else the one value among
    :data:`POSITIVE_WORDS` (yes, true, 1, churned …) present in the column.  With ``positive``,
    text is compared without regard to case, numbers as numbers; every other value is 0.
    """
    if label not in frame.columns:
        raise _no_column(source, label, frame, "the label column")
    col = frame[label]
    if pd.api.types.is_bool_dtype(col) or (
        pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype)
    ):
        v = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()
        present = np.unique(v[~np.isnan(v)])
        shown = ", ".join(_fmt_label(x) for x in present[:10])
        if present.size == 0:
            raise table_problem(source, label, "label values (churned or not)", "an empty column")
        if positive is None:
            if not set(present.tolist()) <= {0.0, 1.0} or 1.0 not in present:
                raise table_problem(
                    source,
                    label,
                    "a 0/1 label (1 = churned)",
                    f"values {shown}",
                    "give the churned value with --positive VALUE.",
                )
            pos = 1.0
        else:
            text = str(positive).strip().lower()
            words = {"true": 1.0, "false": 0.0}
            try:
                pos = words[text] if text in words else float(text)
            except ValueError:
                pos = float("nan")
            if pos not in present:
                raise table_problem(
                    source, label, f"the positive value {positive!r} in the label column", f"values {shown}"
                )
        y = np.where(np.isnan(v), np.nan, (v == pos).astype(np.float64))
        return y, _fmt_label(pos)
    text = _as_text(col).str.lower()
    values = sorted(str(x) for x in text.dropna().unique())
    if not values:
        raise table_problem(source, label, "label values (churned or not)", "an empty column")
    if positive is None:
        found = [w for w in POSITIVE_WORDS if w in values]
        if not found:
            raise table_problem(
                source,
                label,
                "a label with a recognisable churn value (yes, true, 1, churned)",
                "values " + ", ".join(values[:10]),
                "give the churned value with --positive VALUE.",
            )
        pos_text = found[0]
    else:
        pos_text = str(positive).strip().lower()
        if pos_text not in values:
            raise table_problem(
                source,
                label,
                f"the positive value {positive!r} in the label column",
                "values " + ", ".join(values[:10]),
                "check --positive (compared without regard to case).",
            )
    arr = text.to_numpy(dtype=object, na_value=None)
    missing = pd.isna(arr)
    y = np.where(missing, np.nan, (arr == pos_text).astype(np.float64))
    return y.astype(np.float64), pos_text


def _fmt_label(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


# -- formatting ------------------------------------------------------------------------------


def round_sig(values: np.ndarray, digits: int = 3) -> np.ndarray:
    """Round to ``digits`` significant digits (vectorised; NaN stays NaN, 0 stays 0)."""
    v = np.asarray(values, dtype=np.float64)
    out = v.copy()
    nz = np.isfinite(v) & (v != 0)
    mag = np.floor(np.log10(np.abs(v[nz])))
    decimals = (digits - 1 - mag).astype(np.int64)
    scale = np.power(10.0, decimals)
    out[nz] = np.round(v[nz] * scale) / scale
    return out


def _fmt(v: float | None) -> str:
    """A number for people: whole numbers without decimals, else up to 3 significant digits."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "missing"
    v = float(v)
    if v.is_integer():
        return f"{int(v):,}" if abs(v) >= 10_000 else str(int(v))
    r = float(round_sig(np.array([v]), 3)[0])
    if r.is_integer():
        return f"{int(r):,}" if abs(r) >= 10_000 else str(int(r))
    return f"{r:,.6f}".rstrip("0").rstrip(".") if abs(r) >= 1e-4 else f"{r:.3g}"


def format_number(v: float | None) -> str:
    """Public name of the number formatter used in reason texts."""
    return _fmt(v)


def check_options(frame: pd.DataFrame, *, label: str | None, id_col: str | None, time_col: str | None) -> None:
    """Reject option combinations that cannot work (the label given as the id, …)."""
    named = [c for c in (label, id_col, time_col) if c is not None]
    if len(named) != len(set(named)):
        raise ModelError(f"--label, --id and --time-col must name different columns, got {', '.join(named)}.")
