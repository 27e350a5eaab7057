"""Who was a customer when: activity spells, the basis of every churn count.

A *spell* is one unbroken stretch as a customer: ``[start_date, end_date]``, both days
included, ``end_date`` empty while it lasts.  A customer who leaves and comes back has two
spells; the first spell's start is when they became a customer (*new*), a later spell's start
is a *reactivation*.  The spell's ``end_date`` is its **churn date** (the last active day).

Contractual data (subscriptions)
    Subscriptions are merged into spells: a subscription that starts no later than
    ``grace_days`` after the latest end so far continues the spell (a renewal, a plan change).
    A spell ends on the end date of its last subscription — once the grace period has passed
    by the as-of date, or at once where ``churn_events`` records the churn (within the grace
    period of that end); until then the customer may still renew and counts as active.

Non-contractual data (transactions, or events)
    Activity days are merged into spells: a gap longer than ``inactivity_days`` between two
    activity days starts a new spell.  A spell ends ``inactivity_days`` after its last activity
    (the day the customer is declared churned), once that day is on or before the as-of date.

Everything runs in the engine as one SQL statement (window functions: gaps and islands).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from churnguard.errors import ConfigError
from churnguard.store.connection import Store

Definition = Literal["contractual", "non_contractual"]
DEFINITIONS: tuple[str, ...] = ("contractual", "non_contractual")
AS_OF_KEYS = ("dataset_as_of",)


@dataclass(frozen=True)
class ActivityRules:
    """How churn is defined for a store (docs/metrics.md, "Churned customer").

    Attributes
    ----------
    definition : ``contractual`` (subscriptions end) or ``non_contractual`` (inactivity).
    grace_days : contractual: days after a subscription ends within which a new one is a renewal.
    inactivity_days : non-contractual: days without activity after which a customer has churned.
    activity_table : non-contractual: ``transactions`` (default) or ``events``.
    as_of : the last day the data describe; spells whose churn is not yet certain by then are open.
    """

    definition: Definition = "contractual"
    grace_days: int = 30
    inactivity_days: int = 90
    activity_table: str = "transactions"
    as_of: dt.date | None = None

    def __post_init__(self) -> None:
        if self.definition not in DEFINITIONS:
            raise ConfigError(f'churn definition: expected one of {", ".join(DEFINITIONS)}, got "{self.definition}".')
        if self.grace_days < 0 or self.inactivity_days < 1:
            raise ConfigError(
                f"grace_days must be ≥ 0 and inactivity_days ≥ 1, got {self.grace_days} and {self.inactivity_days}."
            )
        if self.activity_table not in ("transactions", "events"):
            raise ConfigError(f'activity table: expected transactions or events, got "{self.activity_table}".')


def rules_for(store: Store, **overrides: object) -> ActivityRules:
    """The store's rules: its data set's churn definition and as-of date, with ``overrides`` applied.

    ``None`` values in ``overrides`` are ignored.  Without a recorded definition, a store with
    subscriptions is contractual, else non-contractual.  Without a recorded as-of date, the
    latest date in the data is used.
    """
    values = {k: v for k, v in overrides.items() if v is not None}
    if "definition" not in values:
        recorded = store.get_meta("churn_definition")
        if recorded in DEFINITIONS:
            values["definition"] = recorded
        else:
            has_subs = store.execute("SELECT count(*) > 0 FROM subscriptions").fetchone()[0]
            values["definition"] = "contractual" if has_subs else "non_contractual"
    if "as_of" not in values:
        values["as_of"] = data_as_of(store)
    return ActivityRules(**values)  # type: ignore[arg-type]


def data_as_of(store: Store) -> dt.date:
    """The last day the store's data describe: recorded by the data set, else the latest date in the data."""
    for key in AS_OF_KEYS:
        recorded = store.get_meta(key)
        if recorded:
            return dt.date.fromisoformat(recorded)
    row = store.execute(
        """
        SELECT greatest(
          (SELECT max(CAST(ts AS DATE)) FROM transactions),
          (SELECT max(CAST(ts AS DATE)) FROM events),
          (SELECT max(greatest(start_date, coalesce(end_date, start_date))) FROM subscriptions),
          (SELECT max(churn_date) FROM churn_events))
        """
    ).fetchone()[0]
    return row or dt.datetime.now(dt.UTC).date()


def spells_sql(rules: ActivityRules) -> tuple[str, dict[str, object]]:
    """SQL (and its parameters) selecting ``customer_id, spell_no, start_date, end_date, first_spell``."""
    as_of = rules.as_of or dt.datetime.now(dt.UTC).date()
    if rules.definition == "contractual":
        sql = """
        WITH s AS (
          SELECT customer_id, start_date, coalesce(end_date, DATE '9999-12-31') AS end_date FROM subscriptions
        ), o AS (
          SELECT *, max(end_date) OVER (PARTITION BY customer_id ORDER BY start_date, end_date
                                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
          FROM s
        ), f AS (
          SELECT *, sum(CASE WHEN prev_end IS NULL OR start_date > prev_end + CAST($grace AS INTEGER) THEN 1 ELSE 0 END)
                 OVER (PARTITION BY customer_id ORDER BY start_date, end_date ROWS UNBOUNDED PRECEDING) AS spell_no
          FROM o
        ), g AS (
          SELECT customer_id, spell_no, min(start_date) AS start_date, max(end_date) AS end_date FROM f GROUP BY ALL
        )
        SELECT customer_id, spell_no, start_date,
               CASE WHEN end_date + CAST($grace AS INTEGER) <= $as_of
                      OR (end_date <= $as_of AND EXISTS (
                            SELECT 1 FROM churn_events e WHERE e.customer_id = g.customer_id
                            AND e.churn_date <= $as_of  -- nothing after the as-of date is known
                            AND e.churn_date BETWEEN g.end_date - CAST($grace AS INTEGER)
                                                 AND g.end_date + CAST($grace AS INTEGER)))
                    THEN end_date END AS end_date,
               spell_no = 1 AS first_spell
        FROM g WHERE start_date <= $as_of
        """
        return sql, {"grace": rules.grace_days, "as_of": as_of}
    table = rules.activity_table
    sql = f"""
        WITH d AS (
          SELECT DISTINCT customer_id, CAST(ts AS DATE) AS day FROM {table} WHERE CAST(ts AS DATE) <= $as_of
        ), o AS (
          SELECT *, lag(day) OVER (PARTITION BY customer_id ORDER BY day) AS prev_day FROM d
        ), f AS (
          SELECT *, sum(CASE WHEN prev_day IS NULL OR day - prev_day > $window THEN 1 ELSE 0 END)
                 OVER (PARTITION BY customer_id ORDER BY day ROWS UNBOUNDED PRECEDING) AS spell_no
          FROM o
        ), g AS (
          SELECT customer_id, spell_no, min(day) AS start_date, max(day) AS last_day FROM f GROUP BY ALL
        )
        SELECT customer_id, spell_no, start_date,
               CASE WHEN last_day + CAST($window AS INTEGER) <= $as_of
                    THEN last_day + CAST($window AS INTEGER) END AS end_date,
               spell_no = 1 AS first_spell
        FROM g
    """
    return sql, {"window": rules.inactivity_days, "as_of": as_of}


SPELLS_TABLE = "_cg_spells"


def materialise_spells(store: Store, rules: ActivityRules) -> str:
    """Compute the spells into a temp table (replacing an earlier one); return its name."""
    sql, params = spells_sql(rules)
    store.execute(f"CREATE OR REPLACE TEMP TABLE {SPELLS_TABLE} AS {sql}", params)
    return SPELLS_TABLE
