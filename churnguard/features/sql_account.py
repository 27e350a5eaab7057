"""Account features: subscriptions (plan, fee, plan changes, contract), the customer, stored value, competitors.

Subscriptions, point in time
    Only subscriptions started before the date are read; an end date on or after the date is
    not known at the date and is never used (a subscription counts as active on a day when it
    started by then and has no end or ends on or after it).

        recurring_revenue            = Σ recurring_revenue of the subscriptions active on d − 1
        recurring_revenue_change_90d = (that − the same on d − 91) / the same on d − 91
        plan                         = plan of the latest subscription started before d
        plan_changes_180d            = #subscriptions started in [d − 180, d) after the spell's start

    ``recurring_revenue`` is taken as stored: a store that rewrites a subscription's fee (the
    simulator stores the fee on the row's last day) shows the new fee before it applied; the
    billed amounts (``bill_amount_change_90d``) follow the fee as billed.  The contract features
    need an extra date column ``contract_end`` (or ``contract_end_date``) in ``subscriptions``.

Competitor pressure (per branch)
    Of the churn events of the branch's customers dated in [d − 90, d): the share that name a
    destination, and their number over the branch's customers active at d.

Stored value (``customer_value``)
    It holds one as-of date; its tier, RFM scores and CLV are used only when that date is on or
    before every observation date (else they would carry later knowledge) — otherwise those
    columns are not emitted at all, so a model trained without them is not offered them later.
"""

from __future__ import annotations

from churnguard.features.context import Block, Context, Out, safe_name
from churnguard.metrics.loss import KEY_ACCOUNT_TIERS

#: Canonical or identifying customer columns that never become attribute features.
CUSTOMER_SKIP = frozenset({"customer_id", "branch_id", "signup_date", "plan", "segment", "owner_id", "tier_override"})
#: At most this many extra customer attributes, each with at most this many distinct values.
MAX_ATTRIBUTES, MAX_LEVELS = 5, 30
CONTRACT_COLUMNS = ("contract_end", "contract_end_date")


def subscriptions_block(ctx: Context) -> Block | None:
    """Fee now and 90 days before, the plan, plan changes, contract end."""
    if not ctx.has_rows("subscriptions"):
        return None
    contract = next((c for c in CONTRACT_COLUMNS if c in ctx.columns("subscriptions")), None)

    def active_on(offset: int) -> str:
        day = f"p.as_of - {offset}"
        return f"s.start_date <= {day} AND (s.end_date IS NULL OR s.end_date >= {day})"

    extra = f", arg_max(TRY_CAST(s.{contract} AS DATE), s.start_date) AS contract_end" if contract else ""
    sql = f"""
    SELECT p.rid, p.as_of AS p_as_of,
      sum(CASE WHEN {active_on(1)} THEN s.recurring_revenue END) AS rr_now,
      sum(CASE WHEN {active_on(91)} THEN s.recurring_revenue END) AS rr_then,
      arg_max(s.plan, s.start_date) AS plan,
      count(CASE WHEN s.start_date > p.spell_start AND s.start_date >= p.as_of - 180 THEN 1 END) AS changes_180,
      max(CASE WHEN s.start_date > p.spell_start THEN s.start_date END) AS last_change
      {extra}
    FROM {ctx.table("pop")} p JOIN subscriptions s ON s.customer_id = p.customer_id AND s.start_date < p.as_of
    GROUP BY p.rid, p.as_of"""
    outs = [
        Out("recurring_revenue", "a.rr_now"),
        Out(
            "recurring_revenue_change_90d",
            "CASE WHEN a.rr_then > 0 THEN (a.rr_now - a.rr_then) / a.rr_then END",
        ),
        Out("plan", "a.plan", "category"),
        Out("plan_changes_180d", "coalesce(a.changes_180, 0)", "int"),
        Out("days_since_plan_change", "p.as_of - a.last_change"),
    ]
    if contract:
        outs += [
            Out("in_contract", "CASE WHEN a.contract_end >= p.as_of THEN 1 ELSE 0 END", "int"),
            Out("days_to_contract_end", "a.contract_end - p.as_of"),
        ]
    return Block("subscriptions", sql, {}, outs, key="direct")


def customers_block(ctx: Context, has_subscriptions: bool) -> Block:
    """Tenure, signup age, earlier spells, segment, key account, plan (without subscriptions), attributes."""
    names = {c for c, _ in ctx.store.columns("customers")}
    picked = [c for c in ("signup_date", "segment", "tier_override", "plan") if c in names]
    outs = [
        Out("tenure_days", "p.as_of - p.spell_start", "int"),
        Out("days_since_signup", "p.as_of - a.signup_date"),
        Out("previous_spells", "p.spell_no - 1", "int"),
        Out("segment", "a.segment", "category"),
    ]
    tiers = ", ".join(f"'{t.lower()}'" for t in KEY_ACCOUNT_TIERS)  # our constants
    outs.append(
        Out(
            "key_account",
            f"CASE WHEN lower(trim(CAST(a.tier_override AS VARCHAR))) IN ({tiers}) THEN 1 ELSE 0 END",
            "int",
        )
    )
    if not has_subscriptions:
        outs.append(Out("plan", "a.plan", "category"))
    taken: set[str] = {"id"}  # customer_id is the row's key, never an attribute
    for col, kind in ctx.store.columns("customers"):
        if col in CUSTOMER_SKIP or kind.upper() not in ("VARCHAR", "BOOLEAN") or len(taken) > MAX_ATTRIBUTES:
            continue
        quoted = '"' + col.replace('"', '""') + '"'  # a stored column's name, quoted as an identifier
        levels = ctx.store.execute(f"SELECT count(DISTINCT {quoted}) FROM customers").fetchone()[0]
        if 2 <= levels <= MAX_LEVELS:
            name = safe_name(col, taken)
            picked.append(col)
            outs.append(Out(f"customer_{name}", f"CAST(a.{quoted} AS VARCHAR)", "category"))
    cols = ", ".join("c." + '"' + c.replace('"', '""') + '"' for c in picked)
    sql = (
        f"SELECT p.rid, p.as_of AS p_as_of, p.spell_start AS p_spell_start, p.spell_no AS p_spell_no, {cols} "
        f"FROM {ctx.table('pop')} p JOIN customers c ON c.customer_id = p.customer_id"
    )
    return Block("customers", sql, {}, outs, key="direct")


def stored_value_block(ctx: Context) -> Block | None:
    """Tier, RFM scores and CLV from ``customer_value``, when its as-of date is not after any observation date."""
    if not ctx.has_rows("customer_value"):
        return None
    row = ctx.store.execute("SELECT max(as_of), count(tier), count(r_score), count(clv) FROM customer_value").fetchone()
    if row[0] is None or row[0] > min(ctx.dates):
        return None
    outs = []
    if row[1]:
        outs.append(Out("stored_tier", "a.tier", "category"))
    if row[2]:
        outs += [Out(f"rfm_{x}_score", f"a.{x}_score") for x in ("r", "f", "m")]
    if row[3]:
        outs.append(Out("clv", "a.clv"))
    if not outs:
        return None
    sql = f"""
    SELECT p.rid, v.tier, v.r_score, v.f_score, v.m_score, v.clv
    FROM {ctx.table("pop")} p JOIN customer_value v ON v.customer_id = p.customer_id AND v.as_of <= p.as_of"""
    return Block("stored_value", sql, {}, outs, key="direct")


def competitor_block(ctx: Context) -> Block | None:
    """Per branch and date: churners of the last 90 days, how many named a destination, active customers."""
    if not ctx.has_rows("churn_events"):
        return None
    sql = f"""
    WITH ch AS (
      SELECT c.branch_id, e.churn_date, nullif(trim(CAST(e.destination AS VARCHAR)), '') IS NOT NULL AS named
      FROM churn_events e JOIN customers c ON c.customer_id = e.customer_id
    ), a AS (
      SELECT branch_id, as_of, count(*) AS active FROM {ctx.everyone} GROUP BY ALL
    ), n AS (
      SELECT d.as_of, ch.branch_id, count(*) AS churners, count(CASE WHEN ch.named THEN 1 END) AS named
      FROM {ctx.table("dates")} d JOIN ch ON ch.churn_date < d.as_of AND ch.churn_date >= d.as_of - 90
      GROUP BY ALL
    )
    SELECT a.branch_id, a.as_of, a.active, coalesce(n.churners, 0) AS churners, coalesce(n.named, 0) AS named
    FROM a LEFT JOIN n ON n.branch_id = a.branch_id AND n.as_of = a.as_of"""
    outs = [
        Out("branch_competitor_share_90d", "CASE WHEN a.churners > 0 THEN a.named / a.churners END"),
        Out("branch_churn_rate_90d", "a.churners / a.active"),
    ]
    return Block("competitor", sql, {}, outs, key="branch")
