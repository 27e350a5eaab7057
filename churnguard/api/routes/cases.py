"""``/api/cases``: list, read, claim, update, assign and recycle retention and win-back cases."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from churnguard.api.context import CallerDep, StoreDep, app_context, jsonable
from churnguard.api.services import cases

router = APIRouter(prefix="/api/cases", tags=["cases"])
CaseId = Path(max_length=200)


class CaseUpdate(BaseModel):
    status: str | None = Field(None, max_length=40, description="the new status (the workflow's statuses)")
    note: str = Field("", max_length=4000, description="what happened: the contact, the offer, the outcome")


class AssignRequest(BaseModel):
    case_ids: list[str] | None = Field(None, description="the cases to assign (default: every unowned open case)")
    strategy: Literal["round_robin", "load"] = "round_robin"


@router.get("", summary="Cases in your scope (account managers: own cases and the pool), highest priority first")
def list_cases(
    *,
    status: str | None = Query(None, max_length=40),
    owner: str | None = Query(None, max_length=64, description="only this owner's cases ('me' for yours)"),
    pool: bool = Query(False, description="only unowned open cases (the pool to claim from)"),
    open_only: bool = Query(False, alias="open", description="only cases not closed"),
    campaign_id: str | None = Query(None, max_length=200),
    customer_id: str | None = Query(None, max_length=200),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    request: Request,
    who: CallerDep,
    store: StoreDep,
) -> dict[str, Any]:
    return jsonable(
        cases.list_cases(
            store,
            who.scope,
            status=status,
            owner=who.user_id if owner == "me" else owner,
            pool=pool,
            open_only=open_only,
            campaign_id=campaign_id,
            customer_id=customer_id,
            limit=limit,
            offset=offset,
            model=app_context(request).at_risk_model(store),
        )
    )


@router.post("/assign", summary="Assign unowned open cases of your scope to account managers")
def assign(*, body: AssignRequest, who: CallerDep, store: StoreDep) -> dict[str, Any]:
    return jsonable(cases.assign(store, who.scope, case_ids=body.case_ids, strategy=body.strategy, ip=who.ip))


@router.post("/recycle", summary="Return overdue cases of your scope to the pool (admins, branch managers)")
def recycle(*, who: CallerDep, store: StoreDep) -> dict[str, Any]:
    return {"recycled": cases.recycle(store, who.scope, ip=who.ip)}


@router.get("/{case_id}", summary="One case with its history")
def get_case(*, case_id: str = CaseId, who: CallerDep, store: StoreDep) -> dict[str, Any]:
    return jsonable(cases.get_case(store, who.scope, case_id))


@router.post("/{case_id}/claim", summary="Claim a case from the pool (account managers; claim limit applies)")
def claim(*, case_id: str = CaseId, who: CallerDep, store: StoreDep) -> dict[str, Any]:
    return jsonable(cases.claim(store, who.scope, case_id, ip=who.ip))


@router.post("/{case_id}/update", summary="Record a contact or an outcome (status and note)")
def update(*, body: CaseUpdate, case_id: str = CaseId, who: CallerDep, store: StoreDep) -> dict[str, Any]:
    return jsonable(cases.update(store, who.scope, case_id, status=body.status, note=body.note, ip=who.ip))
