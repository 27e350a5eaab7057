"""The churnguard exception tree.

Every error a user can cause derives from :class:`ChurnguardError`.  Each class also
inherits the matching builtin (``ValueError``, ``LookupError``) so callers that only know
the builtins still catch them, and each carries the HTTP status the REST API answers
with and the exit code the CLI ends with.
"""

from __future__ import annotations

from dataclasses import dataclass


class ChurnguardError(Exception):
    """Root of all churnguard errors."""

    http_status: int = 500
    exit_code: int = 1


class ConfigError(ChurnguardError, ValueError):
    """A setting, URL or option is invalid."""

    http_status = 400
    exit_code = 2


class StoreError(ChurnguardError):
    """The store cannot be opened, read or upgraded."""

    http_status = 500
    exit_code = 4


class UnsupportedBackendError(StoreError, ValueError):
    """The connection URL names a backend this version does not run on."""

    http_status = 400
    exit_code = 2


class UnknownTableError(ChurnguardError, LookupError):
    """A table name that is not part of the canonical data model."""

    http_status = 404
    exit_code = 2


class MappingError(ChurnguardError, ValueError):
    """A mapping file is malformed or refers to columns that do not exist."""

    http_status = 400
    exit_code = 3


@dataclass(frozen=True)
class Problem:
    """One reason a row or a file was rejected, located as precisely as the source allows.

    ``line`` is the 1-based line in a text file (CSV header is line 1), the 1-based row for
    Parquet and JSON lines, the sheet row for Excel; ``None`` when the problem concerns the
    whole file (a missing column).
    """

    source: str
    line: int | None
    column: str | None
    expected: str
    got: str | None
    fix: str | None = None
    location_word: str = "line"

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f" {self.location_word} {self.line}"
        if self.column is not None:
            where += f", column {self.column}"
        text = f"{where}: expected {self.expected}"
        if self.got is not None:
            text += f", got {self.got}"
        text += "."
        if self.fix:
            text += f" Fix: {self.fix}"
        return text


class ValidationError(ChurnguardError, ValueError):
    """Input data does not fit the canonical schema; nothing was loaded.

    Carries every :class:`Problem` found (up to a limit) and the total number of bad rows.
    """

    http_status = 422
    exit_code = 3

    def __init__(self, problems: list[Problem], *, total: int | None = None) -> None:
        self.problems = list(problems)
        self.total = total if total is not None else len(self.problems)
        super().__init__(self._render())

    def _render(self) -> str:
        lines = [str(p) for p in self.problems]
        shown = len(self.problems)
        head = f"{self.total} problem{'s' if self.total != 1 else ''} found; nothing was loaded."
        if self.total > shown:
            head += f" The first {shown} follow."
        return "\n".join([head, *lines])


# -- the case workflow (churnguard.retention.cases) ------------------------------------------------


class CaseError(ChurnguardError):
    """A case-workflow action was refused (the family the API maps to 4xx answers)."""

    http_status = 409
    exit_code = 5


class CaseNotFoundError(CaseError, LookupError):
    """An unknown case id."""

    http_status = 404
    exit_code = 6


class CaseUserNotFoundError(CaseError, LookupError):
    """A user id, acting on a case, that is not in ``users`` (or is not active)."""

    http_status = 404
    exit_code = 6


class CaseForbiddenError(CaseError, PermissionError):
    """The user may not act on this case (outside their branch subtree, not the owner, wrong role)."""

    http_status = 403
    exit_code = 7


class CaseConflictError(CaseError):
    """The case changed under the caller: already claimed, or another session won the race."""

    http_status = 409
    exit_code = 5


class InvalidTransitionError(CaseConflictError, ValueError):
    """A status change that the case's current status does not allow."""


class ClaimLimitError(CaseConflictError):
    """The user already holds as many cases as their claim limit allows."""
