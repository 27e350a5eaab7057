"""Rendering the dashboard's pages: the Jinja environment, number formats, the page language.

The language comes from ``?lang=en|zh`` (which also sets the ``cg_lang`` cookie, so the choice
sticks), else that cookie, else the browser's ``Accept-Language`` (Chinese first → zh), else en.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from churnguard.web import labels

LANG_COOKIE = "cg_lang"


def page_lang(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in labels.LANGS:
        return asked
    saved = request.cookies.get(LANG_COOKIE)
    if saved in labels.LANGS:
        return saved
    accept = request.headers.get("accept-language", "").lower()
    return "zh" if accept.startswith("zh") else "en"


def pct(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x * 100:.{digits}f}%"


def pp(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:+.2f} pp"


def num(x: float | int | None, digits: int = 0) -> str:
    if x is None:
        return "—"
    return f"{x:,.{digits}f}" if isinstance(x, float) or digits else f"{x:,}"


def money(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}"


def script_json(obj: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">`` (no ``</`` that could end the element)."""
    return Markup(json.dumps(obj, ensure_ascii=False, default=str).replace("</", "<\\/"))


@cache
def environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("churnguard.web", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(pct=pct, pp=pp, num=num, money=money, script_json=script_json)
    return env


def url_with(request: Request, **changes: Any) -> str:
    """The current URL with query parameters changed (``None`` removes one)."""
    params = dict(request.query_params)
    for k, v in changes.items():
        if v is None:
            params.pop(k, None)
        else:
            params[k] = str(v)
    from urllib.parse import urlencode

    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")


def render_page(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    user: Any,
    csrf_token: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render ``template`` with the frame's context (language, labels, user, CSRF token, nav)."""
    lang = page_lang(request)

    def tr(key: str, **values: Any) -> str:
        return labels.t(key, lang, **values)

    frame = {
        "lang": lang,
        "html_lang": "zh-CN" if lang == "zh" else "en",
        "t": tr,
        "driver_label": lambda c: labels.driver_label(c, lang),
        "status_label": lambda c: labels.status_label(c, lang),
        "reason_label": lambda c: labels.reason_label(c, lang),
        "tier_label": lambda c: labels.tier_label(c, lang),
        "segment_label": lambda c: labels.segment_label(c, lang),
        "stage_label": lambda c: labels.stage_label(c, lang),
        "url_with": lambda **kw: url_with(request, **kw),
        "other_lang": "en" if lang == "zh" else "zh",
        "user": user,
        "csrf_token": csrf_token,
        "path": request.url.path,
    }
    html = environment().get_template(template).render(**frame, **context)
    response = HTMLResponse(html, status_code=status_code)
    if request.query_params.get("lang") in labels.LANGS:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True)
    return response
