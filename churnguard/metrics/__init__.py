"""Measurement: churn and retention rates, churn loss, cohorts, survival, revenue retention."""

from churnguard.metrics.activity import ActivityRules, rules_for
from churnguard.metrics.churn import ChurnReport, annualise, churn_rate, churn_report, monthly_from_annual

__all__ = [
    "ActivityRules",
    "ChurnReport",
    "annualise",
    "churn_rate",
    "churn_report",
    "monthly_from_annual",
    "rules_for",
]
