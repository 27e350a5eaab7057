"""Segment, tier and stage names in English and Chinese (zh-CN), from ../GLOSSARY.md terms.

The store keeps the stable keys (``champions``, ``A``, ``growth`` …); people see the labels.
"""

from __future__ import annotations

#: RFM segments, best first: key -> (en, zh).
RFM_SEGMENTS: dict[str, tuple[str, str]] = {
    "champions": ("Champions", "重要价值客户(冠军)"),
    "loyal": ("Loyal", "忠诚客户"),
    "potential_loyalist": ("Potential Loyalist", "潜在忠诚客户"),
    "new": ("New", "新客户"),
    "promising": ("Promising", "有潜力客户"),
    "need_attention": ("Need Attention", "需要关注客户"),
    "about_to_sleep": ("About to Sleep", "即将沉睡客户"),
    "at_risk": ("At Risk", "有流失风险客户"),
    "cant_lose_them": ("Can't Lose Them", "不能失去的客户"),
    "hibernating": ("Hibernating", "休眠客户"),
    "lost": ("Lost", "已流失客户"),
}

#: ABC value tiers: key -> (en, zh).
TIERS: dict[str, tuple[str, str]] = {
    "A": ("A (key accounts)", "A 类(大客户)"),
    "B": ("B", "B 类"),
    "C": ("C", "C 类"),
}

#: Lifecycle stages in order: key -> (en, zh).
LIFECYCLE_STAGES: dict[str, tuple[str, str]] = {
    "new": ("New / acquisition", "培养期"),
    "growth": ("Growth", "成长期"),
    "maturity": ("Maturity", "成熟期"),
    "decline": ("Decline", "衰退期"),
    "churned": ("Churned", "已流失"),
}

#: Column headings and titles of the segment reports.
HEADINGS: dict[str, tuple[str, str]] = {
    "segment": ("Segment", "客户分群"),
    "tier": ("Tier", "价值等级"),
    "stage": ("Stage", "生命周期阶段"),
    "customers": ("Customers", "客户数"),
    "share_customers": ("Share of customers", "客户占比"),
    "value": ("Value", "价值"),
    "share_value": ("Share of value", "价值占比"),
    "active": ("Active", "在网客户"),
    "churned": ("Churned", "已流失"),
    "rfm_title": ("RFM segments", "RFM 客户分群"),
    "abc_title": ("ABC value tiers", "ABC 客户价值分类"),
    "lifecycle_title": ("Lifecycle stages", "客户生命周期阶段"),
    "overrides_title": ("Tiers set by hand (tier_override)", "手工指定等级(tier_override)"),
    "override": ("Override", "手工等级"),
    "run_title": ("Customer value stored", "客户价值已写入"),
    "revenue": ("Revenue", "收入"),
}


def _pick(table: dict[str, tuple[str, str]], key: str | None, lang: str) -> str:
    if key is None:
        return "(unranked)" if not lang.startswith("zh") else "(未分级)"
    pair = table.get(key)
    if pair is None:
        return key
    return pair[1] if lang.startswith("zh") else pair[0]


def segment_label(key: str | None, lang: str = "en") -> str:
    """The RFM segment ``key`` in ``lang`` (``en`` or ``zh``)."""
    return _pick(RFM_SEGMENTS, key, lang)


def tier_label(key: str | None, lang: str = "en") -> str:
    """The value tier ``key`` in ``lang``; unknown keys (a hand-set ``VIP``) are shown as they are."""
    return _pick(TIERS, key, lang)


def stage_label(key: str | None, lang: str = "en") -> str:
    """The lifecycle stage ``key`` in ``lang``."""
    return _pick(LIFECYCLE_STAGES, key, lang)


def heading(key: str, lang: str = "en") -> str:
    """A report heading in ``lang``."""
    return _pick(HEADINGS, key, lang)
