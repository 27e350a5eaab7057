"""Churn early warning (流失预警): train, evaluate, explain and score churn models.

``train(frame, label=…)`` → :class:`TrainedModel` (``predict``, ``explain``, ``importance``,
``save``); ``load_model(path)``; ``evaluate(y, p)``; ``backtest(frame, label=…, time_col=…)``;
``read_table(path)`` for snapshot files; ``register(store, model, path)`` and
``list_models(store, folder)`` for the registry.

Imports are lazy: ``import churnguard.predict`` loads neither LightGBM nor scikit-learn (nor
pandas); each name is imported on first use.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "train": "churnguard.predict.models",
    "load_model": "churnguard.predict.models",
    "TrainedModel": "churnguard.predict.models",
    "LGBM_PARAMS": "churnguard.predict.models",
    "ALGORITHMS": "churnguard.predict.models",
    "evaluate": "churnguard.predict.evaluation",
    "backtest": "churnguard.predict.backtesting",
    "read_table": "churnguard.predict.tabular",
    "infer_plan": "churnguard.predict.tabular",
    "TablePlan": "churnguard.predict.tabular",
    "register": "churnguard.predict.registry",
    "list_models": "churnguard.predict.registry",
    "ModelError": "churnguard.predict.errors",
    "ModelFormatError": "churnguard.predict.errors",
    "TableError": "churnguard.predict.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'churnguard.predict' has no attribute {name!r}")
