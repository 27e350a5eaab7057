"""Errors of the early-warning models: unusable tables, bad options, unreadable model folders."""

from __future__ import annotations

from churnguard.errors import ChurnguardError, Problem, ValidationError


class ModelError(ChurnguardError, ValueError):
    """A model cannot be trained, loaded or applied with these options or this data."""

    http_status = 400
    exit_code = 2


class ModelFormatError(ModelError):
    """A model folder is missing, damaged, or written by a newer churnguard."""

    http_status = 422
    exit_code = 3


class TableError(ValidationError):
    """A table given to a model does not fit: a missing column, a label without positives, a bad file.

    Carries :class:`~churnguard.errors.Problem` items like the ingestion errors, so the CLI's JSON
    envelope lists file, column, what was expected and what arrived.
    """

    def _render(self) -> str:
        return "\n".join(str(p) for p in self.problems)


def table_problem(
    source: str, column: str | None, expected: str, got: str | None, fix: str | None = None
) -> TableError:
    """One :class:`TableError` about the whole ``source`` (no line number)."""
    return TableError([Problem(source, None, column, expected, got, fix)])
