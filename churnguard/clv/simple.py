"""The simple retention formula for customers without a transaction history.

With a constant margin ``m`` per period, retention rate ``r`` and discount rate ``d`` per period, and
the first margin received one period from now (an existing customer)::

    CLV = Σ_{t=1..∞} m · r^t / (1+d)^t = m · r / (1 + d − r)

Examples
--------
>>> round(simple_clv(margin=100.0, retention=0.8, discount=0.1), 2)
266.67
"""

from __future__ import annotations

from typing import Any

import numpy as np

from churnguard.clv.base import ClvDataError


def simple_clv(*, margin: Any, retention: Any, discount: float) -> Any:
    """m · r ÷ (1 + d − r); vectorised over ``margin`` and ``retention``.

    Parameters
    ----------
    margin : margin per period (money).
    retention : probability of staying another period, in [0, 1).
    discount : discount rate per period (e.g. 0.01 a month), > −1.
    """
    m = np.asarray(margin, dtype=np.float64)
    r = np.asarray(retention, dtype=np.float64)
    if np.any((r < 0) | (r >= 1 + discount)) or discount <= -1:
        raise ClvDataError(
            f"simple CLV: expected 0 ≤ retention < 1 + discount and discount > −1, got retention {r.tolist()}, "
            f"discount {discount}. Fix: give rates as fractions (0.8, not 80)."
        )
    out = m * r / (1 + discount - r)
    return float(out) if out.ndim == 0 else out
