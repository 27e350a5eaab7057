"""Small helpers for the few SQL statements built in Python.

Identifiers (column names from a user's file) are always quoted with :func:`ident`; values
are always bound as parameters, never interpolated.
"""

from __future__ import annotations

from typing import Any


def ident(name: str) -> str:
    """Quote an identifier, doubling embedded double quotes."""
    return '"' + name.replace('"', '""') + '"'


class Params:
    """Collects named parameters while a statement is assembled.

    >>> p = Params()
    >>> p.add("a"), p.add(3)
    ('$p0', '$p1')
    >>> p.values
    {'p0': 'a', 'p1': 3}
    """

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return "$" + name
