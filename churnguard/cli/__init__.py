"""The command-line interface (Typer + Rich)."""

from churnguard.cli.app import main

__all__ = ["main"]
