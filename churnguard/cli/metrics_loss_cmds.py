"""Placeholder: commands of this topic are added by their module's owner."""

from __future__ import annotations

import typer


def register(metrics_app: typer.Typer) -> None:
    """Add this topic's commands to ``churnguard metrics``."""
