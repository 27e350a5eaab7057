"""The report's view: the figures of :class:`~churnguard.reports.data.ReportData` as text, tables and
charts in one language (``en`` or ``zh``), ready for ``templates/report.html.j2``."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from churnguard.reports import charts
from churnguard.reports import formatting as fmt
from churnguard.reports.data import ReportData, Section
from churnguard.reports.labels import reason_label, text
from churnguard.reports.periods import add_months, month_end

#: Days per month, to show lifetimes (computed in days) in months.
DAYS_PER_MONTH = 365.25 / 12

#: Most bars in a chart of branches, and most branch lines in the trend chart (the largest are shown).
MAX_BARS = 20
MAX_LINES = 10
#: Least customers at the start for a branch to be named highest or lowest in the summary (as the alerts' default).
MIN_RANKED = 50

#: What an empty section says (default ``no_data``).
EMPTY_MESSAGES = {"branches": "no_children"}
#: What a section whose input is not computed yet says (default ``scores_missing``).
NOT_COMPUTED_MESSAGES = {"value": "value_missing"}

#: Whether a rise of the figure is good (True), bad (False) or neither (None): colours the change.
RISE_IS_GOOD: dict[str, bool | None] = {
    "start_customers": True,
    "new_customers": True,
    "reactivated_customers": True,
    "churned_customers": False,
    "end_customers": True,
    "churn_rate": False,
    "retention_rate": True,
    "lost_revenue": False,
    "profit_loss": False,
    "grr": True,
    "nrr": True,
}


def _largest(items: list[Any], size: Any, limit: int | None = None) -> list[Any]:
    """The ``limit`` (default :data:`MAX_BARS`) items with the largest ``size(item)``, in their original order."""
    limit = limit or MAX_BARS
    if len(items) <= limit:
        return list(items)
    keep = {id(x) for x in sorted(items, key=lambda x: -size(x))[:limit]}
    return [x for x in items if id(x) in keep]


def _partial(p: dict[str, Any], period: str) -> bool:
    """Whether the calendar period ``p`` (with ``period_from``/``period_to``) was clipped to the report range."""
    first = dt.date.fromisoformat(p["period_from"])
    last = dt.date.fromisoformat(p["period_to"])
    months = 3 if period == "quarter" else 1
    whole_first = dt.date(first.year, (first.month - 1) // months * months + 1, 1)
    return first != whole_first or last != month_end(add_months(whole_first, months - 1))


def _without_password(url: str) -> str:
    """The store URL without a password (``postgres://user:secret@host`` → ``postgres://user:***@host``)."""
    return re.sub(r"//([^:/@]*):[^/]*@", r"//\1:***@", url)


class ReportView:
    """Turns :class:`ReportData` into text, tables and charts in one language."""

    def __init__(self, data: ReportData, lang: str) -> None:
        self.d = data
        self.lang = lang
        self.scope_name = self.name(data.scope) if data.scope else text("whole_company", lang)

    # helpers
    def t(self, key: str, **values: Any) -> str:
        return text(key, self.lang, **values)

    def name(self, branch_id: str) -> str:
        return self.d.branch_name(branch_id, self.lang)

    def pct(self, x: float | None, digits: int = 2) -> str:
        return fmt.percent(x, self.lang, digits)

    def num(self, x: Any) -> str:
        return fmt.number(x, self.lang)

    def pp(self, x: float | None) -> str:
        return fmt.points(x, self.lang)

    def money(self, x: float | None) -> str:
        return fmt.money(x, self.lang)

    def money_short(self, x: float | None) -> str:
        return fmt.money_short(x, self.lang)

    def trend_class(self, key: str, change: float | None) -> str:
        good = RISE_IS_GOOD.get(key)
        if change is None or good is None or abs(change) < 1e-12:
            return "flat"
        return "good" if (change > 0) == good else "bad"

    def months_text(self, days: float | None) -> str:
        if days is None:
            return self.t("not_reached")
        return self.t("months_value", value=f"{days / DAYS_PER_MONTH:,.1f}")

    # page parts
    def provisional(self) -> str | None:
        d = self.d
        if d.end <= d.settled:
            return None
        return self.t(
            "provisional",
            settled=d.settled.isoformat(),
            grace=d.rules.grace_days,
            as_of=(d.rules.as_of or d.settled).isoformat(),
        )

    def summary(self) -> list[str]:
        """A few sentences: the findings a reader should take away."""
        h = self.d.headline
        if not h:
            return []
        prev = h["previous"]
        out = [
            self.t(
                "sum_churn" if prev["churn_rate"] is not None else "sum_churn_no_previous",
                churned=self.num(h["churned_customers"]),
                from_start=self.num(h["churned_from_start"]),
                start=self.num(h["start_customers"]),
                rate=self.pct(h["churn_rate"]),
                change=self.pp(h["churn_rate_change"]),
                prev=self.pct(prev["churn_rate"]),
            ),
            self.t(
                "sum_base",
                start=self.num(h["start_customers"]),
                end=self.num(h["end_customers"]),
                new=self.num(h["new_customers"]),
                react=self.num(h["reactivated_customers"]),
            ),
        ]
        branches = [r for r in self.d.sections["branches"].data.get("rows", []) if not r["direct"]]
        # A branch of a handful of customers can lose all of them; rank those large enough to compare.
        ranked = [r for r in branches if r["churn_rate"] is not None and r["start_customers"] >= MIN_RANKED]
        if len(ranked) >= 2:
            hi = max(ranked, key=lambda r: r["churn_rate"])
            lo = min(ranked, key=lambda r: r["churn_rate"])
            out.append(
                self.t(
                    "sum_branch",
                    name=self.name(hi["branch"]),
                    rate=self.pct(hi["churn_rate"]),
                    low_name=self.name(lo["branch"]),
                    low_rate=self.pct(lo["churn_rate"]),
                )
            )
        reasons = self.d.sections["reasons"].data
        known = [r for r in reasons.get("reasons", []) if r["reason"] not in (None, "", "(unknown)")]
        dests = [r for r in reasons.get("destinations", []) if r["destination"] not in (None, "", "(unknown)")]
        if known:
            top = known[0]
            if dests:
                out.append(
                    self.t(
                        "sum_reason",
                        reason=reason_label(top["reason"], self.lang),
                        share=self.pct(top["share"], 0),
                        dest=dests[0]["destination"],
                        dshare=self.pct(dests[0]["share"], 0),
                    )
                )
            else:
                out.append(
                    self.t(
                        "sum_reason_only",
                        reason=reason_label(top["reason"], self.lang),
                        share=self.pct(top["share"], 0),
                    )
                )
        if h.get("lost_revenue") is not None:
            out.append(
                self.t(
                    "sum_loss",
                    revenue=self.money_short(h["lost_revenue"]),
                    profit=self.money_short(h.get("profit_loss")),
                )
            )
        alerts = self.d.sections.get("alerts")
        if alerts is not None and alerts.status == "ok" and alerts.data["report"]["alerts"]:
            out.append(self.t("sum_alerts", n=len(alerts.data["report"]["alerts"])))
        return out

    def source(self) -> list[tuple[str, str]]:
        d, r = self.d, self.d.rules
        if r.definition == "contractual":
            definition = self.t("src_contractual", grace=r.grace_days)
        else:
            definition = self.t("src_non_contractual", days=r.inactivity_days, table=r.activity_table)
        return [
            (self.t("src_store"), _without_password(d.store_url)),
            (self.t("src_as_of"), (r.as_of or d.settled).isoformat()),
            (self.t("src_scope"), f"{self.scope_name} ({d.scope})" if d.scope else self.scope_name),
            (
                self.t("src_periods"),
                f"{d.start.isoformat()} – {d.end.isoformat()}; {self.t('previous')}: "
                f"{d.prev_start.isoformat()} – {d.prev_end.isoformat()}",
            ),
            (self.t("src_definition"), definition),
            (self.t("src_rate"), self.t("src_rate_text")),
            (self.t("src_generated"), d.generated_at.isoformat(sep=" ")),
            (self.t("src_version"), f"churnguard {d.version}"),
        ]

    def section(self, sid: str) -> dict[str, Any]:
        sec: Section = self.d.sections[sid]
        out: dict[str, Any] = {
            "id": sid,
            "title": self.t(f"sec_{sid}"),
            "status": sec.status,
            "message": None,
            "warnings": sec.warnings,
            "warning_label": self.t("data_note"),
        }
        if sec.status == "not_computed":
            out["message"] = self.t(NOT_COMPUTED_MESSAGES.get(sid, "scores_missing"))
        elif sec.status == "empty":
            out["message"] = self.t(EMPTY_MESSAGES.get(sid, "no_data"), name=self.scope_name)
        else:
            out.update(getattr(self, f"_{sid}")(sec.data))
        return out

    # sections
    def _kpi(self, key: str, value: Any, previous: Any, kind: str) -> dict[str, Any]:
        show = {
            "count": self.num,
            "rate": self.pct,
            "money": self.money_short,
        }[kind]
        change = None if value is None or previous is None else value - previous
        if kind == "rate":
            change_text = self.pp(change)
        elif kind == "money":
            change_text = fmt.relative(change / previous if change is not None and previous else None, self.lang)
        else:
            change_text = fmt.delta(change, self.lang)
        return {
            "key": key,
            "label": self.t(key),
            "value": show(value),
            "raw": value,
            "previous": self.t("vs_previous", value=show(previous)),
            "change": change_text,
            "trend": self.trend_class(key, change),
            "note": None,
        }

    def _headline(self, data: dict[str, Any]) -> dict[str, Any]:
        h = data["summary"]
        p = h["previous"]
        rate = self._kpi("churn_rate", h["churn_rate"], p["churn_rate"], "rate")
        rate["note"] = self.t(
            "kpi_rate_note", from_start=self.num(h["churned_from_start"]), start=self.num(h["start_customers"])
        )
        kpis = [
            rate,
            self._kpi("retention_rate", h["retention_rate"], p["retention_rate"], "rate"),
        ]
        change = {
            "key": "churn_rate_change",
            "label": self.t("churn_rate_change"),
            "value": self.pp(h["churn_rate_change"]),
            "raw": h["churn_rate_change"],
            "previous": self.t("kpi_churn_change_note"),
            "change": self.t("relative", value=fmt.relative(h["churn_rate_change_relative"], self.lang)),
            "trend": self.trend_class("churn_rate", h["churn_rate_change"]),
            "note": None,
        }
        kpis.append(change)
        kpis.append(self._kpi("churned_customers", h["churned_customers"], p["churned_customers"], "count"))
        for key in ("start_customers", "new_customers", "reactivated_customers", "end_customers"):
            kpis.append(self._kpi(key, h[key], p[key], "count"))
        for key in ("lost_revenue", "profit_loss"):
            if key in h:
                kpis.append(self._kpi(key, h[key], p.get(key), "money"))
        for key in ("grr", "nrr"):
            if key in h:
                kpis.append(self._kpi(key, h[key], p.get(key), "rate"))
        return {"kpis": kpis}

    def _branch_group(self, rows: list[dict[str, Any]], parent: str) -> dict[str, Any]:
        """The rows of one table of branches; past :data:`MAX_BARS` + 5 rows, the smaller ones fold away."""
        top = max((r["churn_rate"] or 0 for r in rows), default=0) or 1
        items = [self._branch_row(r, parent, top) for r in rows]
        if len(items) <= MAX_BARS + 5:
            return {"rows": items, "more": [], "more_title": ""}
        main = {id(r) for r in _largest(rows, lambda r: r["start_customers"])}
        more = [item for item, r in zip(items, rows, strict=True) if id(r) not in main]
        return {
            "rows": [item for item, r in zip(items, rows, strict=True) if id(r) in main],
            "more": more,
            "more_title": self.t("other_branches", n=len(more)),
        }

    def _branch_row(self, r: dict[str, Any], parent: str, top: float) -> dict[str, Any]:
        name = self.t("direct_customers", name=self.name(parent)) if r["direct"] else self.name(r["branch"])
        return {
            "id": r["branch"],
            "name": name,
            "start": self.num(r["start_customers"]),
            "new": self.num(r["new_customers"] + r["reactivated_customers"]),
            "churned": self.num(r["churned_customers"]),
            "end": self.num(r["end_customers"]),
            "rate": self.pct(r["churn_rate"]),
            "rate_raw": r["churn_rate"],
            "bar": round(100 * (r["churn_rate"] or 0) / top, 1),
            "prev": self.pct(r["previous_rate"]),
            "change": self.pp(r["churn_rate_change"]),
            "trend": self.trend_class("churn_rate", r["churn_rate_change"]),
            "children": self._branch_group(r["children"], r["branch"]) if r["children"] else None,
            "children_title": self.t("children_of", name=self.name(r["branch"]), n=len(r["children"])),
        }

    def _branches(self, data: dict[str, Any]) -> dict[str, Any]:
        rows = data["rows"]
        h = self.d.headline
        children = [r for r in rows if not r["direct"]] or rows
        shown = _largest(children, lambda r: r["start_customers"])
        shown.sort(key=lambda r: -(r["churn_rate"] or 0))
        title = self.t("branch_chart")
        if len(shown) < len(children):
            title += " " + self.t("largest_of", n=len(shown), total=len(children))
        chart = charts.branch_rates(
            "chart-branches",
            names=[self.name(r["branch"]) for r in shown],
            rates=[r["churn_rate"] for r in shown],
            previous=[r["previous_rate"] for r in shown],
            average=h.get("churn_rate"),
            labels={
                "title": title,
                "current": self.t("this_range"),
                "previous": self.t("previous_range"),
                "average": self.t("scope_average", name=self.scope_name) + f" {self.pct(h.get('churn_rate'))}",
            },
        )
        return {
            "group": self._branch_group(rows, self.d.scope),
            "charts": [chart] if rows else [],
            "drill_title": self.t("drill_down"),
        }

    def _trend(self, data: dict[str, Any]) -> dict[str, Any]:
        rows = data["rows"]
        period_word = self.t(f"period_{self.d.period}")
        # A period cut by the range (a quarter of which one month is in it) is starred: its rate is shorter.
        shown = {r["period"]: r["period"] + ("*" if _partial(r, self.d.period) else "") for r in rows}
        current = [r for r in rows if r["current"]]
        size = {b: max(p["start_customers"] for p in pts) for b, pts in data["by_branch"].items()}
        lines = sorted(_largest([b for b in size if b != self.d.scope], size.__getitem__, MAX_LINES))
        series = {
            self.name(b): (
                [shown.get(p["period"], p["period"]) for p in data["by_branch"][b]],
                [p["churn_rate"] for p in data["by_branch"][b]],
            )
            for b in lines
        }
        chart = charts.churn_trend(
            "chart-trend",
            periods=[shown[r["period"]] for r in rows],
            rates=[r["churn_rate"] for r in rows],
            current_from=shown[current[0]["period"]] if current else None,
            series=series,
            labels={
                "title": self.t("trend_chart", period=period_word),
                "total": self.scope_name,
                "current": self.t("this_range"),
                "previous": self.t("previous_range"),
            },
        )
        table = [
            {
                "period": shown[r["period"]],
                "current": r["current"],
                "start": self.num(r["start_customers"]),
                "new": self.num(r["new_customers"] + r["reactivated_customers"]),
                "churned": self.num(r["churned_customers"]),
                "end": self.num(r["end_customers"]),
                "rate": self.pct(r["churn_rate"]),
                "change": self.pp(r["churn_rate_change"]),
                "trend": self.trend_class("churn_rate", r["churn_rate_change"]),
            }
            for r in rows
        ]
        notes = [self.t("partial_period", period=period_word)] if any(v.endswith("*") for v in shown.values()) else []
        return {"charts": [chart], "table": table, "table_title": self.t("trend_table"), "notes": notes}

    def _reasons(self, data: dict[str, Any]) -> dict[str, Any]:
        reasons, dests = data["reasons"], data["destinations"]
        out: list[str] = []
        if reasons:
            out.append(
                charts.horizontal_shares(
                    "chart-reasons",
                    names=[reason_label(r["reason"], self.lang) for r in reasons],
                    counts=[r["churned"] for r in reasons],
                    shares=[r["share"] for r in reasons],
                    title=self.t("reasons_chart"),
                    color=charts.CHURN,
                )
            )
        if dests:
            out.append(
                charts.horizontal_shares(
                    "chart-destinations",
                    names=[
                        self.t("no_destination") if r["destination"] in (None, "", "(unknown)") else r["destination"]
                        for r in dests
                    ],
                    counts=[r["churned"] for r in dests],
                    shares=[r["share"] for r in dests],
                    title=self.t("destinations_chart"),
                    color=charts.PALETTE[0],
                )
            )
        wide: list[str] = []
        notes: list[str] = []
        mix = data.get("mix")
        if mix and mix.get("periods"):
            codes = [r["reason"] for r in mix["reasons"]]
            periods = [p["period"] + ("*" if _partial(p, data["mix_period"]) else "") for p in mix["periods"]]
            if any(x.endswith("*") for x in periods):
                notes.append(self.t("partial_period", period=self.t(f"period_{data['mix_period']}")))
            series = {
                reason_label(code, self.lang): [p["mix"][i]["share"] for p in mix["periods"]]
                for i, code in enumerate(codes)
            }
            wide.append(
                charts.reason_mix(
                    "chart-reason-mix",
                    periods=periods,
                    series=series,
                    title=self.t("reason_mix_chart", period=self.t(f"period_{data['mix_period']}")),
                )
            )
        return {"charts": out, "wide_charts": wide, "notes": notes}

    def _key_accounts(self, data: dict[str, Any]) -> dict[str, Any]:
        others = data.get("others") or {}
        sel = data.get("selection") or {}
        kpis = [
            {"label": self.t("ka_customers"), "value": self.num(data.get("start_customers")), "note": None},
            {"label": self.t("ka_churned"), "value": self.num(data.get("churned_customers")), "note": None},
            {"label": self.t("ka_rate"), "value": self.pct(data.get("churn_rate")), "note": None},
            {"label": self.t("ka_revenue"), "value": self.money_short(data.get("lost_revenue")), "note": None},
        ]
        if others.get("churn_rate") is not None:
            kpis[2]["note"] = self.t("ka_others", rate=self.pct(others["churn_rate"]))
        rows = [
            {
                "customer": a.get("customer_id"),
                "branch": self.name(a["branch_id"]) if a.get("branch_id") else "—",
                "date": a.get("churn_date") or "—",
                "tier": a.get("tier") or "—",
                "reason": reason_label(a.get("reason_code"), self.lang),
                "revenue": self.money(a.get("lost_revenue")),
            }
            for a in (data.get("lost_accounts") or [])[:15]
        ]
        return {
            "kpis": kpis,
            "rows": rows,
            "definition": self.t(
                "ka_top_share" if sel.get("method") == "top_share" else "ka_flagged",
                share=self.pct(sel.get("top_share"), 0),
                date=self.d.start.isoformat(),
                n=self.num(sel.get("key_accounts")),
            ),
            "list_title": self.t("ka_list"),
        }

    def _value(self, data: dict[str, Any]) -> dict[str, Any]:
        from churnguard.segments.labels import segment_label, stage_label, tier_label

        out: dict[str, Any] = {"missing": None, "note": None, "charts": [], "tiers": [], "clv": False}
        out.update({"clv_title": self.t("clv_by_tier"), "clv_kpis": [], "holdout": None})
        share_labels = (self.t("share_customers"), self.t("share_value"))
        if not data["stored"]:
            out["missing"] = self.t("value_missing")
        else:
            out["note"] = self.t("value_stored", as_of=data["as_of"])
        tiers, rfm, stages = data["tiers"], data["rfm"], data["stages"]
        if tiers:
            out["charts"].append(
                charts.grouped_shares(
                    "chart-value-tiers",
                    names=[tier_label(t["key"], self.lang) for t in tiers],
                    series=dict(
                        zip(
                            share_labels,
                            ([t["share_customers"] for t in tiers], [t["share_value"] for t in tiers]),
                            strict=True,
                        )
                    ),
                    title=self.t("value_tiers_chart"),
                    horizontal=False,
                )
            )
        if stages:
            out["charts"].append(
                charts.horizontal_shares(
                    "chart-value-stages",
                    names=[stage_label(r["key"], self.lang) for r in stages],
                    counts=[r["customers"] for r in stages],
                    shares=[r["share_customers"] for r in stages],
                    title=self.t("value_stages_chart"),
                    color=charts.PALETTE[2],
                )
            )
        out["wide_charts"] = []
        if rfm:
            out["wide_charts"].append(
                charts.grouped_shares(
                    "chart-value-rfm",
                    names=[segment_label(r["key"], self.lang) for r in rfm],
                    series=dict(
                        zip(
                            share_labels,
                            ([r["share_customers"] for r in rfm], [r["share_value"] for r in rfm]),
                            strict=True,
                        )
                    ),
                    title=self.t("value_rfm_chart"),
                    horizontal=True,
                )
            )
        out["clv"] = bool(data["has_clv"])
        out["tiers"] = [
            {
                "key": t["key"],
                "tier": tier_label(t["key"], self.lang),
                "customers": self.num(t["customers"]),
                "share_customers": self.pct(t["share_customers"], 1),
                "share_value": self.pct(t["share_value"], 1),
                "churn_rate": self.pct(t.get("churn_rate")),
                "churn_rate_raw": t.get("churn_rate"),
                "clv_total": self.money(t["clv_total"]) if t["clv_customers"] else "—",
                "clv_mean": self.money(t["clv_mean"]) if t["clv_customers"] else "—",
            }
            for t in tiers
        ]
        if out["clv"]:
            total = sum(t["clv_total"] or 0 for t in tiers)
            n = sum(t["clv_customers"] for t in tiers)
            out["clv_kpis"] = [
                {"key": "clv_total", "label": self.t("clv_total"), "value": self.money_short(total), "raw": total},
                {
                    "key": "clv_mean",
                    "label": self.t("clv_mean"),
                    "value": self.money(total / n if n else None),
                    "raw": total / n if n else None,
                },
            ]
        h = data.get("holdout")
        if h:
            buckets = h["by_frequency"]
            hold_from = dt.date.fromisoformat(h["calibration_end"]) + dt.timedelta(days=1)
            days = (dt.date.fromisoformat(h["observation_end"]) - dt.date.fromisoformat(h["calibration_end"])).days
            out["holdout"] = {
                "title": self.t("holdout_title"),
                "chart": charts.holdout(
                    "chart-value-holdout",
                    buckets=[b["frequency"] for b in buckets],
                    actual=[b["actual_mean"] for b in buckets],
                    predicted=[b["predicted_mean"] for b in buckets],
                    labels={
                        "title": self.t("holdout_chart"),
                        "x": self.t("holdout_x"),
                        "y": self.t("holdout_y"),
                        "actual": self.t("holdout_actual"),
                        "predicted": self.t("holdout_predicted"),
                    },
                ),
                "kpis": [
                    {
                        "key": "holdout_predicted_total",
                        "label": self.t("holdout_predicted_total"),
                        "value": f"{h['predicted_total']:,.1f}",
                        "raw": h["predicted_total"],
                    },
                    {
                        "key": "holdout_actual_total",
                        "label": self.t("holdout_actual_total"),
                        "value": self.num(h["actual_total"]),
                        "raw": h["actual_total"],
                    },
                    {
                        "key": "holdout_error",
                        "label": self.t("holdout_error"),
                        "value": fmt.relative(None if h["error_pct"] is None else h["error_pct"] / 100, self.lang),
                        "raw": h["error_pct"],
                    },
                    {
                        "key": "holdout_customers",
                        "label": self.t("holdout_customers"),
                        "value": self.num(h["customers"]),
                        "raw": h["customers"],
                    },
                ],
                "rows": [
                    {
                        "frequency": b["frequency"],
                        "customers": self.num(b["customers"]),
                        "actual": f"{b['actual_mean']:.3f}",
                        "predicted": f"{b['predicted_mean']:.3f}",
                        "actual_total": self.num(b["actual_total"]),
                        "predicted_total": f"{b['predicted_total']:,.1f}",
                    }
                    for b in buckets
                ],
                "note": self.t(
                    "holdout_note",
                    cal_end=h["calibration_end"],
                    hold_from=hold_from.isoformat(),
                    hold_to=h["observation_end"],
                    weeks=f"{days / 7:.1f}",
                    fallback=self.t("holdout_fallback") if data.get("holdout_fallback") else "",
                ),
            }
        return out

    def _loss(self, data: dict[str, Any]) -> dict[str, Any]:
        loss = data["loss"]
        all_rows = loss.get("rows") or []
        rows = _largest(all_rows, lambda r: r.get("lost_revenue") or 0)
        rows.sort(key=lambda r: -(r.get("lost_revenue") or 0))
        loss_title = self.t("loss_by_branch")
        if len(rows) < len(all_rows):
            loss_title += " " + self.t("largest_of", n=len(rows), total=len(all_rows))
        source_key = {"option": "margin_src_option", "transactions": "margin_src_data"}.get(
            loss.get("margin_source") or "", "margin_src_default"
        )
        note = self.t(
            "margin_note",
            window=loss.get("window_months", 12),
            margin=self.pct(loss.get("margin"), 1),
            source=self.t(source_key),
        )
        charts_out = []
        if rows:
            charts_out.append(
                charts.loss_by_branch(
                    "chart-loss",
                    names=[self.name(r["branch"]) for r in rows],
                    revenue=[r.get("lost_revenue") for r in rows],
                    profit=[r.get("profit_loss") for r in rows] if loss.get("profit_loss") is not None else None,
                    labels={
                        "title": loss_title,
                        "revenue": self.t("lost_revenue"),
                        "profit": self.t("profit_loss"),
                    },
                )
            )
        rr = data.get("revenue")
        if rr and rr.get("start_mrr"):
            steps = [
                (self.t("mrr_start"), rr["start_mrr"], "absolute"),
                (self.t("mv_new"), rr.get("new_mrr") or 0, "relative"),
                (self.t("mv_reactivation"), rr.get("reactivation_mrr") or 0, "relative"),
                (self.t("mv_expansion"), rr.get("expansion_mrr") or 0, "relative"),
                (self.t("mv_contraction"), -(rr.get("contraction_mrr") or 0), "relative"),
                (self.t("mv_churned"), -(rr.get("churned_mrr") or 0), "relative"),
                (self.t("mrr_end"), rr["end_mrr"], "total"),
            ]
            charts_out.append(charts.revenue_waterfall("chart-mrr", steps=steps, title=self.t("revenue_movements")))
        branch_rows = [
            {
                "name": self.name(r["branch"]),
                "churned": self.num(r.get("churned_customers")),
                "revenue": self.money(r.get("lost_revenue")),
                "profit": self.money(r.get("profit_loss")),
                "share": self.pct(r.get("share_of_loss"), 1),
            }
            for r in rows
        ]
        top = [
            {
                "customer": c.get("customer_id"),
                "branch": self.name(c["branch_id"]) if c.get("branch_id") else "—",
                "date": c.get("churn_date") or "—",
                "reason": reason_label(c.get("reason_code"), self.lang),
                "revenue": self.money(c.get("lost_revenue")),
                "profit": self.money(c.get("profit_loss")),
            }
            for c in (loss.get("top_customers") or [])[:10]
        ]
        kpis = [
            {"label": self.t("lost_revenue"), "value": self.money_short(loss.get("lost_revenue"))},
            {"label": self.t("profit_loss"), "value": self.money_short(loss.get("profit_loss"))},
            {"label": self.t("margin"), "value": self.pct(loss.get("margin"), 1)},
        ]
        if rr and rr.get("grr") is not None:
            kpis.append({"label": self.t("grr"), "value": self.pct(rr["grr"], 1)})
            kpis.append({"label": self.t("nrr"), "value": self.pct(rr.get("nrr"), 1)})
        return {
            "kpis": kpis,
            "note": note,
            "charts": charts_out,
            "branch_rows": branch_rows,
            "top": top,
            "top_title": self.t("top_lost"),
        }

    def _cohorts(self, data: dict[str, Any]) -> dict[str, Any]:
        matrix = data["matrix"]
        cohorts = matrix.get("cohorts") or []
        period = data["period"]
        max_age = matrix.get("max_age") or max((len(c["retention"]) for c in cohorts), default=1) - 1
        age_label = self.t(f"age_{period}")
        chart = charts.cohort_heatmap(
            "chart-cohorts",
            cohorts=[c["cohort"] for c in cohorts],
            ages=list(range(max_age + 1)),
            values=[c["retention"] for c in cohorts],
            labels={"title": self.t("cohort_chart"), "age": age_label, "cohort": self.t("cohort")},
        )
        avg = matrix.get("average_retention") or []
        wide = []
        if avg:
            wide.append(
                charts.line(
                    "chart-cohort-average",
                    xs=list(range(len(avg))),
                    ys=avg,
                    title=self.t("average_retention"),
                    x_title=age_label,
                )
            )
        return {"charts": [chart], "wide_charts": wide}

    def _survival(self, data: dict[str, Any]) -> dict[str, Any]:
        report = data["survival"]
        groups = report.get("groups") or []
        curves = {
            str(g["group"]): (
                [t / DAYS_PER_MONTH for t in g["curve"]["timeline"]],
                g["curve"]["survival"],
            )
            for g in groups
            if g.get("curve")
        }
        chart = charts.survival_curves(
            "chart-survival",
            curves=curves,
            labels={"title": self.t("survival_chart"), "x": self.t("tenure_months"), "y": self.t("survival_y")},
        )
        rows = [
            {
                "group": str(g["group"]),
                "n": self.num(g.get("n")),
                "events": self.num(g.get("events")),
                "median": self.months_text(g.get("median_lifetime_days")),
                "mean": self.months_text(g.get("restricted_mean_lifetime_days")),
            }
            for g in groups
        ]
        horizon = report.get("horizon_days")
        return {
            "charts": [chart] if curves else [],
            "rows": rows,
            "note": self.t("survival_note", horizon=self.months_text(horizon)),
        }

    def _implicit(self, data: dict[str, Any]) -> dict[str, Any]:
        found = data["implicit"]
        params = found.get("parameters") or {}
        rows = [
            {
                "customer": c.get("customer_id"),
                "branch": self.name(c["branch_id"]) if c.get("branch_id") else "—",
                "plan": c.get("plan") or "—",
                "baseline": f"{c['baseline_rate']:,.1f}" if c.get("baseline_rate") is not None else "—",
                "recent": f"{c['recent_rate']:,.1f}" if c.get("recent_rate") is not None else "—",
                "drop": fmt.relative(c.get("change"), self.lang),
            }
            for c in (found.get("customers") or [])[:15]
        ]
        windows = found.get("windows") or {}
        return {
            "kpis": [
                {"label": self.t("implicit_count"), "value": self.num(found.get("implicit_churners"))},
                {"label": self.t("implicit_share"), "value": self.pct(found.get("share"))},
                {"label": self.t("implicit_judged"), "value": self.num(found.get("judged_customers"))},
            ],
            "rows": rows,
            "note": self.t(
                "implicit_note",
                threshold=self.pct(params.get("drop"), 0),
                source=params.get("source", "events"),
                recent=f"{windows.get('recent_from', '?')} – {windows.get('recent_to', '?')}",
                baseline=f"{windows.get('baseline_from', '?')} – {windows.get('baseline_to', '?')}",
            ),
            "list_title": self.t("implicit_list"),
        }

    def _alerts(self, data: dict[str, Any]) -> dict[str, Any]:
        report = data["report"]
        msg = "message_zh" if self.lang == "zh" else "message_en"
        rows = [
            {
                "severity": a["severity"],
                "severity_label": self.t(f"sev_{a['severity']}"),
                "period": a["period"],
                "message": a[msg],
            }
            for a in report["alerts"]
        ]
        criteria = self.t(
            "alert_criteria",
            period=self.t(f"period_{report['period']}"),
            n=self.num(report.get("min_start_customers")),
            pp=fmt.points(report.get("jump_pp"), self.lang).lstrip("+"),
            rel=self.pct(report.get("jump_relative"), 0),
        )
        if report.get("ceiling") is not None:
            criteria += " " + self.t("alert_ceiling", ceiling=self.pct(report["ceiling"]))
        return {"rows": rows, "note": criteria, "empty_text": self.t("no_alerts")}

    def _at_risk(self, data: dict[str, Any]) -> dict[str, Any]:
        rows = [
            {
                "customer": r["customer_id"],
                "branch": self.name(r["branch_id"]) if r.get("branch_id") else "—",
                "plan": r.get("plan") or "—",
                "segment": r.get("segment") or "—",
                "probability": self.pct(r.get("probability"), 1),
                "reasons": self._reason_text(r.get("reasons")),
                "scored_at": (r.get("scored_at") or "—")[:10],
            }
            for r in data["rows"]
        ]
        return {"rows": rows}

    def _reason_text(self, reasons: str | None) -> str:
        """The reasons in words: the scores table's JSON list (text_en/text_zh per reason), else the raw text."""
        if not reasons:
            return "—"
        try:
            items = json.loads(reasons)
        except ValueError:
            return reasons
        if not isinstance(items, list):
            return reasons
        key = "text_zh" if self.lang.startswith("zh") else "text_en"
        texts = [str(i.get(key) or i.get("text") or i.get("feature")) for i in items if isinstance(i, dict)]
        return "; ".join(texts) if texts else reasons
