"""``/api/metrics``: churn by period, branch and reason; loss; cohorts; alerts; the overview.

Each calls the :mod:`churnguard.metrics` function of the same name with ``branch`` = the caller's
branch (or a branch inside their scope given as ``branch``: 404 outside it), so the metric's own
SQL counts only that subtree.  Results are cached per data version (docs/api.md, "Caching").
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Query, Request

from churnguard.api.context import Caller, FiguresDep, StoreDep, app_context, jsonable
from churnguard.api.errors import InvalidParameterError
from churnguard.api.services import figures
from churnguard.auth.scope import Scope
from churnguard.store.connection import Store

router = APIRouter(prefix="/api/metrics", tags=["metrics"])

BranchQuery = Query(None, description="a branch inside your scope (default: your branch; admin: the whole company)")
FromQuery = Query(None, alias="from", description="first day, YYYY-MM-DD (default: 12 full months to the as-of date)")
ToQuery = Query(None, alias="to", description="last day, included, YYYY-MM-DD")


def scoped(store: Store, who: Caller, branch: str | None) -> Scope:
    return who.scope.narrow(store, branch)


def period(store: Store, start: dt.date | None, end: dt.date | None, months: int = 12) -> tuple[dt.date, dt.date]:
    if start is not None and end is not None and end < start:
        raise InvalidParameterError("to", f"{end.isoformat()} is before from {start.isoformat()}; expected from ≤ to.")
    p = figures.period_for(store, months, start, end)
    if p["end"] < p["start"]:
        raise InvalidParameterError("from", "the period ends before it starts; give both from and to.")
    return p["start"], p["end"]


@router.get("/overview", summary="Headline, by-branch table, monthly trend, reason mix and alerts (cached)")
def overview(
    *,
    request: Request,
    branch: str | None = BranchQuery,
    months: Literal[1, 3, 6, 12] = Query(12, description="the last N full months (when from/to are not given)"),
    start: dt.date | None = FromQuery,
    end: dt.date | None = ToQuery,
    who: FiguresDep,
    store: StoreDep,
) -> dict[str, Any]:
    scope = scoped(store, who, branch)
    s, e = period(store, start, end, months)
    return jsonable(figures.overview(store, scope, app_context(request).cache, months=months, start=s, end=e))


@router.get("/churn", summary="Churn counts and rates (客户流失率), per period and/or group")
def churn(
    *,
    request: Request,
    branch: str | None = BranchQuery,
    start: dt.date | None = FromQuery,
    end: dt.date | None = ToQuery,
    period_: Literal["month", "quarter", "year"] | None = Query(None, alias="period"),
    by: Literal["branch", "plan", "segment", "tier", "cohort", "reason", "destination"] | None = Query(None),
    definition: Literal["standard", "end_count", "average", "daily"] = Query("standard"),
    who: FiguresDep,
    store: StoreDep,
) -> dict[str, Any]:
    scope = scoped(store, who, branch)
    s, e = period(store, start, end)
    cache = app_context(request).cache
    return jsonable(figures.churn(store, scope, cache, start=s, end=e, period=period_, by=by, definition=definition))


@router.get("/loss", summary="Churn loss in money (客户流失损失)")
def loss(
    *,
    request: Request,
    branch: str | None = BranchQuery,
    start: dt.date | None = FromQuery,
    end: dt.date | None = ToQuery,
    by: Literal["branch", "plan", "segment", "tier", "cohort", "reason", "destination"] | None = Query(None),
    window_months: int = Query(12, ge=1, le=60),
    margin: float | None = Query(None, gt=0, le=1),
    who: FiguresDep,
    store: StoreDep,
) -> dict[str, Any]:
    scope = scoped(store, who, branch)
    s, e = period(store, start, end)
    cache = app_context(request).cache
    return jsonable(
        figures.loss(store, scope, cache, start=s, end=e, by=by, window_months=window_months, margin=margin)
    )


@router.get("/cohorts", summary="Cohort retention matrix (客户保留率 by signup cohort)")
def cohorts(
    *,
    request: Request,
    branch: str | None = BranchQuery,
    start: dt.date | None = FromQuery,
    end: dt.date | None = ToQuery,
    period_: Literal["month", "quarter"] = Query("month", alias="period"),
    max_age: int = Query(24, ge=1, le=120),
    by: Literal["branch", "plan", "segment"] | None = Query(None),
    who: FiguresDep,
    store: StoreDep,
) -> dict[str, Any]:
    scope = scoped(store, who, branch)
    if start is not None and end is not None and end < start:
        raise InvalidParameterError("to", f"{end.isoformat()} is before from {start.isoformat()}; expected from ≤ to.")
    cache = app_context(request).cache
    return jsonable(figures.cohorts(store, scope, cache, start=start, end=end, period=period_, max_age=max_age, by=by))


@router.get("/alerts", summary="Churn alerts: groups whose churn rate is over a ceiling or jumped")
def alerts(
    *,
    request: Request,
    branch: str | None = BranchQuery,
    start: dt.date | None = FromQuery,
    end: dt.date | None = ToQuery,
    period_: Literal["month", "quarter"] = Query("month", alias="period"),
    by: Literal["branch", "segment", "plan"] = Query("branch"),
    ceiling: float | None = Query(None, gt=0, le=1),
    jump_pp: float | None = Query(0.02, ge=0, le=1),
    min_start_customers: int = Query(50, ge=0),
    who: FiguresDep,
    store: StoreDep,
) -> dict[str, Any]:
    scope = scoped(store, who, branch)
    s, e = period(store, start, end)
    cache = app_context(request).cache
    return jsonable(
        figures.alerts(
            store,
            scope,
            cache,
            start=s,
            end=e,
            period=period_,
            by=by,
            ceiling=ceiling,
            jump_pp=jump_pp,
            min_start_customers=min_start_customers,
        )
    )


@router.get("/reasons", summary="Churn reason mix per period (流失原因)")
def reasons(
    *,
    request: Request,
    branch: str | None = BranchQuery,
    start: dt.date | None = FromQuery,
    end: dt.date | None = ToQuery,
    period_: Literal["month", "quarter", "year"] = Query("quarter", alias="period"),
    who: FiguresDep,
    store: StoreDep,
) -> dict[str, Any]:
    scope = scoped(store, who, branch)
    s, e = period(store, start, end)
    return jsonable(figures.reasons(store, scope, app_context(request).cache, start=s, end=e, period=period_))
