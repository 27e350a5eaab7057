"""``/api/branches``, ``/api/segments``, ``/api/models``, ``/api/users``: what the scope holds."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from churnguard.api.context import CallerDep, FiguresDep, StoreDep, jsonable
from churnguard.api.services import catalog
from churnguard.auth.errors import AccessDeniedError

router = APIRouter(prefix="/api", tags=["catalog"])


@router.get("/branches", summary="The branch tree of your scope, with customers per branch and subtree")
def branches(*, who: CallerDep, store: StoreDep) -> dict[str, Any]:
    return {"branches": jsonable(catalog.branches(store, who.scope))}


@router.get("/segments", summary="Value tiers (ABC), RFM segments and lifecycle stages of your scope")
def segments(
    *,
    branch: str | None = Query(None, description="a branch inside your scope"),
    who: FiguresDep,
    store: StoreDep,
) -> dict[str, Any]:
    return jsonable(catalog.segments(store, who.scope.narrow(store, branch)))


@router.get("/models", summary="Model runs (early-warning models) with their metrics")
def models(*, who: FiguresDep, store: StoreDep) -> dict[str, Any]:
    return {"models": jsonable(catalog.model_runs(store))}


class ScoringRequest(BaseModel):
    as_of: dt.date | None = Field(None, description="score customers active on this day (default: the data's)")
    model_id: str | None = Field(
        None, max_length=200, description="a model id of /api/models (default: the active one)"
    )


@router.post("/scores/run", summary="Score every active customer with a trained model (admin; audited)")
def run_scoring(*, body: ScoringRequest, who: CallerDep, store: StoreDep) -> dict[str, Any]:
    return jsonable(catalog.run_scoring(store, who.scope, as_of=body.as_of, model_id=body.model_id, ip=who.ip))


@router.get("/users", summary="Users of your scope (admins and branch managers)")
def users(*, who: CallerDep, store: StoreDep) -> dict[str, Any]:
    if who.user.role not in ("admin", "branch_manager"):
        raise AccessDeniedError("only admins and branch managers list users.")
    return {"users": jsonable(catalog.users_in_scope(store, who.scope))}
