"""The model registry: model folders on disk, one ``model_runs`` row per registered model.

A model folder holds ``model.json`` (id, mode, algorithm, features, dropped columns with reasons,
label, calibration, data window, metrics, backtest folds, the column plan and — for logistic
regression — the coefficients) and, for LightGBM, ``booster.txt`` (LightGBM's own text format).
No pickles.  :func:`register` records a folder in the store so that ``churnguard model list`` and
the scoring commands find it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from churnguard.predict.evaluation import summary
from churnguard.predict.models import MODEL_FILE, TrainedModel


def metrics_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """Headline numbers per evaluation (validation, test …) and the backtest folds' headline numbers."""
    out: dict[str, Any] = {}
    for name, m in metrics.items():
        if isinstance(m, dict) and "auc" in m:
            out[name] = summary(m)
        elif isinstance(m, list):
            out[name] = [
                {k: f.get(k) for k in ("fold", "test_from", "test_to", "n_test", "auc", "lift_at_10", "brier")}
                for f in m
                if isinstance(f, dict)
            ]
    return out


def _date(text: Any) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(str(text)[:10])
    except ValueError:
        return None


def register(store: Any, model: TrainedModel, path: str | Path, *, active: bool = False) -> dict[str, Any]:
    """Insert (or replace) the ``model_runs`` row of ``model``, saved at ``path``; return the row."""
    meta = model.meta
    window = meta.get("data_window") or {}
    metrics = dict(model.metrics)
    if meta.get("backtest"):
        metrics.setdefault("backtest", meta["backtest"])
    row = {
        "model_id": model.model_id,
        "mode": meta.get("mode", "snapshot"),
        "algorithm": model.algorithm,
        "path": str(Path(path).resolve()),
        "horizon_days": meta.get("horizon_days"),
        "data_from": _date(window.get("from")),
        "data_to": _date(window.get("to")),
        "n_rows": meta.get("n_rows"),
        "n_features": len(model.features),
        "features": json.dumps(
            [{"name": f.name, "dtype": f.kind, "category": f.category} for f in model.plan.features],
            ensure_ascii=False,
        ),
        "metrics": json.dumps(metrics_summary(metrics), ensure_ascii=False),
        "training_seconds": meta.get("training_seconds"),
        "active": bool(active),
        "created_at": _timestamp(meta.get("created_at")),
    }
    cols = list(row)
    with store.transaction():  # joins the caller's transaction when one is open
        store.execute("DELETE FROM model_runs WHERE model_id = ?", [row["model_id"]])
        store.execute(
            f"INSERT INTO model_runs ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
            [row[c] for c in cols],
        )
    return row


def _timestamp(text: Any) -> dt.datetime:
    if text:
        try:
            return dt.datetime.fromisoformat(str(text)).replace(tzinfo=None)
        except ValueError:
            pass
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def list_models(store: Any = None, folder: str | Path | None = None) -> list[dict[str, Any]]:
    """Models registered in ``store`` (``model_runs``) and/or found under ``folder``, newest first.

    Each: model_id, mode, algorithm, created_at, path, n_rows, n_features, active, registered,
    metrics (headline numbers).  A model both registered and on disk is listed once.
    """
    found: dict[str, dict[str, Any]] = {}
    if store is not None and store.has_table("model_runs"):
        rows = store.execute(
            "SELECT model_id, mode, algorithm, path, horizon_days, data_from, data_to, n_rows, n_features, "
            "metrics, training_seconds, active, created_at FROM model_runs"
        ).fetchall()
        for r in rows:
            found[r[0]] = {
                "model_id": r[0],
                "mode": r[1],
                "algorithm": r[2],
                "path": r[3],
                "horizon_days": r[4],
                "data_from": r[5].isoformat() if r[5] else None,
                "data_to": r[6].isoformat() if r[6] else None,
                "n_rows": r[7],
                "n_features": r[8],
                "metrics": json.loads(r[9]) if r[9] else {},
                "training_seconds": r[10],
                "active": bool(r[11]),
                "created_at": r[12].isoformat(timespec="seconds") if r[12] else None,
                "registered": True,
            }
    if folder is not None:
        base = Path(folder)
        files = [base / MODEL_FILE] if (base / MODEL_FILE).exists() else []
        if base.is_dir():
            files += sorted(base.glob(f"*/{MODEL_FILE}")) + sorted(base.glob(f"*/*/{MODEL_FILE}"))
        for file in files:
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            mid = data.get("model_id")
            if not mid:
                continue
            if mid in found:
                found[mid]["on_disk"] = str(file.parent.resolve())
                continue
            window = data.get("data_window") or {}
            found[mid] = {
                "model_id": mid,
                "mode": data.get("mode"),
                "algorithm": data.get("algorithm"),
                "path": str(file.parent.resolve()),
                "horizon_days": data.get("horizon_days"),
                "data_from": window.get("from"),
                "data_to": window.get("to"),
                "n_rows": data.get("n_rows"),
                "n_features": len(data.get("features") or []),
                "metrics": metrics_summary(data.get("metrics") or {}),
                "training_seconds": data.get("training_seconds"),
                "active": None,
                "created_at": data.get("created_at"),
                "registered": False,
            }
    return sorted(found.values(), key=lambda m: (m.get("created_at") or "", m["model_id"]), reverse=True)
