"""ABC value tiers (ABC 分类): A = key accounts, B = the next, C = the rest, docs/segments.md.

Value (``basis``)
    ``margin`` (default)
        Σ margin of the customer's revenue transactions in the trailing ``window_days`` (365)
        days up to ``w_to`` (the as-of date, or a churned customer's churn date;
        :mod:`churnguard.segments.store`).  0 for a customer with no revenue there; unknown
        (unranked) for one whose revenue rows carry no margin.
    ``revenue``
        Σ amount of the same rows (0 when there are none).
    ``clv``
        ``customer_value.clv`` as written by ``churnguard clv score``; customers without one
        are unranked.

Ranking
    The ranked customers are the population (active, or churned within the window) less those
    with a ``customers.tier_override`` (they keep it; reported separately) and those whose
    value is unknown.  They are ordered by value descending, ties by ``customer_id``: rank
    ``k = 1 … n``, cumulative value before the customer ``V_<k = Σ_{j<k} v_j``, total ``V``.

``by="count"`` (default a_share = 0.15, b_share = 0.25)
    A: ``k ≤ round(a_share · n)``;  B: ``k ≤ round((a_share + b_share) · n)``;  C: the rest.
``by="value"`` (Pareto; default a_share = 0.70, b_share = 0.20)
    A: ``V_<k < a_share · V`` — the fewest top customers that together cover the first
    ``a_share`` of value (the customer who crosses the line is in A);
    B: ``V_<k < (a_share + b_share) · V``;  C: the rest.  Needs ``V > 0``.

The thresholds follow the field's variants (field notes B3.2): A ≈ top 10–20 % of customers,
or the customers making the first 70–80 % of value; none is canonical, so both are options.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from churnguard.errors import ConfigError
from churnguard.metrics.activity import ActivityRules, rules_for
from churnguard.segments.store import population_sql
from churnguard.store.connection import Store

Basis = Literal["margin", "revenue", "clv"]
By = Literal["count", "value"]
BASES: tuple[str, ...] = ("margin", "revenue", "clv")
BYS: tuple[str, ...] = ("count", "value")
#: Default (a_share, b_share) per ``by``.
DEFAULT_SHARES: dict[str, tuple[float, float]] = {"count": (0.15, 0.25), "value": (0.70, 0.20)}


@dataclass(frozen=True)
class AbcReport:
    """Each tier's share of customers and of value.

    Attributes
    ----------
    as_of, basis, by, a_share, b_share, window_days, branch : the options used.
    customers : ranked customers (n);  value : their total value V.
    rows : per tier A, B, C: ``tier, customers, share_customers, active, value, share_value,
        min_value`` (the smallest value in the tier: the cut-off).
    overrides : per hand-set tier: ``tier, customers, value`` (not in the shares above).
    unranked : customers of the population whose value is unknown.
    """

    as_of: dt.date
    basis: str
    by: str
    a_share: float
    b_share: float
    window_days: int
    branch: str | None
    customers: int
    value: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    unranked: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat()
        return d


def check_options(basis: str, by: str, a_share: float | None, b_share: float | None) -> tuple[float, float]:
    """Validate the options; return ``(a_share, b_share)`` with the defaults of ``by`` filled in."""
    if basis not in BASES:
        raise ConfigError(f'--basis: expected one of {", ".join(BASES)}, got "{basis}".')
    if by not in BYS:
        raise ConfigError(f'--by: expected count or value, got "{by}".')
    a = DEFAULT_SHARES[by][0] if a_share is None else float(a_share)
    b = DEFAULT_SHARES[by][1] if b_share is None else float(b_share)
    if not (0 < a < 1 and 0 <= b < 1 and a + b <= 1):
        raise ConfigError(
            f"--a-share and --b-share: expected 0 < a < 1, 0 ≤ b < 1 and a + b ≤ 1, got a = {a}, b = {b}."
        )
    return a, b


def abc_sql(
    store: Store,
    rules: ActivityRules,
    *,
    basis: str = "margin",
    a_share: float | None = None,
    b_share: float | None = None,
    by: str = "count",
    window_days: int = 365,
    branch: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """SQL (and parameters), one row per customer of the population.

    Columns: ``customer_id, active, value, override, tier`` — ``tier`` is the computed tier
    (NULL for overridden or unvalued customers), ``override`` the trimmed ``tier_override``.
    """
    a, b = check_options(basis, by, a_share, b_share)
    base, params = population_sql(store, rules, window_days=window_days, branch=branch)
    if basis == "margin":
        value = "CASE WHEN b.frequency = 0 THEN 0 WHEN b.n_margin > 0 THEN b.margin END"
        extra = ""
    elif basis == "revenue":
        value = "b.monetary"
        extra = ""
    else:
        value = "cv.clv"
        extra = (
            "LEFT JOIN (SELECT customer_id, max(clv) AS clv FROM customer_value GROUP BY 1) cv "
            "ON cv.customer_id = b.customer_id"
        )
    if by == "count":
        tier = """CASE WHEN rk <= round($seg_a * n) THEN 'A'
                       WHEN rk <= round(($seg_a + $seg_b) * n) THEN 'B' ELSE 'C' END"""
    else:
        tier = """CASE WHEN before < $seg_a * total THEN 'A'
                       WHEN before < ($seg_a + $seg_b) * total THEN 'B' ELSE 'C' END"""
    sql = f"""{base},
    v AS (
      SELECT b.customer_id, b.active, CAST({value} AS DOUBLE) AS value,
             nullif(trim(c.tier_override), '') AS override
      FROM base b JOIN customers c ON c.customer_id = b.customer_id {extra}
    ), rk AS (
      SELECT customer_id,
             row_number() OVER w AS rk,
             count(*) OVER () AS n,
             sum(value) OVER () AS total,
             coalesce(sum(value) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
      FROM v WHERE override IS NULL AND value IS NOT NULL
      WINDOW w AS (ORDER BY value DESC, customer_id)
    )
    SELECT v.customer_id, v.active, v.value, v.override, rk.total,
           CASE WHEN rk.customer_id IS NOT NULL THEN {tier} END AS tier
    FROM v LEFT JOIN rk ON rk.customer_id = v.customer_id"""
    return sql, {**params, "seg_a": a, "seg_b": b}


def abc_tiers(
    store: Store,
    *,
    as_of: dt.date | None = None,
    basis: str = "margin",
    a_share: float | None = None,
    b_share: float | None = None,
    by: str = "count",
    window_days: int = 365,
    branch: str | None = None,
    rules: ActivityRules | None = None,
) -> AbcReport:
    """Rank customers by value and cut them into A, B and C tiers.

    Parameters
    ----------
    store : the store.
    as_of : the day the tiers describe (default: the data set's as-of date).
    basis : ``margin`` (trailing margin), ``revenue`` (trailing revenue) or ``clv``.
    a_share, b_share : the tier sizes: shares of customers (``by="count"``, default 0.15 and
        0.25) or of cumulative value (``by="value"``, default 0.70 and 0.20).
    by : ``count`` or ``value`` (see the module docstring for the exact cut rules).
    window_days : the trailing window of the margin and revenue bases.
    branch : rank within this branch's subtree only.
    rules : the churn rules that decide who is active (default: the store's).

    Returns
    -------
    AbcReport : per tier ``share_customers = n_t / n`` and ``share_value = V_t / V``.

    Raises
    ------
    ConfigError : a bad option; no margin (or no CLV) recorded for the basis asked for; by value
        with a total value ≤ 0.
    """
    a, b = check_options(basis, by, a_share, b_share)
    rules = rules or rules_for(store, as_of=as_of)
    sql, params = abc_sql(
        store, rules, basis=basis, a_share=a, b_share=b, by=by, window_days=window_days, branch=branch
    )
    got = store.execute(
        f"""
        SELECT coalesce(tier, CASE WHEN override IS NOT NULL THEN 'override:' || override ELSE '-' END) AS k,
               count(*), count(*) FILTER (WHERE active), sum(value), min(value), max(total)
        FROM ({sql}) GROUP BY 1
        """,
        params,
    ).fetchall()
    by_k = {r[0]: r for r in got}
    ranked = [by_k[t] for t in ("A", "B", "C") if t in by_k]
    n = sum(int(r[1]) for r in ranked)
    total = float(sum(r[3] or 0 for r in ranked))
    _check_values(basis, by, n, total, int(by_k.get("-", (None, 0))[1]))
    rows = []
    for t in ("A", "B", "C"):
        r = by_k.get(t, (t, 0, 0, 0.0, None, None))
        v = float(r[3] or 0)
        rows.append(
            {
                "tier": t,
                "customers": int(r[1]),
                "share_customers": round(r[1] / n, 6) if n else None,
                "active": int(r[2]),
                "value": round(v, 2),
                "share_value": round(v / total, 6) if total else None,
                "min_value": None if r[4] is None else round(float(r[4]), 2),
            }
        )
    overrides = [
        {"tier": k.removeprefix("override:"), "customers": int(r[1]), "value": round(float(r[3] or 0), 2)}
        for k, r in sorted(by_k.items())
        if k.startswith("override:")
    ]
    return AbcReport(
        as_of=rules.as_of,  # type: ignore[arg-type]
        basis=basis,
        by=by,
        a_share=a,
        b_share=b,
        window_days=window_days,
        branch=branch,
        customers=n,
        value=round(total, 2),
        rows=rows,
        overrides=overrides,
        unranked=int(by_k.get("-", (None, 0))[1]),
    )


def _check_values(basis: str, by: str, n: int, total: float, unranked: int) -> None:
    if n == 0 and unranked > 0:
        if basis == "clv":
            raise ConfigError(
                "ABC tiers by CLV: no customer has a CLV in customer_value. Likely causes: 1. CLV has not been "
                "scored yet — run `churnguard clv score` first; 2. use --basis margin or --basis revenue."
            )
        raise ConfigError(
            "ABC tiers by margin: no revenue transaction in the window carries a margin. "
            "Fix: load transactions with a margin column, or use --basis revenue."
        )
    if by == "value" and n and total <= 0:
        raise ConfigError(
            f"ABC tiers by value share: the total {basis} of the ranked customers is {total:.2f}; "
            "cumulative shares need a positive total. Fix: use --by count."
        )
