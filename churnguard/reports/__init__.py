"""The periodic churn report (阶段性客户流失情况总结与分析报告): a self-contained HTML file with charts."""

from churnguard.reports.churn_report import ReportResult, build_churn_report, write_churn_report
from churnguard.reports.periods import default_range, previous_range

__all__ = ["ReportResult", "build_churn_report", "default_range", "previous_range", "write_churn_report"]
