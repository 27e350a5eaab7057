"""``/api/auth``: API tokens for scripts, logout, and who am I."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from churnguard.api.context import CallerDep, StoreDep, client_ip
from churnguard.auth import audit
from churnguard.auth.errors import AuthenticationError, TooManyAttemptsError
from churnguard.auth.sessions import end_session
from churnguard.auth.throttle import check_not_locked
from churnguard.auth.tokens import issue_token, revoke_token
from churnguard.auth.users import authenticate
from churnguard.store.connection import Store

router = APIRouter(prefix="/api/auth", tags=["auth"])


class TokenRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64, description="the user name (login name)")
    password: str = Field(min_length=1, max_length=1024)
    ttl_hours: float = Field(12, gt=0, le=24 * 365, description="lifetime of the token in hours (default 12)")
    name: str | None = Field(None, max_length=100, description="a label for the token (which script uses it)")


def login(store: Store, username: str, password: str, *, ip: str | None, via: str, lang: str = "en") -> Any:
    """Check a user name and password, auditing the attempt (success or failure; never the password).

    A name with too many recent failures is refused first, without checking the password
    (:class:`TooManyAttemptsError`, 429, audited as ``login.locked``; see :mod:`churnguard.auth.throttle`).
    """
    try:
        check_not_locked(store, username, lang=lang)
    except TooManyAttemptsError:
        audit.record(store, "login.locked", user_id=username, detail={"via": via}, ip=ip)
        raise
    try:
        user = authenticate(store, username, password)
    except AuthenticationError:
        audit.record(store, "login.failure", user_id=username, detail={"via": via}, ip=ip)
        raise
    audit.record(store, "login.success", user_id=user.user_id, detail={"via": via}, ip=ip)
    return user


@router.post("/token", summary="Log in with a user name and password; get a bearer token")
def create_token(*, body: TokenRequest, request: Request, store: StoreDep) -> dict[str, Any]:
    ip = client_ip(request)
    user = login(store, body.username, body.password, ip=ip, via="api")
    issued = issue_token(store, user.user_id, name=body.name, ttl=dt.timedelta(hours=body.ttl_hours))
    audit.record(store, "token.issue", user_id=user.user_id, target=issued.token_id, ip=ip)
    return {**issued.to_dict(), "user": user.to_dict()}


@router.post("/logout", summary="Revoke the bearer token (or end the dashboard session) of this request")
def logout(*, who: CallerDep, store: StoreDep) -> dict[str, Any]:
    if who.token_id is not None:
        revoke_token(store, who.token_id)
    if who.session_hash is not None:
        end_session(store, who.session_hash)
    audit.record(store, "logout", user_id=who.user_id, detail={"via": who.via}, ip=who.ip)
    return {"ok": True}


@router.get("/me", summary="The caller: user, role and the branches in their scope")
def me(*, who: CallerDep, store: StoreDep) -> dict[str, Any]:
    return {
        "user": who.user.to_dict(),
        "via": who.via,
        "scope": {
            "branch_id": who.scope.branch_id,
            "own_only": who.scope.own_only,
            "branches": who.scope.branch_ids(store),
        },
    }
