"""The periodic churn report (阶段性客户流失情况总结与分析报告): one self-contained HTML file.

:func:`build_churn_report` gathers the figures (:func:`churnguard.reports.data.collect_report`,
which calls the metrics functions; all computation runs in the engine), turns them into text in
English or Chinese, draws the charts with Plotly, and renders ``templates/report.html.j2``.
The page inlines its CSS and plotly.js once, so it opens offline and prints on A4.

Example
-------
>>> import datetime as dt, churnguard
>>> from churnguard.reports import write_churn_report
>>> store = churnguard.connect("demo.duckdb")                                   # doctest: +SKIP
>>> write_churn_report(store, Path("report.html"), start=dt.date(2025, 1, 1),
...                    end=dt.date(2025, 12, 31), lang="zh")                     # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from churnguard.errors import ConfigError
from churnguard.metrics.activity import ActivityRules, rules_for
from churnguard.reports.data import SECTION_IDS, ReportData, collect_report
from churnguard.reports.labels import LANGS, text
from churnguard.reports.view import ReportView
from churnguard.store.connection import Store

REPORT_PERIODS = ("month", "quarter")
TEMPLATE = "report.html.j2"
STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class ReportResult:
    """What :func:`write_churn_report` wrote: the file, its sections (id, title, status) and the headline figures."""

    path: Path
    lang: str
    start: dt.date
    end: dt.date
    branch: str | None
    sections: list[dict[str, Any]] = field(default_factory=list)
    headline: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.path),
            "lang": self.lang,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "branch": self.branch,
            "sections": self.sections,
            "headline": self.headline,
            "seconds": round(self.seconds, 3),
        }


def _check(start: dt.date, end: dt.date, lang: str, period: str) -> None:
    if end < start:
        raise ConfigError(f"--to {end.isoformat()} is before --from {start.isoformat()}; expected from ≤ to.")
    if lang not in LANGS:
        raise ConfigError(f'--lang: expected one of {", ".join(LANGS)}, got "{lang}".')
    if period not in REPORT_PERIODS:
        raise ConfigError(f'--period: expected one of {", ".join(REPORT_PERIODS)}, got "{period}".')


def report_data(
    store: Store,
    *,
    start: dt.date,
    end: dt.date,
    branch: str | None = None,
    period: str = "month",
    rules: ActivityRules | None = None,
    lang: str = "en",
) -> ReportData:
    """The report's figures, before formatting (validates the options first)."""
    from churnguard import __version__

    _check(start, end, lang, period)
    return collect_report(
        store,
        start=start,
        end=end,
        rules=rules or rules_for(store),
        branch=branch,
        period=period,
        version=__version__,
    )


def build_churn_report(
    store: Store,
    *,
    start: dt.date,
    end: dt.date,
    branch: str | None = None,
    lang: str = "en",
    period: str = "month",
    rules: ActivityRules | None = None,
) -> str:
    """The periodic churn report for ``branch``'s subtree and ``[start, end]``, as one HTML page.

    Parameters
    ----------
    store : the store.
    start, end : the report period, both days included; it is compared with the period of the
        same length just before it (:func:`churnguard.reports.periods.previous_range`).
    branch : limit the report to this branch's subtree (default: the whole company).
    lang : ``en`` or ``zh``.
    period : ``month`` or ``quarter``: the step of the trend chart, the cohorts and the alerts.
    rules : the churn definition (default: the store's, :func:`churnguard.metrics.rules_for`).
    """
    data = report_data(store, start=start, end=end, branch=branch, period=period, rules=rules, lang=lang)
    return render_report(data, lang)


def write_churn_report(
    store: Store,
    out: Path,
    *,
    start: dt.date,
    end: dt.date,
    branch: str | None = None,
    lang: str = "en",
    period: str = "month",
    rules: ActivityRules | None = None,
) -> ReportResult:
    """Write the report (:func:`build_churn_report`) to ``out``; return what was written."""
    import time

    t0 = time.perf_counter()
    data = report_data(store, start=start, end=end, branch=branch, period=period, rules=rules, lang=lang)
    html = render_report(data, lang)
    out = Path(out)
    if out.parent and not out.parent.exists():
        raise ConfigError(f"--out {out}: the folder {out.parent} does not exist; create it or choose another path.")
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    return ReportResult(
        path=out,
        lang=lang,
        start=start,
        end=end,
        branch=branch,
        sections=section_list(data, lang),
        headline=data.headline,
        seconds=time.perf_counter() - t0,
    )


def section_list(data: ReportData, lang: str) -> list[dict[str, Any]]:
    """The report's sections in order: id, title and status."""
    out = []
    for sid in SECTION_IDS:
        if sid in data.sections:
            sec = data.sections[sid]
            item: dict[str, Any] = {"id": sid, "title": text(f"sec_{sid}", lang), "status": sec.status}
            if sec.warnings:
                item["warnings"] = list(sec.warnings)
            out.append(item)
    return out


# --- rendering ---------------------------------------------------------------------------------


@cache
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("churnguard.reports", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    return env


@cache
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _css() -> str:
    return (STATIC / "report.css").read_text(encoding="utf-8")


def render_report(data: ReportData, lang: str = "en") -> str:
    """The HTML page of ``data`` in ``lang``."""
    from markupsafe import Markup

    view = ReportView(data, lang)
    sections = [view.section(sid) for sid in SECTION_IDS if sid in data.sections]
    page = {
        "lang": "zh-CN" if lang == "zh" else "en",
        "title": text("title", lang),
        "subtitle": text(
            "subtitle",
            lang,
            scope=view.scope_name,
            start=data.start.isoformat(),
            end=data.end.isoformat(),
        ),
        "compared": text("compared_with", lang, start=data.prev_start.isoformat(), end=data.prev_end.isoformat()),
        "provisional": view.provisional(),
        "summary": view.summary(),
        "sections": sections,
        "source": view.source(),
        "labels": {k: text(k, lang) for k in ("contents", "print", "expand_all", "sec_summary", "sec_source")},
        "css": Markup(_css()),
        "plotly_js": Markup(_plotly_js()),
        "data_json": Markup(_script_json({"headline": data.headline, "sections": section_list(data, lang)})),
    }
    return _environment().get_template(TEMPLATE).render(page=page, t=lambda key, **kw: text(key, lang, **kw))


def _script_json(obj: Any) -> str:
    """JSON safe inside ``<script type="application/json">`` (no ``</`` that could end the element)."""
    return json.dumps(obj, ensure_ascii=False, default=str).replace("</", "<\\/")
