"""The case workflow's guarantees on a real PostgreSQL server, with real concurrency.

The store: the web store copied into PostgreSQL, eight account managers of Guangzhou (GD-GZ) added with the
library, and a retention campaign for Guangdong created by :func:`create_campaign` on PostgreSQL (its treated
members' cases are the pool).  Each test works on its own copy of that database.

Library level: threads, each with its own pooled connection (``store.raw.cursor()``), released together by a
barrier, over several rounds — exactly one winner per case, a claim limit of 2 never passed, timeout recycling
by an injected clock (and racing a contact), assignment all or nothing, racing openers open one case per
customer.  Over HTTP: ``churnguard serve --workers 3`` in a child process, eight account managers logged in,
simultaneous claim requests for the same cases.
PostgreSQL runs at READ COMMITTED: a later writer waits for the row lock and re-checks the guarded ``UPDATE …
WHERE status = 'open'`` (docs/cases.md, "PostgreSQL").
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from conftest import ServedProcess, build_web_store, clone_database, pg_admin_url
from test_cases import held
from test_cases_concurrency import race as shared_race

import churnguard
from churnguard.auth.users import add_user
from churnguard.errors import CaseConflictError, CaseForbiddenError, ClaimLimitError
from churnguard.retention import (
    apply_assignment,
    assign_cases,
    claim_case,
    get_case,
    open_cases,
    plan_assignment,
    recycle_overdue,
    update_case,
)
from churnguard.retention.campaigns import create_campaign
from churnguard.store import Store

THREADS = 8
ROUNDS = 5
T0 = dt.datetime(2026, 1, 2, 9, 0)  # the campaign opens its cases on the 1st; claims start the next morning
CREATED = dt.datetime(2026, 1, 1, 8, 0)
MANAGERS = [f"am{i}" for i in range(THREADS)]
PASSWORD = "pg-race-pass-1"
CAMPAIGN = {"name": "PostgreSQL race", "branch": "GD", "control_share": 0.1, "seed": 1, "budget": 20000.0}


@pytest.fixture(scope="module")
def campaign_template(pg_server: Any, pg_web_template: str) -> dict[str, Any]:
    """The web store on PostgreSQL with the managers and the campaign; tests clone it."""
    url = clone_database(pg_admin_url(pg_server), pg_web_template)
    with churnguard.connect(url) as s:
        for user in MANAGERS:
            add_user(s, user, role="account_manager", branch_id="GD-GZ", password=PASSWORD, max_claims=50)
        result = create_campaign(s, **CAMPAIGN, now=CREATED)
    return {"url": url, "campaign": result}


@pytest.fixture
def pg(pg_server: Any, campaign_template: dict[str, Any]) -> Iterator[Store]:
    with churnguard.connect(clone_database(pg_admin_url(pg_server), campaign_template["url"])) as s:
        yield s


def pool_cases(store: Store, n: int, branch: str = "GD-GZ") -> list[str]:
    """``n`` open campaign cases of ``branch``, highest priority first."""
    rows = store.execute(
        "SELECT case_id FROM cases WHERE campaign_id IS NOT NULL AND status = 'open' AND branch_id = ? "
        "ORDER BY priority DESC, case_id LIMIT ?",
        [branch, n],
    ).fetchall()
    assert len(rows) == n, f"only {len(rows)} open cases in {branch}"
    return [r[0] for r in rows]


def race(store: Store, calls: list[Callable[[Store], Any]]) -> list[tuple[str, Any]]:
    """:func:`test_cases_concurrency.race` with a longer wait (a busy server, several processes)."""
    return shared_race(store, calls, timeout=120)


# -- the campaign itself ----------------------------------------------------------------------------


def test_the_campaign_on_postgresql_equals_the_one_on_duckdb(
    campaign_template: dict[str, Any], tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    duck_path = tmp_path / "web.duckdb"
    shutil.copyfile(build_web_store(tmp_path_factory), duck_path)
    with churnguard.connect(duck_path) as duck:
        want = create_campaign(duck, **CAMPAIGN, now=CREATED)
        want_members = duck.execute(
            "SELECT customer_id, arm, action, case_id IS NULL, why FROM campaign_members ORDER BY customer_id"
        ).fetchall()
    got = campaign_template["campaign"]
    for key in ("population", "treatment", "control", "excluded", "exclusions", "cases_opened", "cases_skipped"):
        assert got[key] == want[key], key
    assert got["cost"] == pytest.approx(want["cost"]) and got["expected_gain"] == pytest.approx(want["expected_gain"])
    assert got["cases_opened"] > 50
    with churnguard.connect(campaign_template["url"]) as pg:
        members = pg.execute(
            "SELECT customer_id, arm, action, case_id IS NULL, why FROM campaign_members ORDER BY customer_id"
        ).fetchall()
    assert [m[:4] for m in members] == [m[:4] for m in want_members]
    for (_, _, _, _, why), (*_, want_why) in zip(members, want_members, strict=True):
        a, b = json.loads(why), json.loads(want_why)
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(b[key], float):
                assert a[key] == pytest.approx(b[key], rel=1e-9), key
            elif key != "candidates":
                assert a[key] == b[key], key
        assert [c["action"] for c in a["candidates"] or []] == [c["action"] for c in b["candidates"] or []]


# -- library level: threads with their own connections -----------------------------------------------


def test_exactly_one_of_eight_simultaneous_claims_of_a_case_wins(pg: Store) -> None:
    for case_id in pool_cases(pg, ROUNDS):
        out = race(pg, [lambda s, u=u, c=case_id: claim_case(s, c, u, now=T0) for u in MANAGERS])
        wins = [r for kind, r in out if kind == "ok"]
        assert len(wins) == 1, Counter(kind for kind, _ in out)
        winner = wins[0]["owner_id"]
        losers = [e for kind, e in out if kind != "ok"]
        assert all(isinstance(e, CaseConflictError) and f'already claimed by "{winner}"' in str(e) for e in losers)
        case = get_case(pg, case_id)
        assert (case["status"], case["owner_id"], case["version"]) == ("claimed", winner, 1)
        claims = pg.execute("SELECT actor FROM case_log WHERE case_id = ? AND event = 'claim'", [case_id]).fetchall()
        assert claims == [(winner,)]
    assert sum(held(pg).values()) == ROUNDS


def test_a_claim_limit_of_two_holds_against_simultaneous_claims(pg: Store) -> None:
    cases = iter(pool_cases(pg, ROUNDS * THREADS))
    for round_ in range(ROUNDS):
        user = f"limited{round_}"
        add_user(pg, user, role="account_manager", branch_id="GD-GZ", password=PASSWORD, max_claims=2)
        mine = [next(cases) for _ in range(THREADS)]
        out = race(pg, [lambda s, c=c, u=user: claim_case(s, c, u, now=T0) for c in mine])
        kinds = Counter(kind for kind, _ in out)
        assert kinds == {"ok": 2, "ClaimLimitError": THREADS - 2}, kinds
        assert all(isinstance(e, ClaimLimitError) and "claim limit (2)" in str(e) for kind, e in out if kind != "ok")
        assert held(pg)[user] == 2
        untouched = [c for c, (kind, _) in zip(mine, out, strict=True) if kind != "ok"]
        assert all((get_case(pg, c)["status"], get_case(pg, c)["version"]) == ("open", 0) for c in untouched)


def test_timeout_recycling_follows_the_injected_clock_and_races_a_contact(pg: Store) -> None:
    first = pool_cases(pg, 3)
    for i, case_id in enumerate(first):
        claim_case(pg, case_id, MANAGERS[i], now=T0, claim_hours=24)
    assert recycle_overdue(pg, now=T0 + dt.timedelta(hours=23)) == []
    update_case(pg, first[0], MANAGERS[0], note="left a message", now=T0 + dt.timedelta(hours=20), claim_hours=24)
    recycled = recycle_overdue(pg, now=T0 + dt.timedelta(hours=25), actor="nightly")
    assert recycled == sorted(first[1:])  # the note moved the first one's deadline to hour 44
    assert all(get_case(pg, c)["status"] == "open" and get_case(pg, c)["owner_id"] is None for c in first[1:])
    assert held(pg)[MANAGERS[0]] == 1 and held(pg)[MANAGERS[1]] == 0
    log = pg.execute("SELECT actor, note FROM case_log WHERE case_id = ? AND event = 'recycle'", [first[1]]).fetchall()
    assert log[0][0] == "nightly" and "am1" in log[0][1]

    update_case(pg, first[0], MANAGERS[0], status="contacted", now=T0 + dt.timedelta(hours=30))  # not recycled
    late = T0 + dt.timedelta(hours=80)  # past the 72-hour default deadline, not yet recycled
    seen: Counter[str] = Counter()
    for case_id in [c for c in pool_cases(pg, ROUNDS * 2 + 3) if c not in first][: ROUNDS * 2]:
        claim_case(pg, case_id, "am7", now=T0)
        out = race(
            pg,
            [
                lambda s, c=case_id: update_case(s, c, "am7", status="contacted", note="reached them", now=late),
                lambda s: recycle_overdue(s, now=late),
            ],
        )
        (contact_kind, contact), (recycle_kind, recycled) = out
        assert recycle_kind == "ok", recycled
        case = get_case(pg, case_id)
        if contact_kind == "ok":
            seen["contact won"] += 1
            assert recycled == [] and (case["status"], case["owner_id"]) == ("contacted", "am7")
        else:
            seen["recycler won"] += 1
            assert isinstance(contact, CaseForbiddenError), contact  # no longer theirs
            assert recycled == [case_id] and (case["status"], case["owner_id"]) == ("open", None)
        events = [r[0] for r in pg.execute("SELECT event FROM case_log WHERE case_id = ?", [case_id]).fetchall()]
        assert ("contact" in events) != ("recycle" in events), events
        held(pg)
    assert sum(seen.values()) == ROUNDS * 2


def test_assignment_is_all_or_nothing(pg: Store) -> None:
    # a plan gone stale (one of its cases claimed meanwhile) assigns nothing
    cases = pool_cases(pg, 6)
    plan = plan_assignment(pg, case_ids=cases)
    assert plan["owner_id"].notna().all()
    claim_case(pg, cases[3], "am5", now=T0)
    before = {c: get_case(pg, c)["version"] for c in cases}
    with pytest.raises(CaseConflictError, match="nothing was assigned"):
        apply_assignment(pg, plan, actor="gd-manager", now=T0)
    assert {c: get_case(pg, c)["version"] for c in cases} == before
    assert [get_case(pg, c)["status"] for c in cases] == ["open"] * 3 + ["claimed"] + ["open"] * 2
    # a plan that would take a manager past their limit assigns nothing either
    add_user(pg, "small", role="account_manager", branch_id="GD-GZ", password=PASSWORD, max_claims=2)
    free = [c for c in cases if c != cases[3]]
    plan = plan_assignment(pg, case_ids=free)
    plan["owner_id"] = ["small"] * 2 + list(plan["owner_id"][2:])
    plan.loc[plan.index[2], "owner_id"] = "small"  # three for someone allowed two
    with pytest.raises(CaseConflictError):
        apply_assignment(pg, plan, actor="gd-manager", now=T0)
    assert all(get_case(pg, c)["status"] == "open" for c in free) and held(pg)["small"] == 0
    # and racing claims: every case gets exactly one owner
    for _ in range(3):
        batch = pool_cases(pg, 10)
        calls: list[Callable[[Store], Any]] = [lambda s, ids=batch: assign_cases(s, actor="gd-manager", case_ids=ids)]
        calls += [lambda s, c=c, u=u: claim_case(s, c, u, now=T0) for c, u in zip(batch, MANAGERS[1:], strict=False)]
        out = race(pg, calls)
        assert out[0][0] == "ok", out[0]
        assert all(kind in ("ok", "CaseConflictError") for kind, _ in out[1:]), out
        takes = pg.execute(
            "SELECT k.case_id, k.status, k.owner_id, (SELECT count(*) FROM case_log l WHERE l.case_id = k.case_id "
            f"AND l.event IN ('claim', 'assign')) FROM cases k WHERE k.case_id IN ({', '.join('?' for _ in batch)})",
            batch,
        ).fetchall()
        assert all(status == "claimed" and owner and n == 1 for _, status, owner, n in takes), takes
        assert out[0][1].assigned + sum(kind == "ok" for kind, _ in out[1:]) == 10
        held(pg)


def test_simultaneous_openers_open_one_case_per_customer_and_kind(pg: Store) -> None:
    free = [
        r[0]
        for r in pg.execute(
            "SELECT customer_id FROM customers WHERE branch_id = 'GD-GZ' AND customer_id NOT IN "
            "(SELECT customer_id FROM cases WHERE kind = 'winback') ORDER BY customer_id LIMIT 15"
        ).fetchall()
    ]
    for round_ in range(3):
        customers = free[round_ * 5 : round_ * 5 + 5]
        rows = pd.DataFrame({"customer_id": customers, "kind": "winback"})
        out = race(pg, [lambda s, r=rows: open_cases(s, r, actor="campaign", now=T0) for _ in range(THREADS)])
        assert all(kind == "ok" for kind, _ in out), out
        assert sum(len(r) for _, r in out) == 5
        assert sum(len(r.skipped) for _, r in out) == 5 * (THREADS - 1)
        per_customer = pg.execute(
            "SELECT customer_id, count(*) FROM cases WHERE kind = 'winback' AND customer_id IN "
            f"({', '.join('?' for _ in customers)}) GROUP BY customer_id",
            customers,
        ).fetchall()
        assert sorted(per_customer) == [(c, 1) for c in customers]


# -- over HTTP: several worker processes -------------------------------------------------------------


def test_simultaneous_claims_over_http_with_three_workers(pg: Store) -> None:
    add_user(pg, "lim", role="account_manager", branch_id="GD-GZ", password=PASSWORD, max_claims=2)
    contested = pool_cases(pg, ROUNDS)
    for_lim = pool_cases(pg, ROUNDS + THREADS)[ROUNDS:]
    with ServedProcess(pg.url.path, workers=3) as server:
        assert len(server.worker_pids()) == 3
        tokens = {}
        for user in [*MANAGERS, "lim"]:
            r = httpx.post(
                f"{server.base_url}/api/auth/token", json={"username": user, "password": PASSWORD}, timeout=60
            )
            assert r.status_code == 200, r.text
            tokens[user] = r.json()["token"]
        clients = {u: httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {t}"}, timeout=120)
                   for u, t in tokens.items()}  # fmt: skip

        def fire(requests: list[tuple[str, str]]) -> list[httpx.Response]:
            """POST each (user, case) claim from its own thread, all released at once."""
            barrier = threading.Barrier(len(requests))
            out: list[Any] = [None] * len(requests)

            def run(i: int) -> None:
                user, case_id = requests[i]
                barrier.wait()
                out[i] = clients[user].post(f"/api/cases/{case_id}/claim")

            threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            return out

        raced = Counter()
        try:
            for case_id in contested:
                answers = fire([(u, case_id) for u in MANAGERS])
                codes = Counter(r.status_code for r in answers)
                raced.update(codes)
                # a loser whose request is read after the winner's commit no longer sees the case (it left the
                # pool of their scope): 404, as for any case outside one's scope; the others lose the race: 409
                assert codes[200] == 1 and set(codes) <= {200, 404, 409}, [r.text for r in answers]
                winner = next(r.json()["owner_id"] for r in answers if r.status_code == 200)
                assert {r.json()["error"]["code"] for r in answers if r.status_code == 409} <= {"case_conflict"}
                assert {r.json()["error"]["code"] for r in answers if r.status_code == 404} <= {"not_found"}
                messages = [r.json()["error"]["message"] for r in answers if r.status_code == 409]
                assert all(f'already claimed by "{winner}"' in m for m in messages), messages
            assert raced[409] > 0  # the requests really overlapped inside the workflow's transactions
            answers = fire([("lim", c) for c in for_lim])
            assert Counter(r.status_code for r in answers) == {200: 2, 409: THREADS - 2}
            assert {r.json()["error"]["code"] for r in answers if r.status_code == 409} == {"claim_limit"}
        finally:
            for c in clients.values():
                c.close()
    counts = held(pg)
    assert counts["lim"] == 2 and sum(counts[u] for u in MANAGERS) == ROUNDS
    rows = pg.execute(
        "SELECT k.case_id, k.owner_id, (SELECT count(*) FROM case_log l WHERE l.case_id = k.case_id "
        f"AND l.event = 'claim') FROM cases k WHERE k.case_id IN ({', '.join('?' for _ in contested)})",
        contested,
    ).fetchall()
    assert len(rows) == ROUNDS and all(owner in MANAGERS and n == 1 for _, owner, n in rows)
    audited = pg.execute(
        f"SELECT count(*) FROM audit_log WHERE action = 'case.claim' AND target IN "
        f"({', '.join('?' for _ in contested)})",
        contested,
    ).fetchone()[0]
    assert audited == ROUNDS  # only the winners' claims are recorded
