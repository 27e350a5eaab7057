"""Explanations: per-customer reasons, global importance and partial dependence.

**Contributions** are on the raw log-odds scale, one per feature plus the base value, and each
row sums to the model's raw margin:

- LightGBM: exact tree SHAP, the values of ``pred_contrib=True`` (Lundberg et al.'s
  path-dependent algorithm).  From :data:`TABLES_MIN_ROWS` rows on they are looked up in the
  model's tabulated SHAP values (:mod:`churnguard.predict.treeshap`); for fewer rows, or trees too
  large to tabulate, LightGBM computes them, once per group of rows with the same split decisions
  everywhere (identical SHAP values);
- logistic regression: β_k · z_k (standardised coefficient × standardised value), summed per
  feature over its design columns (one-hot levels, missing-indicator);
- blend (margin w · m_lightgbm + (1 − w) · m_logistic): w · (tree SHAP) + (1 − w) · (β · z), base
  values likewise — exact, since both are additive in log-odds.

**Reasons**: the ``top`` features with the largest *positive* contributions (the ones that push
this customer towards churn), largest first, chosen over the whole contribution matrix at once
(``argmax`` passes, or ``numpy.argpartition`` for more than four).  Each reason is
``{feature, category, contribution, value, text}``; the text comes from the feature catalog's
``describe(value, lang)`` when the model has one, else from the column and its value:
"Contract is Month-to-month", "tenure is 2 (low: bottom 10 %)", "Contract 为 Month-to-month",
"tenure 为 2（偏低：最低 10 %）".  Texts are built once per distinct (feature, shown value) — never
per row.

**Global importance**: mean |contribution| per feature over (a sample of) the validation rows.
**Partial dependence** of feature j at value v: the mean calibrated probability of the sample
rows with feature j set to v (everything else as it is), over a grid of the feature's
percentiles (numeric) or its levels (categorical).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churnguard.predict.tabular import ColumnPlan, round_sig

if TYPE_CHECKING:
    from churnguard.predict.models import TrainedModel

#: Share of training rows at or below (above) a value for it to be called low (high).
QUALIFIERS = ((0.10, "bottom 10 %", "最低 10 %"), (0.20, "bottom 20 %", "最低 20 %"))
QUALIFIERS_HIGH = ((0.10, "top 10 %", "最高 10 %"), (0.20, "top 20 %", "最高 20 %"))
#: Look tree SHAP up in tables (built once per model) from this many rows on.
TABLES_MIN_ROWS = 20_000
#: Dedup the tree-SHAP rows when there are at least this many.
DEDUP_MIN_ROWS = 5000
CONTRIB_DECIMALS = 3
CONTRIB_RANGE = 100  # contributions in ±100 log-odds come from a lookup table of their texts


# -- contributions ---------------------------------------------------------------------------


def contributions(model: TrainedModel, X: np.ndarray) -> np.ndarray:
    """(rows × (features + 1)) raw log-odds contributions; the last column is the base value."""
    if model.booster is not None:
        trees = _tree_contributions(model, X)
        if model.algorithm != "blend":
            return trees
        w = model.blend_weight
        assert w is not None
        return w * trees + (1 - w) * _linear_contributions(model, X)
    return _linear_contributions(model, X)


def _linear_contributions(model: TrainedModel, X: np.ndarray) -> np.ndarray:
    """β · z per feature and the intercept as the base value."""
    assert model.linear is not None
    p = X.shape[1]
    out = np.empty((X.shape[0], p + 1))
    out[:, :p] = model.linear.contributions(X, p)
    out[:, p] = model.linear.intercept
    return out


def shap_tables(model: TrainedModel) -> Any:
    """The model's tabulated tree SHAP (:mod:`churnguard.predict.treeshap`), built once and cached."""
    if model._shap_tables is None:
        from pathlib import Path

        from churnguard.predict.treeshap import TABLES_FILE, ShapTables

        saved = Path(model.meta["path"]) / TABLES_FILE if model.meta.get("path") else None
        if saved is not None and saved.exists():
            model._shap_tables = ShapTables.load(saved, model.booster, model_id=model.model_id)
        if model._shap_tables is None:
            levels = {j: len(f.levels or []) for j, f in enumerate(model.plan.features) if f.kind == "categorical"}
            model._shap_tables = ShapTables(model.booster, len(model.plan.features), levels)
    return model._shap_tables


def _tree_contributions(model: TrainedModel, X: np.ndarray, *, tables: bool | None = None) -> np.ndarray:
    """Exact tree SHAP: looked up in the model's tables for many rows, else LightGBM's ``pred_contrib``
    (on one row per group of rows with identical split decisions, when that saves work)."""
    from churnguard.predict.models import threads_for

    booster = model.booster
    n = X.shape[0]
    if tables or (tables is None and n >= TABLES_MIN_ROWS):
        tab = shap_tables(model)
        if tab.ok:
            return tab.contributions(X)
    if n >= DEDUP_MIN_ROWS:
        groups = _split_groups(model, X)
        if groups is not None:
            first, inverse = groups
            if first.size < 0.7 * n:
                threads = threads_for(first.size)
                unique_contrib = np.asarray(booster.predict(X[first], pred_contrib=True, num_threads=threads))
                return unique_contrib[inverse]
    return np.asarray(booster.predict(X, pred_contrib=True, num_threads=threads_for(n)))


def split_thresholds(model: TrainedModel) -> list[np.ndarray | None]:
    """Per feature: the sorted numeric split thresholds used anywhere in the model (None: categorical)."""
    if model._thresholds is None:
        dump = model.booster.dump_model()
        found: list[set[float]] = [set() for _ in model.plan.features]
        categorical = [f.kind == "categorical" for f in model.plan.features]

        def walk(node: dict[str, Any]) -> None:
            if "split_feature" not in node:
                return
            j = int(node["split_feature"])
            if node.get("decision_type") == "<=":
                found[j].add(float(node["threshold"]))
            else:
                categorical[j] = True
            walk(node["left_child"])
            walk(node["right_child"])

        for tree in dump["tree_info"]:
            walk(tree["tree_structure"])
        model._thresholds = [None if categorical[j] else np.array(sorted(found[j])) for j in range(len(found))]
    return model._thresholds


def _split_groups(model: TrainedModel, X: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows with the same split decisions everywhere: (first row of each group, group of each row)."""
    thresholds = split_thresholds(model)
    keys = []
    for j, t in enumerate(thresholds):
        x = X[:, j]
        nan = np.isnan(x)
        if t is None:
            k = np.where(nan, -1, x).astype(np.int64)
        elif t.size == 0:
            continue
        else:
            k = np.searchsorted(t, x, side="left").astype(np.int64)
            k[nan] = -1
        keys.append(k)
    if not keys:
        return np.zeros(1, dtype=np.int64), np.zeros(X.shape[0], dtype=np.int64)
    K = np.ascontiguousarray(np.stack(keys, axis=1).astype(np.int32))
    codes = pd.DataFrame(K).groupby(list(range(K.shape[1])), sort=False).ngroup().to_numpy()
    order = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
    first = order[starts]
    return first, codes.astype(np.int64)


# -- top reasons -----------------------------------------------------------------------------


def top_positive(C: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row the ``top`` largest contributions, largest first: (feature index, value, valid = value > 0).

    Vectorised over all rows: for a few reasons, ``top`` passes of ``argmax`` (each masking the
    maximum found); for more, ``numpy.argpartition`` then a sort of the ``top`` columns.
    """
    n, p = C.shape
    k = min(top, p)
    if k <= 4:
        work = np.array(C, dtype=np.float64, order="C")
        rows = np.arange(n)
        idx = np.empty((n, k), dtype=np.int64)
        vals = np.empty((n, k))
        for j in range(k):
            best = work.argmax(axis=1)
            idx[:, j] = best
            vals[:, j] = work[rows, best]
            work[rows, best] = -np.inf
        return idx, vals, vals > 0
    idx = np.argpartition(-C, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(C, idx, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    idx = np.take_along_axis(idx, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    return idx, vals, vals > 0


def _qualifier_codes(f: ColumnPlan, values: np.ndarray) -> np.ndarray:
    """0 none, 1 bottom 10 %, 2 bottom 20 %, 3 top 10 %, 4 top 20 % — from the training percentiles.

    A value is in the bottom q when at most q of the training rows are at or below it, in the top q
    when at most q are at or above it.
    """
    out = np.zeros(values.shape[0], dtype=np.int64)
    if f.grid is None or f.distinct <= 2:
        return out
    grid = np.asarray(f.grid)
    finite = np.isfinite(values)
    v = np.where(finite, values, 0.0)
    share_le = np.maximum(np.searchsorted(grid, v, side="right") - 1, 0) / 100
    share_ge = (100 - np.searchsorted(grid, v, side="left")) / 100
    out = np.select([share_le <= 0.10, share_le <= 0.20, share_ge <= 0.10, share_ge <= 0.20], [1, 2, 3, 4], default=0)
    out[~finite] = 0
    return out


_QUALIFIER_TEXT = {
    "en": ("", " (low: bottom 10 %)", " (low: bottom 20 %)", " (high: top 10 %)", " (high: top 20 %)"),
    "zh": ("", "（偏低：最低 10 %）", "（偏低：最低 20 %）", "（偏高：最高 10 %）", "（偏高：最高 20 %）"),
}


def _shown(v: float) -> str:
    """A value already rounded to 3 significant digits, for people."""
    if v.is_integer():
        return f"{int(v):,}" if abs(v) >= 10_000 else str(int(v))
    return f"{v:,.10g}" if abs(v) >= 10_000 else f"{v:.10g}"


def generic_text(f: ColumnPlan, value: Any, lang: str = "en", qualifier: int | None = None) -> str:
    """Reason text built from the column name and its value (no catalog).

    "Contract is Month-to-month", "tenure is 2 (low: bottom 10 %)"; in Chinese "Contract 为
    Month-to-month", "tenure 为 2（偏低：最低 10 %）"; "x is missing" / "x 缺失".
    """
    zh = lang.startswith("zh")
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return f"{f.name} 缺失" if zh else f"{f.name} is missing"
    if isinstance(value, str):
        return f"{f.name} 为 {value}" if zh else f"{f.name} is {value}"
    if qualifier is None:  # a single value from outside: round it and place it here
        qualifier = int(_qualifier_codes(f, np.array([float(value)]))[0])
        v = float(round_sig(np.array([float(value)]), 3)[0])
    else:  # from _SlotText: already rounded to 3 significant digits
        v = float(value)
    q = _QUALIFIER_TEXT["zh" if zh else "en"][qualifier]
    if f.kind == "date":
        return f"{f.name} 为 {_shown(v)} 天前{q}" if zh else f"{f.name} is {_shown(v)} days ago{q}"
    return f"{f.name} 为 {_shown(v)}{q}" if zh else f"{f.name} is {_shown(v)}{q}"


def _catalog_text(spec: Any, value: Any, lang: str) -> str:
    try:
        return str(spec.describe(value, lang))
    except TypeError:
        return str(spec.describe(value))


class _SlotText:
    """One reason slot of every row: the shown value, its text per language and a JSON fragment.

    Rows are grouped by (feature, shown value) — the level for categorical features, the value
    rounded to 3 significant digits otherwise — and each group's text is built once.  ``fragment``
    is the JSON object after its contribution: ``, "feature": …, "text_zh": …}``.
    """

    def __init__(self, model: TrainedModel, X: np.ndarray, fidx: np.ndarray, valid: np.ndarray, langs: Sequence[str]):
        n = X.shape[0]
        self.value = np.full(n, None, dtype=object)
        self.text = {lang: np.full(n, None, dtype=object) for lang in langs}
        self.fragment = np.full(n, None, dtype=object)
        plan = model.plan
        catalog = model.catalog or {}
        for j in np.unique(fidx[valid]).tolist():
            rows = np.flatnonzero(valid & (fidx == j))
            f = plan.features[j]
            x = X[rows, j]
            levels = f.kind in ("categorical", "binary") and bool(f.levels)
            key = np.where(np.isnan(x), -1.0, x) if levels else round_sig(x, 3)
            codes, uniques = pd.factorize(key, use_na_sentinel=False)
            uniques = np.asarray(uniques, dtype=np.float64)
            if levels:
                shown = [None if u < 0 else f.levels[int(u)] for u in uniques.tolist()]
                quals = np.zeros(len(uniques), dtype=np.int64)
            else:
                shown = [None if not np.isfinite(u) else float(u) for u in uniques.tolist()]
                quals = _qualifier_codes(f, uniques)
            spec = catalog.get(f.name)
            head = ", " + json.dumps({"feature": f.name, "category": f.category}, ensure_ascii=False)[1:-1]
            u_val = np.empty(len(uniques), dtype=object)
            u_text = {lang: np.empty(len(uniques), dtype=object) for lang in langs}
            u_frag = np.empty(len(uniques), dtype=object)
            for u, v in enumerate(shown):
                u_val[u] = v
                body = {"value": v}
                for lang in langs:
                    t = _catalog_text(spec, v, lang) if spec is not None else generic_text(f, v, lang, int(quals[u]))
                    u_text[lang][u] = t
                    body[f"text_{lang}"] = t
                u_frag[u] = head + ", " + json.dumps(body, ensure_ascii=False)[1:]
            self.value[rows] = u_val[codes]
            for lang in langs:
                self.text[lang][rows] = u_text[lang][codes]
            self.fragment[rows] = u_frag[codes]


_CONTRIB_TABLES: dict[str, np.ndarray] = {}


def contribution_text(c: np.ndarray, prefix: str = "") -> np.ndarray:
    """``prefix`` + each contribution as JSON number text with 3 decimals, from a lookup table
    (one table per prefix, built once) rather than a per-row format."""
    scale = 10**CONTRIB_DECIMALS
    limit = CONTRIB_RANGE * scale
    table = _CONTRIB_TABLES.get(prefix)
    if table is None:
        k = np.arange(-limit, limit + 1)
        table = np.array([f"{prefix}{v / scale:.{CONTRIB_DECIMALS}f}" for v in k.tolist()], dtype=object)
        _CONTRIB_TABLES[prefix] = table
    k = np.rint(np.nan_to_num(c) * scale).astype(np.int64)
    inside = np.abs(k) <= limit
    out = np.empty(c.shape[0], dtype=object)
    out[inside] = table[k[inside] + limit]
    for i in np.flatnonzero(~inside).tolist():
        out[i] = f"{prefix}{float(c[i]):.{CONTRIB_DECIMALS}f}"
    return out


def _reason_parts(
    model: TrainedModel, frame: pd.DataFrame, top: int, langs: Sequence[str], missing: str, source: str = "table"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[_SlotText]]:
    X = model.matrix(frame, missing=missing, source=source)
    C = contributions(model, X)
    margin = C.sum(axis=1)
    fidx, vals, valid = top_positive(C[:, :-1], top)
    slots = [_SlotText(model, X, fidx[:, k], valid[:, k], langs) for k in range(fidx.shape[1])]
    return margin, fidx, vals, valid, slots


def explain_frame(
    model: TrainedModel,
    frame: pd.DataFrame,
    *,
    top: int = 3,
    lang: str = "en",
    missing: str = "error",
    source: str = "table",
) -> pd.DataFrame:
    """One row per input row: ``reasons`` (list of dicts, largest contribution first) and ``top_reason``."""
    _, fidx, vals, valid, slots = _reason_parts(model, frame, top, (lang,), missing, source)
    names = np.array(model.features, dtype=object)
    cats = np.array([f.category for f in model.plan.features], dtype=object)
    per_slot = [
        (valid[:, k], names[fidx[:, k]], cats[fidx[:, k]], np.round(vals[:, k], 6), slots[k].value, slots[k].text[lang])
        for k in range(fidx.shape[1])
    ]
    reasons = [[] for _ in range(len(frame))]
    for ok, feat, cat, contrib, value, text in per_slot:
        for i in np.flatnonzero(ok).tolist():
            reasons[i].append(
                {
                    "feature": feat[i],
                    "category": cat[i],
                    "contribution": float(contrib[i]),
                    "value": value[i],
                    "text": text[i],
                }
            )
    top_reason = np.where(valid[:, 0], cats[fidx[:, 0]], None) if fidx.shape[1] else np.full(len(frame), None)
    return pd.DataFrame({"reasons": reasons, "top_reason": top_reason}, index=frame.index)


def reason_columns(
    model: TrainedModel,
    frame: pd.DataFrame,
    *,
    top: int = 3,
    langs: Sequence[str] = ("en", "zh"),
    missing: str = "error",
    source: str = "table",
    margin_out: list[np.ndarray] | None = None,
) -> pd.DataFrame:
    """Vectorised reason columns for storage: ``top_reason``, ``reason_1..top`` (``_zh`` suffix for
    languages after the first) and ``reasons`` — JSON text, a list of {contribution, feature,
    category, value, text_<lang>…} (the ``scores.reasons`` format), largest contribution first."""
    margin, fidx, vals, valid, slots = _reason_parts(model, frame, top, langs, missing, source)
    if margin_out is not None:
        margin_out.append(margin)
    cats = np.array([f.category for f in model.plan.features], dtype=object)
    n = len(frame)
    out: dict[str, Any] = {}
    out["top_reason"] = np.where(valid[:, 0], cats[fidx[:, 0]], None) if fidx.shape[1] else np.full(n, None)
    for k, slot in enumerate(slots):
        for i, lang in enumerate(langs):
            out[f"reason_{k + 1}" if i == 0 else f"reason_{k + 1}_{lang}"] = slot.text[lang]
    # valid slots are a prefix of each row's slots: rows with the same count are built together
    counts = valid.sum(axis=1)
    json_text = np.full(n, "[]", dtype=object)
    for m in range(1, len(slots) + 1):
        rows = np.flatnonzero(counts == m)
        if rows.size == 0:
            continue
        parts = []
        for k in range(m):
            parts.append(contribution_text(vals[rows, k], '[{"contribution": ' if k == 0 else ', {"contribution": '))
            parts.append(slots[k].fragment[rows])
        parts.append(np.full(rows.size, "]", dtype=object))
        # one join per row, in C (map/zip): much cheaper than repeated array concatenation
        joined = np.empty(rows.size, dtype=object)
        joined[:] = list(map("".join, zip(*parts, strict=True)))
        json_text[rows] = joined
    out["reasons"] = json_text
    return pd.DataFrame(out, index=frame.index)


def score_frame(
    model: TrainedModel,
    frame: pd.DataFrame,
    *,
    id_col: str | None = None,
    top: int = 3,
    lang: str = "en",
    missing: str = "error",
    source: str = "table",
) -> pd.DataFrame:
    """id, probability, risk_band, top_reason, reason_1..top (in ``lang``), reasons (JSON, en and zh)."""
    id_col = id_col or model.plan.id_col
    langs = (lang, *[x for x in ("en", "zh") if x != lang])
    margins: list[np.ndarray] = []
    reasons = reason_columns(model, frame, top=top, langs=langs, missing=missing, source=source, margin_out=margins)
    p = model.calibrator(margins[0])
    out = pd.DataFrame(index=frame.index)
    if id_col is not None and id_col in frame.columns:
        out[id_col] = frame[id_col].to_numpy()
    out["probability"] = p
    bands = model.meta.get("bands")
    if bands:
        out["risk_band"] = np.where(p >= bands["high"], "high", np.where(p >= bands["medium"], "medium", "low"))
    keep = ["top_reason", *[f"reason_{k + 1}" for k in range(min(top, len(model.features)))], "reasons"]
    for c in keep:
        out[c] = reasons[c].to_numpy()
    return out.reset_index(drop=True)


# -- global views ----------------------------------------------------------------------------


def global_importance(model: TrainedModel, X: np.ndarray) -> list[dict[str, Any]]:
    """Mean |contribution| per feature (log-odds), largest first, with its share of the total."""
    C = contributions(model, X)[:, :-1]
    imp = np.abs(C).mean(axis=0)
    total = float(imp.sum()) or 1.0
    rows = [
        {
            "feature": f.name,
            "category": f.category,
            "importance": round(float(v), 6),
            "share": round(float(v) / total, 6),
        }
        for f, v in zip(model.plan.features, imp, strict=True)
    ]
    rows.sort(key=lambda r: -r["importance"])
    return rows


def partial_dependence(
    model: TrainedModel, X: np.ndarray, *, features: Sequence[str] | None = None, points: int = 10
) -> list[dict[str, Any]]:
    """For each feature: grid points with the mean calibrated probability when every row takes that value."""
    names = model.features
    wanted = list(features) if features is not None else names[:5]
    out = []
    for name in wanted:
        if name not in names:
            continue
        j = names.index(name)
        f = model.plan.features[j]
        if f.kind in ("categorical", "binary"):
            levels = f.levels or []
            grid = np.arange(min(len(levels), 20), dtype=np.float64)
        else:
            x = X[:, j]
            finite = x[np.isfinite(x)]
            if finite.size == 0:
                continue
            grid = np.unique(np.quantile(finite, np.linspace(0.05, 0.95, points)))
        m = X.shape[0]
        stacked = np.repeat(X[None, :, :], len(grid), axis=0).reshape(len(grid) * m, X.shape[1])
        stacked[:, j] = np.repeat(grid, m)
        p = model.calibrator(model.margin_matrix(stacked)).reshape(len(grid), m).mean(axis=1)
        shown = model.plan.display_values(j, grid)
        out.append(
            {
                "feature": name,
                "category": f.category,
                "kind": f.kind,
                "points": [
                    {"value": v if isinstance(v, str) else float(v), "probability": round(float(q), 6)}
                    for v, q in zip(shown, p, strict=True)
                ],
            }
        )
    return out
