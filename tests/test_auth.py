"""Users, passwords, tokens, sessions and branch scope on a real DuckDB file; the users and serve CLI run."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import churnguard
from churnguard.api.app import check_secret
from churnguard.auth import audit
from churnguard.auth.errors import AuthenticationError, UnknownUserError, UserError
from churnguard.auth.scope import Scope
from churnguard.auth.sessions import SessionSigner, create_session, end_session, load_session
from churnguard.auth.tokens import issue_token, revoke_token, user_for_token
from churnguard.auth.users import add_user, authenticate, disable_user, ensure_demo_users, get_user, list_users
from churnguard.errors import ConfigError
from churnguard.store import Store

CLI = [sys.executable, "-m", "churnguard"]


def cg(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CHURNGUARD_")}
    full.update(env or {})
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True, env=full, timeout=120)


@pytest.fixture
def tree(seeded: Store) -> Store:
    """HQ → P1 → (C1, C2) from the seeded store, plus a second province P2 → C3 and customers there."""
    seeded.execute("INSERT INTO branches VALUES ('P2', 'Province Two', 'HQ', 1), ('C3', 'City Three', 'P2', 2)")
    seeded.execute("INSERT INTO customers (customer_id, branch_id, signup_date) VALUES ('D', 'C3', DATE '2024-03-01')")
    return seeded


def test_add_user_hashes_the_password_with_argon2(tree: Store) -> None:
    user = add_user(tree, "mgr", role="branch_manager", branch_id="P1", password="s3cret-pass")
    assert (user.role, user.branch_id, user.active) == ("branch_manager", "P1", True)
    stored = tree.execute("SELECT password_hash FROM users WHERE user_id = 'mgr'").fetchone()[0]
    assert stored.startswith("$argon2id$") and "s3cret-pass" not in stored
    assert authenticate(tree, "mgr", "s3cret-pass").user_id == "mgr"
    with pytest.raises(AuthenticationError):
        authenticate(tree, "mgr", "wrong-pass")
    with pytest.raises(AuthenticationError):
        authenticate(tree, "nobody", "s3cret-pass")


def test_account_managers_get_a_claim_limit(tree: Store) -> None:
    assert add_user(tree, "am", role="account_manager", branch_id="C1", password="x" * 8).max_claims == 20
    assert add_user(tree, "am2", role="account_manager", branch_id="C1", password="x" * 8, max_claims=3).max_claims == 3


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"role": "boss", "branch_id": "P1"}, "role", "expected one of admin, analyst"),
        ({"role": "analyst", "branch_id": "XX"}, "branch", "expected a branch id"),
        ({"role": "analyst", "branch_id": None}, "branch", "needs a branch"),
        ({"role": "analyst", "branch_id": "P1", "password": "short"}, "password", "at least 8 characters"),
    ],
)
def test_add_user_refuses_bad_input(tree: Store, kwargs: dict, field: str, fragment: str) -> None:
    args = {"password": "long-enough", **kwargs}
    with pytest.raises(UserError) as info:
        add_user(tree, "u1", **args)
    assert info.value.field == field and fragment in str(info.value)
    assert tree.execute("SELECT count(*) FROM users").fetchone()[0] == 0


def test_duplicate_and_bad_names_are_refused(tree: Store) -> None:
    add_user(tree, "ann", role="analyst", branch_id="HQ", password="x" * 8)
    with pytest.raises(UserError, match="already exists"):
        add_user(tree, "ann", role="analyst", branch_id="HQ", password="x" * 8)
    with pytest.raises(UserError, match="login name"):
        add_user(tree, "ann smith", role="analyst", branch_id="HQ", password="x" * 8)


def test_disable_revokes_tokens_and_sessions(tree: Store) -> None:
    add_user(tree, "am", role="account_manager", branch_id="C1", password="x" * 8)
    token = issue_token(tree, "am").token
    user = get_user(tree, "am")
    assert user is not None
    session_id, _ = create_session(tree, user)
    assert user_for_token(tree, token)[0].user_id == "am"
    assert load_session(tree, session_id).user.user_id == "am"
    disable_user(tree, "am")
    with pytest.raises(AuthenticationError):
        user_for_token(tree, token)
    with pytest.raises(AuthenticationError):
        load_session(tree, session_id)
    with pytest.raises(AuthenticationError):
        authenticate(tree, "am", "x" * 8)
    assert [u.active for u in list_users(tree)] == [False]
    with pytest.raises(UnknownUserError):
        disable_user(tree, "ghost")


def test_tokens_are_stored_as_hashes_and_expire(tree: Store) -> None:
    add_user(tree, "ann", role="analyst", branch_id="HQ", password="x" * 8)
    now = dt.datetime(2025, 1, 1, 12, 0)
    issued = issue_token(tree, "ann", ttl=dt.timedelta(hours=1), now=now)
    assert issued.token.startswith("cg_") and len(issued.token) > 40
    stored = tree.execute("SELECT token_hash FROM api_tokens").fetchall()
    assert stored and all(issued.token not in r[0] for r in stored)
    assert user_for_token(tree, issued.token, now=now + dt.timedelta(minutes=59))[0].user_id == "ann"
    with pytest.raises(AuthenticationError, match="expired"):
        user_for_token(tree, issued.token, now=now + dt.timedelta(minutes=61))
    other = issue_token(tree, "ann", ttl=None)
    assert revoke_token(tree, other.token_id)
    with pytest.raises(AuthenticationError):
        user_for_token(tree, other.token)
    with pytest.raises(AuthenticationError, match="not a churnguard API token"):
        user_for_token(tree, "Bearer nonsense")


def test_sessions_end_on_logout_and_signed_cookies_resist_forgery(tree: Store) -> None:
    user = add_user(tree, "ann", role="analyst", branch_id="HQ", password="x" * 8)
    signer = SessionSigner("a-secret-of-enough-length")
    session_id, csrf = create_session(tree, user)
    cookie = signer.sign_session(session_id)
    assert signer.session_id(cookie) == session_id
    assert SessionSigner("another-secret-entirely").session_id(cookie) is None
    assert signer.session_id(cookie[:-2] + "xx") is None
    session = load_session(tree, session_id)
    assert session.csrf_token == csrf
    end_session(tree, session.session_hash)
    with pytest.raises(AuthenticationError):
        load_session(tree, session_id)


def test_scope_is_the_subtree_in_sql(tree: Store) -> None:
    admin = add_user(tree, "root", role="admin", branch_id=None, password="x" * 8)
    p1 = add_user(tree, "p1", role="branch_manager", branch_id="P1", password="x" * 8)
    c3 = add_user(tree, "c3", role="account_manager", branch_id="C3", password="x" * 8)
    assert Scope.of(admin).branch_ids(tree) == ["C1", "C2", "C3", "HQ", "P1", "P2"]
    assert Scope.of(p1).branch_ids(tree) == ["C1", "C2", "P1"]
    assert Scope.of(c3).branch_ids(tree) == ["C3"]
    scope = Scope.of(p1)
    sql = f"{scope.with_()} SELECT c.customer_id FROM customers c WHERE {scope.customer_filter('c')} ORDER BY 1"
    assert [r[0] for r in scope.run(tree, sql).fetchall()] == ["A", "B", "C"]
    # the account manager owns no customer and no case: nothing, although D is in their branch
    own = Scope.of(c3)
    sql = f"{own.with_()} SELECT c.customer_id FROM customers c WHERE {own.customer_filter('c')}"
    assert own.run(tree, sql).fetchall() == []
    tree.execute("UPDATE customers SET owner_id = 'c3' WHERE customer_id = 'D'")
    assert own.run(tree, sql).fetchall() == [("D",)]
    assert scope.narrow(tree, "C1").branch_id == "C1"
    with pytest.raises(churnguard.auth.NotFoundError):
        scope.narrow(tree, "P2")


def test_scope_survives_a_cycle_in_the_tree(tree: Store) -> None:
    tree.execute("UPDATE branches SET parent_id = 'C1' WHERE branch_id = 'P1'")  # P1 -> C1 -> P1
    user = add_user(tree, "p1", role="analyst", branch_id="P1", password="x" * 8)
    assert Scope.of(user).branch_ids(tree) == ["C1", "C2", "P1"]


def test_ensure_demo_users_is_idempotent(tree: Store) -> None:
    tree.execute("UPDATE customers SET owner_id = 'AM-ONE' WHERE branch_id = 'C1'")
    first = ensure_demo_users(tree)
    roles = {role for _, _, role, _ in first}
    assert roles == {"admin", "analyst", "branch_manager", "account_manager"}
    assert ("AM-ONE", "agent-demo", "account_manager", "C1") in first
    manager = next(u for u in first if u[2] == "branch_manager")
    assert manager[3] == "P1"  # the province with two cities
    again = ensure_demo_users(tree)
    assert again == first
    for name, password, _, _ in first:
        assert authenticate(tree, name, password).user_id == name
    assert tree.execute("SELECT count(*) FROM users").fetchone()[0] == len(first)


def test_audit_rows(tree: Store) -> None:
    audit.record(tree, "login.failure", user_id="x", detail={"via": "api"}, ip="127.0.0.1")
    found = audit.recent(tree, action="login.failure")
    assert found[0]["user_id"] == "x" and json.loads(found[0]["detail"]) == {"via": "api"}


@pytest.mark.parametrize("secret", [None, "", "changeme", "secret", "short-one"])
def test_weak_secrets_are_refused_outside_demo(secret: str | None) -> None:
    with pytest.raises(ConfigError):
        check_secret(secret, demo=False)


def test_demo_generates_a_secret() -> None:
    a, b = check_secret(None, demo=True), check_secret("", demo=True)
    assert len(a) >= 32 and a != b
    assert check_secret("x" * 16, demo=False) == "x" * 16


# -- CLI ------------------------------------------------------------------------------------------


def test_users_cli_add_list_disable(tree: Store, tmp_path: Path) -> None:
    db = str(tree.url.path)
    tree.close()
    r = cg(
        "--db",
        db,
        "users",
        "add",
        "amy",
        "--role",
        "account_manager",
        "--branch",
        "C1",
        "--password-stdin",
        "--max-claims",
        "5",
        "--format",
        "json",
        stdin="amy-password\n",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["max_claims"] == 5
    r = cg("--db", db, "users", "add", "bob", "--role", "branch_manager", "--branch", "P9", "--password", "x" * 10)
    assert r.returncode == 2 and "expected a branch id" in r.stderr
    r = cg("--db", db, "users", "add", "bob", "--role", "branch_manager", "--branch", "P1", "--password", "x" * 10)
    assert r.returncode == 0, r.stderr
    r = cg("--db", db, "users", "disable", "amy")
    assert r.returncode == 0 and "revoked" in r.stdout
    r = cg("--db", db, "users", "list", "--format", "json")
    listed = {u["user_id"]: u for u in json.loads(r.stdout)}
    assert listed["amy"]["active"] is False and listed["bob"]["role"] == "branch_manager"
    assert "password_hash" not in r.stdout and "amy-password" not in r.stdout
    with churnguard.connect(db) as s:
        assert authenticate(s, "bob", "x" * 10).user_id == "bob"
        actions = [r["action"] for r in audit.recent(s)]
    assert actions.count("user.add") == 2 and "user.disable" in actions


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        ([], {}, "needs a secret"),
        (["--secret", "changeme"], {}, "default or too short"),
        ([], {"CHURNGUARD_SECRET": ""}, "needs a secret"),
        (["--demo"], {}, "--demo serves demo stores only"),
    ],
)
def test_serve_refuses_to_start_without_a_real_secret(
    tree: Store, args: list[str], env: dict[str, str], fragment: str
) -> None:
    db = str(tree.url.path)
    tree.close()
    r = cg("--db", db, "serve", "--port", "1", *args, env=env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert fragment in r.stderr
