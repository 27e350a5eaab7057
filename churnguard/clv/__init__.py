"""Customer lifetime value: BG/NBD, Gamma-Gamma, sBG and the simple retention formula.

Each model lives in its own module on the shared maximum-likelihood base (:mod:`churnguard.clv.base`);
:mod:`~churnguard.clv.summary` builds RFM summaries in the engine and :mod:`~churnguard.clv.score`
writes per-customer CLV into the store.  See ``docs/clv.md``.
"""

from churnguard.clv.base import ClvDataError, ClvWarning, FitError, FitResult, ParametricModel
from churnguard.clv.bgnbd import BetaGeoModel
from churnguard.clv.gamma_gamma import GammaGammaModel
from churnguard.clv.sbg import ShiftedBetaGeoModel
from churnguard.clv.simple import simple_clv

__all__ = [
    "BetaGeoModel",
    "ClvDataError",
    "ClvWarning",
    "FitError",
    "FitResult",
    "GammaGammaModel",
    "ParametricModel",
    "ShiftedBetaGeoModel",
    "simple_clv",
]
