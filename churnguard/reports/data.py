"""The report's figures: every number comes from a metrics function; this module only gathers them.

:func:`collect_report` calls the analytics of :mod:`churnguard.metrics` for one scope and period
and returns a :class:`ReportData` — plain dicts and lists, no formatting, no language.  The
analytics' own warnings (suspect data) are kept with the section they concern.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from churnguard.metrics.activity import ActivityRules
from churnguard.metrics.alerts import churn_alerts, reason_mix
from churnguard.metrics.churn import churn_report
from churnguard.metrics.cohorts import cohort_retention
from churnguard.metrics.implicit import implicit_churn
from churnguard.metrics.loss import churn_loss, key_account_churn
from churnguard.metrics.revenue import revenue_retention
from churnguard.metrics.scope import check_branch, customer_scope_sql, root_branch
from churnguard.metrics.survival import survival_curves
from churnguard.reports.periods import add_months, months_in, previous_range, settled_until
from churnguard.store.connection import Store

#: Section ids, in the order the report shows them.
SECTION_IDS: tuple[str, ...] = (
    "headline",
    "branches",
    "trend",
    "reasons",
    "key_accounts",
    "value",
    "loss",
    "cohorts",
    "survival",
    "implicit",
    "alerts",
    "at_risk",
)
#: How deep the branch drill-down goes below the scope (HQ → province → city → …).
DRILL_DEPTH = 4
#: Rows in the report's short lists (top lost customers, implicit churners, at-risk customers).
LIST_LIMIT = 15
#: Cohort matrix size: signup cohorts of the last N periods, followed for up to N periods.
COHORT_PERIODS = {"month": 24, "quarter": 8}
#: Columns of a ``scores`` table, by role, in order of preference.
SCORE_COLUMNS = {
    "probability": ("probability", "churn_probability", "p_churn", "score"),
    "date": ("as_of", "scored_at", "score_date", "observation_date", "scored_on", "ts"),
    "reasons": ("top_reasons", "reasons", "reason_codes", "explanation"),
}
#: The holdout check needs at least this many days after the calibration end (8 weeks).
MIN_HOLDOUT_DAYS = 56
#: The time unit of the BG/NBD holdout check.
HOLDOUT_TIME_UNIT = "week"
HEADLINE_KEYS = (
    "start_customers",
    "new_customers",
    "reactivated_customers",
    "churned_customers",
    "churned_from_start",
    "end_customers",
    "churn_rate",
    "retention_rate",
)


@dataclass
class Section:
    """One section's figures: ``status`` is ``ok``, ``empty`` (nothing to show for the period) or
    ``not_computed`` (its input table does not exist yet); ``warnings`` from the analytics."""

    id: str
    status: str = "ok"
    data: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class ReportData:
    """Everything the report shows, before formatting."""

    start: dt.date
    end: dt.date
    prev_start: dt.date
    prev_end: dt.date
    period: str
    scope: str
    scope_is_root: bool
    rules: ActivityRules
    settled: dt.date
    store_url: str
    generated_at: dt.datetime
    version: str
    branch_names: dict[str, tuple[str, str]]
    children: dict[str, list[str]]
    sections: dict[str, Section] = field(default_factory=dict)

    def branch_name(self, branch_id: str, lang: str = "en") -> str:
        en, zh = self.branch_names.get(branch_id, (branch_id, branch_id))
        return zh if lang.startswith("zh") else en

    @property
    def headline(self) -> dict[str, Any]:
        """The headline figures (this period, the previous one, the change): JSON-ready."""
        sec = self.sections.get("headline")
        return dict(sec.data.get("summary", {})) if sec else {}


def _branch_tree(store: Store) -> tuple[dict[str, tuple[str, str]], dict[str, list[str]]]:
    """Branch names (en, zh) and each branch's children, from the (small) branches table."""
    has_zh = any(name == "name_zh" for name, _ in store.columns("branches"))
    zh = "coalesce(name_zh, name)" if has_zh else "name"
    rows = store.execute(f"SELECT branch_id, name, {zh}, parent_id FROM branches ORDER BY branch_id").fetchall()
    names = {r[0]: (r[1] or r[0], r[2] or r[1] or r[0]) for r in rows}
    children: dict[str, list[str]] = {}
    for branch_id, _, _, parent in rows:
        if parent is not None:
            children.setdefault(parent, []).append(branch_id)
    return names, children


def _rate_change(cur: float | None, prev: float | None) -> tuple[float | None, float | None]:
    if cur is None or prev is None:
        return None, None
    return round(cur - prev, 6), (round((cur - prev) / prev, 6) if prev else None)


def collect_report(
    store: Store,
    *,
    start: dt.date,
    end: dt.date,
    rules: ActivityRules,
    branch: str | None = None,
    period: str = "month",
    version: str = "",
) -> ReportData:
    """Gather every section's figures for ``branch``'s subtree and ``[start, end]`` (see module docstring)."""
    if branch is not None:
        check_branch(store, branch)
    scope = branch or root_branch(store) or ""
    prev_start, prev_end = previous_range(start, end)
    names, children = _branch_tree(store)
    data = ReportData(
        start=start,
        end=end,
        prev_start=prev_start,
        prev_end=prev_end,
        period=period,
        scope=scope,
        scope_is_root=branch is None or branch == root_branch(store),
        rules=rules,
        settled=settled_until(rules),
        store_url=str(store.url),
        generated_at=dt.datetime.now().astimezone().replace(microsecond=0),
        version=version,
        branch_names=names,
        children=children,
    )
    args = {"store": store, "rules": rules, "branch": branch, "data": data}
    for sid in SECTION_IDS:
        data.sections[sid] = _run(SECTION_BUILDERS[sid], args)
    return data


def _run(builder: Any, args: dict[str, Any]) -> Section:
    """Build one section, keeping the analytics' own warnings (suspect data) with it for the reader."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        section: Section = builder(**args)
    for w in caught:
        if w.category.__module__.startswith("churnguard"):
            text = str(w.message)
            if text not in section.warnings:
                section.warnings.append(text)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return section


# --- sections ---------------------------------------------------------------------------------


def _headline(store: Store, rules: ActivityRules, branch: str | None, data: ReportData) -> Section:
    cur = churn_report(store, start=data.start, end=data.end, rules=rules, branch=branch).totals
    prev = churn_report(store, start=data.prev_start, end=data.prev_end, rules=rules, branch=branch).totals
    change, relative = _rate_change(cur["churn_rate"], prev["churn_rate"])
    summary: dict[str, Any] = {
        "from": data.start.isoformat(),
        "to": data.end.isoformat(),
        "previous_from": data.prev_start.isoformat(),
        "previous_to": data.prev_end.isoformat(),
        **{k: cur[k] for k in HEADLINE_KEYS},
        "churn_rate_change": change,
        "churn_rate_change_relative": relative,
        "previous": {k: prev[k] for k in HEADLINE_KEYS},
    }
    has_subscriptions = _has_rows(store, "subscriptions")
    for key, (s, e) in {"current": (data.start, data.end), "previous": (data.prev_start, data.prev_end)}.items():
        target = summary if key == "current" else summary["previous"]
        with _warnings_about(f"{key} period {s.isoformat()} – {e.isoformat()}"):
            loss = churn_loss(store, start=s, end=e, rules=rules, branch=branch).to_dict()
        target["lost_revenue"] = loss["lost_revenue"]
        target["profit_loss"] = loss["profit_loss"]
        if has_subscriptions:  # revenue retention is measured on recurring revenue
            rr = revenue_retention(store, start=s, end=e, branch=branch).to_dict()
            target["grr"] = rr["grr"]
            target["nrr"] = rr["nrr"]
    return Section("headline", data={"summary": summary})


@contextlib.contextmanager
def _warnings_about(what: str) -> Iterator[None]:
    """Re-issue the warnings raised inside with ``what`` in front, so the reader knows which figure they concern."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        warnings.warn(f"{what}: {w.message}", w.category, stacklevel=3)


def _has_rows(store: Store, table: str) -> bool:
    return bool(store.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0])


def _branch_level(store: Store, rules: ActivityRules, data: ReportData, node: str, depth: int) -> list[dict[str, Any]]:
    """The rows of ``node``'s children (each with its subtree), with the previous period's rate and
    a drill-down into each child that has children of its own."""
    scope = None if node == data.scope and data.scope_is_root else node
    cur = churn_report(store, start=data.start, end=data.end, rules=rules, by="branch", branch=scope).rows
    prev = churn_report(store, start=data.prev_start, end=data.prev_end, rules=rules, by="branch", branch=scope).rows
    prev_rate = {r["branch"]: r["churn_rate"] for r in prev}
    rows = []
    for r in cur:
        child = r["branch"]
        change, relative = _rate_change(r["churn_rate"], prev_rate.get(child))
        item = {
            "branch": child,
            "direct": child == node,
            **{k: r[k] for k in HEADLINE_KEYS},
            "previous_rate": prev_rate.get(child),
            "churn_rate_change": change,
            "churn_rate_change_relative": relative,
            "children": [],
        }
        if child != node and data.children.get(child) and depth < DRILL_DEPTH:
            item["children"] = _branch_level(store, rules, data, child, depth + 1)
        rows.append(item)
    rows.sort(key=lambda x: (x["direct"], -(x["churn_rate"] or 0), x["branch"]))
    return rows


def _branches(store: Store, rules: ActivityRules, branch: str | None, data: ReportData) -> Section:
    rows = _branch_level(store, rules, data, data.scope, 0)
    has_children = any(not r["direct"] for r in rows)
    return Section("branches", status="ok" if has_children else "empty", data={"rows": rows})


def _trend(store: Store, rules: ActivityRules, branch: str | None, data: ReportData) -> Section:
    whole = churn_report(store, start=data.prev_start, end=data.end, rules=rules, period=data.period, branch=branch)
    by_branch = churn_report(
        store, start=data.prev_start, end=data.end, rules=rules, period=data.period, by="branch", branch=branch
    )
    start = data.start.isoformat()
    rows = [{**r, "current": r["period_to"] >= start} for r in whole.rows]
    series: dict[str, list[dict[str, Any]]] = {}
    for r in by_branch.rows:
        series.setdefault(r["branch"], []).append(
            {"period": r["period"], "churn_rate": r["churn_rate"], "start_customers": r["start_customers"]}
        )
    return Section("trend", status="ok" if rows else "empty", data={"rows": rows, "by_branch": series})


def _reasons(store: Store, rules: ActivityRules, branch: str | None, data: ReportData) -> Section:
    mix_period = "quarter" if data.period == "quarter" or months_in(data.start, data.end) >= 6 else "month"
    mix = reason_mix(store, start=data.start, end=data.end, rules=rules, period=mix_period, branch=branch)
    by_dest = churn_report(store, start=data.start, end=data.end, rules=rules, by="destination", branch=branch).rows
    reasons = [{"reason": r["reason"], "churned": r["churned_customers"], "share": r["share"]} for r in mix["reasons"]]
    dests = sorted(
        (
            {"destination": r["destination"], "churned": r["churned_customers"], "share": r["share_of_churned"]}
            for r in by_dest
        ),
        key=lambda r: -r["churned"],
    )
    section = Section(
        "reasons",
        status="ok" if reasons else "empty",
        data={"reasons": reasons, "destinations": dests, "mix_period": mix_period, "mix": mix},
    )
    return section


def _key_accounts(store: Store, rules: ActivityRules, branch: str | None, data: ReportData) -> Section:
    found = key_account_churn(store, start=data.start, end=data.end, rules=rules, branch=branch)
    return Section("key_accounts", data=found)


def _value_rows(store: Store, branch: str | None, column: str, measure: str) -> list[dict[str, Any]]:
    """Customers and Σ ``measure`` per stored ``column`` of ``customer_value``, within the scope."""
    scope_sql, params = customer_scope_sql(branch)
    sql = f"""
    SELECT v.{column} AS key, count(*) AS customers, sum(v.{measure}) AS value,
           sum(v.clv) AS clv_total, avg(v.clv) AS clv_mean, count(v.clv) AS clv_customers
    FROM customer_value v JOIN ({scope_sql}) sc ON sc.customer_id = v.customer_id
    WHERE v.{column} IS NOT NULL
    GROUP BY ALL
    """
    rows = [
        {
            "key": k,
            "customers": n,
            "value": float(v) if v is not None else None,
            "clv_total": ct,
            "clv_mean": cm,
            "clv_customers": cn,
        }
        for k, n, v, ct, cm, cn in store.execute(sql, params).fetchall()
    ]
    n_all = sum(r["customers"] for r in rows)
    v_all = sum(r["value"] or 0 for r in rows)
    for r in rows:
        r["share_customers"] = r["customers"] / n_all if n_all else None
        r["share_value"] = (r["value"] or 0) / v_all if v_all else None
    return rows


def _ordered(rows: list[dict[str, Any]], order: tuple[str, ...]) -> list[dict[str, Any]]:
    """``rows`` in the order of the keys in ``order``, the others after them by name."""
    rank = {k: i for i, k in enumerate(order)}
    return sorted(rows, key=lambda r: (rank.get(r["key"], len(order)), str(r["key"])))


def holdout_calibration_end(store: Store, rules: ActivityRules, start: dt.date) -> tuple[dt.date, bool]:
    """The holdout check's calibration end: the day before the report period (the holdout starts on
    its first day), or the middle of the data when that leaves less than :data:`MIN_HOLDOUT_DAYS`
    before the as-of date; and whether it fell back to the middle."""
    as_of = rules.as_of or settled_until(rules)
    cal_end = start - dt.timedelta(days=1)
    if (as_of - cal_end).days >= MIN_HOLDOUT_DAYS:
        return cal_end, False
    first = store.execute("SELECT CAST(min(ts) AS DATE) FROM transactions").fetchone()[0]
    return first + (as_of - first) / 2, True


def _value(store: Store, rules: ActivityRules, branch: str | None, data: ReportData) -> Section:
    """Customer value: the stored ABC tiers (with their churn rate in the period), RFM segments,
    lifecycle stages and CLV; for non-contractual stores the BG/NBD holdout check."""
    from churnguard.segments.labels import LIFECYCLE_STAGES, RFM_SEGMENTS, TIERS

    out: dict[str, Any] = {
        "stored": False,
        "as_of": None,
        "tiers": [],
        "rfm": [],
        "stages": [],
        "has_clv": False,
        "holdout": None,
        "calibration_end": None,
        "holdout_fallback": False,
    }
    section = Section("value", data=out)
    if store.has_table("customer_value") and _has_rows(store, "customer_value"):
        tiers = _ordered(_value_rows(store, branch, "tier", "value"), tuple(TIERS))
        if tiers:
            by_tier = churn_report(store, start=data.start, end=data.end, rules=rules, by="tier", branch=branch).rows
            rates = {r["tier"]: r for r in by_tier}
            for t in tiers:
                found = rates.get(t["key"]) or {}
                t["start_customers"] = found.get("start_customers")
                t["churned_from_start"] = found.get("churned_from_start")
                t["churn_rate"] = found.get("churn_rate")
        out["tiers"] = tiers
        out["rfm"] = _ordered(_value_rows(store, branch, "rfm_segment", "monetary"), tuple(RFM_SEGMENTS))
        out["stages"] = _ordered(_value_rows(store, branch, "lifecycle_stage", "value"), tuple(LIFECYCLE_STAGES))
        out["has_clv"] = any(t["clv_customers"] for t in tiers)
        out["stored"] = bool(tiers or out["rfm"] or out["stages"])
        if out["stored"]:
            out["as_of"] = str(store.execute("SELECT CAST(max(as_of) AS VARCHAR) FROM customer_value").fetchone()[0])
    if rules.definition == "non_contractual" and _has_rows(store, "transactions"):
        from churnguard.clv.base import ClvDataError
        from churnguard.clv.score import holdout_check

        cal_end, fallback = holdout_calibration_end(store, rules, data.start)
        out["calibration_end"], out["holdout_fallback"] = cal_end.isoformat(), fallback
        try:
            out["holdout"] = holdout_check(store, calibration_end=cal_end, time_unit=HOLDOUT_TIME_UNIT).to_dict()
        except (ClvDataError, ValueError, ArithmeticError) as exc:
            section.warnings.append(f"BG/NBD holdout check (calibration end {cal_end.isoformat()}): {exc}")
    if not out["stored"] and out["holdout"] is None:
        section.status = "not_computed"
    return section


def _loss(store: Store, rules: ActivityRules, branch: str | None, data: ReportData) -> Section:
    loss = churn_loss(store, start=data.start, end=data.end, rules=rules, branch=branch, by="branch")
    section = Section("loss", data={"loss": loss.to_dict(), "revenue": None})
    if _has_rows(store, "subscriptions"):
        section.data["revenue"] = revenue_retention(store, start=data.start, end=data.end, branch=branch).to_dict()
    return section


def _cohorts(store: Store, rules: ActivityRules, branch: str | None, data: ReportData) -> Section:
    period = data.period if data.period in COHORT_PERIODS else "month"
    n = COHORT_PERIODS[period]
    first = add_months(data.end, -(n * (3 if period == "quarter" else 1)) + 1)
    matrix = cohort_retention(
        store, rules=rules, start=first, end=data.end, period=period, max_age=n, branch=branch
    ).to_dict()
    status = "ok" if matrix.get("cohorts") else "empty"
    return Section("cohorts", status=status, data={"matrix": matrix, "period": period})


def _survival(store: Store, rules: ActivityRules, branch: str | None, data: ReportData) -> Section:
    report = survival_curves(store, rules=rules, by="segment", branch=branch).to_dict()
    return Section("survival", data={"survival": report})


def _implicit(store: Store, rules: ActivityRules, branch: str | None, data: ReportData) -> Section:
    source = "events" if _has_rows(store, "events") else "transactions"
    found = implicit_churn(store, as_of=data.end, branch=branch, limit=LIST_LIMIT, rules=rules, source=source).to_dict()
    return Section("implicit", data={"implicit": found})


def _alerts(store: Store, rules: ActivityRules, branch: str | None, data: ReportData) -> Section:
    period = data.period if data.period in ("month", "quarter") else "month"
    report = churn_alerts(
        store, start=data.start, end=data.end, rules=rules, period=period, by="branch", branch=branch
    ).to_dict()
    return Section("alerts", data={"report": report})


def _at_risk(store: Store, rules: ActivityRules, branch: str | None, data: ReportData) -> Section:
    """The customers with the highest churn probability in the latest scoring, once a model has scored them."""
    if not store.has_table("scores"):
        return Section("at_risk", status="not_computed")
    columns = {name.lower(): name for name, _ in store.columns("scores")}
    found = {role: next((columns[c] for c in names if c in columns), None) for role, names in SCORE_COLUMNS.items()}
    if "customer_id" not in columns or found["probability"] is None:
        return Section("at_risk", status="not_computed")
    prob, day, reasons = found["probability"], found["date"], found["reasons"]
    scope_sql, params = customer_scope_sql(branch)
    latest = f'WHERE s."{day}" = (SELECT max("{day}") FROM scores)' if day else ""
    sql = f"""
    SELECT s.customer_id, c.branch_id, c.plan, c.segment, CAST(s."{prob}" AS DOUBLE) AS probability,
           {f'CAST(s."{day}" AS VARCHAR)' if day else "NULL"} AS scored_at,
           {f'CAST(s."{reasons}" AS VARCHAR)' if reasons else "NULL"} AS reasons
    FROM scores s
    JOIN ({scope_sql}) sc ON sc.customer_id = s.customer_id
    JOIN customers c ON c.customer_id = s.customer_id
    {latest}
    ORDER BY probability DESC NULLS LAST, s.customer_id
    LIMIT {LIST_LIMIT}
    """
    cur = store.execute(sql, params)
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    return Section("at_risk", status="ok" if rows else "not_computed", data={"rows": rows})


SECTION_BUILDERS = {
    "headline": _headline,
    "branches": _branches,
    "trend": _trend,
    "reasons": _reasons,
    "key_accounts": _key_accounts,
    "value": _value,
    "loss": _loss,
    "cohorts": _cohorts,
    "survival": _survival,
    "implicit": _implicit,
    "alerts": _alerts,
    "at_risk": _at_risk,
}
