"""Campaigns for the API and the dashboard: scoped listing from the ``campaigns`` table, the report and
the creation through :mod:`churnguard.retention.campaigns` (when that module is installed).

A campaign belongs to its ``branch_id`` (its members come from that branch's subtree); a campaign
without a branch is company-wide and visible only to callers whose scope is the whole company.
Account managers see no campaigns (they see the cases campaigns open).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from churnguard.api.services.common import clean, rows
from churnguard.auth import audit
from churnguard.auth.errors import AccessDeniedError, NotFoundError
from churnguard.auth.scope import Scope
from churnguard.errors import ChurnguardError
from churnguard.store.connection import Store


class CampaignsUnavailableError(ChurnguardError):
    """The campaign module is not installed in this version."""

    http_status = 501
    exit_code = 1


def campaigns_module() -> Any:
    try:
        from churnguard.retention import campaigns
    except ImportError as exc:
        raise CampaignsUnavailableError(
            f"campaigns (churnguard.retention.campaigns) are not in this version: {exc}"
        ) from None
    return campaigns


def _visible(scope: Scope) -> str:
    return (
        "(g.branch_id IN (SELECT branch_id FROM scope_branches)"
        " OR (g.branch_id IS NULL AND (CAST($scope_branch AS VARCHAR) IS NULL"
        " OR $scope_branch IN (SELECT branch_id FROM branches WHERE parent_id IS NULL))))"
    )


def _refuse_account_managers(scope: Scope) -> None:
    if scope.role == "account_manager":
        raise AccessDeniedError("account managers work on cases; campaigns are for managers and analysts.")


def list_campaigns(store: Store, scope: Scope) -> list[dict[str, Any]]:
    """The campaigns the scope may see, newest first, with member counts per arm."""
    _refuse_account_managers(scope)
    sql = f"""
    {scope.with_()}
    SELECT g.campaign_id, g.name, g.kind, g.status, g.branch_id, g.as_of, g.budget, g.control_share,
           g.created_by, g.created_at,
           (SELECT count(*) FROM campaign_members m WHERE m.campaign_id = g.campaign_id AND m.arm = 'treatment')
             AS treated,
           (SELECT count(*) FROM campaign_members m WHERE m.campaign_id = g.campaign_id AND m.arm = 'control')
             AS control
    FROM campaigns g WHERE {_visible(scope)}
    ORDER BY g.created_at DESC NULLS LAST, g.campaign_id
    """
    return rows(scope.run(store, sql))


def find_campaign(store: Store, scope: Scope, campaign_id: str) -> dict[str, Any]:
    _refuse_account_managers(scope)
    sql = f"{scope.with_()} SELECT g.* FROM campaigns g WHERE g.campaign_id = $campaign_id AND {_visible(scope)}"
    found = rows(scope.run(store, sql, {"campaign_id": campaign_id}))
    if not found:
        raise NotFoundError(f'campaign "{campaign_id}": not found.')
    return found[0]


def campaign_report(store: Store, scope: Scope, campaign_id: str) -> dict[str, Any]:
    """:func:`churnguard.retention.campaigns.campaign_report` of a campaign the scope may see (else 404)."""
    find_campaign(store, scope, campaign_id)
    return clean(campaigns_module().campaign_report(store, campaign_id))


def create_campaign(
    store: Store,
    scope: Scope,
    *,
    name: str,
    kind: str,
    branch: str | None,
    budget: float | None,
    capacity: int | None,
    control_share: float,
    min_value_at_risk: float,
    as_of: dt.date | None = None,
    seed: int = 0,
    ip: str | None = None,
) -> dict[str, Any]:
    """Start a campaign for a branch of the scope (a branch manager: their branch by default)."""
    if scope.role not in ("admin", "branch_manager"):
        raise AccessDeniedError("only branch managers and admins start campaigns.")
    target = branch if branch is not None else scope.branch_id
    if target is not None:
        scope.narrow(store, target)  # 404 outside the scope
    result = campaigns_module().create_campaign(
        store,
        name=name,
        kind=kind,
        as_of=as_of,
        branch=target,
        budget=budget,
        capacity=capacity,
        control_share=control_share,
        seed=seed,
        min_value_at_risk=min_value_at_risk,
        actor=scope.user_id,
    )
    audit.record(
        store,
        "campaign.create",
        user_id=scope.user_id,
        target=str(clean(result).get("campaign_id")),
        ip=ip,
        detail={"name": name, "kind": kind, "branch": target},
    )
    return clean(result)
