"""Churn loss (客户流失损失) and key-account churn (大客户流失), docs/metrics-loss.md.

For every spell that churned in ``[from, to]`` (its ``end_date``, the churn date *d*, lies in the
period; :mod:`churnguard.metrics.activity`) the **lost revenue** is the customer's revenue in the
``W`` months before the churn:

    lost_revenue(spell) = Σ amount  over the customer's revenue transactions with
                          max(d − W months, spell start − 1 day) < day(ts) ≤ d

- *Revenue transactions* are rows of ``transactions`` with an ``amount``; where the table has the
  optional extra column ``kind``, rows whose kind is ``payment``, ``refund`` or ``credit`` (any
  case) are left out: a payment repeats the amount of a bill (cash, not revenue), refunds and
  credits are not sales.  Every other kind (bill, topup, purchase, empty …) counts.
- The window stops at the spell's start, so a customer who churned twice is not charged twice
  for the same revenue.
- **Subscription fallback**: a customer with no revenue transaction on or before the churn date
  but with subscriptions loses ``Σ recurring_revenue × months active in the window``, where
  months active = W × (days the subscription was active in the window) ÷ (days in the window).
  ``revenue_sources`` counts the spells valued each way.

    lost_revenue = Σ_spells lost_revenue(spell)
    profit_loss  = lost_revenue × margin            (``margin`` given: margin_source = "option")
                 = Σ margin of the same transactions (else, if transactions carry a margin:
                                                     margin_source = "transactions")
                 = None                              (neither)

Everything runs in the engine as one SQL statement; Python only arranges the totals, the
group rows and the 20 largest losses.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

from churnguard.errors import ConfigError
from churnguard.metrics.activity import ActivityRules, spells_sql
from churnguard.metrics.churn import GROUPS, group_expr, rules_dict
from churnguard.metrics.scope import check_branch, customer_scope_sql
from churnguard.store.connection import Store

#: Values of ``transactions.kind`` (any case) that are not revenue.
NON_REVENUE_KINDS: tuple[str, ...] = ("payment", "refund", "credit")
#: How many of the largest losses ``LossReport.top_customers`` lists.
TOP_CUSTOMERS = 20
#: Customer tiers (``tier_override``, any case) that make a key account; ``customer_value.tier`` 'A' too.
KEY_ACCOUNT_TIERS: tuple[str, ...] = ("VIP", "A")


def _money(x: float | None) -> float | None:
    return None if x is None else round(float(x), 2)


def _ratio(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


def purchase_condition(store: Store, alias: str = "t") -> str:
    """SQL condition, on ``transactions`` aliased ``alias``, true for purchases (with or without an amount).

    Where the table has a ``kind`` column, rows of a kind in :data:`NON_REVENUE_KINDS` (payments,
    refunds, credits: cash movements, not purchases) are left out (any case; an empty kind counts).
    """
    if any(name == "kind" for name, _ in store.columns("transactions")):
        kinds = ", ".join(f"'{k}'" for k in NON_REVENUE_KINDS)  # our constants, not user input
        return f"(({alias}.kind) IS NULL OR lower(trim(CAST({alias}.kind AS VARCHAR))) NOT IN ({kinds}))"
    return "TRUE"


def revenue_condition(store: Store, alias: str = "t") -> str:
    """SQL condition, on ``transactions`` aliased ``alias``, true for the rows that count as revenue.

    A row counts when it has an ``amount`` and is a purchase (:func:`purchase_condition`).
    """
    return f"{alias}.amount IS NOT NULL AND {purchase_condition(store, alias)}"


def _revenue_ctes(store: Store, name: str, windows: str, months_param: str) -> str:
    """CTEs ending in ``name``: the revenue of each window of the CTE ``windows``.

    ``windows`` has the columns ``customer_id, k, w_from, w_to, full_from``: the window is the
    days ``[w_from, w_to]``; ``full_from`` is where the unclipped window of ``$<months_param>``
    months starts (it scales the subscription fallback).  ``name`` has ``customer_id, k,
    revenue_source, revenue, margin, revenue_with_margin``.
    """
    cond = revenue_condition(store)
    return f"""
    {name}_tx AS (
      SELECT w.customer_id, w.k,
             count(*) AS n_before,
             sum(t.amount) FILTER (WHERE CAST(t.ts AS DATE) >= w.w_from) AS revenue,
             sum(t.margin) FILTER (WHERE CAST(t.ts AS DATE) >= w.w_from) AS margin,
             sum(t.amount) FILTER (WHERE CAST(t.ts AS DATE) >= w.w_from AND t.margin IS NOT NULL)
               AS revenue_with_margin
      FROM {windows} w JOIN transactions t ON t.customer_id = w.customer_id AND CAST(t.ts AS DATE) <= w.w_to
      WHERE {cond}
      GROUP BY ALL
    ), {name}_sub AS (
      SELECT w.customer_id, w.k,
             count(s.recurring_revenue) AS n,
             sum(s.recurring_revenue
                 * (least(coalesce(s.end_date, w.w_to), w.w_to) - greatest(s.start_date, w.w_from) + 1)
                 * CAST(${months_param} AS DOUBLE) / (w.w_to - w.full_from + 1)) AS revenue
      FROM {windows} w JOIN subscriptions s
        ON s.customer_id = w.customer_id AND s.start_date <= w.w_to
       AND (s.end_date IS NULL OR s.end_date >= w.w_from)
      GROUP BY ALL
    ), {name} AS (
      SELECT w.customer_id, w.k,
             CASE WHEN tx.n_before > 0 THEN 'transactions' WHEN sub.n > 0 THEN 'subscriptions' END AS revenue_source,
             CASE WHEN tx.n_before > 0 THEN coalesce(tx.revenue, 0) WHEN sub.n > 0 THEN sub.revenue END AS revenue,
             CASE WHEN tx.n_before > 0 THEN tx.margin END AS margin,
             CASE WHEN tx.n_before > 0 THEN coalesce(tx.revenue_with_margin, 0) ELSE 0 END AS revenue_with_margin
      FROM {windows} w
      LEFT JOIN {name}_tx tx ON tx.customer_id = w.customer_id AND tx.k = w.k
      LEFT JOIN {name}_sub sub ON sub.customer_id = w.customer_id AND sub.k = w.k
    )"""


def _churned_spells_ctes(
    store: Store, rules: ActivityRules, by: str | None, branch: str | None
) -> tuple[str, dict[str, Any]]:
    """``WITH …`` CTEs ending in ``per``: one row per spell churned in ``[$start, $end]`` in the branch scope.

    ``spl`` holds every spell, ``sc`` the customers in scope.  ``per`` has ``customer_id, k``
    (the spell number), ``churn_date, spell_start, from_start`` (active at ``$start``), ``branch_id,
    grp`` (the ``by`` group), ``reason_code, destination`` and the revenue columns of
    :func:`_revenue_ctes` over the window of ``$months`` months.
    """
    spells, sparams = spells_sql(rules)
    scope, cparams = customer_scope_sql(branch)
    tier_join = ""
    if by == "tier" and store.has_table("customer_value"):
        tier_join = "LEFT JOIN customer_value v ON v.customer_id = sp.customer_id"
    # The churn event recorded nearest to the spell's end (within the grace period) gives the
    # reason, as in churn.py.
    near = int(max(rules.grace_days, 31))
    sql = f"""
    WITH spl AS MATERIALIZED ({spells}),
    sc AS MATERIALIZED ({scope}),
    sp AS (
      SELECT s.customer_id, s.spell_no AS k, s.start_date AS spell_start, s.end_date AS churn_date,
             s.start_date < $start AS from_start
      FROM spl s JOIN sc ON sc.customer_id = s.customer_id
      WHERE s.end_date BETWEEN $start AND $end
    ), ce AS (
      SELECT sp.customer_id, sp.k,
             arg_min(e.reason_code, abs(e.churn_date - sp.churn_date)) AS reason_code,
             arg_min(e.destination, abs(e.churn_date - sp.churn_date)) AS destination
      FROM sp JOIN churn_events e ON e.customer_id = sp.customer_id
      WHERE abs(e.churn_date - sp.churn_date) <= {near}
      GROUP BY ALL
    ), win AS (
      SELECT customer_id, k, churn_date AS w_to, full_from, greatest(full_from, spell_start) AS w_from
      FROM (SELECT *, CAST(churn_date - to_months(CAST($months AS INTEGER)) AS DATE) + 1 AS full_from FROM sp)
    ), {_revenue_ctes(store, "rev", "win", "months")},
    first_day AS (SELECT CAST(min(ts) AS DATE) AS d FROM transactions),
    per AS MATERIALIZED (
      SELECT sp.customer_id, sp.k, sp.churn_date, sp.spell_start, sp.from_start, c.branch_id,
             rev.revenue_source = 'transactions' AND win.w_from < (SELECT d FROM first_day) AS before_data,
             {group_expr(by, store)} AS grp, ce.reason_code, ce.destination,
             rev.revenue, rev.margin, rev.revenue_with_margin, rev.revenue_source
      FROM sp
      JOIN sc ON sc.customer_id = sp.customer_id
      JOIN customers c ON c.customer_id = sp.customer_id
      JOIN rev ON rev.customer_id = sp.customer_id AND rev.k = sp.k
      JOIN win ON win.customer_id = sp.customer_id AND win.k = sp.k
      LEFT JOIN ce ON ce.customer_id = sp.customer_id AND ce.k = sp.k
      {tier_join}
    )"""
    return sql, {**sparams, **cparams}


_AGGREGATES = """
  count(*) AS n,
  count(*) FILTER (WHERE from_start) AS n_from_start,
  sum(revenue) AS revenue,
  sum(margin) AS margin,
  sum(revenue_with_margin) AS revenue_with_margin,
  count(*) FILTER (WHERE revenue_source = 'transactions') AS n_transactions,
  count(*) FILTER (WHERE revenue_source = 'subscriptions') AS n_subscriptions,
  count(*) FILTER (WHERE revenue_source IS NULL) AS n_none,
  count(*) FILTER (WHERE before_data) AS n_before_data"""


def _check_common(
    store: Store,
    start: dt.date,
    end: dt.date,
    window_months: int,
    margin: float | None,
    branch: str | None,
) -> None:
    if end < start:
        raise ConfigError(f"--to {end.isoformat()} is before --from {start.isoformat()}; expected from ≤ to.")
    if isinstance(window_months, bool) or not isinstance(window_months, int) or not 1 <= window_months <= 120:
        raise ConfigError(f"--window-months: expected a whole number of months from 1 to 120, got {window_months!r}.")
    if margin is not None and not (math.isfinite(margin) and -1 <= margin <= 1):
        raise ConfigError(f"--margin: expected a fraction between -1 and 1 (0.05 for 5 %), got {margin!r}.")
    if branch is not None:
        check_branch(store, branch)


def _transactions_have_margin(store: Store) -> bool:
    return bool(store.execute("SELECT EXISTS (SELECT 1 FROM transactions WHERE margin IS NOT NULL)").fetchone()[0])


class TruncatedWindowWarning(UserWarning):
    """Some revenue windows start before the first transaction in the store, so their loss is understated."""


@dataclass(frozen=True)
class _Money:
    """Lost revenue and the profit lost with it, under the report's margin rule."""

    margin: float | None
    margin_source: str | None

    @classmethod
    def choose(cls, store: Store, margin: float | None) -> _Money:
        if margin is not None:
            return cls(margin, "option")
        if _transactions_have_margin(store):
            return cls(None, "transactions")
        return cls(None, None)

    def profit(self, revenue: float, margin_sum: float | None) -> float | None:
        if self.margin_source == "option":
            return revenue * self.margin  # type: ignore[operator]
        if self.margin_source == "transactions":
            return float(margin_sum or 0.0)
        return None

    def without_margin(self, revenue: float, revenue_with_margin: float | None) -> float | None:
        """Lost revenue that carries no margin of its own (only meaningful for the transactions' margin)."""
        if self.margin_source != "transactions":
            return None
        return revenue - float(revenue_with_margin or 0.0)

    def effective(self, revenue: float, profit: float | None) -> float | None:
        """The margin reported: the option's, or the implied profit_loss ÷ lost_revenue."""
        if self.margin_source == "option":
            return self.margin
        if profit is None or not revenue:
            return None
        return profit / revenue


@dataclass(frozen=True)
class LossReport:
    """Churn loss for a period: totals, optional rows per group and the largest single losses.

    ``totals`` holds ``churned_customers`` (churned spells, as in :func:`churn_report`),
    ``lost_revenue``, ``profit_loss``, ``average_lost_revenue``, ``lost_revenue_without_margin``
    and ``revenue_sources`` (how many spells were valued from transactions, from subscriptions,
    or not at all).
    """

    start: dt.date
    end: dt.date
    window_months: int
    margin: float | None
    margin_source: str | None
    totals: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    top_customers: list[dict[str, Any]] = field(default_factory=list)
    by: str | None = None
    branch: str | None = None
    rules: dict[str, Any] = field(default_factory=dict)

    @property
    def churned_customers(self) -> int:
        return int(self.totals["churned_customers"])

    @property
    def lost_revenue(self) -> float:
        return float(self.totals["lost_revenue"])

    @property
    def profit_loss(self) -> float | None:
        return self.totals["profit_loss"]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "branch": self.branch,
            "by": self.by,
            "window_months": self.window_months,
            "margin": _ratio(self.margin),
            "margin_source": self.margin_source,
            "rules": self.rules,
            **self.totals,
            "top_customers": self.top_customers,
        }
        if self.by is not None:
            out["rows"] = self.rows
        return out


def churn_loss(
    store: Store,
    *,
    start: dt.date,
    end: dt.date,
    rules: ActivityRules,
    window_months: int = 12,
    margin: float | None = None,
    branch: str | None = None,
    by: str | None = None,
) -> LossReport:
    """Revenue and profit lost with the customers who churned in ``[start, end]`` (客户流失损失).

    For each spell whose churn date d (its ``end_date``) lies in ``[start, end]``:

        lost_revenue = Σ amount of its revenue transactions with d − W months < day(ts) ≤ d
                       (and day(ts) ≥ the spell's start), W = ``window_months``

    where revenue transactions exclude ``kind`` payment / refund / credit (:func:`revenue_condition`);
    a customer without any revenue transaction up to d but with subscriptions is valued at
    Σ recurring_revenue × months active in the window.  Then

        profit_loss = lost_revenue × margin           (``margin`` given)
                    = Σ transactions.margin, same rows (else, when the transactions carry margins)

    Parameters
    ----------
    store : the store.
    start, end : the period, both days included.
    rules : the churn definition (:func:`churnguard.metrics.activity.rules_for`).
    window_months : W, the months of revenue before the churn that count as lost (default 12).
    margin : profit margin as a fraction (0.05 for 5 %); default: the transactions' ``margin`` column.
    branch : limit to this branch's subtree (default: the whole company).
    by : ``branch``, ``plan``, ``segment``, ``tier``, ``reason``, ``destination`` or ``cohort``, as
        in :func:`churnguard.metrics.churn_report`: one row per group with its share of the loss.

    Examples
    --------
    The worked check of docs/metrics-loss.md: 200 customers lost, 100 with 100,000 a year of
    revenue and 100 with 200,000; margin 5 %: lost_revenue = 30,000,000, profit_loss = 1,500,000.
    """
    _check_common(store, start, end, window_months, margin, branch)
    if by is not None and by not in GROUPS:
        raise ConfigError(f'--by: expected one of {", ".join(GROUPS)}, got "{by}".')
    money = _Money.choose(store, margin)
    ctes, params = _churned_spells_ctes(store, rules, by, branch)
    params.update(start=start, end=end, months=window_months, top=TOP_CUSTOMERS)
    blank = (
        "CAST(NULL AS VARCHAR) AS customer_id, CAST(NULL AS VARCHAR) AS branch_id, CAST(NULL AS DATE) AS churn_date, "
        "CAST(NULL AS VARCHAR) AS reason_code, CAST(NULL AS VARCHAR) AS revenue_source"
    )  # typed: PostgreSQL does not infer a NULL's type from the other branches of a UNION
    parts = [f"SELECT 'total' AS part, NULL AS grp, {blank}, {_AGGREGATES} FROM per"]
    if by is not None:
        parts.append(f"SELECT 'group', grp, {blank}, {_AGGREGATES} FROM per GROUP BY grp")
    parts.append(
        """(SELECT 'top', grp, customer_id, branch_id, churn_date, reason_code, revenue_source,
                   1, CAST(from_start AS INTEGER), revenue, margin, revenue_with_margin, 0, 0, 0, 0
            FROM per ORDER BY revenue DESC NULLS LAST, churn_date, customer_id LIMIT $top)"""
    )
    cur = store.execute(ctes + "\n" + "\nUNION ALL\n".join(parts), params)
    names = [d[0] for d in cur.description]
    found = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    return _loss_report(
        found, money, start=start, end=end, window_months=window_months, by=by, branch=branch, rules=rules
    )


def _loss_report(
    found: list[dict[str, Any]],
    money: _Money,
    *,
    start: dt.date,
    end: dt.date,
    window_months: int,
    by: str | None,
    branch: str | None,
    rules: ActivityRules,
) -> LossReport:
    """The report from the aggregated rows: ``part`` ``total`` (one), ``group`` (per ``grp``) and ``top``."""
    total = next(r for r in found if r["part"] == "total")
    lost = float(total["revenue"] or 0.0)
    profit = money.profit(lost, total["margin"])
    n = int(total["n"])
    totals = {
        "churned_customers": n,
        "churned_from_start": int(total["n_from_start"]),
        "lost_revenue": _money(lost),
        "profit_loss": _money(profit),
        "average_lost_revenue": _money(lost / n) if n else None,
        "lost_revenue_without_margin": _money(money.without_margin(lost, total["revenue_with_margin"])),
        "revenue_sources": {
            "transactions": int(total["n_transactions"]),
            "subscriptions": int(total["n_subscriptions"]),
            "none": int(total["n_none"]),
        },
    }
    before_data = int(total["n_before_data"])
    if before_data:
        warnings.warn(
            f"churn loss: the revenue windows of {before_data} of the {n} churned customers start before the first "
            "transaction in the store, so their lost revenue is understated. "
            "Fix: load the earlier transactions, use a later --from, or a shorter --window-months.",
            TruncatedWindowWarning,
            stacklevel=2,
        )
    totals["windows_before_data"] = before_data
    rows = []
    for r in sorted((r for r in found if r["part"] == "group"), key=lambda r: (-(r["revenue"] or 0.0), r["grp"])):
        revenue = float(r["revenue"] or 0.0)
        rows.append(
            {
                by: r["grp"],
                "churned_customers": int(r["n"]),
                "lost_revenue": _money(revenue),
                "profit_loss": _money(money.profit(revenue, r["margin"])),
                "share_of_loss": _ratio(revenue / lost) if lost else None,
                "share_of_churned": _ratio(r["n"] / n) if n else None,
            }
        )
    top = [
        {
            "customer_id": r["customer_id"],
            "branch_id": r["branch_id"],
            "churn_date": r["churn_date"].isoformat(),
            "lost_revenue": _money(r["revenue"]),
            "profit_loss": _money(money.profit(float(r["revenue"] or 0.0), r["margin"]))
            if r["revenue"] is not None
            else None,
            "reason_code": r["reason_code"],
            "revenue_source": r["revenue_source"],
        }
        for r in found
        if r["part"] == "top"
    ]
    return LossReport(
        start=start,
        end=end,
        window_months=window_months,
        margin=money.effective(lost, profit),
        margin_source=money.margin_source,
        totals=totals,
        rows=rows,
        top_customers=top,
        by=by,
        branch=branch,
        rules=rules_dict(rules),
    )


def _key_account_flags_sql(store: Store) -> tuple[str, str]:
    """SQL selecting ``customer_id, tier`` of the flagged key accounts, and the rule it applies, in words."""
    tiers = ", ".join(f"'{t}'" for t in KEY_ACCOUNT_TIERS)  # our constants
    parts = [
        f"SELECT customer_id, upper(trim(tier_override)) AS tier FROM customers "
        f"WHERE upper(trim(tier_override)) IN ({tiers})"
    ]
    rule = "customers.tier_override is VIP or A"
    if store.has_table("customer_value") and any(c == "tier" for c, _ in store.columns("customer_value")):
        parts.append(
            "SELECT customer_id, 'A' AS tier FROM customer_value WHERE upper(trim(CAST(tier AS VARCHAR))) = 'A'"
        )
        rule += ", or customer_value.tier is A"
    sql = f"SELECT customer_id, max(tier) AS tier FROM ({' UNION ALL '.join(parts)}) GROUP BY customer_id"
    return sql, rule


def key_account_churn(
    store: Store,
    *,
    start: dt.date,
    end: dt.date,
    rules: ActivityRules,
    top_share: float = 0.1,
    branch: str | None = None,
    margin: float | None = None,
    window_months: int = 12,
) -> dict[str, Any]:
    """Churn and churn loss among key accounts (大客户 / VIP), reported apart from the other customers.

    Key accounts are the customers whose ``tier_override`` is ``VIP`` or ``A`` (any case), and
    those whose ``customer_value.tier`` is ``A`` where that table exists.  When no customer is
    flagged either way, they are the top ``top_share`` of the customers active at ``start`` (the
    whole company, then scoped) by revenue in the 12 months before ``start`` — rank ≤
    ⌈top_share × customers active at start⌉ and revenue > 0.

    For the key accounts in ``branch``'s subtree:

        start_customers  = key accounts active at ``start``
        churned_customers = their spells that churned in ``[start, end]``
        churn_rate        = churned among start_customers ÷ start_customers   (standard)
        lost_revenue, profit_loss as in :func:`churn_loss`

    ``others`` holds the same figures for the rest of the customers in scope, and ``lost_accounts``
    lists every lost key account (customer_id, branch_id, churn_date, lost_revenue, profit_loss,
    reason_code, tier), largest loss first.  ``selection`` says how the key accounts were chosen.
    """
    _check_common(store, start, end, window_months, margin, branch)
    if not (math.isfinite(top_share) and 0 < top_share <= 1):
        raise ConfigError(f"--top-share: expected a fraction above 0 and at most 1 (0.1 for 10 %), got {top_share!r}.")
    money = _Money.choose(store, margin)
    flags, flag_rule = _key_account_flags_sql(store)
    flagged = store.execute(f"SELECT count(*) FROM ({flags})").fetchone()[0]
    ctes, params = _churned_spells_ctes(store, rules, None, branch)
    params.update(start=start, end=end, months=window_months)
    if flagged:
        method = "flagged"
        rule = flag_rule
        ka = f", ka AS ({flags})"
    else:
        method = "top_share"
        rule = f"top {top_share:.0%} of the customers active at {start.isoformat()} by revenue in the 12 months before"
        params.update(share=top_share, ka_months=12)
        ka = f""",
        act AS (
          SELECT DISTINCT customer_id, 0 AS k,
                 CAST($start - to_months(12) AS DATE) AS w_from, CAST($start AS DATE) - 1 AS w_to,
                 CAST($start - to_months(12) AS DATE) AS full_from
          FROM spl WHERE start_date < $start AND (end_date IS NULL OR end_date >= $start)
        ), {_revenue_ctes(store, "trail", "act", "ka_months")},
        ranked AS (
          SELECT customer_id, revenue, row_number() OVER (ORDER BY revenue DESC NULLS LAST, customer_id) AS rn,
                 count(*) OVER () AS n
          FROM trail
        ), ka AS (
          SELECT customer_id, 'rank ' || CAST(rn AS VARCHAR) AS tier FROM ranked
          WHERE rn <= ceil(CAST($share AS DOUBLE) * n) AND revenue > 0
        )"""
    sql = f"""{ctes}{ka},
    starts AS (
      SELECT ka.customer_id IS NOT NULL AS is_key, count(*) AS n_start
      FROM spl s JOIN sc ON sc.customer_id = s.customer_id LEFT JOIN ka ON ka.customer_id = s.customer_id
      WHERE s.start_date < $start AND (s.end_date IS NULL OR s.end_date >= $start)
      GROUP BY ALL
    ), lost AS (
      SELECT per.*, ka.customer_id IS NOT NULL AS is_key, ka.tier
      FROM per LEFT JOIN ka ON ka.customer_id = per.customer_id
    ), agg AS (
      SELECT is_key, {_AGGREGATES} FROM lost GROUP BY is_key
    )
    SELECT 'count' AS part, k.is_key, NULL AS customer_id, NULL AS branch_id, NULL AS churn_date, NULL AS reason_code,
           NULL AS tier, coalesce(s.n_start, 0) AS n_start,
           (SELECT count(*) FROM ka JOIN sc ON sc.customer_id = ka.customer_id) AS n_key,
           coalesce(a.n, 0) AS n, coalesce(a.n_from_start, 0) AS n_from_start, a.revenue, a.margin,
           a.revenue_with_margin
    FROM (SELECT true AS is_key UNION ALL SELECT false) k
    LEFT JOIN starts s ON s.is_key = k.is_key LEFT JOIN agg a ON a.is_key = k.is_key
    UNION ALL
    SELECT 'lost', true, customer_id, branch_id, churn_date, reason_code, tier, NULL, NULL, 1,
           CAST(from_start AS INTEGER), revenue, margin, revenue_with_margin
    FROM lost WHERE is_key
    ORDER BY part, revenue DESC NULLS LAST, churn_date, customer_id
    """
    cur = store.execute(sql, params)
    names = [d[0] for d in cur.description]
    found = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    counts = {r["is_key"]: r for r in found if r["part"] == "count"}

    def figures(r: dict[str, Any]) -> dict[str, Any]:
        s = int(r["n_start"])
        revenue = float(r["revenue"] or 0.0)
        profit = money.profit(revenue, r["margin"])
        rate = int(r["n_from_start"]) / s if s else None
        return {
            "start_customers": s,
            "churned_customers": int(r["n"]),
            "churned_from_start": int(r["n_from_start"]),
            "churn_rate": _ratio(rate),
            "retention_rate": _ratio(1 - rate) if rate is not None else None,
            "lost_revenue": _money(revenue),
            "profit_loss": _money(profit),
        }

    key = figures(counts[True])
    others = figures(counts[False])
    all_lost = (key["lost_revenue"] or 0.0) + (others["lost_revenue"] or 0.0)
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "branch": branch,
        "window_months": window_months,
        "margin": _ratio(money.effective(key["lost_revenue"] or 0.0, key["profit_loss"])),
        "margin_source": money.margin_source,
        "selection": {
            "method": method,
            "rule": rule,
            "top_share": top_share if method == "top_share" else None,
            "key_accounts": int(counts[True]["n_key"]),
        },
        **key,
        "share_of_lost_revenue": _ratio(key["lost_revenue"] / all_lost) if all_lost else None,
        "others": others,
        "lost_accounts": [
            {
                "customer_id": r["customer_id"],
                "branch_id": r["branch_id"],
                "churn_date": r["churn_date"].isoformat(),
                "lost_revenue": _money(r["revenue"]),
                "profit_loss": _money(money.profit(float(r["revenue"] or 0.0), r["margin"]))
                if r["revenue"] is not None
                else None,
                "reason_code": r["reason_code"],
                "tier": r["tier"],
            }
            for r in found
            if r["part"] == "lost"
        ],
        "rules": rules_dict(rules),
    }


_NO_CHURN = {
    "n": 0,
    "n_from_start": 0,
    "revenue": None,
    "margin": None,
    "revenue_with_margin": None,
    "n_transactions": 0,
    "n_subscriptions": 0,
    "n_none": 0,
    "n_before_data": 0,
}


@dataclass(frozen=True)
class ChurnedByBranch:
    """The spells churned in ``[start, end]``, aggregated for every branch at once (:func:`churned_by_branch`).

    ``tree`` holds each branch's subtree and ``own`` the customers attached to the branch itself, each
    with the aggregates of :func:`churn_loss` (``n``, ``n_from_start``, ``revenue``, ``margin``, …);
    ``reasons`` holds, per branch subtree, the churned spells per reason code (``(unknown)`` without a
    recorded reason), as :func:`churnguard.metrics.reason_mix` counts them.
    """

    start: dt.date
    end: dt.date
    window_months: int
    money: _Money
    rules: ActivityRules
    tree: dict[str, dict[str, Any]]
    own: dict[str, dict[str, Any]]
    reasons: dict[str, dict[str, int]]

    def loss_report(self, branch: str, children: list[str], *, whole_company: bool = False) -> LossReport:
        """``churn_loss(branch=branch, by="branch")`` from the aggregates (without ``top_customers``).

        ``children`` are ``branch``'s child branches; ``whole_company`` reports ``branch`` as ``None``
        (the root's figures are the whole company's).  Warns as ``churn_loss`` does.
        """
        found: list[dict[str, Any]] = [{"part": "total", **self.tree.get(branch, _NO_CHURN)}]
        found += [{"part": "group", "grp": c, **self.tree[c]} for c in children if c in self.tree]
        if branch in self.own:
            found.append({"part": "group", "grp": branch, **self.own[branch]})
        return _loss_report(
            found,
            self.money,
            start=self.start,
            end=self.end,
            window_months=self.window_months,
            by="branch",
            branch=None if whole_company else branch,
            rules=self.rules,
        )

    def reason_counts(self, branch: str) -> dict[str, int]:
        """Churned spells per reason code in ``branch``'s subtree."""
        return dict(self.reasons.get(branch, {}))


def money_rule(store: Store, margin: float | None = None) -> _Money:
    """How :func:`churn_loss` turns lost revenue into profit loss for this store (``margin_source``)."""
    return _Money.choose(store, margin)


#: The columns of :func:`spell_facts_sql`.
SPELL_FACT_COLUMNS: tuple[str, ...] = (
    "branch_id",
    "start_date",
    "end_date",
    "first_spell",
    "reason",
    "revenue",
    "margin",
    "revenue_with_margin",
    "revenue_source",
    "before_data",
)


def spell_facts_sql(store: Store, rules: ActivityRules, window_months: int = 12) -> tuple[str, dict[str, Any]]:
    """SQL selecting one row per spell with what every branch's churn, loss and reason figures need.

    Columns (:data:`SPELL_FACT_COLUMNS`): the customer's ``branch_id`` (``NULL`` when it is not in
    ``branches``: such customers are in no branch scope), the spell's ``start_date``, ``end_date``
    (its churn date; ``NULL`` while active) and ``first_spell`` (:func:`churnguard.metrics.activity.spells_sql`);
    and for the churned spells of customers in a branch, as :func:`churn_loss` values them with a
    window of ``window_months`` months (W):

        revenue = Σ amount of the revenue transactions with max(d − W months, spell start − 1 day) < day(ts) ≤ d
                  (or the subscription fallback), d = end_date

    with ``margin``, ``revenue_with_margin``, ``revenue_source``, ``before_data`` (the window starts
    before the first transaction) and ``reason``: the reason code of the churn event recorded nearest
    to d within max(grace_days, 31) days (ties: the earlier event, then the smaller code), else
    ``(unknown)``.  None of it depends on a period: a period's figures filter and sum these rows.
    """
    spells, params = spells_sql(rules)
    near = int(max(rules.grace_days, 31))
    sql = f"""
    WITH spl AS ({spells}),
    sp AS MATERIALIZED (
      SELECT s.customer_id, s.spell_no AS k, s.start_date, s.end_date, s.first_spell, b.branch_id
      FROM spl s
      LEFT JOIN customers c ON c.customer_id = s.customer_id
      LEFT JOIN branches b ON b.branch_id = c.branch_id
    ), ch AS MATERIALIZED (
      SELECT customer_id, k, start_date AS spell_start, end_date AS churn_date
      FROM sp WHERE end_date IS NOT NULL AND branch_id IS NOT NULL
    ), ce AS (
      SELECT customer_id, k, reason_code FROM (
        SELECT ch.customer_id, ch.k, e.reason_code,
               row_number() OVER (PARTITION BY ch.customer_id, ch.k
                                  ORDER BY abs(e.churn_date - ch.churn_date), e.churn_date, e.reason_code) AS rn
        FROM ch JOIN churn_events e ON e.customer_id = ch.customer_id
        WHERE abs(e.churn_date - ch.churn_date) <= {near}
      ) nearest WHERE rn = 1
    ), win AS (
      SELECT customer_id, k, churn_date AS w_to, full_from, greatest(full_from, spell_start) AS w_from
      FROM (SELECT *, CAST(churn_date - to_months(CAST($months AS INTEGER)) AS DATE) + 1 AS full_from FROM ch) w0
    ), {_revenue_ctes(store, "rev", "win", "months")},
    first_day AS (SELECT CAST(min(ts) AS DATE) AS d FROM transactions)
    SELECT sp.branch_id, sp.start_date, sp.end_date, sp.first_spell,
           CASE WHEN win.k IS NOT NULL THEN coalesce(ce.reason_code, '(unknown)') END AS reason,
           rev.revenue, rev.margin, rev.revenue_with_margin, rev.revenue_source,
           rev.revenue_source = 'transactions' AND win.w_from < (SELECT d FROM first_day) AS before_data
    FROM sp
    LEFT JOIN win ON win.customer_id = sp.customer_id AND win.k = sp.k
    LEFT JOIN rev ON rev.customer_id = sp.customer_id AND rev.k = sp.k
    LEFT JOIN ce ON ce.customer_id = sp.customer_id AND ce.k = sp.k
    """
    params["months"] = window_months
    return sql, params


def churned_by_branch(
    engine: Store,
    *,
    facts: str,
    closure: str,
    start: dt.date,
    end: dt.date,
    rules: ActivityRules,
    money: _Money,
    window_months: int = 12,
) -> ChurnedByBranch:
    """Churn loss and the churn per reason of every branch subtree at once, from the spell facts.

    ``facts`` names a table of :func:`spell_facts_sql`'s rows (computed with ``window_months``) and
    ``closure`` one of ``branch_id, ancestor_id`` (:data:`churnguard.metrics.scope.CLOSURE_SQL`), both
    readable by ``engine``.  The spells churned in ``[start, end]`` are summed per customer's own branch
    and per branch subtree:

        lost_revenue(B) = Σ revenue over the spells of customers whose branch is B or below B

    so that ``churned_by_branch(...).loss_report(B, children of B)`` equals
    ``churn_loss(branch=B, by="branch")`` (without the largest losses), for every B.
    """
    aggregates = _AGGREGATES.strip()
    blanks = ", ".join(["0"] + ["NULL"] * 3 + ["0"] * 4)  # the aggregates after n, on the reason rows
    sql = f"""
    WITH per AS (
      SELECT branch_id, start_date < $start AS from_start, before_data, reason,
             revenue, margin, revenue_with_margin, revenue_source
      FROM {facts} WHERE branch_id IS NOT NULL AND end_date BETWEEN $start AND $end
    )
    SELECT 'tree' AS kind, cl.ancestor_id AS branch, NULL AS reason, {aggregates}
    FROM per JOIN {closure} cl ON cl.branch_id = per.branch_id GROUP BY cl.ancestor_id
    UNION ALL
    SELECT 'own', branch_id, NULL, {aggregates} FROM per GROUP BY branch_id
    UNION ALL
    SELECT 'reason', cl.ancestor_id, reason, count(*), {blanks}
    FROM per JOIN {closure} cl ON cl.branch_id = per.branch_id GROUP BY cl.ancestor_id, reason
    """
    cur = engine.execute(sql, {"start": start, "end": end})
    names = [d[0] for d in cur.description][3:]
    tree: dict[str, dict[str, Any]] = {}
    own: dict[str, dict[str, Any]] = {}
    reasons: dict[str, dict[str, int]] = {}
    for kind, branch, code, *values in cur.fetchall():
        if kind == "reason":
            reasons.setdefault(branch, {})[code] = int(values[0])
        else:
            (tree if kind == "tree" else own)[branch] = dict(zip(names, values, strict=True))
    return ChurnedByBranch(
        start=start,
        end=end,
        window_months=window_months,
        money=money,
        rules=rules,
        tree=tree,
        own=own,
        reasons=reasons,
    )
