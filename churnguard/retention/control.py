"""Control groups (对照组): hold a random share of a campaign's chosen customers out of the action.

Stratified assignment (docs/retention.md, "Control groups")
    The chosen customers are split into strata (value tier × branch by default).  Within a
    stratum of ``n`` customers exactly ``round(share × n)`` (half rounds up) go to the control
    arm, chosen by a seeded random permutation; the rest are treated.  So every stratum holds
    out the same share (up to rounding), tier and branch cannot differ between the arms by
    chance, and a stratum of fewer than ``1 / (2 · share)`` customers has no control (its
    treated customers are reported as unmeasured).

Reproducible
    Customers are ordered by their id before the random numbers are drawn from
    ``numpy.random.default_rng(seed)``, so the same customers, strata, share and seed give the
    same split whatever order the rows arrive in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from churnguard.errors import ConfigError

TREATMENT = "treatment"
CONTROL = "control"


def check_share(share: float) -> float:
    """Validate a control share (``0 ≤ share < 1``)."""
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share < 1:
        raise ConfigError(f"control share: expected a number from 0 up to (not including) 1, like 0.1, got {share!r}.")
    return float(share)


def control_counts(sizes: Any, share: float) -> np.ndarray:
    """Control customers per stratum: ``round(share × n)`` with halves rounded up."""
    return np.floor(np.asarray(sizes, dtype=float) * check_share(share) + 0.5).astype(np.int64)


def split_control(
    ids: Sequence[Any] | np.ndarray,
    strata: Sequence[Any] | np.ndarray | None = None,
    *,
    share: float = 0.1,
    seed: int = 0,
) -> np.ndarray:
    """Assign each customer to the control arm (True) or the treatment arm (False).

    Parameters
    ----------
    ids : the customers' ids (unique); they fix the order in which random numbers are drawn.
    strata : each customer's stratum label (e.g. ``"A|GD-GZ"``); None for one stratum.
    share : the control share per stratum.
    seed : the random seed.
    """
    share = check_share(share)
    key = np.asarray(ids).astype(str)
    n = key.size
    if n == 0:
        return np.zeros(0, dtype=bool)
    if np.unique(key).size != n:
        raise ConfigError("control split: expected each customer once, got a repeated customer id.")
    labels = (
        np.zeros(n, dtype=np.int64)
        if strata is None
        else np.unique(np.asarray(strata).astype(str), return_inverse=True)[1]
    )
    by_id = np.argsort(key, kind="stable")
    u = np.empty(n)
    u[by_id] = np.random.default_rng(seed).random(n)
    order = np.lexsort((u, labels))  # by stratum, then the random number: a permutation per stratum
    sorted_labels = labels[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_labels)) + 1]
    sizes = np.diff(np.r_[starts, n])
    position = np.arange(n) - np.repeat(starts, sizes)
    quota = np.repeat(control_counts(sizes, share), sizes)
    control = np.empty(n, dtype=bool)
    control[order] = position < quota
    return control


def arms(control: np.ndarray) -> np.ndarray:
    """``'control'`` / ``'treatment'`` labels from :func:`split_control`'s result."""
    return np.where(np.asarray(control, dtype=bool), CONTROL, TREATMENT)
