"""The dashboard: server-rendered pages over the same services as the API (each page has a JSON twin).

- ``/login``: the login form (CSRF double-submit cookie); twin ``POST /api/auth/token``.
- ``/overview``: head office (or the caller's branch): churn rate and change, loss, by-branch table
  with drill-down, trend, reason mix, alerts, top at-risk customers, case pool; twin
  ``/api/metrics/overview``.
- ``/branches/{id}``: the same for a branch of the caller's subtree (``/api/metrics/overview?branch=``).
- ``/at-risk``: the at-risk list with filters, paging and CSV export (``/api/at-risk``).
- ``/customers/{id}``: the customer 360 (``/api/customers/{id}``), with "Rescore now"
  (``POST /customers/{id}/rescore``; twin ``POST /api/customers/{id}/score``).
- ``/worklist``: my cases, the pool to claim from, the contact / outcome form (``/api/cases``).
- ``/campaigns``, ``/campaigns/{id}``: campaigns and their results (``/api/campaigns``).

Every form POST carries the session's CSRF token (checked in :func:`churnguard.api.context.caller`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from churnguard.api.context import Caller, CallerDep, StoreDep, app_context, client_ip
from churnguard.api.services import campaigns as campaign_service
from churnguard.api.services import cases as case_service
from churnguard.api.services import customers as customer_service
from churnguard.api.services import figures
from churnguard.api.services import scoring as scoring_service
from churnguard.api.services.common import branch_names
from churnguard.auth.errors import AuthenticationError, TooManyAttemptsError
from churnguard.auth.sessions import LOGIN_CSRF_COOKIE, LOGIN_CSRF_TTL, SESSION_COOKIE, SESSION_TTL, create_session
from churnguard.errors import ChurnguardError
from churnguard.reasons import DRIVER_CATEGORIES
from churnguard.store.connection import Store
from churnguard.web.render import page_lang, render_page

STATIC = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
TOP_ROWS = 10


def install(app: FastAPI) -> None:
    """Add the pages, the static files and Plotly's bundled script to ``app``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=True), name="static")


def plotly_path() -> Path:
    """plotly.min.js as installed with the plotly package (no network, no copy in this repository)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@router.get("/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    return FileResponse(plotly_path(), media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    lang = page_lang(request)
    key = {404: "not_found_title", 403: "forbidden_title"}.get(status, "error_title")
    from churnguard.web.labels import t

    return render_page(
        request,
        "error.html.j2",
        {"status": status, "message": message, "title": t(key, lang)},
        user=None,
        status_code=status,
    )


def _safe_next(target: str | None) -> str:
    """Only local paths: ``/x`` but not ``//host`` or ``/\\host`` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


# -- login / logout ---------------------------------------------------------------------------------


def _login_response(request: Request, *, next_url: str, error: str | None, status: int = 200) -> HTMLResponse:
    ctx = app_context(request)
    token, cookie = ctx.signer.new_login_csrf()
    response = render_page(
        request,
        "login.html.j2",
        {"login_csrf": token, "next": next_url, "error": error, "demo": ctx.demo},
        user=None,
        status_code=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        cookie,
        max_age=int(LOGIN_CSRF_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=ctx.secure_cookies,
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return _login_response(request, next_url=_safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
async def login_submit(
    request: Request,
    username: str = Form(..., max_length=64),
    password: str = Form(..., max_length=1024),
    csrf_token: str | None = Form(None),
    next: str = Form("/"),
) -> Response:
    from churnguard.api.routes.auth import login

    ctx = app_context(request)
    ctx.signer.check_login_csrf(request.cookies.get(LOGIN_CSRF_COOKIE), csrf_token)
    store = ctx.cursor()
    try:
        try:
            user = await run_in_threadpool(
                login, store, username, password, ip=client_ip(request), via="web", lang=page_lang(request)
            )
        except TooManyAttemptsError as exc:
            return _login_response(request, next_url=_safe_next(next), error=str(exc), status=429)
        except AuthenticationError:
            from churnguard.web.labels import t

            return _login_response(
                request, next_url=_safe_next(next), error=t("login_failed", page_lang(request)), status=401
            )
        session_id, _ = await run_in_threadpool(create_session, store, user, ip=client_ip(request))
    finally:
        store.close()
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        ctx.signer.sign_session(session_id),
        max_age=int(SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=ctx.secure_cookies,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(*, who: CallerDep, store: StoreDep) -> RedirectResponse:
    from churnguard.api.routes.auth import logout as api_logout

    api_logout(who=who, store=store)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/")
def home(*, who: CallerDep) -> RedirectResponse:
    if who.user.role == "account_manager":
        return RedirectResponse("/worklist", status_code=303)
    return RedirectResponse("/overview", status_code=303)


# -- overview and branch pages ----------------------------------------------------------------------


def _page(request: Request, who: Caller, template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    return render_page(request, template, context, user=who.user, csrf_token=who.csrf_token, status_code=status)


def _branch_view(request: Request, who: Caller, store: Store, branch: str | None, months: int) -> HTMLResponse:
    if who.user.role == "account_manager":
        return RedirectResponse("/worklist", status_code=303)  # type: ignore[return-value]
    scope = who.scope.narrow(store, branch)
    data = figures.overview(store, scope, app_context(request).cache, months=months)
    names = branch_names(store)
    model = app_context(request).at_risk_model(store)
    top = customer_service.at_risk(store, scope, model, limit=TOP_ROWS, with_total=False)
    pool = case_service.list_cases(store, scope, pool=True, limit=TOP_ROWS, model=model)
    summary = customer_service.score_summary(store, scope, model)
    here = scope.branch_id
    return _page(
        request,
        who,
        "overview.html.j2",
        {
            "data": data,
            "branch_id": here,
            "is_top": branch is None or branch == who.scope.branch_id,
            "names": names,
            "months": months,
            "month_choices": figures.OVERVIEW_MONTHS,
            "top": top,
            "pool": pool,
            "summary": summary,
            "path_to": _path_within(names, here, who.scope.branch_id),
        },
    )


def _path_within(names: dict[str, dict[str, Any]], branch: str | None, top: str | None) -> list[dict[str, Any]]:
    """Breadcrumbs from the caller's top branch down to ``branch``."""
    path: list[dict[str, Any]] = []
    seen: set[str] = set()
    while branch is not None and branch in names and branch not in seen:
        seen.add(branch)
        path.append(names[branch])
        if branch == top:
            break
        branch = names[branch]["parent_id"]
    return path[::-1]


@router.get("/overview", response_class=HTMLResponse)
def overview_page(
    *,
    request: Request,
    months: int = Query(12),
    who: CallerDep,
    store: StoreDep,
) -> HTMLResponse:
    return _branch_view(request, who, store, None, months if months in figures.OVERVIEW_MONTHS else 12)


@router.get("/branches/{branch_id}", response_class=HTMLResponse)
def branch_page(
    *,
    request: Request,
    branch_id: str,
    months: int = Query(12),
    who: CallerDep,
    store: StoreDep,
) -> HTMLResponse:
    return _branch_view(request, who, store, branch_id, months if months in figures.OVERVIEW_MONTHS else 12)


# -- at-risk list -----------------------------------------------------------------------------------


@router.get("/at-risk", response_class=HTMLResponse)
def at_risk_page(
    *,
    request: Request,
    branch: str | None = Query(None),
    tier: str | None = Query(None, max_length=32),
    reason: str | None = Query(None, max_length=32),
    band: str | None = Query(None, max_length=16),
    sort: str = Query("value_at_risk"),
    page: int = Query(1, ge=1),
    who: CallerDep,
    store: StoreDep,
) -> HTMLResponse:
    from churnguard.segments.labels import TIERS

    scope = who.scope.narrow(store, branch or None)
    filters = {
        "tier": tier or None,
        "reason": reason if reason in {d.code for d in DRIVER_CATEGORIES} else None,
        "band": band if band in customer_service.RISK_BANDS else None,
        "sort": sort if sort in customer_service.AT_RISK_SORTS else "value_at_risk",
    }
    model = app_context(request).at_risk_model(store)
    found = customer_service.at_risk(store, scope, model, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, **filters)
    names = branch_names(store)
    return _page(
        request,
        who,
        "at_risk.html.j2",
        {
            "found": found,
            "filters": {**filters, "branch": branch or ""},
            "page": page,
            "page_size": PAGE_SIZE,
            "branches": [names[b] for b in who.scope.branch_ids(store) if b in names],
            "names": names,
            "tiers": list(TIERS),
            "drivers": [d.code for d in DRIVER_CATEGORIES],
            "bands": customer_service.RISK_BANDS,
        },
    )


# -- customer 360 -----------------------------------------------------------------------------------


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_page(
    *,
    request: Request,
    customer_id: str,
    done: str | None = Query(None, max_length=20),
    who: CallerDep,
    store: StoreDep,
) -> HTMLResponse:
    data = customer_service.customer_360(store, who.scope, customer_id)
    message = None
    if done in ("rescored", "not_active"):
        from churnguard.web.labels import t
        from churnguard.web.render import pct

        s = data.get("score") or {}
        shown = pct(s.get("probability"), 1)
        key = "rescored" if done == "rescored" else "rescore_not_active"
        message = t(key, page_lang(request), day=s.get("as_of") or "—", p=shown)
    context = {
        "c": data,
        "statuses": _statuses(),
        "message": message,
        "can_rescore": scoring_service.has_active_model(store),
    }
    return _page(request, who, "customer.html.j2", context)


@router.post("/customers/{customer_id}/rescore")
def rescore_form(*, customer_id: str, who: CallerDep, store: StoreDep) -> RedirectResponse:
    """Score the customer now with the active model (the twin of ``POST /api/customers/{id}/score``)."""
    found = scoring_service.score_one(store, who.scope, customer_id, write=True, ip=who.ip)
    done = "rescored" if found["status"] == "scored" else "not_active"
    return RedirectResponse(f"/customers/{quote(customer_id, safe='')}?done={done}", status_code=303)


# -- worklist and case forms -----------------------------------------------------------------------


def _statuses() -> list[str]:
    """The statuses an update may set, as the case workflow names them (empty while it is absent)."""
    try:
        module = case_service.workflow()
    except ChurnguardError:
        return []
    return [s for s in getattr(module, "STATUSES", ()) if s != "claimed"]  # claiming is its own button


@router.get("/worklist", response_class=HTMLResponse)
def worklist_page(
    *,
    request: Request,
    done: str | None = Query(None, max_length=20),
    case: str | None = Query(None, max_length=200),
    who: CallerDep,
    store: StoreDep,
) -> HTMLResponse:
    model = app_context(request).at_risk_model(store)
    mine = case_service.list_cases(store, who.scope, owner=who.user_id, open_only=True, limit=100, model=model)
    pool = case_service.list_cases(store, who.scope, pool=True, limit=PAGE_SIZE, model=model)
    closed = case_service.list_cases(store, who.scope, owner=who.user_id, limit=200, model=model)
    closed_rows = [r for r in closed["rows"] if r.get("closed_at")][:20]
    try:
        case_service.workflow()
        available = True
    except ChurnguardError:
        available = False
    message = None
    if done in ("claimed", "updated") and case:
        from churnguard.web.labels import t

        message = t(done, page_lang(request), id=case)
    return _page(
        request,
        who,
        "worklist.html.j2",
        {
            "mine": mine,
            "pool": pool,
            "closed": closed_rows,
            "available": available,
            "statuses": _statuses(),
            "message": message,
        },
    )


@router.post("/cases/{case_id}/claim")
def claim_form(*, case_id: str, who: CallerDep, store: StoreDep) -> RedirectResponse:
    case_service.claim(store, who.scope, case_id, ip=who.ip)
    return RedirectResponse(f"/worklist?done=claimed&case={case_id}", status_code=303)


@router.post("/cases/{case_id}/update")
def update_form(
    *,
    case_id: str,
    status: str = Form("", max_length=40),
    note: str = Form("", max_length=4000),
    back: str = Form("/worklist"),
    who: CallerDep,
    store: StoreDep,
) -> RedirectResponse:
    case_service.update(store, who.scope, case_id, status=status or None, note=note, ip=who.ip)
    target = _safe_next(back)
    sep = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{sep}done=updated&case={case_id}", status_code=303)


@router.post("/cases/assign")
def assign_form(
    *,
    strategy: str = Form("round_robin"),
    who: CallerDep,
    store: StoreDep,
) -> RedirectResponse:
    case_service.assign(store, who.scope, strategy="load" if strategy == "load" else "round_robin", ip=who.ip)
    return RedirectResponse("/worklist", status_code=303)


# -- campaigns --------------------------------------------------------------------------------------


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(*, request: Request, who: CallerDep, store: StoreDep) -> HTMLResponse:
    found = campaign_service.list_campaigns(store, who.scope)
    return _page(request, who, "campaigns.html.j2", {"campaigns": found, "report": None, "campaign": None})


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(*, request: Request, campaign_id: str, who: CallerDep, store: StoreDep) -> HTMLResponse:
    campaign = campaign_service.find_campaign(store, who.scope, campaign_id)
    try:
        report = campaign_service.campaign_report(store, who.scope, campaign_id)
    except campaign_service.CampaignsUnavailableError:
        report = None
    return _page(request, who, "campaigns.html.j2", {"campaigns": [], "campaign": campaign, "report": report})


__all__ = ["error_page", "install", "router"]
