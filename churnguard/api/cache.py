"""An in-process cache of computed figures, keyed by the store's data version.

Whole-store churn figures (rates by branch, loss, reason mix, alerts) take seconds at a million
customers, and they change only when data are loaded.  So they are computed once per

    (data version, what was asked: the function, the branch, the period, …)

and kept in memory (least recently used first out, :data:`MAX_ENTRIES`).  The data version is
read from the store on every request — the number and time of the last load in ``ingest_log``,
the as-of date and the churn definition recorded in ``churnguard_meta``, and the last update of
``customer_value`` — so a new load (by this process or another) makes the old entries unreachable.
Labels are not cached: the same figures render in either language.

Two requests asking for the same missing entry compute it once (the second waits for the first).

Large per-data-version models (the overview's spell facts, :mod:`churnguard.api.services.overview_model`)
are kept apart from the LRU, one per name (:meth:`FigureCache.latest`): a new data version replaces the
old model instead of leaving it in memory until it is pushed out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from churnguard.store.connection import Store

MAX_ENTRIES = 256


def data_version(store: Store) -> tuple[Any, ...]:
    """What the cached figures depend on; changes whenever data are loaded or revalued."""
    load = store.execute("SELECT count(*), max(finished_at) FROM ingest_log").fetchone()
    meta = store.execute(
        "SELECT string_agg(key || '=' || value, ';' ORDER BY key) FROM churnguard_meta "
        "WHERE key IN ('dataset_as_of', 'churn_definition', 'dataset')"
    ).fetchone()
    value = (
        store.execute("SELECT max(updated_at) FROM customer_value").fetchone()
        if store.has_table("customer_value")
        else (None,)
    )
    return (int(load[0]), str(load[1]), meta[0], str(value[0]))


class FigureCache:
    """A thread-safe LRU of computed figures (module docstring)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()
        self._latest: dict[str, tuple[Hashable, Any]] = {}
        self._latest_locks: dict[str, threading.Lock] = {}
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        with self._guard:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self._entries:
                    self.hits += 1
                    return self._entries[key]
            value = compute()
            with self._guard:
                self.misses += 1
                self._entries[key] = value
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
                self._locks.pop(key, None)
            return value

    def latest(self, name: str, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The value kept under ``name`` if it was computed for ``key``; else ``compute()``, which replaces it.

        One value per name (the newest key wins); concurrent callers compute it once.  A replaced value
        is dropped (a request still reading it keeps it alive until it is done).
        """
        with self._guard:
            found = self._latest.get(name)
            if found is not None and found[0] == key:
                self.hits += 1
                return found[1]
            lock = self._latest_locks.setdefault(name, threading.Lock())
        with lock:
            with self._guard:
                found = self._latest.get(name)
                if found is not None and found[0] == key:
                    self.hits += 1
                    return found[1]
            value = compute()
            with self._guard:
                self.misses += 1
                self._latest[name] = (key, value)
            return value

    def clear(self) -> None:
        with self._guard:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
