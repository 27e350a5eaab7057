"""Placeholder until its owner lands the commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this topic's commands to the app."""
