"""Measurement: churn and retention rates, churn loss, cohorts, survival, revenue retention, alerts.

Every analysis runs in the engine over the store's canonical tables; see docs/metrics.md.
The topic modules are imported on use (survival needs lifelines, which is slow to import).
"""

from __future__ import annotations

from typing import Any

from churnguard.metrics.activity import ActivityRules, rules_for
from churnguard.metrics.churn import ChurnReport, annualise, churn_rate, churn_report, monthly_from_annual

_LAZY = {
    "churn_loss": "churnguard.metrics.loss",
    "key_account_churn": "churnguard.metrics.loss",
    "revenue_retention": "churnguard.metrics.revenue",
    "cohort_retention": "churnguard.metrics.cohorts",
    "survival_curves": "churnguard.metrics.survival",
    "implicit_churn": "churnguard.metrics.implicit",
    "churn_alerts": "churnguard.metrics.alerts",
    "reason_mix": "churnguard.metrics.alerts",
    "change_impact": "churnguard.metrics.changes",
}

__all__ = [
    "ActivityRules",
    "ChurnReport",
    "annualise",
    "churn_rate",
    "churn_report",
    "monthly_from_annual",
    "rules_for",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'churnguard.metrics' has no attribute {name!r}")
