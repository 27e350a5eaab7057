"""The churn reason taxonomy (流失原因), from the field's practice.

Every ``churn_events.reason_code`` is one of these codes (or empty when unknown).
Each code has a zh-CN and an en label and the reason category that the early-warning
explanations and the retention playbooks use.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    code: str
    en: str
    zh: str
    description: str

    def label(self, lang: str = "en") -> str:
        return self.zh if lang.startswith("zh") else self.en


REASONS: tuple[Reason, ...] = (
    Reason("product", "Product", "产品因素", "the product lags: quality, features, coverage, network"),
    Reason("price", "Price", "价格因素", "too expensive, or a cheaper tariff elsewhere"),
    Reason("service", "Service", "服务因素", "poor service: unresolved problems, rude or slow support"),
    Reason("benefit", "Customer economics", "利益因素", "the customer's own economics: budget cut, less need"),
    Reason("policy", "Policy / management", "政策与管理", "our policies or management: contract terms, billing rules"),
    Reason("competitor", "Competitor", "竞争对手", "won by a competitor's offer"),
    Reason("industry_exit", "Industry exit", "行业退出", "the customer left the industry or market"),
    Reason("natural", "Natural", "自然流失", "business closed, moved away, deceased"),
    Reason("involuntary", "Involuntary (non-payment)", "被动流失(欠费)", "account closed for non-payment"),
)

REASON_CODES: frozenset[str] = frozenset(r.code for r in REASONS)
_BY_CODE = {r.code: r for r in REASONS}


def reason(code: str) -> Reason:
    """Return the :class:`Reason` for ``code``; raises ``KeyError`` for an unknown code."""
    return _BY_CODE[code]


@dataclass(frozen=True)
class DriverCategory:
    """A category of churn driver: what an early-warning feature measures, and what a playbook acts on.

    Every model feature has one; a customer's top reasons are shown by category, and the
    retention playbook maps value tier × driver category → action.  ``reason_code`` is the
    churn reason (above) that the category most often turns into, or ``None``.
    """

    code: str
    en: str
    zh: str
    reason_code: str | None

    def label(self, lang: str = "en") -> str:
        return self.zh if lang.startswith("zh") else self.en


DRIVER_CATEGORIES: tuple[DriverCategory, ...] = (
    DriverCategory("usage", "Usage decline", "使用量下降", "product"),
    DriverCategory("price", "Price", "价格", "price"),
    DriverCategory("service", "Service", "服务", "service"),
    DriverCategory("product", "Product", "产品", "product"),
    DriverCategory("competitor", "Competitor", "竞争对手", "competitor"),
    DriverCategory("payment", "Payment", "缴费", "involuntary"),
    DriverCategory("tenure", "Tenure", "在网时长", None),
    DriverCategory("value", "Customer value", "客户价值", "benefit"),
    DriverCategory("other", "Other", "其他", None),
)

DRIVER_CODES: frozenset[str] = frozenset(d.code for d in DRIVER_CATEGORIES)
_DRIVER_BY_CODE = {d.code: d for d in DRIVER_CATEGORIES}


def driver(code: str) -> DriverCategory:
    """Return the :class:`DriverCategory` for ``code``; raises ``KeyError`` for an unknown code."""
    return _DRIVER_BY_CODE[code]
