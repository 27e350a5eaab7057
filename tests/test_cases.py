"""The case workflow on a real DuckDB file: opening, the state machine and its log, claiming,
claim limits, assignment (round-robin, by load, ancestor fallback, atomic batches), timeout
recycling with a controllable clock, outcomes, and the CLI end to end in a child process."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import churnguard
from churnguard.errors import (
    CaseConflictError,
    CaseForbiddenError,
    CaseNotFoundError,
    CaseUserNotFoundError,
    ClaimLimitError,
    ConfigError,
    InvalidTransitionError,
    ValidationError,
)
from churnguard.retention import (
    KINDS,
    STATUSES,
    allowed_next,
    apply_assignment,
    assign_cases,
    case_history,
    case_outcomes,
    claim_case,
    count_cases,
    get_case,
    list_cases,
    open_cases,
    plan_assignment,
    recount_claims,
    recycle_overdue,
    update_case,
)
from churnguard.store import Store

T0 = dt.datetime(2024, 7, 1, 9, 0)
HOUR = dt.timedelta(hours=1)

# -- building small stores --------------------------------------------------------------------------

#: HQ ─ P1 ─ C1, C2 (from the seeded template) plus P2 ─ C4, a province with nobody in it.
EXTRA_BRANCHES = [("P2", "Province Two", "HQ", 1), ("C4", "City Four", "P2", 2)]


def add_branches(store: Store) -> None:
    for row in EXTRA_BRANCHES:
        store.execute("INSERT INTO branches (branch_id, name, parent_id, level) VALUES (?, ?, ?, ?)", list(row))


def add_customers(store: Store, branch: str, n: int, prefix: str) -> list[str]:
    """``n`` customers ``prefix01…`` in ``branch`` (one INSERT … SELECT)."""
    store.execute(
        "INSERT INTO customers (customer_id, branch_id, signup_date) "
        "SELECT ? || lpad(CAST(i AS VARCHAR), 3, '0'), ?, DATE '2024-01-01' FROM range(1, ? + 1) t(i)",
        [prefix, branch, n],
    )
    return [f"{prefix}{i:03d}" for i in range(1, n + 1)]


def add_user(
    store: Store,
    user_id: str,
    role: str = "account_manager",
    branch: str | None = "C1",
    *,
    max_claims: int | None = 5,
    active: bool = True,
) -> str:
    store.execute(
        "INSERT INTO users (user_id, display_name, role, branch_id, active, max_claims, open_claims, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
        [user_id, user_id.upper(), role, branch, active, max_claims, T0],
    )
    return user_id


def open_for(
    store: Store, customers: list[str], kind: str = "retain", *, priority: list[float] | None = None, **kw: Any
) -> list[str]:
    rows = pd.DataFrame({"customer_id": customers, "kind": kind})
    if priority is not None:
        rows["priority"] = priority
    kw.setdefault("now", T0)
    return list(open_cases(store, rows, actor=kw.pop("actor", "tester"), **kw))


def held(store: Store) -> dict[str, int]:
    """Each user's counter, after checking it equals the cases they really hold."""
    rows = store.execute(
        "SELECT u.user_id, coalesce(u.open_claims, 0), "
        "(SELECT count(*) FROM cases k WHERE k.owner_id = u.user_id AND k.status IN ('claimed', 'contacted')) "
        "FROM users u ORDER BY u.user_id"
    ).fetchall()
    for user, counter, real in rows:
        assert counter == real, f"{user}: open_claims {counter} but holds {real} cases"
    return {u: c for u, c, _ in rows}


def state(store: Store) -> tuple[list, list, list]:
    """Everything the workflow writes, sorted: cases, users, case_log."""

    def rows(sql: str) -> list:
        return sorted(store.execute(sql).fetchall(), key=lambda r: tuple(str(v) for v in r))

    return rows("SELECT * FROM cases"), rows("SELECT * FROM users"), rows("SELECT * FROM case_log")


@pytest.fixture
def wf(seeded: Store) -> Store:
    """The seeded tree plus P2/C4; customers r001…r040 in C1, s001…s010 in C2, t001…t005 in C4;
    account managers am_a, am_b (C1, limit 3), am_p (P1, limit 2); bm (branch manager of P1),
    bm2 (branch manager of P2), admin (HQ), analyst (HQ)."""
    add_branches(seeded)
    add_customers(seeded, "C1", 40, "r")
    add_customers(seeded, "C2", 10, "s")
    add_customers(seeded, "C4", 5, "t")
    add_user(seeded, "am_a", max_claims=3)
    add_user(seeded, "am_b", max_claims=3)
    add_user(seeded, "am_p", branch="P1", max_claims=2)
    add_user(seeded, "bm", "branch_manager", "P1", max_claims=None)
    add_user(seeded, "bm2", "branch_manager", "P2", max_claims=None)
    add_user(seeded, "admin", "admin", "HQ", max_claims=None)
    add_user(seeded, "analyst", "analyst", "HQ", max_claims=None)
    return seeded


# -- opening --------------------------------------------------------------------------------------


def test_open_cases_opens_in_the_pool_and_logs(wf: Store) -> None:
    rows = pd.DataFrame(
        {
            "customer_id": ["r001", "s001"],
            "kind": ["retain", "winback"],
            "priority": [0.9, 0.4],
            "action": ["call", "offer"],
            "expected_gain": [120.0, 30.0],
            "note": ["model run 7", None],
        }
    )
    ids = open_cases(wf, rows, actor="lead", now=T0, deadline_days=5)
    assert len(ids) == 2 and ids.skipped == []
    for case_id in ids:
        assert re.fullmatch(r"K-20240701-[0-9A-F]{8}", case_id)
    first, second = (get_case(wf, i) for i in ids)
    assert (first["customer_id"], first["kind"], first["branch_id"]) == ("r001", "retain", "C1")
    assert (second["customer_id"], second["kind"], second["branch_id"]) == ("s001", "winback", "C2")
    assert first["status"] == "open" and first["owner_id"] is None
    assert first["deadline"] == T0 + dt.timedelta(days=5)
    assert (first["priority"], first["action"], first["expected_gain"]) == (0.9, "call", 120.0)
    log = case_history(wf, ids[0])
    assert log[["actor", "event", "from_status", "to_status", "note"]].to_dict("records") == [
        {"actor": "lead", "event": "open", "from_status": None, "to_status": "open", "note": "model run 7"}
    ]


def test_one_active_case_per_customer_and_kind(wf: Store) -> None:
    (first,) = open_for(wf, ["r001"])
    again = open_cases(wf, pd.DataFrame({"customer_id": ["r001", "r002", "r002"], "kind": "retain"}), actor="t", now=T0)
    assert len(again) == 1  # r002 once
    assert {(s["customer_id"], s["reason"], s["existing_case_id"]) for s in again.skipped} == {
        ("r001", "active case", first),
        ("r002", "duplicate row", None),
    }
    assert count_cases(wf, customer_id="r001") == 1
    # another kind is another case; a claimed case is still active
    assert len(open_for(wf, ["r001"], kind="winback")) == 1
    claim_case(wf, first, "am_a", now=T0)
    assert open_for(wf, ["r001"]) == []
    # once closed, the customer may get a new retain case
    update_case(wf, first, "am_a", status="contacted", now=T0 + HOUR)
    update_case(wf, first, "am_a", status="lost", now=T0 + 2 * HOUR)
    assert len(open_for(wf, ["r001"])) == 1
    assert count_cases(wf, customer_id="r001", kind="retain") == 2


def test_open_refuses_unknown_customers_and_bad_kinds_without_changing_anything(wf: Store) -> None:
    before = state(wf)
    with pytest.raises(ValidationError, match=r'row 2, column customer_id: expected a customer .*got "nobody"'):
        open_cases(wf, pd.DataFrame({"customer_id": ["r001", "nobody"], "kind": "retain"}), actor="t", now=T0)
    with pytest.raises(ValidationError, match=r'column kind: expected retain or winback, got "rescue"'):
        open_cases(wf, pd.DataFrame({"customer_id": ["r001"], "kind": ["rescue"]}), actor="t", now=T0)
    with pytest.raises(ConfigError, match="missing kind"):
        open_cases(wf, pd.DataFrame({"customer_id": ["r001"]}), actor="t", now=T0)
    assert state(wf) == before


def test_open_inside_the_callers_transaction_commits_or_rolls_back_with_it(wf: Store) -> None:
    with pytest.raises(RuntimeError), wf.transaction():
        open_for(wf, ["r001", "r002"], in_transaction=True)
        raise RuntimeError("the campaign failed after its cases were opened")
    assert count_cases(wf) == 0
    assert wf.execute("SELECT count(*) FROM case_log").fetchone()[0] == 0
    with wf.transaction():
        ids = open_for(wf, ["r001", "r002"], in_transaction=True)
    assert count_cases(wf) == 2 and len(ids) == 2


def test_open_for_a_campaign_links_its_members(wf: Store) -> None:
    wf.execute(
        "INSERT INTO campaign_members (campaign_id, customer_id, branch_id, arm) VALUES "
        "('CMP1', 'r001', 'C1', 'treated'), ('CMP1', 'r002', 'C1', 'control'), ('CMP2', 'r001', 'C1', 'treated')"
    )
    ids = open_for(wf, ["r001"], campaign_id="CMP1")
    links = wf.execute("SELECT campaign_id, customer_id, case_id FROM campaign_members ORDER BY 1, 2").fetchall()
    assert links == [("CMP1", "r001", ids[0]), ("CMP1", "r002", None), ("CMP2", "r001", None)]
    assert list_cases(wf, campaign_id="CMP1")["case_id"].tolist() == ids


# -- the state machine ------------------------------------------------------------------------------


def test_a_retain_case_from_claim_to_retained_logs_every_step(wf: Store) -> None:
    (case_id,) = open_for(wf, ["r001"])
    claimed = claim_case(wf, case_id, "am_a", now=T0 + HOUR, claim_hours=48)
    assert (claimed["status"], claimed["owner_id"], claimed["deadline"]) == ("claimed", "am_a", T0 + 49 * HOUR)
    assert held(wf)["am_a"] == 1
    contacted = update_case(wf, case_id, "am_a", status="contacted", note="price too high", now=T0 + 5 * HOUR)
    assert contacted["deadline"] == T0 + 5 * HOUR + 72 * HOUR  # a contact extends the deadline
    update_case(wf, case_id, "am_a", note="left a voicemail", now=T0 + 6 * HOUR)
    update_case(wf, case_id, "am_a", status="contacted", note="second call", now=T0 + 7 * HOUR)
    done = update_case(wf, case_id, "am_a", status="retained", note="discount accepted", now=T0 + 8 * HOUR)
    assert (done["status"], done["closed_at"], done["owner_id"]) == ("retained", T0 + 8 * HOUR, "am_a")
    assert done["version"] == 5
    assert held(wf)["am_a"] == 0  # the claim is freed when the case closes
    log = case_history(wf, case_id)
    assert [
        tuple(r) for r in log[["ts", "actor", "event", "from_status", "to_status", "note"]].itertuples(index=False)
    ] == [
        (T0, "tester", "open", None, "open", None),
        (T0 + HOUR, "am_a", "claim", "open", "claimed", None),
        (T0 + 5 * HOUR, "am_a", "contact", "claimed", "contacted", "price too high"),
        (T0 + 6 * HOUR, "am_a", "note", "contacted", "contacted", "left a voicemail"),
        (T0 + 7 * HOUR, "am_a", "contact", "contacted", "contacted", "second call"),
        (T0 + 8 * HOUR, "am_a", "close", "contacted", "retained", "discount accepted"),
    ]


def test_a_winback_case_ends_won_back(wf: Store) -> None:
    (case_id,) = open_for(wf, ["s001"], kind="winback")
    claim_case(wf, case_id, "am_p", now=T0)  # C2 lies in am_p's P1 subtree
    update_case(wf, case_id, "am_p", status="contacted", now=T0 + HOUR)
    assert update_case(wf, case_id, "am_p", status="won_back", now=T0 + 2 * HOUR)["status"] == "won_back"


def _drive(store: Store, case_id: str, kind: str, target: str) -> None:
    """Bring a fresh open case to ``target`` through allowed steps."""
    if target == "open":
        return
    if target == "abandoned":
        update_case(store, case_id, "bm", status="abandoned", now=T0)
        return
    claim_case(store, case_id, "am_x", now=T0)
    if target == "claimed":
        return
    update_case(store, case_id, "am_x", status="contacted", now=T0)
    if target != "contacted":
        update_case(store, case_id, "am_x", status=target, now=T0)


def test_every_transition_is_allowed_or_refused_as_the_table_says(wf: Store) -> None:
    add_user(wf, "am_x", max_claims=1000)
    customers = add_customers(wf, "C1", 100, "m")
    expected_allowed = {
        "open": {"abandoned"},
        "claimed": {"contacted", "open", "abandoned"},
        "contacted": {"contacted", "open", "retained", "lost", "abandoned"},
    }
    tried = refused = 0
    i = 0
    for kind in KINDS:
        outcomes = {"retain": {"retained", "lost", "abandoned"}, "winback": {"won_back", "lost", "abandoned"}}[kind]
        starts = ["open", "claimed", "contacted", *sorted(outcomes)]
        for start in starts:
            want = set(expected_allowed.get(start, set()))
            if start == "contacted":
                want = {"contacted", "open", *outcomes}
            assert set(allowed_next(kind, start)) == want
            for target in STATUSES:
                (case_id,) = open_for(wf, [customers[i]], kind=kind)
                i += 1
                _drive(wf, case_id, kind, start)
                before = get_case(wf, case_id)
                tried += 1
                if target in want:
                    after = update_case(wf, case_id, "admin", status=target, now=T0 + HOUR)
                    assert after["status"] == target
                    assert after["version"] == before["version"] + 1
                    last = case_history(wf, case_id).iloc[-1]
                    assert (last["from_status"], last["to_status"], last["actor"]) == (start, target, "admin")
                else:
                    refused += 1
                    with pytest.raises(InvalidTransitionError) as info:
                        update_case(wf, case_id, "admin", status=target, now=T0 + HOUR)
                    assert f'cannot become "{target}"' in str(info.value)
                    assert "Allowed next:" in str(info.value)
                    assert get_case(wf, case_id) == before
    assert tried == 2 * 6 * 7 and refused > 40
    held(wf)


def test_refusals_name_the_current_status_and_the_allowed_next_ones(wf: Store) -> None:
    (case_id,) = open_for(wf, ["r001"])
    with pytest.raises(InvalidTransitionError, match=r"is open; .*Allowed next: claimed \(by claiming or assignment\)"):
        update_case(wf, case_id, "admin", status="contacted", now=T0)
    claim_case(wf, case_id, "am_a", now=T0)
    message = 'is claimed; it cannot become "retained". Allowed next: contacted, open (release to the pool), abandoned.'
    with pytest.raises(InvalidTransitionError) as info:
        update_case(wf, case_id, "am_a", status="retained", now=T0)
    assert message in str(info.value)
    assert info.value.http_status == 409
    update_case(wf, case_id, "am_a", status="contacted", now=T0)
    with pytest.raises(InvalidTransitionError, match=r'\(retain\) is contacted; it cannot become "won_back"'):
        update_case(wf, case_id, "am_a", status="won_back", now=T0)
    update_case(wf, case_id, "am_a", status="lost", now=T0)
    with pytest.raises(InvalidTransitionError, match=r"is closed; .*Allowed next: none \(the case is closed"):
        update_case(wf, case_id, "am_a", status="open", now=T0)
    # a note on a closed case is still history
    assert update_case(wf, case_id, "am_a", note="customer called back later", now=T0)["status"] == "lost"
    with pytest.raises(ConfigError, match="give a new status, a note, or both"):
        update_case(wf, case_id, "am_a", now=T0)
    with pytest.raises(ConfigError, match="expected one of open, claimed"):
        update_case(wf, case_id, "am_a", status="saved", now=T0)


def test_release_returns_a_case_to_the_pool(wf: Store) -> None:
    (case_id,) = open_for(wf, ["r001"])
    claim_case(wf, case_id, "am_a", now=T0)
    update_case(wf, case_id, "am_a", status="contacted", now=T0)
    released = update_case(wf, case_id, "bm", status="open", note="am_a on leave", now=T0 + HOUR)
    assert (released["status"], released["owner_id"], released["deadline"]) == ("open", None, None)
    assert held(wf)["am_a"] == 0
    assert case_history(wf, case_id)["event"].tolist()[-1] == "release"
    assert claim_case(wf, case_id, "am_b", now=T0 + 2 * HOUR)["owner_id"] == "am_b"


# -- who may do what ------------------------------------------------------------------------------------


def test_permissions(wf: Store) -> None:
    (c1_case,) = open_for(wf, ["r001"])
    (c4_case,) = open_for(wf, ["t001"])
    add_user(wf, "am_c2", branch="C2")
    add_user(wf, "gone", active=False)
    with pytest.raises(CaseForbiddenError, match='outside the subtree of "am_c2"\'s branch "C2"') as info:
        claim_case(wf, c1_case, "am_c2", now=T0)
    assert info.value.http_status == 403
    with pytest.raises(CaseForbiddenError, match="only account managers claim"):
        claim_case(wf, c1_case, "bm", now=T0)
    with pytest.raises(CaseForbiddenError, match="disabled"):
        claim_case(wf, c1_case, "gone", now=T0)
    with pytest.raises(CaseUserNotFoundError, match='user "ghost" is not in users') as missing:
        claim_case(wf, c1_case, "ghost", now=T0)
    assert missing.value.http_status == 404
    with pytest.raises(CaseNotFoundError) as unknown:
        claim_case(wf, "K-nope", "am_a", now=T0)
    assert unknown.value.http_status == 404
    claim_case(wf, c1_case, "am_a", now=T0)
    with pytest.raises(CaseForbiddenError, match='owned by "am_a"'):
        update_case(wf, c1_case, "am_b", status="contacted", now=T0)
    with pytest.raises(CaseForbiddenError, match='outside the subtree of their branch "P2"'):
        update_case(wf, c1_case, "bm2", note="not mine", now=T0)
    with pytest.raises(CaseForbiddenError):
        update_case(wf, c1_case, "analyst", note="read only", now=T0)
    with pytest.raises(CaseForbiddenError, match="claim it first"):
        update_case(wf, c4_case, "am_a", status="abandoned", now=T0)
    assert update_case(wf, c1_case, "bm", note="checked", now=T0)["status"] == "claimed"  # manager of P1
    assert update_case(wf, c4_case, "admin", status="abandoned", now=T0)["status"] == "abandoned"


def test_claiming_a_claimed_case_names_the_holder(wf: Store) -> None:
    (case_id,) = open_for(wf, ["r001"])
    claim_case(wf, case_id, "am_a", now=T0)
    with pytest.raises(CaseConflictError, match='already claimed by "am_a"') as info:
        claim_case(wf, case_id, "am_b", now=T0)
    assert info.value.http_status == 409
    update_case(wf, case_id, "am_a", status="abandoned", now=T0)
    with pytest.raises(InvalidTransitionError, match="is abandoned; it cannot be claimed"):
        claim_case(wf, case_id, "am_b", now=T0)


def test_claim_limit(wf: Store) -> None:
    ids = open_for(wf, [f"r{i:03d}" for i in range(1, 6)])
    for case_id in ids[:3]:
        claim_case(wf, case_id, "am_a", now=T0)
    before = state(wf)
    with pytest.raises(ClaimLimitError, match=r'"am_a" already holds 3 cases, their claim limit \(3\)'):
        claim_case(wf, ids[3], "am_a", now=T0)
    assert state(wf) == before
    update_case(wf, ids[0], "am_a", status="abandoned", now=T0)  # closing frees a place
    claim_case(wf, ids[3], "am_a", now=T0)
    assert held(wf)["am_a"] == 3
    # an empty max_claims falls back to the default limit
    add_user(wf, "am_free", max_claims=None)
    claim_case(wf, ids[4], "am_free", now=T0, default_limit=1)
    (extra,) = open_for(wf, ["r010"])
    with pytest.raises(ClaimLimitError, match=r"claim limit \(1\)"):
        claim_case(wf, extra, "am_free", now=T0, default_limit=1)


def test_recount_repairs_counters(wf: Store) -> None:
    (case_id,) = open_for(wf, ["r001"])
    claim_case(wf, case_id, "am_a", now=T0)
    wf.execute("UPDATE users SET open_claims = 7 WHERE user_id = 'am_b'")
    wf.execute("UPDATE users SET open_claims = NULL WHERE user_id = 'am_a'")
    assert recount_claims(wf) == 2
    assert held(wf)["am_a"] == 1 and held(wf)["am_b"] == 0


# -- timeout recycling --------------------------------------------------------------------------------------


def test_timeout_recycling_with_a_controllable_clock(wf: Store) -> None:
    idle, noted, contacted = open_for(wf, ["r001", "r002", "r003"])
    for case_id in (idle, noted, contacted):
        claim_case(wf, case_id, "am_a", now=T0, claim_hours=72)
    update_case(wf, noted, "am_a", note="no answer, try tomorrow", now=T0 + 48 * HOUR, claim_hours=72)
    update_case(wf, contacted, "am_a", status="contacted", now=T0 + 10 * HOUR, claim_hours=72)
    assert recycle_overdue(wf, now=T0 + 71 * HOUR) == []  # before the deadline nothing moves
    assert recycle_overdue(wf, now=T0 + 72 * HOUR) == []  # the deadline itself is still in time
    assert held(wf)["am_a"] == 3
    assert recycle_overdue(wf, now=T0 + 73 * HOUR, actor="nightly") == [idle]
    case = get_case(wf, idle)
    assert (case["status"], case["owner_id"], case["deadline"]) == ("open", None, None)
    assert held(wf)["am_a"] == 2
    last = case_history(wf, idle).iloc[-1]
    assert (last["event"], last["actor"], last["from_status"], last["to_status"]) == (
        "recycle",
        "nightly",
        "claimed",
        "open",
    )
    assert "am_a" in last["note"] and "2024-07-04 09:00:00" in last["note"]
    # the note moved its deadline to T0 + 48 h + 72 h; a contacted case is not recycled by time
    assert recycle_overdue(wf, now=T0 + 119 * HOUR) == []
    assert recycle_overdue(wf, now=T0 + 121 * HOUR) == [noted]
    assert recycle_overdue(wf, now=T0 + 1000 * HOUR) == []
    assert get_case(wf, contacted)["status"] == "contacted"
    # a recycled case is back in the pool for anyone in scope
    assert claim_case(wf, idle, "am_b", now=T0 + 200 * HOUR)["owner_id"] == "am_b"
    assert held(wf) == {**held(wf), "am_a": 1, "am_b": 1}


def test_recycling_is_limited_to_a_branch_subtree(wf: Store) -> None:
    (c1,) = open_for(wf, ["r001"])
    (c2,) = open_for(wf, ["s001"])
    claim_case(wf, c1, "am_a", now=T0)
    claim_case(wf, c2, "am_p", now=T0)
    assert recycle_overdue(wf, now=T0 + 100 * HOUR, branch_ids=["C2"]) == [c2]
    assert recycle_overdue(wf, now=T0 + 100 * HOUR) == [c1]


# -- assignment ------------------------------------------------------------------------------------------


def test_round_robin_in_priority_order_and_stable(wf: Store) -> None:
    ids = open_for(wf, [f"r{i:03d}" for i in range(1, 6)], priority=[0.5, 0.9, 0.1, 0.7, 0.3])
    result = assign_cases(wf, actor="bm", strategy="round_robin", now=T0)
    assert dict(result) == {"am_a": 3, "am_b": 2}
    owners = {c: get_case(wf, c)["owner_id"] for c in ids}
    # by priority: r002 (0.9) a, r004 (0.7) b, r001 (0.5) a, r005 (0.3) b, r003 (0.1) a
    assert [owners[ids[i]] for i in (1, 3, 0, 4, 2)] == ["am_a", "am_b", "am_a", "am_b", "am_a"]
    assert all(get_case(wf, c)["status"] == "claimed" for c in ids)
    assert get_case(wf, ids[0])["deadline"] == T0 + 72 * HOUR
    last = case_history(wf, ids[1]).iloc[-1]
    assert (last["event"], last["actor"], last["note"]) == ("assign", "bm", "assigned to am_a")
    held(wf)


def test_assignment_by_load_gives_the_least_loaded_first(wf: Store) -> None:
    mine = open_for(wf, ["r001", "r002"])
    for case_id in mine:
        claim_case(wf, case_id, "am_a", now=T0)
    ids = open_for(wf, [f"r{i:03d}" for i in range(3, 7)], priority=[4, 3, 2, 1])
    result = assign_cases(wf, actor="bm", strategy="load", case_ids=ids, now=T0)
    # am_a holds 2, am_b 0: b, b, then a tie at 2 (user_id order) a, then b
    assert [get_case(wf, c)["owner_id"] for c in ids] == ["am_b", "am_b", "am_a", "am_b"]
    assert dict(result) == {"am_a": 1, "am_b": 3}
    assert held(wf)["am_a"] == 3 and held(wf)["am_b"] == 3


def test_assignment_respects_limits_and_falls_back_to_ancestors(wf: Store) -> None:
    c1 = open_for(wf, [f"r{i:03d}" for i in range(1, 9)])  # 8 cases, am_a + am_b can take 6
    c2 = open_for(wf, ["s001", "s002", "s003"])  # no manager in C2: P1's am_p (limit 2)
    c4 = open_for(wf, ["t001"])  # nobody in C4, P2 or HQ
    add_user(wf, "am_off", max_claims=50, active=False)  # inactive: never a candidate
    result = assign_cases(wf, actor="bm", now=T0)
    assert dict(result) == {"am_a": 3, "am_b": 3, "am_p": 2}
    assert len(result.at_limit) == 3 and set(result.at_limit) <= set(c1 + c2)
    assert result.no_manager == c4
    assert result.unassigned == 4
    assert {get_case(wf, c)["owner_id"] for c in c2} - {None} == {"am_p"}
    assert get_case(wf, c4[0])["status"] == "open"
    counts = held(wf)
    assert counts["am_a"] == 3 and counts["am_b"] == 3 and counts["am_p"] == 2 and counts["am_off"] == 0
    # a manager at head office catches what nobody below can take
    add_user(wf, "am_hq", branch="HQ", max_claims=10)
    again = assign_cases(wf, actor="admin", now=T0)
    assert again.get("am_hq") == 1 and again.no_manager == []
    assert get_case(wf, c4[0])["owner_id"] == "am_hq"
    assert len(again.at_limit) == 3  # C1 and C2 cases still go to their nearest managers, who are full


def test_assignment_by_campaign_and_scope(wf: Store) -> None:
    in_campaign = open_for(wf, ["r001", "r002"], campaign_id="CMP1")
    other = open_for(wf, ["r003"])
    c2 = open_for(wf, ["s001"], campaign_id="CMP1")
    result = assign_cases(wf, actor="bm", campaign_id="CMP1", branch_ids=["C1"], now=T0)
    assert result.assigned == 2
    assert [get_case(wf, c)["status"] for c in in_campaign + other + c2] == ["claimed", "claimed", "open", "open"]
    skipped = assign_cases(wf, actor="bm", case_ids=[in_campaign[0], "K-missing"], now=T0)
    assert skipped.assigned == 0 and skipped.skipped == sorted(["K-missing", in_campaign[0]])
    with pytest.raises(ConfigError, match="expected one of round_robin, load"):
        assign_cases(wf, actor="bm", strategy="random", now=T0)


def test_a_failure_in_the_middle_of_a_batch_assigns_nothing(wf: Store) -> None:
    open_for(wf, [f"r{i:03d}" for i in range(1, 6)], campaign_id="CMP1")
    plan = plan_assignment(wf, campaign_id="CMP1")
    assert plan["owner_id"].notna().all()
    before = state(wf)
    # an owner who does not exist, planned for the third case: the cases are updated first, then
    # the owners' counters, where this one fails — the whole batch must roll back
    bad = plan.copy()
    bad.loc[2, "owner_id"] = "ghost"
    with pytest.raises(CaseConflictError, match="owner\\(s\\) ghost cannot take their planned cases"):
        apply_assignment(wf, bad, actor="bm", now=T0)
    assert state(wf) == before
    # an owner whose branch does not hold the case
    add_user(wf, "am_c4", branch="C4")
    bad.loc[2, "owner_id"] = "am_c4"
    with pytest.raises(CaseForbiddenError, match='cannot go to "am_c4"'):
        apply_assignment(wf, bad, actor="bm", now=T0)
    assert state(wf)[0] == before[0] and state(wf)[2] == before[2]
    # a case claimed by someone else (another session) after the plan was made
    other = Store(wf.url, wf.raw.cursor())
    taken = plan.loc[3, "case_id"]
    claim_case(other, taken, "am_p", now=T0)
    after_claim = state(wf)
    with pytest.raises(CaseConflictError, match=f"changed since the plan.*{taken}"):
        apply_assignment(wf, plan, actor="bm", now=T0)
    assert state(wf) == after_claim
    assert list_cases(wf, status="claimed")["case_id"].tolist() == [taken]
    # a fresh plan goes through
    result = assign_cases(wf, actor="bm", campaign_id="CMP1", now=T0)
    assert result.assigned == 4
    held(wf)
    other.raw.close()


def test_assignment_inside_the_callers_transaction_rolls_back_with_it(wf: Store) -> None:
    open_for(wf, ["r001", "r002"])
    before = state(wf)
    with pytest.raises(RuntimeError), wf.transaction():
        assert assign_cases(wf, actor="bm", now=T0, in_transaction=True).assigned == 2
        raise RuntimeError("later step failed")
    assert state(wf) == before


# -- listing ------------------------------------------------------------------------------------------------


def test_list_filters_pages_and_scopes(wf: Store) -> None:
    c1 = open_for(wf, ["r001", "r002", "r003"], priority=[1, 3, 2])
    c2 = open_for(wf, ["s001"], kind="winback")
    open_for(wf, ["t001"])
    claim_case(wf, c1[0], "am_a", now=T0)
    assert list_cases(wf)["case_id"].tolist()[:3] == [c1[1], c1[2], c1[0]]  # priority first
    assert set(list_cases(wf, branch_ids=["P1"])["case_id"]) == set(c1 + c2)  # subtree of P1
    assert list_cases(wf, branch_ids=["C2"])["case_id"].tolist() == c2
    assert sorted(list_cases(wf, branch_ids=["P2", "C2"])["branch_id"]) == ["C2", "C4"]
    assert list_cases(wf, owner_id="am_a")["case_id"].tolist() == [c1[0]]
    assert count_cases(wf, status=["open", "claimed"]) == 5
    assert count_cases(wf, status="claimed") == 1
    assert list_cases(wf, kind="winback")["case_id"].tolist() == c2
    page = list_cases(wf, limit=2, offset=2)
    assert len(page) == 2 and page["case_id"].tolist() == list_cases(wf)["case_id"].tolist()[2:4]
    frame = list_cases(wf, owner_id="am_a")
    assert frame.loc[0, "owner_name"] == "AM_A"
    # one case, scoped: outside the scope it is "not found", like an unknown id
    assert get_case(wf, c2[0], branch_ids=["P1"])["case_id"] == c2[0]
    with pytest.raises(CaseNotFoundError):
        get_case(wf, c2[0], branch_ids=["C1"])
    with pytest.raises(CaseNotFoundError):
        case_history(wf, c2[0], branch_ids=["P2"])
    with pytest.raises(ConfigError, match="expected one of open"):
        list_cases(wf, status="pending")


# -- outcomes ------------------------------------------------------------------------------------------------


def test_outcomes_join_the_score_at_creation(wf: Store) -> None:
    customers = [f"r{i:03d}" for i in range(1, 8)]
    scores = [
        (c, dt.date(2024, 6, 30), p, "high" if p >= 0.6 else "medium")
        for c, p in zip(customers, [0.9, 0.8, 0.7, 0.6, 0.5, 0.95, 0.3], strict=True)
    ]
    for c, as_of, p, band in scores:
        wf.execute(
            "INSERT INTO scores (customer_id, as_of, model_id, probability, risk_band, scored_at) "
            "VALUES (?, ?, 'm1', ?, ?, ?)",
            [c, as_of, p, band, dt.datetime(2024, 6, 30, 23)],
        )
        # a later score, made after the cases were opened, must not be used
        wf.execute(
            "INSERT INTO scores (customer_id, as_of, model_id, probability, risk_band, scored_at) "
            "VALUES (?, DATE '2024-08-01', 'm2', 0.01, 'low', TIMESTAMP '2024-08-01 00:00:00')",
            [c],
        )
    add_user(wf, "am_x", max_claims=100)
    ids = open_for(wf, customers)
    ends = ["retained", "retained", "lost", "abandoned", None, "abandoned", None]
    for case_id, end in zip(ids, ends, strict=True):
        claim_case(wf, case_id, "am_x", now=T0)
        if end is None:
            continue
        if case_id != ids[5]:  # the sixth is abandoned without a contact: not a contacted case
            update_case(wf, case_id, "am_x", status="contacted", now=T0 + HOUR)
        update_case(wf, case_id, "am_x", status=end, now=T0 + 2 * HOUR)
    (w1, w2, w3) = open_for(wf, ["s001", "s002", "s003"], kind="winback")
    for case_id, end, closed in ((w1, "won_back", 2), (w2, "lost", 2), (w3, "won_back", 50)):
        claim_case(wf, case_id, "am_p", now=T0)
        update_case(wf, case_id, "am_p", status="contacted", now=T0 + HOUR)
        update_case(wf, case_id, "am_p", status=end, now=T0 + closed * HOUR)  # w3 closes on 3 July
    out = case_outcomes(wf)
    r = out["retain"]
    assert (r["contacted_closed"], r["retained"], r["lost"], r["abandoned"]) == (4, 2, 1, 1)
    assert r["precision"] == pytest.approx(3 / 4)
    assert r["churn_after_contact"] == pytest.approx(1 / 3)
    assert r["threshold"] == pytest.approx(0.6)
    assert r["mean_probability"] == pytest.approx((0.9 + 0.8 + 0.7 + 0.6) / 4)
    assert r["by_band"]["high"]["contacted_closed"] == 4
    assert out["by_status"]["retain"] == {"claimed": 2, "retained": 2, "lost": 1, "abandoned": 2}
    assert out["winback"] == {
        "closed": 3,
        "won_back": 2,
        "lost": 1,
        "abandoned": 0,
        "won_back_rate": pytest.approx(2 / 3),
    }
    early = case_outcomes(wf, as_of=dt.date(2024, 7, 2))
    assert early["winback"]["closed"] == 2 and early["winback"]["won_back_rate"] == pytest.approx(0.5)


def test_outcomes_of_an_empty_store(wf: Store) -> None:
    out = case_outcomes(wf)
    assert out["by_status"] == {}
    assert out["retain"]["precision"] is None and out["winback"]["won_back_rate"] is None


# -- the CLI, end to end --------------------------------------------------------------------------------------

CLI = [sys.executable, "-m", "churnguard"]


def cg(db: Path, command: str) -> subprocess.CompletedProcess:
    """Run ``churnguard --db DB <command>`` (split like a shell line)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNGUARD_")}
    env["COLUMNS"] = "250"
    return subprocess.run(
        [*CLI, "--db", str(db), *shlex.split(command)], capture_output=True, text=True, env=env, timeout=120
    )


def ok_json(r: subprocess.CompletedProcess) -> Any:
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def cli_db(tmp_path: Path, store_templates: dict[str, Path]) -> Path:
    path = tmp_path / "cli.duckdb"
    path.write_bytes(store_templates["seeded"].read_bytes())
    with churnguard.connect(path) as s:
        add_branches(s)
        add_user(s, "wang", max_claims=2)
        add_user(s, "li", max_claims=2)
        add_user(s, "zhao", "branch_manager", "P1", max_claims=None)
    return path


def test_cli_end_to_end(cli_db: Path) -> None:
    opened = ok_json(
        cg(
            cli_db,
            "cases open --customer A --customer B --customer C --kind retain --note 'by hand' "
            "--now 2024-07-01T09:00 -f json",
        )
    )
    assert len(opened["opened"]) == 3 and opened["skipped_count"] == 0

    listed = ok_json(cg(cli_db, "cases list --status open -f json"))
    assert listed["total"] == 3 and {c["customer_id"] for c in listed["cases"]} == {"A", "B", "C"}
    a, b, _ = (next(c["case_id"] for c in listed["cases"] if c["customer_id"] == x) for x in "ABC")

    plan = ok_json(cg(cli_db, f"cases assign --dry-run --case {a} -f json"))
    assert plan["dry_run"] and plan["assigned"] == 1

    assigned = ok_json(cg(cli_db, f"cases assign --case {a} --strategy load --now 2024-07-01T10:00 -f json"))
    assert assigned["by_owner"] == {"li": 1}  # the dry run changed nothing: li, then wang, both at 0

    claimed = ok_json(cg(cli_db, f"cases claim {b} --user wang --now 2024-07-01T11:00 -f json"))
    assert (claimed["status"], claimed["owner_id"], claimed["deadline"]) == ("claimed", "wang", "2024-07-04T11:00:00")

    r = cg(cli_db, f"cases claim {b} --user li -f json")
    assert r.returncode == 5 and json.loads(r.stderr)["error"]["type"] == "CaseConflictError"
    r = cg(cli_db, f"cases update {b} --user wang --status retained")
    assert r.returncode == 5 and "Allowed next: contacted" in r.stderr
    r = cg(cli_db, f"cases update {b} --user li --note hi")
    assert r.returncode == 7 and "may not change" in r.stderr
    r = cg(cli_db, "cases show K-nope -f json")
    assert r.returncode == 6 and json.loads(r.stderr)["error"]["type"] == "CaseNotFoundError"

    ok_json(cg(cli_db, f"cases update {b} --user wang --status contacted --note price --now 2024-07-01T12:00 -f json"))
    done = ok_json(cg(cli_db, f"cases update {b} --user wang --status retained --note discount -f json"))
    assert done["status"] == "retained"

    shown = ok_json(cg(cli_db, f"cases show {b} -f json"))
    assert [h["event"] for h in shown["history"]] == ["open", "claim", "contact", "close"]
    assert shown["history"][0]["note"] == "by hand" and shown["case"]["owner_name"] == "WANG"

    # A was assigned to li at 10:00 on 1 July (deadline 10:00 on 4 July) and has had no follow-up
    assert ok_json(cg(cli_db, "cases recycle --now 2024-07-04T09:00 -f json"))["count"] == 0
    assert ok_json(cg(cli_db, "cases recycle --now 2024-07-04T11:00 -f json"))["recycled"] == [a]

    outcomes = ok_json(cg(cli_db, "cases outcomes -f json"))
    assert outcomes["retain"]["retained"] == 1 and outcomes["by_status"]["retain"]["open"] == 2

    table = cg(cli_db, "cases list --branch P1")
    assert table.returncode == 0 and "Retention and win-back cases (3 / 3)" in table.stdout
    assert "retained" in table.stdout and "open" in table.stdout
    r = cg(cli_db, "cases list --branch NOWHERE")
    assert r.returncode == 2 and "NOWHERE" in r.stderr


def test_cli_labels_in_chinese(cli_db: Path) -> None:
    with churnguard.connect(cli_db) as s:
        opened = open_for(s, ["A", "C"])
        claim_case(s, opened[0], "wang", now=T0)
        update_case(s, opened[0], "wang", status="contacted", now=T0 + HOUR)
    r = cg(cli_db, "--lang zh cases list")
    assert r.returncode == 0, r.stderr
    for text in ("挽留/挽回线索", "线索编号", "客户经理", "已联系", "待领取", "挽留"):
        assert text in r.stdout, text
    r = cg(cli_db, f"--lang zh cases show {opened[0]}")
    for text in ("跟进记录", "领取", "待领取 → 已领取", "已领取 → 已联系", "操作人", "状态"):
        assert text in r.stdout, text
    r = cg(cli_db, "--lang zh cases outcomes")
    assert "挽回成功率" in r.stdout and "线索结果" in r.stdout
