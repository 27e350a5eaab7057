"""``/api/campaigns``: list, start and report retention / win-back campaigns of your scope."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from churnguard.api.context import CallerDep, StoreDep, jsonable
from churnguard.api.services import campaigns

router = APIRouter(prefix="/api/campaigns", tags=["campaigns"])


class CampaignCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["retain", "winback"] = "retain"
    branch: str | None = Field(None, description="a branch of your scope (default: yours)")
    budget: float | None = Field(None, ge=0)
    capacity: int | None = Field(None, ge=0)
    control_share: float = Field(0.1, ge=0, lt=1)
    min_value_at_risk: float = Field(0, ge=0)
    as_of: dt.date | None = None
    seed: int = 0


@router.get("", summary="Campaigns of your scope")
def list_campaigns(*, who: CallerDep, store: StoreDep) -> dict[str, Any]:
    return {"campaigns": jsonable(campaigns.list_campaigns(store, who.scope))}


@router.post("", summary="Start a campaign (branch managers and admins)")
def create(*, body: CampaignCreate, who: CallerDep, store: StoreDep) -> dict[str, Any]:
    return campaigns.create_campaign(store, who.scope, ip=who.ip, **body.model_dump())


@router.get("/{campaign_id}", summary="One campaign's report: treated vs control, saved value, win-back rate")
def report(*, campaign_id: str = Path(max_length=200), who: CallerDep, store: StoreDep) -> dict[str, Any]:
    return campaigns.campaign_report(store, who.scope, campaign_id)
