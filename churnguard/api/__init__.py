"""The REST API and the dashboard's server: :func:`create_app` (docs/api.md)."""

from churnguard.api.app import create_app

__all__ = ["create_app"]
