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
