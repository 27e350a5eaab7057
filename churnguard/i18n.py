"""User-facing labels in English and Chinese (zh-CN), from ../GLOSSARY terms.

``label(key, lang)`` returns the label; a missing key falls back to the key itself, so a
forgotten translation shows up as a readable English identifier, not a crash.
"""

from __future__ import annotations

LABELS: dict[str, tuple[str, str]] = {
    # key: (en, zh)
    "table": ("Table", "数据表"),
    "rows": ("Rows", "行数"),
    "from": ("From", "起始"),
    "to": ("To", "截止"),
    "time_column": ("Time column", "时间字段"),
    "tables_title": ("Tables in the store", "数据仓库中的数据表"),
    "branches_title": ("Branches (organisation tree)", "组织架构(总部/分公司)"),
    "branch": ("Branch", "分支机构"),
    "level": ("Level", "层级"),
    "customers": ("Customers", "客户数"),
    "loaded": ("Loaded", "已加载"),
    "added": ("Added", "新增"),
    "replaced": ("Replaced", "替换"),
    "skipped": ("Skipped", "跳过(已存在)"),
    "seconds": ("Seconds", "耗时(秒)"),
    "dataset": ("Data set", "数据集"),
    "churn_definition": ("Churn definition", "流失定义"),
    "contractual": ("contractual", "契约型"),
    "non_contractual": ("non-contractual", "非契约型"),
    "description": ("Description", "说明"),
    "schema_version": ("Schema version", "模式版本"),
    "store": ("Store", "数据存储"),
    "head_office": ("Head office", "总部"),
    "extra_columns": ("Extra columns", "扩展字段"),
    "totals": ("Totals", "合计"),
    "start_customers": ("Start", "期初客户数"),
    "new_customers": ("New", "新增客户数"),
    "reactivated_customers": ("Reactivated", "回流客户数"),
    "churned_customers": ("Churned", "流失客户数"),
    "churned_from_start": ("Of the start, left", "期初客户中流失"),
    "end_customers": ("End", "期末客户数"),
    "churn_rate": ("Churn rate", "客户流失率"),
    "retention_rate": ("Retention rate", "客户保留率"),
    "churn_rate_change": ("Change", "流失变动率"),
    "period": ("Period", "期间"),
    "all": ("All", "全部"),
    "plan": ("Plan", "套餐"),
    "segment": ("Segment", "客户细分"),
    "tier": ("Value tier", "价值等级"),
    "cohort": ("Cohort", "入网批次"),
    "reason": ("Churn reason", "流失原因"),
    "destination": ("Destination", "客户去向"),
    # early warning (scoring)
    "scored_customers": ("Scored customers", "已评分客户数"),
    "risk_bands": ("Customers by risk band", "按风险等级的客户数"),
    "risk_band": ("Risk band", "风险等级"),
    "risk_high": ("High", "高"),
    "risk_medium": ("Medium", "中"),
    "risk_low": ("Low", "低"),
    "top_reasons": ("Top reason of each customer", "客户首要流失原因"),
    "driver_category": ("Driver", "驱动因素"),
    "value_at_risk": ("Value at risk", "风险价值"),
    "churn_probability": ("Churn probability", "流失概率"),
}


def label(key: str, lang: str = "en") -> str:
    """The label for ``key`` in ``lang`` (``en`` or ``zh``)."""
    pair = LABELS.get(key)
    if pair is None:
        return key
    return pair[1] if lang.startswith("zh") else pair[0]
