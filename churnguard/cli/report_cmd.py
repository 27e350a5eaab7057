"""Placeholder: ``churnguard report`` is added by its module's owner."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add ``churnguard report`` to the app."""
