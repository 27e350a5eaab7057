"""Who is segmented, and where the results go: the population SQL and ``customer_value``.

Population (shared by RFM, ABC and lifecycle)
    Customers in the branch scope with at least one activity spell starting on or before the
    as-of date (:mod:`churnguard.metrics.activity`).  A customer is **active** when one of
    their spells is open at the as-of date, **churned** otherwise.  Each customer has a value
    window of ``window_days`` days ending on ``w_to``:

        w_to = as_of                      (active)
             = end of the latest spell    (churned: the churn date)

    so a churned customer is valued on their last year as a customer, not on the empty months
    since.  With ``recent_only`` the population keeps the active customers and those who
    churned inside the window (``w_to > as_of − window_days``): the customers who were
    customers at some time in the last ``window_days``.

Revenue
    Rows of ``transactions`` that count as revenue (:func:`churnguard.metrics.loss.revenue_condition`:
    an amount, and a ``kind`` that is not payment/refund/credit).  Per customer:

        last_day     = max day(ts) over revenue rows with day(ts) ≤ w_to
        recency_days = as_of − last_day                           (NULL: never bought)
        frequency    = #{revenue rows: w_to − window_days < day(ts) ≤ w_to}
        monetary     = Σ amount over the same rows                (0 when there are none)
        margin       = Σ margin over the same rows                (NULL when none carries a margin)

Writing
    :func:`write_customer_value` upserts by ``customer_id`` in one transaction: it updates the
    segmentation columns of existing rows, inserts rows for new customers, and never touches
    the CLV columns (``expected_transactions, p_alive, clv, clv_model``).  Rows of customers
    no longer in the population keep their CLV columns and get their segmentation columns
    cleared (NULL), so no stale tier survives a run.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from churnguard.metrics.activity import ActivityRules, spells_sql
from churnguard.metrics.loss import revenue_condition
from churnguard.metrics.scope import check_branch, customer_scope_sql
from churnguard.store.connection import Store

#: The customer_value columns the segmentation owns (the CLV columns belong to churnguard.clv).
SEGMENT_COLUMNS: tuple[str, ...] = (
    "as_of",
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment",
    "value",
    "value_basis",
    "tier",
    "lifecycle_stage",
    "updated_at",
)


def population_sql(
    store: Store,
    rules: ActivityRules,
    *,
    window_days: int,
    branch: str | None,
    recent_only: bool = True,
) -> tuple[str, dict[str, Any]]:
    """``WITH …`` CTEs ending in ``base``, one row per customer of the population, and their parameters.

    ``base`` has ``customer_id, active, w_to, spell_start`` (start of the latest spell),
    ``last_day, recency_days, frequency, monetary, margin, n_margin`` (see the module docstring).
    Parameters are named ``seg_*`` so they do not collide with those of the spell and scope SQL.
    """
    if branch is not None:
        check_branch(store, branch)
    spells, sparams = spells_sql(rules)
    scope, cparams = customer_scope_sql(branch)
    cond = revenue_condition(store)
    keep = "WHERE active OR last_end > CAST($seg_as_of AS DATE) - CAST($seg_window AS INTEGER)" if recent_only else ""
    sql = f"""
    WITH spl AS MATERIALIZED ({spells}),
    scp AS MATERIALIZED ({scope}),
    cust AS (
      SELECT s.customer_id, bool_or(s.end_date IS NULL) AS active, max(s.end_date) AS last_end,
             max(s.start_date) AS spell_start
      FROM spl s JOIN scp ON scp.customer_id = s.customer_id
      GROUP BY s.customer_id
    ), pop AS MATERIALIZED (
      SELECT customer_id, active, spell_start,
             CASE WHEN active THEN CAST($seg_as_of AS DATE) ELSE last_end END AS w_to
      FROM cust {keep}
    ), rev AS (
      SELECT p.customer_id,
             max(CAST(t.ts AS DATE)) AS last_day,
             count(*) FILTER (WHERE CAST(t.ts AS DATE) > p.w_to - CAST($seg_window AS INTEGER)) AS frequency,
             sum(t.amount) FILTER (WHERE CAST(t.ts AS DATE) > p.w_to - CAST($seg_window AS INTEGER)) AS monetary,
             sum(t.margin) FILTER (WHERE CAST(t.ts AS DATE) > p.w_to - CAST($seg_window AS INTEGER)) AS margin,
             count(t.margin) FILTER (WHERE CAST(t.ts AS DATE) > p.w_to - CAST($seg_window AS INTEGER)) AS n_margin
      FROM pop p JOIN transactions t ON t.customer_id = p.customer_id AND CAST(t.ts AS DATE) <= p.w_to
      WHERE {cond}
      GROUP BY p.customer_id
    ), base AS MATERIALIZED (
      SELECT p.customer_id, p.active, p.w_to, p.spell_start, r.last_day,
             CAST(CAST($seg_as_of AS DATE) - r.last_day AS INTEGER) AS recency_days,
             coalesce(r.frequency, 0) AS frequency, coalesce(r.monetary, 0) AS monetary,
             r.margin, coalesce(r.n_margin, 0) AS n_margin
      FROM pop p LEFT JOIN rev r ON r.customer_id = p.customer_id
    )"""
    params = {**sparams, **cparams, "seg_as_of": rules.as_of, "seg_window": int(window_days)}
    return sql, params


def write_customer_value(store: Store, source: str, *, as_of: dt.date) -> dict[str, int]:
    """Upsert the segmentation columns from the relation ``source`` into ``customer_value``.

    ``source`` (a temp table built by :func:`churnguard.segments.segment_customers`, never user
    input) has ``customer_id`` and every column of :data:`SEGMENT_COLUMNS` but ``as_of`` and
    ``updated_at``.  One transaction: update matching rows, insert new ones, clear the
    segmentation columns of rows not in ``source``.  Returns the counts of each.
    """
    cols = [c for c in SEGMENT_COLUMNS if c not in ("as_of", "updated_at")]
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    set_new = ", ".join(f"{c} = n.{c}" for c in cols)
    set_null = ", ".join(f"{c} = NULL" for c in cols)
    with store.transaction():
        updated = store.execute(
            f"UPDATE customer_value SET {set_new}, as_of = $as_of, updated_at = $now "
            f"FROM {source} n WHERE customer_value.customer_id = n.customer_id",
            {"as_of": as_of, "now": now},
        ).fetchone()[0]
        inserted = store.execute(
            f"INSERT INTO customer_value (customer_id, {', '.join(cols)}, as_of, updated_at) "
            f"SELECT n.customer_id, {', '.join('n.' + c for c in cols)}, $as_of, $now FROM {source} n "
            "WHERE NOT EXISTS (SELECT 1 FROM customer_value v WHERE v.customer_id = n.customer_id)",
            {"as_of": as_of, "now": now},
        ).fetchone()[0]
        cleared = store.execute(
            f"UPDATE customer_value SET {set_null}, as_of = $as_of, updated_at = $now "
            f"WHERE customer_id NOT IN (SELECT customer_id FROM {source}) "
            "AND (tier IS NOT NULL OR rfm_segment IS NOT NULL OR lifecycle_stage IS NOT NULL)",
            {"as_of": as_of, "now": now},
        ).fetchone()[0]
    return {"updated": int(updated), "inserted": int(inserted), "cleared": int(cleared)}
