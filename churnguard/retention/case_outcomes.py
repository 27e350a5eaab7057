"""Case outcomes fed back to the model: what happened to the customers that were contacted.

Each case is joined to the customer's score at the case's creation — the latest ``scores`` row
with ``as_of`` on or before the day the case was opened (ties: the latest ``scored_at``) — so
the probability is the one the contact decision was made on.

Definitions (closed cases only; *contacted* = a ``contact`` event is in the case's history):

- ``precision`` (retain cases) = (lost + retained) / contacted-and-closed.  A ``lost``
  customer churned; a ``retained`` one is counted as *saved* — at risk, kept by the contact.
  Contacted cases closed ``abandoned`` count against it (nothing was at stake or worth
  saving).  Because "retained" assumes the customer would have left, this is an upper bound;
  ``churn_after_contact`` = lost / (lost + retained) is the observed lower bound, and a
  campaign's control group (``campaign report``) gives the unbiased base rate.
- ``threshold`` = the lowest score among contacted retain cases (the contact threshold
  actually applied), with the mean score beside the observed shares (a calibration check).
- ``won_back_rate`` (winback cases, 挽回成功率) = won_back / closed winback cases.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from churnguard.retention.case_db import query_frame
from churnguard.retention.cases import STATUSES

_OUTCOME_SQL = """
WITH contacted AS (
  SELECT case_id, min(ts) AS contacted_at FROM case_log WHERE event = 'contact' GROUP BY case_id
),
scored AS (
  SELECT k.case_id, s.probability, s.risk_band,
         row_number() OVER (PARTITION BY k.case_id ORDER BY s.as_of DESC, s.scored_at DESC) AS rn
  FROM cases k JOIN scores s ON s.customer_id = k.customer_id AND s.as_of <= CAST(k.created_at AS DATE)
),
base AS (
  SELECT k.case_id, k.kind, k.status, k.closed_at,
         CASE WHEN c.case_id IS NULL THEN 0 ELSE 1 END AS contacted,
         sc.probability, sc.risk_band
  FROM cases k
  LEFT JOIN contacted c ON c.case_id = k.case_id
  LEFT JOIN scored sc ON sc.case_id = k.case_id AND sc.rn = 1
  WHERE {where}
)
SELECT kind, status, contacted, coalesce(risk_band, '') AS risk_band,
       count(*) AS cases, count(probability) AS scored,
       sum(probability) AS sum_probability, min(probability) AS min_probability
FROM base GROUP BY kind, status, contacted, coalesce(risk_band, '')
"""


def _ratio(num: float, den: float) -> float | None:
    return None if not den else num / den


def case_outcomes(store: Any, *, as_of: dt.date | None = None) -> dict[str, Any]:
    """Outcomes of the cases (closed on or before ``as_of``, for closed cases; all cases when ``None``).

    Returns a dict with ``by_status`` (``{kind: {status: cases}}``, every case), ``retain``
    (``contacted_closed``, ``retained``, ``lost``, ``abandoned``, ``precision``,
    ``churn_after_contact``, ``threshold``, ``mean_probability``, ``scored``, and ``by_band``: the
    same shares per risk band), and ``winback`` (``closed``, ``won_back``, ``lost``,
    ``abandoned``, ``won_back_rate``).  Formulas in the module docstring.
    """
    where, params = "1 = 1", []
    if as_of is not None:
        where = "(k.closed_at IS NULL OR k.closed_at < ?)"
        params = [dt.datetime.combine(as_of, dt.time()) + dt.timedelta(days=1)]
    groups = query_frame(store, _OUTCOME_SQL.format(where=where), params)
    by_status: dict[str, dict[str, int]] = {}
    for kind, part in groups.groupby("kind"):
        counts = part.groupby("status")["cases"].sum()
        by_status[str(kind)] = {s: int(counts.get(s, 0)) for s in STATUSES if s in counts.index}

    retain = groups[(groups["kind"] == "retain") & (groups["contacted"] == 1)]
    retain = retain[retain["status"].isin(("retained", "lost", "abandoned"))]

    def shares(part: Any) -> dict[str, Any]:
        n = {s: int(part.loc[part["status"] == s, "cases"].sum()) for s in ("retained", "lost", "abandoned")}
        closed = sum(n.values())
        scored = int(part["scored"].sum())
        return {
            "contacted_closed": closed,
            **n,
            "precision": _ratio(n["lost"] + n["retained"], closed),
            "churn_after_contact": _ratio(n["lost"], n["lost"] + n["retained"]),
            "scored": scored,
            "mean_probability": _ratio(float(part["sum_probability"].fillna(0).sum()), scored),
            "threshold": None if scored == 0 else float(part["min_probability"].min()),
        }

    retain_out = shares(retain)
    retain_out["by_band"] = {
        (band or "unscored"): shares(part) for band, part in retain.groupby("risk_band", sort=True)
    }
    winback = groups[(groups["kind"] == "winback") & groups["status"].isin(("won_back", "lost", "abandoned"))]
    w = {s: int(winback.loc[winback["status"] == s, "cases"].sum()) for s in ("won_back", "lost", "abandoned")}
    closed = sum(w.values())
    return {
        "as_of": as_of,
        "by_status": by_status,
        "retain": retain_out,
        "winback": {"closed": closed, **w, "won_back_rate": _ratio(w["won_back"], closed)},
    }
