"""One JSON error envelope for the whole API::

    {"error": {"code": "not_found", "message": "customer \"C9\": not found.", "field": null}}

- a :class:`churnguard.errors.ChurnguardError` answers with its ``http_status``; ``code`` is its class
  name in snake case without ``_error`` (``NotFoundError`` → ``not_found``), ``field`` the input it
  concerns where known;
- a request that fails validation answers 422 with ``code`` ``validation_error``, ``field`` the first
  offending parameter or body field (``limit``, ``from``, ``status``) and ``details`` listing every one;
- an unknown route 404 (``not_found``), a wrong method 405 (``method_not_allowed``);
- anything else 500 ``internal_error`` (the details go to the server log, not to the caller).

Pages (paths outside ``/api``) answer the same errors as an HTML page; a 401 there redirects to the
login page.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from churnguard.errors import ChurnguardError

log = logging.getLogger("churnguard.api")

HTTP_CODES = {
    400: "bad_request",
    401: "authentication",
    403: "access_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "validation_error",
    500: "internal_error",
    501: "not_implemented",
}


class InvalidParameterError(ChurnguardError, ValueError):
    """A request parameter is well-typed but wrong (``to`` before ``from``); names the field."""

    http_status = 422
    exit_code = 2
    code = "validation_error"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def error_code(exc: BaseException) -> str:
    name = type(exc).__name__
    name = re.sub(r"Error$", "", name) or name
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def envelope(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "field": field}
    body.update(extra)
    return {"error": body}


def churnguard_error_body(exc: ChurnguardError) -> tuple[int, dict[str, Any]]:
    status = int(getattr(exc, "http_status", 500) or 500)
    code = getattr(exc, "code", None) or error_code(exc)
    if code == "churnguard":
        code = HTTP_CODES.get(status, "error")
    return status, envelope(code, str(exc), getattr(exc, "field", None))


def validation_body(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The envelope of a request validation failure: the first error names the field."""
    details = []
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x not in ("query", "path", "body", "header", "cookie", "form")]
        field = ".".join(loc) if loc else None
        details.append({"field": field, "message": e.get("msg", "invalid"), "type": e.get("type")})
    first = details[0] if details else {"field": None, "message": "invalid request"}
    message = f"{first['field']}: {first['message']}" if first["field"] else str(first["message"])
    return envelope("validation_error", message, first["field"], details=details)
