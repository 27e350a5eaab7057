"""Errors of users, authentication and access (each with the HTTP status the API answers with)."""

from __future__ import annotations

from churnguard.errors import ChurnguardError


class UserError(ChurnguardError, ValueError):
    """A user cannot be created or changed as asked (unknown role, branch, duplicate name, weak password)."""

    http_status = 400
    exit_code = 2

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownUserError(ChurnguardError, LookupError):
    """No user of that name."""

    http_status = 404
    exit_code = 2


class AuthenticationError(ChurnguardError, PermissionError):
    """Not logged in, a wrong password, an unknown, expired or revoked token or session."""

    http_status = 401
    exit_code = 5


class AccessDeniedError(ChurnguardError, PermissionError):
    """The caller's role may not do this (the thing itself exists and is not secret: a route, an action)."""

    http_status = 403
    exit_code = 5


class CsrfError(AccessDeniedError):
    """A form or cookie-authenticated request without the session's CSRF token."""


class NotFoundError(ChurnguardError, LookupError):
    """Not found — or outside the caller's branch scope: both answer 404, so existence does not leak."""

    http_status = 404
    exit_code = 2


class TooManyAttemptsError(ChurnguardError, PermissionError):
    """Too many failed logins for one user name in the throttle window (see :mod:`churnguard.auth.throttle`)."""

    http_status = 429
    exit_code = 5
    code = "too_many_attempts"
