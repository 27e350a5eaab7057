"""The feature catalog: what every point-in-time feature means, its driver category, and its value in words.

Every column that :func:`churnguard.features.build_features` emits (besides ``customer_id``,
``as_of`` and the labels) has a :class:`FeatureSpec` in :data:`CATALOG`: a readable name, a
driver category (:data:`churnguard.reasons.DRIVER_CATEGORIES`: usage, price, service, product,
competitor, payment, tenure, value, other), a description in English and Chinese, whether a
higher value means more risk, and :meth:`FeatureSpec.describe`, which puts a value into words
for an explanation ("usage days fell 60 % in the last 30 days vs the 30 before",
"2 unresolved tickets", "最近30天使用天数比前30天下降60%").

Some names depend on the data or the options: windows (``usage_events_14d`` when ``windows``
has 14), event types (``usage_data_mb_30d``), customer attributes (``customer_channel``).
:data:`CATALOG` resolves those on lookup from name patterns (and then keeps them), so
``CATALOG[name]``, ``name in CATALOG`` and ``CATALOG.get(name)`` work for every emitted column.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from churnguard.reasons import DRIVER_CODES

#: How :meth:`FeatureSpec.describe` formats a value, per ``kind``.
KINDS: tuple[str, ...] = (
    "count",  # a whole number of things
    "days",  # a number of days
    "hours",  # a number of hours
    "money",  # an amount of money
    "amount",  # a quantity (MB, minutes, logins)
    "change",  # a relative change (last − before) / before: −0.6 = fell 60 %
    "slope",  # a relative trend per month: −0.2 = falling 20 % a month
    "share",  # a share 0–1
    "percentile",  # a rank 0–1, 1 = the top
    "score",  # a survey or satisfaction score
    "flag",  # 0/1
    "category",  # a label (plan, tier)
    "number",  # any other number
)


def _plain_number(x: float, digits: int = 1) -> str:
    """``12`` for 12.0, ``12.5`` for 12.5, thousands separated: ``1,234.5``."""
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.{digits}f}".rstrip("0").rstrip(".")


def _pct(x: float, lang: str) -> str:
    p = abs(x) * 100
    text = _plain_number(round(p) if p >= 10 else round(p, 1))
    return f"{text}%" if lang == "zh" else f"{text} %"


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: its meaning, its driver category and how its value reads in words.

    Attributes
    ----------
    name : the column name.
    category : a driver code (:data:`churnguard.reasons.DRIVER_CODES`).
    description_en, description_zh : what the feature measures (with its formula where there is one).
    higher_is_riskier : ``True`` when a higher value goes with more churn, ``False`` when with less,
        ``None`` when neither (categories, values with no direction).
    kind : how :meth:`describe` formats the value (:data:`KINDS`).
    text_en, text_zh : the sentence for :meth:`describe`; ``{v}`` is the formatted value,
        ``{s}`` an English plural "s", ``{change}`` / ``{trend}`` the direction and size of a change.
    """

    name: str
    category: str
    description_en: str
    description_zh: str
    higher_is_riskier: bool | None
    kind: str = "number"
    text_en: str = ""
    text_zh: str = ""

    def __post_init__(self) -> None:
        if self.category not in DRIVER_CODES:
            raise ValueError(f'feature {self.name}: category "{self.category}" is not a driver code.')
        if self.kind not in KINDS:
            raise ValueError(f'feature {self.name}: kind "{self.kind}" is not one of {", ".join(KINDS)}.')

    def describe(self, value: float | str | None, lang: str = "en") -> str:
        """The value in words, for a reason shown to a person.

        >>> CATALOG["tickets_unresolved"].describe(2)
        '2 unresolved tickets'
        >>> CATALOG["usage_days_change_30d"].describe(-0.6, "zh")
        '最近30天使用天数比前30天下降60%'
        """
        zh = lang.startswith("zh")
        template = (self.text_zh if zh else self.text_en) or ("{name}:{v}" if zh else "{name}: {v}")
        name = self.description_zh if zh else self.description_en
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return f"{name}:未知" if zh else f"{name}: unknown"
        if self.kind == "category" or isinstance(value, str):
            return template.format(v=value, s="", name=name, change="", trend="")
        x = float(value)
        fields: dict[str, Any] = {"name": name, "s": "" if abs(x) == 1 else "s", "change": "", "trend": ""}
        lg = "zh" if zh else "en"
        if self.kind in ("count", "days"):
            fields["v"] = _plain_number(round(x))
        elif self.kind == "hours":
            fields["v"] = _plain_number(round(x, 1))
        elif self.kind in ("money", "amount", "number"):
            fields["v"] = _plain_number(round(x, 2), 2)
        elif self.kind == "score":
            fields["v"] = _plain_number(round(x, 1))
        elif self.kind in ("share", "percentile"):
            fields["v"] = _pct(x if self.kind == "share" else 1 - x, lg)
        elif self.kind == "flag":
            fields["v"] = ("是" if x else "否") if zh else ("yes" if x else "no")
        elif self.kind == "change":
            if round(abs(x) * 100, 1) == 0:
                fields["change"] = "持平" if zh else "did not change"
            elif zh:
                fields["change"] = ("下降" if x < 0 else "上升") + _pct(x, lg)
            else:
                fields["change"] = ("fell " if x < 0 else "rose ") + _pct(x, lg)
            fields["v"] = fields["change"]
        elif self.kind == "slope":
            if round(abs(x) * 100, 1) == 0:
                fields["trend"] = "平稳" if zh else "steady"
            elif zh:
                fields["trend"] = ("每月下降" if x < 0 else "每月上升") + _pct(x, lg)
            else:
                fields["trend"] = ("falling " if x < 0 else "rising ") + _pct(x, lg) + " a month"
            fields["v"] = fields["trend"]
        return template.format(**fields)


def _spec(
    name: str,
    category: str,
    en: str,
    zh: str,
    riskier: bool | None,
    kind: str = "number",
    text_en: str = "",
    text_zh: str = "",
) -> FeatureSpec:
    return FeatureSpec(name, category, en, zh, riskier, kind, text_en, text_zh)


#: Display names of common event types (others read as their name with spaces).
EVENT_TYPE_NAMES: dict[str, tuple[str, str]] = {
    "data_mb": ("data use (MB)", "流量(MB)"),
    "call_minutes": ("call minutes", "通话分钟数"),
    "app_login": ("app logins", "App登录次数"),
    "login": ("logins", "登录次数"),
    "visit": ("visits", "到访次数"),
}


def event_type_label(safe: str) -> tuple[str, str]:
    """(en, zh) display name of an event type given its column-safe name."""
    if safe in EVENT_TYPE_NAMES:
        return EVENT_TYPE_NAMES[safe]
    text = safe.replace("_", " ")
    return text, text


# -- static features ------------------------------------------------------------------------------

_STATIC: tuple[FeatureSpec, ...] = (
    # usage (events)
    _spec(
        "usage_events_change_30d",
        "usage",
        "Change in usage events: (last 30 days − the 30 before) / max(the 30 before, 1)",
        "使用事件数变化:(最近30天 − 前30天) / max(前30天, 1)",
        False,
        "change",
        "usage events {change} in the last 30 days vs the 30 before",
        "最近30天使用事件数比前30天{change}",
    ),
    _spec(
        "usage_days_change_30d",
        "usage",
        "Change in days with usage: (last 30 days − the 30 before) / max(the 30 before, 1)",
        "使用天数变化:(最近30天 − 前30天) / max(前30天, 1)",
        False,
        "change",
        "usage days {change} in the last 30 days vs the 30 before",
        "最近30天使用天数比前30天{change}",
    ),
    _spec(
        "usage_days_slope_90d",
        "usage",
        "Trend of days with usage over 90 days: least-squares slope of the three 30-day counts, "
        "per month, over their mean",
        "近90天使用天数趋势:三个30天区间的最小二乘斜率(每月),除以其均值",
        False,
        "slope",
        "usage days {trend} over the last 90 days",
        "最近90天使用天数{trend}",
    ),
    _spec(
        "usage_events_per_day_30d",
        "usage",
        "Usage events per day with usage in the last 30 days",
        "最近30天每个使用日的使用事件数",
        False,
        "number",
        "{v} usage events per active day in the last 30 days",
        "最近30天每个使用日{v}次使用",
    ),
    _spec(
        "days_since_usage",
        "usage",
        "Days since the last usage event (before the observation date)",
        "距上次使用的天数",
        True,
        "days",
        "{v} days since the last usage",
        "距上次使用已{v}天",
    ),
    # purchases (transactions)
    _spec(
        "purchase_amount_change_30d",
        "usage",
        "Change in the amount of purchases and top-ups (not bills): (last 30 days − the 30 before) / "
        "the 30 before; empty when the 30 before had none",
        "消费(充值,不含账单)金额变化:(最近30天 − 前30天) / 前30天;前30天为0时为空",
        False,
        "change",
        "purchases and top-ups {change} in the last 30 days vs the 30 before",
        "最近30天消费(含充值)金额比前30天{change}",
    ),
    _spec(
        "days_since_purchase",
        "usage",
        "Days since the last purchase, bill or top-up",
        "距上次消费(账单或充值)的天数",
        True,
        "days",
        "{v} days since the last purchase",
        "距上次消费已{v}天",
    ),
    # value
    _spec(
        "revenue_12m",
        "value",
        "Revenue in the last 365 days (purchases, bills, top-ups; not payments)",
        "最近365天收入(消费、账单、充值;不含缴费)",
        None,
        "money",
        "revenue of {v} in the last 12 months",
        "最近12个月收入{v}",
    ),
    _spec(
        "margin_12m",
        "value",
        "Margin in the last 365 days",
        "最近365天毛利",
        None,
        "money",
        "margin of {v} in the last 12 months",
        "最近12个月毛利{v}",
    ),
    _spec(
        "value_percentile",
        "value",
        "Rank of the 12-month margin (revenue where there is no margin) among the customers active "
        "at the date: 1 = the most valuable",
        "最近12个月毛利(无毛利时为收入)在当日活跃客户中的百分位:1 = 价值最高",
        None,
        "percentile",
        "in the top {v} of customers by value",
        "价值排名前{v}",
    ),
    _spec(
        "value_tier",
        "value",
        "ABC value tier at the date: A = top 15 % by 12-month margin, B = the next 25 %, C = the rest",
        "当日ABC价值等级:A = 最近12个月毛利前15%,B = 其后25%,C = 其余",
        None,
        "category",
        "value tier {v}",
        "价值等级{v}",
    ),
    _spec(
        "key_account",
        "value",
        "Key account: tier_override is VIP or A",
        "大客户(tier_override 为 VIP 或 A)",
        None,
        "flag",
        "key account: {v}",
        "大客户:{v}",
    ),
    _spec(
        "stored_tier",
        "value",
        "Value tier stored in customer_value (used only when computed on or before the date)",
        "customer_value 中的价值等级(仅当其计算日不晚于观察日)",
        None,
        "category",
        "stored value tier {v}",
        "价值等级{v}",
    ),
    _spec(
        "rfm_r_score",
        "value",
        "RFM recency score 1–5 from customer_value (used only when computed on or before the date)",
        "RFM 最近消费得分 1–5(来自 customer_value)",
        False,
        "score",
        "RFM recency score {v}",
        "RFM最近消费得分{v}",
    ),
    _spec(
        "rfm_f_score",
        "value",
        "RFM frequency score 1–5 from customer_value (used only when computed on or before the date)",
        "RFM 消费频率得分 1–5(来自 customer_value)",
        False,
        "score",
        "RFM frequency score {v}",
        "RFM消费频率得分{v}",
    ),
    _spec(
        "rfm_m_score",
        "value",
        "RFM monetary score 1–5 from customer_value (used only when computed on or before the date)",
        "RFM 消费金额得分 1–5(来自 customer_value)",
        False,
        "score",
        "RFM monetary score {v}",
        "RFM消费金额得分{v}",
    ),
    _spec(
        "clv",
        "value",
        "Customer lifetime value from customer_value (used only when computed on or before the date)",
        "客户终身价值(来自 customer_value)",
        None,
        "money",
        "lifetime value {v}",
        "客户终身价值{v}",
    ),
    # payment
    _spec(
        "bills_unpaid",
        "payment",
        "Bills of the current spell past their due date and not paid by the observation date",
        "本次在网期间已过缴费期限且在观察日前未缴的账单数",
        True,
        "count",
        "{v} overdue unpaid bill{s}",
        "{v}张逾期未缴账单",
    ),
    _spec(
        "bills_unpaid_90d",
        "payment",
        "Bills issued in the last 90 days, past their due date and not paid by the observation date",
        "最近90天开出、已过缴费期限且在观察日前未缴的账单数",
        True,
        "count",
        "{v} overdue unpaid bill{s} in the last 3 months",
        "最近3个月{v}张逾期未缴账单",
    ),
    _spec(
        "unpaid_amount",
        "payment",
        "Amount of the overdue unpaid bills",
        "逾期未缴账单金额",
        True,
        "money",
        "{v} overdue and unpaid",
        "逾期欠费{v}",
    ),
    _spec(
        "payment_delay_days_90d",
        "payment",
        "Mean days paid after the due date (0 when on time; days so far when unpaid) over the bills "
        "issued in the last 90 days that are due",
        "最近90天已到期账单的平均逾期天数(按时为0;未缴按至今天数)",
        True,
        "days",
        "bills paid {v} days late on average",
        "账单平均逾期{v}天",
    ),
    _spec(
        "late_payments_365d",
        "payment",
        "Bills due in the last 365 days that were paid after their due date",
        "最近365天逾期后才缴清的账单数",
        True,
        "count",
        "{v} late payment{s} in the last 12 months",
        "最近12个月逾期缴费{v}次",
    ),
    # price
    _spec(
        "recurring_revenue",
        "price",
        "Monthly recurring fee of the subscriptions active the day before the date",
        "观察日前一天有效订阅的月费",
        None,
        "money",
        "monthly fee {v}",
        "月费{v}",
    ),
    _spec(
        "recurring_revenue_change_90d",
        "price",
        "Change in the monthly fee vs 90 days before: (now − then) / then",
        "月费较90天前的变化:(现在 − 90天前) / 90天前",
        True,
        "change",
        "monthly fee {change} vs 90 days before",
        "月费较90天前{change}",
    ),
    _spec(
        "bill_amount_change_90d",
        "price",
        "Change in the billed amount: smallest bill in the last 62 days vs the smallest bill 90–152 days "
        "before, (now − then) / then (the smallest of about two bills leaves out one-off add-ons)",
        "账单金额变化:最近62天最小账单 vs 90–152天前最小账单,(现在 − 之前) / 之前",
        True,
        "change",
        "bills {change} vs three months before",
        "账单金额较三个月前{change}",
    ),
    # product
    _spec(
        "plan",
        "product",
        "Plan of the latest subscription started before the date",
        "观察日前最近一次订阅的套餐",
        None,
        "category",
        "plan {v}",
        "套餐{v}",
    ),
    _spec(
        "plan_changes_180d",
        "product",
        "Plan changes (new subscriptions inside the current spell) in the last 180 days",
        "最近180天套餐变更次数(本次在网期间的新订阅)",
        True,
        "count",
        "{v} plan change{s} in the last 6 months",
        "最近6个月变更套餐{v}次",
    ),
    _spec(
        "days_since_plan_change",
        "product",
        "Days since the last plan change in the current spell (empty: none)",
        "距本次在网期间上次变更套餐的天数(空:未变更)",
        False,
        "days",
        "{v} days since the last plan change",
        "距上次变更套餐{v}天",
    ),
    # tenure
    _spec(
        "tenure_days",
        "tenure",
        "Days in the current spell (since the customer last became a customer)",
        "本次在网天数",
        False,
        "days",
        "a customer for {v} days",
        "本次在网{v}天",
    ),
    _spec(
        "days_since_signup",
        "tenure",
        "Days since the signup date",
        "自注册以来的天数",
        False,
        "days",
        "signed up {v} days ago",
        "注册已{v}天",
    ),
    _spec(
        "previous_spells",
        "tenure",
        "Earlier spells: how many times the customer left and came back",
        "此前的在网次数(流失后回流的次数)",
        True,
        "count",
        "came back {v} time{s} after leaving",
        "曾流失后回流{v}次",
    ),
    _spec(
        "in_contract",
        "tenure",
        "Under contract at the date (the subscription's contract end is on or after it)",
        "观察日是否在合约期内",
        False,
        "flag",
        "under contract: {v}",
        "在合约期内:{v}",
    ),
    _spec(
        "days_to_contract_end",
        "tenure",
        "Days from the date to the contract end (negative: ended)",
        "距合约到期的天数(负数:已到期)",
        False,
        "days",
        "{v} days to the contract end",
        "距合约到期{v}天",
    ),
    # service (tickets, surveys)
    _spec(
        "tickets_unresolved",
        "service",
        "Tickets opened before the date and not resolved by it",
        "观察日时未解决的工单数",
        True,
        "count",
        "{v} unresolved ticket{s}",
        "{v}个未解决工单",
    ),
    _spec(
        "ticket_open_days_max",
        "service",
        "Days the oldest unresolved ticket has been open",
        "最久未解决工单已开启的天数",
        True,
        "days",
        "a ticket open for {v} days",
        "工单已开启{v}天未解决",
    ),
    _spec(
        "ticket_resolution_hours_mean",
        "service",
        "Mean hours to resolve the tickets resolved before the date",
        "观察日前已解决工单的平均解决时长(小时)",
        True,
        "hours",
        "tickets took {v} hours on average to resolve",
        "工单平均{v}小时解决",
    ),
    _spec(
        "ticket_resolution_hours_max_90d",
        "service",
        "Longest resolution time (hours) of the tickets resolved in the last 90 days",
        "最近90天解决的工单中最长解决时长(小时)",
        True,
        "hours",
        "a ticket took {v} hours to resolve",
        "有工单用了{v}小时才解决",
    ),
    _spec(
        "ticket_satisfaction_min_90d",
        "service",
        "Worst satisfaction (1–5) of the tickets resolved in the last 90 days",
        "最近90天解决工单的最低满意度(1–5)",
        False,
        "score",
        "ticket satisfaction as low as {v} of 5",
        "工单满意度低至{v}分(满分5)",
    ),
    _spec(
        "days_since_ticket",
        "service",
        "Days since the last ticket was opened",
        "距上次提交工单的天数",
        False,
        "days",
        "{v} days since the last ticket",
        "距上次工单{v}天",
    ),
    _spec(
        "tickets_per_tenure_month",
        "service",
        "Tickets opened in the current spell per month of tenure",
        "本次在网期间每月工单数",
        True,
        "number",
        "{v} tickets a month",
        "每月{v}个工单",
    ),
    _spec(
        "nps_latest",
        "service",
        "Latest NPS answer (0–10) before the date",
        "观察日前最近一次NPS评分(0–10)",
        False,
        "score",
        "latest NPS {v}",
        "最近一次NPS评分{v}",
    ),
    _spec(
        "nps_change",
        "service",
        "Latest NPS answer minus the one before",
        "最近一次NPS评分减上一次",
        False,
        "score",
        "NPS changed by {v} points",
        "NPS评分变化{v}分",
    ),
    _spec(
        "days_since_nps",
        "service",
        "Days since the latest NPS answer",
        "距最近一次NPS调查的天数",
        None,
        "days",
        "{v} days since the latest NPS answer",
        "距最近一次NPS调查{v}天",
    ),
    _spec(
        "csat_latest",
        "service",
        "Latest CSAT answer (1–5) before the date",
        "观察日前最近一次CSAT评分(1–5)",
        False,
        "score",
        "latest CSAT {v}",
        "最近一次CSAT评分{v}",
    ),
    _spec(
        "csat_change",
        "service",
        "Latest CSAT answer minus the one before",
        "最近一次CSAT评分减上一次",
        False,
        "score",
        "CSAT changed by {v} points",
        "CSAT评分变化{v}分",
    ),
    _spec(
        "days_since_csat",
        "service",
        "Days since the latest CSAT answer",
        "距最近一次CSAT调查的天数",
        None,
        "days",
        "{v} days since the latest CSAT answer",
        "距最近一次CSAT调查{v}天",
    ),
    # competitor
    _spec(
        "branch_competitor_share_90d",
        "competitor",
        "Share of the branch's churners in the last 90 days who named a destination (a competitor)",
        "本分支机构最近90天流失客户中有去向(竞争对手)的比例",
        True,
        "share",
        "{v} of the branch's recent churners went to a competitor",
        "本分支机构近90天流失客户中{v}转投竞争对手",
    ),
    _spec(
        "branch_churn_rate_90d",
        "competitor",
        "The branch's churners in the last 90 days over its customers active at the date",
        "本分支机构最近90天流失客户数 / 当日活跃客户数",
        True,
        "share",
        "{v} of the branch's customers left in the last 90 days",
        "本分支机构近90天流失率{v}",
    ),
    # other
    _spec(
        "segment",
        "other",
        "Customer segment (customers.segment)",
        "客户细分",
        None,
        "category",
        "segment {v}",
        "客户细分{v}",
    ),
)


# -- features whose names depend on the options or the data ---------------------------------------


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    make: Callable[[re.Match[str]], FeatureSpec]


def _usage_events(m: re.Match[str]) -> FeatureSpec:
    w = m["w"]
    return _spec(
        m[0],
        "usage",
        f"Usage events in the last {w} days",
        f"最近{w}天使用事件数",
        False,
        "count",
        f"{{v}} usage event{{s}} in the last {w} days",
        f"最近{w}天使用{{v}}次",
    )


def _usage_days(m: re.Match[str]) -> FeatureSpec:
    w = m["w"]
    return _spec(
        m[0],
        "usage",
        f"Days with usage in the last {w} days",
        f"最近{w}天有使用的天数",
        False,
        "count",
        f"used on {{v}} day{{s}} in the last {w} days",
        f"最近{w}天有{{v}}天使用",
    )


def _usage_type_change(m: re.Match[str]) -> FeatureSpec:
    en, zh = event_type_label(m["t"])
    return _spec(
        m[0],
        "usage",
        f"Change in {en}: (last 30 days − the 30 before) / the 30 before; empty when the 30 before had none",
        f"{zh}变化:(最近30天 − 前30天) / 前30天;前30天为0时为空",
        False,
        "change",
        f"{en} {{change}} in the last 30 days vs the 30 before",
        f"最近30天{zh}比前30天{{change}}",
    )


def _usage_type_slope(m: re.Match[str]) -> FeatureSpec:
    en, zh = event_type_label(m["t"])
    return _spec(
        m[0],
        "usage",
        f"Trend of {en} over 90 days: least-squares slope of the three 30-day totals, per month, over their mean",
        f"近90天{zh}趋势:三个30天区间合计的最小二乘斜率(每月),除以其均值",
        False,
        "slope",
        f"{en} {{trend}} over the last 90 days",
        f"最近90天{zh}{{trend}}",
    )


def _usage_type_per_day(m: re.Match[str]) -> FeatureSpec:
    en, zh = event_type_label(m["t"])
    return _spec(
        m[0],
        "usage",
        f"{en[0].upper() + en[1:]} per day with usage in the last 30 days",
        f"最近30天每个使用日的{zh}",
        False,
        "amount",
        f"{{v}} {en} per active day in the last 30 days",
        f"最近30天每个使用日{zh}{{v}}",
    )


def _usage_type_sum(m: re.Match[str]) -> FeatureSpec:
    en, zh = event_type_label(m["t"])
    w = m["w"]
    return _spec(
        m[0],
        "usage",
        f"Total {en} in the last {w} days (the events' value; 1 per event where it is empty)",
        f"最近{w}天{zh}合计(事件的数值;为空时每个事件记1)",
        False,
        "amount",
        f"{{v}} {en} in the last {w} days",
        f"最近{w}天{zh}{{v}}",
    )


def _purchases(m: re.Match[str]) -> FeatureSpec:
    w = m["w"]
    return _spec(
        m[0],
        "usage",
        f"Purchases, bills and top-ups in the last {w} days",
        f"最近{w}天消费(账单、充值)笔数",
        False,
        "count",
        f"{{v}} purchase{{s}} in the last {w} days",
        f"最近{w}天消费{{v}}笔",
    )


def _purchase_amount(m: re.Match[str]) -> FeatureSpec:
    w = m["w"]
    return _spec(
        m[0],
        "value",
        f"Amount of purchases, bills and top-ups in the last {w} days",
        f"最近{w}天消费(账单、充值)金额",
        False,
        "money",
        f"spent {{v}} in the last {w} days",
        f"最近{w}天消费{{v}}",
    )


def _tickets(m: re.Match[str]) -> FeatureSpec:
    w = m["w"]
    return _spec(
        m[0],
        "service",
        f"Tickets opened in the last {w} days",
        f"最近{w}天提交的工单数",
        True,
        "count",
        f"{{v}} ticket{{s}} in the last {w} days",
        f"最近{w}天{{v}}个工单",
    )


def _customer_attribute(m: re.Match[str]) -> FeatureSpec:
    col = m["c"]
    return _spec(
        m[0],
        "other",
        f"Customer attribute {col} (customers.{col}, as stored)",
        f"客户属性 {col}(customers.{col})",
        None,
        "category",
        f"{col} {{v}}",
        f"客户属性{col}:{{v}}",
    )


_PATTERNS: tuple[_Pattern, ...] = tuple(
    _Pattern(re.compile(rx), fn)
    for rx, fn in (
        (r"usage_events_(?P<w>\d+)d", _usage_events),
        (r"usage_days_(?P<w>\d+)d", _usage_days),
        (r"usage_(?P<t>[a-z0-9_]+)_change_30d", _usage_type_change),
        (r"usage_(?P<t>[a-z0-9_]+)_slope_90d", _usage_type_slope),
        (r"usage_(?P<t>[a-z0-9_]+)_per_day_30d", _usage_type_per_day),
        (r"usage_(?P<t>[a-z0-9_]+)_(?P<w>\d+)d", _usage_type_sum),
        (r"purchases_(?P<w>\d+)d", _purchases),
        (r"purchase_amount_(?P<w>\d+)d", _purchase_amount),
        (r"tickets_(?P<w>\d+)d", _tickets),
        (r"customer_(?!id\Z)(?P<c>[a-z0-9_]+)", _customer_attribute),
    )
)


class FeatureCatalog(dict[str, FeatureSpec]):
    """``name → FeatureSpec``; names made from windows, event types or attributes resolve on lookup."""

    def _resolve(self, key: object) -> FeatureSpec | None:
        if not isinstance(key, str):
            return None
        for p in _PATTERNS:
            m = p.regex.fullmatch(key)
            if m:
                spec = p.make(m)
                self[key] = spec
                return spec
        return None

    def __missing__(self, key: str) -> FeatureSpec:
        spec = self._resolve(key)
        if spec is None:
            raise KeyError(key)
        return spec

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or self._resolve(key) is not None

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        try:
            return self[key]
        except KeyError:
            return default


#: Every feature the builder emits (the default windows' names are listed; others resolve on lookup).
CATALOG: FeatureCatalog = FeatureCatalog({s.name: s for s in _STATIC})
for _name in (
    *(f"usage_events_{w}d" for w in (7, 30, 90)),
    *(f"usage_days_{w}d" for w in (7, 30, 90)),
    *(f"purchases_{w}d" for w in (7, 30, 90)),
    *(f"purchase_amount_{w}d" for w in (7, 30, 90)),
    *(f"tickets_{w}d" for w in (7, 30, 90)),
):
    CATALOG[_name]
