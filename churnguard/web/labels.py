"""The dashboard's labels in English and Chinese (zh-CN), with the GLOSSARY's terms.

``t(key, lang, **values)`` returns the label with ``values`` formatted in.  Keys not defined here
fall back to :data:`churnguard.i18n.LABELS` (the CLI's labels); a key missing from both raises
``KeyError``, so a test that renders every page in both languages catches a forgotten label.
"""

from __future__ import annotations

from typing import Any

from churnguard.i18n import LABELS as CLI_LABELS

LANGS: tuple[str, ...] = ("en", "zh")

LABELS: dict[str, tuple[str, str]] = {
    # frame
    "app_name": ("churnguard", "churnguard 客户流失管理"),
    "nav_overview": ("Overview", "总览"),
    "nav_at_risk": ("At-risk customers", "流失预警客户"),
    "nav_worklist": ("My worklist", "我的工作台"),
    "nav_campaigns": ("Campaigns", "挽留活动"),
    "nav_api": ("API", "接口文档"),
    "logout": ("Log out", "退出登录"),
    "language": ("中文", "English"),
    "role_admin": ("Admin (head office)", "系统管理员(总部)"),
    "role_analyst": ("Analyst", "经营分析"),
    "role_branch_manager": ("Branch manager", "分公司经理"),
    "role_account_manager": ("Account manager", "客户经理"),
    "whole_company": ("Whole company", "全公司"),
    # login
    "login_title": ("Log in", "登录"),
    "username": ("User name", "用户名"),
    "password": ("Password", "密码"),
    "login_button": ("Log in", "登录"),
    "login_failed": ("Wrong user name or password.", "用户名或密码错误。"),
    "login_hint": (
        "Customer churn management: measure, warn early, act.",
        "客户流失管理系统:流失度量、流失预警、挽留行动。",
    ),
    # overview
    "overview_title": ("Churn overview", "客户流失总览"),
    "branch_title": ("Branch view", "分公司视图"),
    "period": ("Period", "统计期间"),
    "last_months": ("last {n} months", "最近 {n} 个月"),
    "compared_with": ("compared with {start} to {end}", "对比期:{start} 至 {end}"),
    "as_of": ("data as of {day}", "数据截至 {day}"),
    "churn_rate": ("Churn rate", "客户流失率"),
    "churn_rate_change": ("Churn-rate change", "流失变动率"),
    "previous_rate": ("Previous period", "上期流失率"),
    "churned_customers": ("Churned customers", "流失客户数"),
    "start_customers": ("Customers at start", "期初客户数"),
    "end_customers": ("Customers at end", "期末客户数"),
    "lost_revenue": ("Lost revenue", "流失收入"),
    "profit_loss": ("Churn loss (profit)", "客户流失损失(利润)"),
    "high_risk": ("High-risk customers", "高风险客户"),
    "value_at_risk": ("Value at risk", "风险价值"),
    "by_branch": ("Churn by branch", "各分支机构流失情况"),
    "branch": ("Branch", "分支机构"),
    "own_customers": ("(customers held directly)", "(本级直属客户)"),
    "trend": ("Churn rate per month", "月度客户流失率"),
    "reason_mix": ("Churn reasons", "流失原因构成"),
    "share": ("Share", "占比"),
    "alerts": ("Alerts", "流失预警提示"),
    "no_alerts": ("No alerts in this period.", "本期无预警。"),
    "at_risk_top": ("Top at-risk customers", "高流失风险客户"),
    "see_all": ("See all", "查看全部"),
    "case_pool": ("Case pool (unassigned)", "待认领线索池"),
    "no_scores": (
        "No scores yet: run the early-warning model (churnguard score) to fill this list.",
        "暂无预警评分:请先运行流失预警模型(churnguard score)。",
    ),
    "no_cases": ("No cases.", "暂无线索。"),
    "data_warnings": ("Data notes", "数据提示"),
    "drill_down": ("Open", "查看"),
    # at-risk list
    "at_risk_title": ("At-risk customers", "流失预警客户名单"),
    "filter": ("Filter", "筛选"),
    "all": ("All", "全部"),
    "tier": ("Value tier", "价值等级"),
    "top_reason": ("Main driver", "主要原因"),
    "risk_band": ("Risk", "风险等级"),
    "band_high": ("high", "高"),
    "band_medium": ("medium", "中"),
    "band_low": ("low", "低"),
    "probability": ("Churn probability", "流失概率"),
    "sort_by": ("Sort by", "排序"),
    "export_csv": ("Export CSV", "导出 CSV"),
    "customer": ("Customer", "客户"),
    "plan": ("Plan", "套餐"),
    "clv": ("CLV", "客户终生价值"),
    "case": ("Case", "线索"),
    "owner": ("Owner", "负责人"),
    "rows_of": ("{first}–{last} of {total}", "第 {first}–{last} 条,共 {total} 条"),
    "previous_page": ("Previous", "上一页"),
    "next_page": ("Next", "下一页"),
    "scored_on": ("scored on {day}", "评分日期 {day}"),
    # customer 360
    "customer_title": ("Customer {id}", "客户 {id}"),
    "profile": ("Profile", "客户资料"),
    "signup_date": ("Customer since", "入网日期"),
    "segment": ("Segment", "客户细分"),
    "rfm_segment": ("RFM segment", "RFM 客户分群"),
    "rfm_scores": ("R / F / M", "R / F / M 评分"),
    "lifecycle_stage": ("Lifecycle stage", "客户生命周期"),
    "value": ("Value (12 months)", "客户价值(12个月)"),
    "p_alive": ("P(alive)", "存活概率"),
    "risk": ("Churn early warning", "流失预警"),
    "expected_days": ("Expected days to churn", "预计流失天数"),
    "reasons": ("Why (largest contributions first)", "预警原因(按影响大小)"),
    "rescore_now": ("Rescore now", "立即重新评分"),
    "rescored": ("Rescored for {day}: churn probability {p}.", "已重新评分(评分日期 {day}):流失概率 {p}。"),
    "rescore_not_active": (
        "Not rescored: the customer is not active on the scoring day (churned, or not yet a customer).",
        "未重新评分:该客户在评分日不在网(已流失或尚未入网)。",
    ),
    "recommended_action": ("Recommended action", "建议挽留措施"),
    "no_action": ("No action recommended yet.", "暂无建议措施。"),
    "activity": ("Activity by month", "月度使用情况"),
    "revenue": ("Revenue by month", "月度收入"),
    "subscriptions": ("Subscriptions", "订阅/合约"),
    "tickets": ("Service tickets", "服务工单"),
    "surveys": ("Surveys", "满意度调查"),
    "churn_events": ("Churn events", "流失记录"),
    "cases": ("Cases", "挽留线索"),
    "case_history": ("Case history", "线索处理记录"),
    "timeline": ("Timeline", "客户时间线"),
    "none": ("none", "无"),
    "start_date": ("Start", "开始"),
    "end_date": ("End", "结束"),
    "opened_at": ("Opened", "创建时间"),
    "resolved_at": ("Resolved", "解决时间"),
    "category": ("Category", "类别"),
    "satisfaction": ("Satisfaction", "满意度"),
    "kind": ("Kind", "类型"),
    "score": ("Score", "评分"),
    "comment": ("Comment", "备注"),
    "churn_date": ("Churn date", "流失日期"),
    "reason": ("Churn reason", "流失原因"),
    "destination": ("Destination", "客户去向"),
    "status": ("Status", "状态"),
    "deadline": ("Deadline", "截止时间"),
    "action": ("Action", "措施"),
    "expected_gain": ("Expected gain", "预期收益"),
    "priority": ("Priority", "优先级"),
    "when": ("When", "时间"),
    "event": ("Event", "事件"),
    "note": ("Note", "备注"),
    "tl_subscription_start": ("Subscription started", "开通订阅"),
    "tl_subscription_end": ("Subscription ended", "订阅结束"),
    "tl_ticket": ("Service ticket", "服务工单"),
    "tl_survey": ("Survey answer", "调查反馈"),
    "tl_churn": ("Churned", "流失"),
    "tl_case": ("Case", "挽留线索"),
    # worklist
    "worklist_title": ("My worklist", "我的工作台"),
    "my_cases": ("My open cases", "我的在办线索"),
    "claim": ("Claim", "认领"),
    "claims_used": ("{open} of {max} claims used", "已认领 {open} / 上限 {max}"),
    "record_contact": ("Record a contact or outcome", "记录联系或结果"),
    "save": ("Save", "保存"),
    "keep_status": ("(keep status)", "(状态不变)"),
    "recently_closed": ("Recently closed", "近期已结案"),
    "claimed": ("Case {id} claimed.", "已认领线索 {id}。"),
    "updated": ("Case {id} updated.", "线索 {id} 已更新。"),
    "cases_unavailable": (
        "The case workflow is not installed in this version.",
        "本版本尚未包含线索工作流。",
    ),
    "kind_retain": ("retention", "挽留"),
    "status_open": ("open (pool)", "待认领"),
    "status_claimed": ("claimed", "已认领"),
    "status_contacted": ("contacted", "已联系"),
    "status_retained": ("retained", "挽留成功"),
    "status_lost": ("lost", "已流失"),
    "status_won_back": ("won back", "挽回成功"),
    "status_abandoned": ("abandoned", "放弃"),
    "kind_winback": ("win-back", "挽回"),
    # campaigns
    "campaigns_title": ("Campaigns", "挽留活动"),
    "campaign": ("Campaign", "活动"),
    "treated": ("Treated", "干预组"),
    "control": ("Control", "对照组"),
    "created": ("Created", "创建时间"),
    "budget": ("Budget", "预算"),
    "no_campaigns": ("No campaigns yet.", "暂无活动。"),
    "campaign_report": ("Results", "活动效果"),
    "too_early": (
        "Too early to measure: the horizon ends on {day} ({days} days left).",
        "尚未到效果评估期:观察期截至 {day}(还剩 {days} 天)。",
    ),
    "effect": ("Effect (treated − control)", "活动效果(干预组 − 对照组)"),
    "saved_customers": ("Customers saved", "挽留客户数"),
    "saved_value": ("Saved value", "挽留价值"),
    "cost": ("Cost", "成本"),
    "winback_rate": ("Win-back success rate", "挽回成功率"),
    "success_rate": ("Success rate", "成功率"),
    "campaigns_unavailable": ("Campaigns are not installed in this version.", "本版本尚未包含挽留活动模块。"),
    # errors
    "error_title": ("Something went wrong", "出错了"),
    "not_found_title": ("Not found", "未找到"),
    "forbidden_title": ("Not allowed", "无权访问"),
    "back_home": ("Back to the start page", "返回首页"),
    # docs
    "api_title": ("REST API", "REST 接口"),
}


def t(key: str, lang: str = "en", **values: Any) -> str:
    """The label ``key`` in ``lang`` (``en`` or ``zh``) with ``values`` formatted in."""
    pair = LABELS.get(key) or CLI_LABELS.get(key)
    if pair is None:
        raise KeyError(f"no dashboard label {key!r}")
    text = pair[1] if lang.startswith("zh") else pair[0]
    return text.format(**values) if values else text


def status_label(status: str | None, lang: str = "en") -> str:
    """A case status by its label (unknown statuses as they are)."""
    if status is None:
        return "—"
    pair = LABELS.get(f"status_{status}")
    return (pair[1] if lang.startswith("zh") else pair[0]) if pair else status


def driver_label(code: str | None, lang: str = "en") -> str:
    """A driver category (early-warning reason, playbook key) by its label."""
    from churnguard.reasons import DRIVER_CODES, driver

    if code is None:
        return "—"
    return driver(code).label(lang) if code in DRIVER_CODES else code


def reason_label(code: str | None, lang: str = "en") -> str:
    """A churn reason code by its label."""
    from churnguard.metrics.alerts import reason_label as metric_reason_label

    return "—" if code is None else metric_reason_label(code, lang)


def tier_label(key: str | None, lang: str = "en") -> str:
    from churnguard.segments.labels import tier_label as seg_tier_label

    return seg_tier_label(key, lang)


def segment_label(key: str | None, lang: str = "en") -> str:
    from churnguard.segments.labels import segment_label as seg_label

    return seg_label(key, lang)


def stage_label(key: str | None, lang: str = "en") -> str:
    from churnguard.segments.labels import stage_label as seg_stage_label

    return seg_stage_label(key, lang)
