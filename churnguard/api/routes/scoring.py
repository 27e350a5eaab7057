"""``/api/scores/customers`` and ``/api/customers/{id}/score``: score one customer or a batch, in your scope."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, Field, StringConstraints

from churnguard.api.context import CallerDep, StoreDep
from churnguard.api.services import scoring

router = APIRouter(prefix="/api", tags=["scoring"])

CustomerId = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ScoreCustomersRequest(BaseModel):
    customer_ids: list[CustomerId] = Field(
        ...,
        min_length=1,
        max_length=scoring.MAX_IDS,
        description=f"1 to {scoring.MAX_IDS} customer ids (repeats count once)",
    )
    write: bool = Field(True, description="replace these customers' rows of the day in scores (false: only compute)")


class ScoreOneRequest(BaseModel):
    write: bool = Field(True, description="replace the customer's row of the day in scores (false: only compute)")


class Reason(BaseModel):
    feature: str | None = None
    category: str | None = Field(None, description="driver category (usage, price, service, …)")
    contribution: float | None = Field(None, description="log-odds contribution towards churn")
    value: Any = None
    text_en: str | None = None
    text_zh: str | None = None


class CustomerScore(BaseModel):
    customer_id: str
    status: Literal["scored", "not_active", "not_found"] = Field(
        ...,
        description="scored; not_active (no activity spell covers the day: churned before it or not yet a "
        "customer); not_found (no such customer in your scope)",
    )
    message: str | None = Field(None, description="why the customer was not scored")
    as_of: str = Field(..., description="the day scored (features from data before it)")
    model_id: str
    horizon_days: int | None = None
    probability: float | None = Field(None, description="churn probability within the horizon (calibrated)")
    risk_band: Literal["high", "medium", "low"] | None = None
    value_at_risk: float | None = Field(None, description="probability × value (CLV, else 12-month margin)")
    top_reason: str | None = Field(None, description="driver category of the largest contribution")
    reasons: list[Reason] | None = Field(None, description="the top reasons, largest first, in en and zh")
    expected_days_to_churn: float | None = Field(None, description="from the model's Cox view, where fitted")
    scored_at: str | None = None


class ScoreBatch(BaseModel):
    as_of: str
    model_id: str
    written: bool = Field(..., description="whether scores were replaced")
    requested: int = Field(..., description="distinct ids asked for")
    scored: int
    not_active: int
    not_found: int = Field(..., description="unknown ids and ids outside your scope (never scored)")
    results: list[CustomerScore]


class SingleScore(CustomerScore):
    written: bool


@router.post(
    "/scores/customers",
    summary="Score a batch of customers of your scope with the active model (audited: score.run)",
    response_model=ScoreBatch,
)
def score_customers(*, body: ScoreCustomersRequest, who: CallerDep, store: StoreDep) -> dict[str, Any]:
    return scoring.score_in_scope(store, who.scope, body.customer_ids, write=body.write, ip=who.ip)


@router.post(
    "/customers/{customer_id}/score",
    summary="Score one customer of your scope with the active model now (audited: score.run)",
    response_model=SingleScore,
    responses={404: {"description": "unknown customer, outside your scope, or no trained model"}},
)
def score_customer(
    *,
    customer_id: str = Path(max_length=200),
    body: Annotated[ScoreOneRequest | None, Body()] = None,
    who: CallerDep,
    store: StoreDep,
) -> dict[str, Any]:
    write = True if body is None else body.write
    return scoring.score_one(store, who.scope, customer_id, write=write, ip=who.ip)
