"""Point-in-time features for the early warning (docs/features.md).

- :func:`observation_dates` — monthly (weekly, quarterly) observation dates over the data;
- :func:`build_features` — one row per customer active at each date: features from data before
  the date only, and (optionally) the churn label over a horizon after it;
- :data:`CATALOG` — every feature's meaning, driver category and value in words
  (:class:`FeatureSpec`).
"""

from churnguard.features.build import build_features, observation_dates
from churnguard.features.catalog import CATALOG, FeatureCatalog, FeatureSpec

__all__ = ["CATALOG", "FeatureCatalog", "FeatureSpec", "build_features", "observation_dates"]
