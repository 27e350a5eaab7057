"""``/api/customers`` and ``/api/at-risk``: the customer 360, the at-risk list and its CSV export."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse

from churnguard.api.context import CallerDep, StoreDep, app_context, jsonable
from churnguard.api.services import customers
from churnguard.auth import audit
from churnguard.reasons import DRIVER_CODES

router = APIRouter(prefix="/api", tags=["customers"])

DriverCode = Literal["usage", "price", "service", "product", "competitor", "payment", "tenure", "value", "other"]
assert set(DriverCode.__args__) == set(DRIVER_CODES)  # type: ignore[attr-defined]


class AtRiskFilters:
    """The at-risk list's filters, shared by the page and the export."""

    def __init__(
        self,
        branch: Annotated[str | None, Query(description="a branch inside your scope: its subtree only")] = None,
        tier: Annotated[str | None, Query(max_length=32, description="value tier (A, B, C or a hand-set one)")] = None,
        reason: Annotated[DriverCode | None, Query(description="top driver category of the score")] = None,
        band: Annotated[Literal["high", "medium", "low"] | None, Query(description="risk band")] = None,
        sort: Annotated[Literal["value_at_risk", "probability"], Query()] = "value_at_risk",
    ) -> None:
        self.branch, self.tier, self.reason, self.band, self.sort = branch, tier, reason, band, sort

    def kwargs(self) -> dict[str, Any]:
        return {"tier": self.tier, "reason": self.reason, "band": self.band, "sort": self.sort}


@router.get("/at-risk", summary="At-risk customers of the latest scoring, filtered, sorted and paged")
def at_risk(
    *,
    request: Request,
    f: Annotated[AtRiskFilters, Depends()],
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    who: CallerDep,
    store: StoreDep,
) -> dict[str, Any]:
    scope = who.scope.narrow(store, f.branch)
    model = app_context(request).at_risk_model(store)
    return jsonable(customers.at_risk(store, scope, model, limit=limit, offset=offset, **f.kwargs()))


@router.get("/at-risk.csv", summary="The at-risk list as CSV (audited)", response_class=StreamingResponse)
def at_risk_csv(
    *,
    request: Request,
    f: Annotated[AtRiskFilters, Depends()],
    limit: int = Query(customers.EXPORT_MAX_ROWS, ge=1, le=customers.EXPORT_MAX_ROWS),
    who: CallerDep,
    store: StoreDep,
) -> StreamingResponse:
    scope = who.scope.narrow(store, f.branch)
    audit.record(
        store,
        "export.at_risk",
        user_id=who.user_id,
        target=scope.branch_id or "(all)",
        detail={**f.kwargs(), "limit": limit},
        ip=who.ip,
    )
    model = app_context(request).at_risk_model(store)
    export_store = app_context(request).cursor()  # streamed after this handler returns: a cursor of its own

    def chunks() -> Any:
        try:
            yield from customers.at_risk_csv(export_store, scope, model, limit=limit, **f.kwargs())
        finally:
            export_store.close()

    name = f"at-risk-{scope.branch_id or 'all'}-{dt.date.today().isoformat()}.csv"
    return StreamingResponse(
        chunks(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/scores/summary", summary="Customers scored in the latest run, per risk band, in your scope")
def score_summary(*, request: Request, who: CallerDep, store: StoreDep) -> dict[str, Any]:
    return jsonable(customers.score_summary(store, who.scope, app_context(request).at_risk_model(store)))


@router.get("/customers/{customer_id}", summary="Customer 360: profile, value, score and reasons, history, cases")
def customer_360(
    *,
    customer_id: str = Path(max_length=200),
    who: CallerDep,
    store: StoreDep,
) -> dict[str, Any]:
    return jsonable(customers.customer_360(store, who.scope, customer_id))
