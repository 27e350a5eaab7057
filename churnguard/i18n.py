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
}


def label(key: str, lang: str = "en") -> str:
    """The label for ``key`` in ``lang`` (``en`` or ``zh``)."""
    pair = LABELS.get(key)
    if pair is None:
        return key
    return pair[1] if lang.startswith("zh") else pair[0]
