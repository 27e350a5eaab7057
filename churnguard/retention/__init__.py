"""Retention and win-back: playbooks, value at risk, budgets, control groups, campaigns and cases.

A plain list of re-exports (each module owns its names).
"""

# ruff: noqa: F401

from churnguard.retention.budget import Allocation, allocate
from churnguard.retention.campaigns import (
    CampaignNotFoundError,
    campaign_members,
    campaign_report,
    create_campaign,
    get_campaign,
    list_campaigns,
    member_outcomes,
)
from churnguard.retention.case_assign import AssignmentResult, apply_assignment, assign_cases, plan_assignment
from churnguard.retention.case_outcomes import case_outcomes
from churnguard.retention.cases import (
    KINDS,
    STATUSES,
    OpenedCases,
    allowed_next,
    case_history,
    claim_case,
    count_cases,
    get_case,
    list_cases,
    open_cases,
    recount_claims,
    recycle_overdue,
    update_case,
)
from churnguard.retention.control import control_counts, split_control
from churnguard.retention.effect import (
    DifferenceCI,
    Effect,
    StratifiedDifference,
    difference_ci,
    estimate_effect,
    stratified_difference,
    wilson_interval,
)
from churnguard.retention.playbook import (
    AbandonRules,
    Action,
    Playbook,
    default_playbook,
    default_playbook_text,
    load_playbook,
    parse_playbook,
)
from churnguard.retention.uplift import TwoModelUplift, campaign_uplift, uplift_by_group
from churnguard.retention.value import customer_values, expected_gain, value_at_risk
