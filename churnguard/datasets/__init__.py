"""Data sets: the bundled real data (IBM Telco, CDNOW, grocery) and the seeded demo simulator.

Heavy modules load lazily: ``from churnguard.datasets import simulate`` imports the simulator
only when asked.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "DatasetInfo": "churnguard.datasets.real",
    "UnknownDatasetError": "churnguard.datasets.real",
    "list_datasets": "churnguard.datasets.real",
    "load_dataset": "churnguard.datasets.real",
    "Simulation": "churnguard.datasets.simulator",
    "simulate": "churnguard.datasets.simulator",
    "simulate_to_dir": "churnguard.datasets.simulator",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'churnguard.datasets' has no attribute {name!r}")
