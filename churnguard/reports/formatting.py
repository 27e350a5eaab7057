"""Number formatting for the report, in English and Chinese conventions.

Rates are shown with two decimals (``18.85 %`` in English, ``18.85%`` in Chinese), changes of a
rate in percentage points (``+0.35 pp`` / ``+0.35 个百分点``), money with thousands separators,
and large money amounts compactly (``1.23 M`` / ``123.46 万``).
"""

from __future__ import annotations

from typing import Any

DASH = "—"


def _zh(lang: str) -> bool:
    return lang.startswith("zh")


def number(x: Any, lang: str = "en") -> str:
    """A count: ``12,152``."""
    if x is None:
        return DASH
    if isinstance(x, float) and not x.is_integer():
        return f"{x:,.1f}"
    return f"{int(x):,}"


def percent(x: float | None, lang: str = "en", digits: int = 2) -> str:
    """A rate as a percentage: ``18.85 %`` (en), ``18.85%`` (zh)."""
    if x is None:
        return DASH
    return f"{x * 100:.{digits}f}{'' if _zh(lang) else ' '}%"


def points(x: float | None, lang: str = "en") -> str:
    """A change of a rate, in percentage points: ``+0.35 pp`` / ``+0.35 个百分点``."""
    if x is None:
        return DASH
    return f"{x * 100:+.2f} {'个百分点' if _zh(lang) else 'pp'}"


def relative(x: float | None, lang: str = "en") -> str:
    """A relative change: ``+2.1 %``."""
    if x is None:
        return DASH
    return f"{x * 100:+.1f}{'' if _zh(lang) else ' '}%"


def delta(x: float | int | None, lang: str = "en") -> str:
    """A change of a count: ``+214`` / ``−38``."""
    if x is None:
        return DASH
    if isinstance(x, float) and not x.is_integer():
        return f"{x:+,.1f}"
    return f"{int(x):+,}"


def money(x: float | None, lang: str = "en") -> str:
    """Money in full: ``1,234,567``."""
    if x is None:
        return DASH
    return f"{x:,.0f}"


def money_short(x: float | None, lang: str = "en") -> str:
    """Money compactly: ``1.23 M`` / ``45.6 k`` (en), ``123.46 万`` / ``1.23 亿`` (zh)."""
    if x is None:
        return DASH
    a = abs(x)
    if _zh(lang):
        if a >= 1e8:
            return f"{x / 1e8:,.2f} 亿"
        if a >= 1e4:
            return f"{x / 1e4:,.2f} 万"
        return f"{x:,.0f}"
    if a >= 1e9:
        return f"{x / 1e9:,.2f} B"
    if a >= 1e6:
        return f"{x / 1e6:,.2f} M"
    if a >= 1e4:
        return f"{x / 1e3:,.1f} k"
    return f"{x:,.0f}"


def months(x: float | None, lang: str = "en") -> str:
    """A duration in months, one decimal."""
    if x is None:
        return DASH
    return f"{x:,.1f}"
