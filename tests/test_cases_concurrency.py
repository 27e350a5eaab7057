"""The case workflow under real concurrency: threads, each with its own connection (cursor) to one
real DuckDB file, released together by a barrier, repeated over several rounds.

What must hold whatever the interleaving: of simultaneous claims of one case exactly one wins;
simultaneous claims by one person never take them past their claim limit; a claim racing an
assignment never gives a case two owners; racing openers open one case per customer and kind;
a contact racing the recycler either keeps the case or loses it, never both.  Every round also
checks that each user's counter equals the cases they hold.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from test_cases import T0, add_customers, add_user, held, open_for

from churnguard.errors import CaseConflictError, CaseForbiddenError
from churnguard.retention import assign_cases, claim_case, get_case, open_cases, recycle_overdue, update_case
from churnguard.retention.case_db import conflict_retries
from churnguard.store import Store

THREADS = 8
ROUNDS = 6


def race(store: Store, calls: list[Callable[[Store], Any]], *, timeout: float = 60) -> list[tuple[str, Any]]:
    """Run each call in its own thread on its own connection (``store.raw.cursor()``), all released at once.

    Returns ``("ok", result)`` or ``(error class name, error)`` per call, in order.  The PostgreSQL
    tests use it too (a cursor there is a pooled connection of its own).
    """
    barrier = threading.Barrier(len(calls))
    out: list[tuple[str, Any]] = [("not run", None)] * len(calls)
    sessions = [Store(store.url, store.raw.cursor()) for _ in calls]

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = ("ok", calls[i](sessions[i]))
        except Exception as exc:
            out[i] = (type(exc).__name__, exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    for s in sessions:
        s.raw.close()
    assert all(kind != "not run" for kind, _ in out), "a racer did not finish"
    return out


@pytest.fixture
def pool(seeded: Store) -> Store:
    """200 customers in C1 (p001…) and eight account managers am0…am7 of C1 with room for 50 each."""
    add_customers(seeded, "C1", 200, "p")
    for i in range(THREADS):
        add_user(seeded, f"am{i}", max_claims=50)
    add_user(seeded, "bm", "branch_manager", "P1", max_claims=None)
    return seeded


def test_exactly_one_of_eight_simultaneous_claims_of_a_case_wins(pool: Store) -> None:
    cases = open_for(pool, [f"p{i:03d}" for i in range(1, ROUNDS + 1)])
    retries_before = conflict_retries()
    for case_id in cases:
        out = race(pool, [lambda s, u=f"am{i}", c=case_id: claim_case(s, c, u, now=T0) for i in range(THREADS)])
        wins = [r for kind, r in out if kind == "ok"]
        assert len(wins) == 1, Counter(kind for kind, _ in out)
        winner = wins[0]["owner_id"]
        losers = [r for kind, r in out if kind != "ok"]
        assert all(isinstance(e, CaseConflictError) for e in losers)
        assert all(f'already claimed by "{winner}"' in str(e) for e in losers)
        case = get_case(pool, case_id)
        assert (case["status"], case["owner_id"], case["version"]) == ("claimed", winner, 1)
        claims = pool.execute("SELECT actor FROM case_log WHERE case_id = ? AND event = 'claim'", [case_id]).fetchall()
        assert claims == [(winner,)]
    counts = held(pool)
    assert sum(counts.values()) == ROUNDS
    # the engine really saw simultaneous writers: some transactions lost a write-write race and were retried
    assert conflict_retries() > retries_before


def test_a_person_cannot_pass_their_claim_limit_with_simultaneous_claims(pool: Store) -> None:
    customers = iter(f"p{i:03d}" for i in range(1, 200))
    retries_before = conflict_retries()
    for round_ in range(ROUNDS):
        user = add_user(pool, f"limited{round_}", max_claims=2)
        cases = open_for(pool, [next(customers) for _ in range(THREADS)])
        out = race(pool, [lambda s, c=c, u=user: claim_case(s, c, u, now=T0) for c in cases])
        kinds = Counter(kind for kind, _ in out)
        assert kinds == {"ok": 2, "ClaimLimitError": 6}, kinds
        assert all("claim limit (2)" in str(e) for kind, e in out if kind != "ok")
        assert held(pool)[user] == 2
        untouched = [c for c, (kind, _) in zip(cases, out, strict=True) if kind != "ok"]
        assert all(get_case(pool, c)["status"] == "open" and get_case(pool, c)["version"] == 0 for c in untouched)
    assert conflict_retries() > retries_before  # the claims really overlapped on the person's counter row


def test_claims_racing_an_assignment_never_give_a_case_two_owners(pool: Store) -> None:
    customers = iter(f"p{i:03d}" for i in range(1, 200))
    for _ in range(ROUNDS):
        cases = open_for(pool, [next(customers) for _ in range(10)])
        calls: list[Callable[[Store], Any]] = [lambda s, ids=cases: assign_cases(s, actor="bm", case_ids=ids, now=T0)]
        calls += [lambda s, c=c, u=f"am{i}": claim_case(s, c, u, now=T0) for i, c in enumerate(cases[: THREADS - 1])]
        out = race(pool, calls)
        assert out[0][0] == "ok", out[0]
        assert all(kind in ("ok", "CaseConflictError") for kind, _ in out[1:]), out
        rows = pool.execute(
            "SELECT k.case_id, k.status, k.owner_id, "
            "(SELECT count(*) FROM case_log l WHERE l.case_id = k.case_id AND l.event IN ('claim', 'assign')) "
            f"FROM cases k WHERE k.case_id IN ({', '.join('?' for _ in cases)})",
            cases,
        ).fetchall()
        for case_id, status, owner, takes in rows:
            assert status == "claimed" and owner is not None, case_id  # room for all: every case is taken
            assert takes == 1, f"{case_id} was taken {takes} times"
        assigned = out[0][1].assigned
        claimed = sum(1 for kind, _ in out[1:] if kind == "ok")
        assert assigned + claimed == 10
        held(pool)


def test_simultaneous_openers_open_one_case_per_customer_and_kind(pool: Store) -> None:
    for round_ in range(3):
        customers = [f"p{round_ * 10 + i:03d}" for i in range(1, 6)]
        rows = pd.DataFrame({"customer_id": customers, "kind": "retain"})
        out = race(pool, [lambda s, r=rows: open_cases(s, r, actor="campaign", now=T0) for _ in range(THREADS)])
        assert all(kind == "ok" for kind, _ in out), out
        assert sum(len(r) for _, r in out) == 5
        assert sum(len(r.skipped) for _, r in out) == 5 * (THREADS - 1)
        per_customer = pool.execute(
            f"SELECT customer_id, count(*) FROM cases WHERE customer_id IN ({', '.join('?' for _ in customers)}) "
            "GROUP BY customer_id",
            customers,
        ).fetchall()
        assert sorted(per_customer) == [(c, 1) for c in customers]


def test_a_contact_racing_the_recycler_either_keeps_the_case_or_loses_it(pool: Store) -> None:
    customers = iter(f"p{i:03d}" for i in range(1, 200))
    late = T0 + dt.timedelta(hours=80)  # past the 72-hour deadline, not yet recycled
    seen = Counter()
    for _ in range(ROUNDS * 2):
        (case_id,) = open_for(pool, [next(customers)])
        claim_case(pool, case_id, "am0", now=T0)
        out = race(
            pool,
            [
                lambda s, c=case_id: update_case(s, c, "am0", status="contacted", note="reached them", now=late),
                lambda s: recycle_overdue(s, now=late),
            ],
        )
        (contact_kind, contact), (recycle_kind, recycled) = out
        assert recycle_kind == "ok"
        case = get_case(pool, case_id)
        if contact_kind == "ok":
            seen["contact won"] += 1
            assert recycled == [] and (case["status"], case["owner_id"]) == ("contacted", "am0")
        else:
            seen["recycler won"] += 1
            assert isinstance(contact, CaseForbiddenError), contact  # no longer theirs
            assert recycled == [case_id] and (case["status"], case["owner_id"]) == ("open", None)
        events = [r[0] for r in pool.execute("SELECT event FROM case_log WHERE case_id = ?", [case_id]).fetchall()]
        assert ("contact" in events) != ("recycle" in events), events
        held(pool)
    assert sum(seen.values()) == ROUNDS * 2
