"""The canonical data model: every table, column, type and rule in one place.

This module is the single source of truth.  Migrations create tables from it, ingestion
validates against it, ``churnguard tables`` reports on it and ``docs/data-model.md`` is
generated from it (``python -m churnguard.store.schema > docs/data-model.md``).

Column names are a contract that other tools rely on; extra attribute columns in a
user's file are allowed and kept beside the canonical ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from churnguard.errors import UnknownTableError
from churnguard.reasons import REASON_CODES, REASONS

# Logical kinds and the engine type each is stored as.
KIND_TYPES: dict[str, str] = {
    "id": "VARCHAR",
    "text": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "number": "DOUBLE",
    "integer": "INTEGER",
    "bool": "BOOLEAN",
}

KIND_EXAMPLES: dict[str, str] = {
    "id": "an identifier",
    "text": "text",
    "date": "a date like 2024-01-31",
    "timestamp": "a timestamp like 2024-01-31 13:45:00 (or a date)",
    "number": "a number like 12.5",
    "integer": "a whole number like 3",
    "bool": "a yes/no flag like true, false, yes, no, 1, 0",
}


@dataclass(frozen=True)
class Column:
    """One canonical column."""

    name: str
    kind: str
    required: bool
    description: str
    min_value: float | None = None
    max_value: float | None = None
    not_in_future: bool = False
    allowed: frozenset[str] | None = None
    references: tuple[str, str] | None = None  # (table, column)

    @property
    def sql_type(self) -> str:
        return KIND_TYPES[self.kind]


@dataclass(frozen=True)
class RangeWhen:
    """``column`` must lie in ``[low, high]`` on rows where ``when_column`` is ``when_value`` (any case)."""

    column: str
    when_column: str
    when_value: str
    low: float
    high: float


@dataclass(frozen=True)
class TableSchema:
    """One canonical table.

    ``key`` are the columns that identify a row: a second row with the same key in one
    file is an error, and ``--mode append`` skips rows whose key is already stored with
    identical values.  Tables without a key are event logs: an append skips rows that
    are already stored verbatim, so re-running a load adds nothing.
    """

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    time_column: str | None = None
    ordered: tuple[tuple[str, str], ...] = ()  # (earlier, later) column pairs
    ranges_when: tuple[RangeWhen, ...] = ()  # ranges that depend on another column's value
    parents: tuple[str, ...] = field(default=())

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _cid(ref: bool = True) -> Column:
    return Column(
        "customer_id",
        "id",
        True,
        "the customer",
        references=("customers", "customer_id") if ref else None,
    )


BRANCHES = TableSchema(
    "branches",
    "The organisation tree (head office → province → city) used for roll-ups, drill-down and access.",
    (
        Column("branch_id", "id", True, "unique branch identifier"),
        Column("name", "text", True, "display name"),
        Column(
            "parent_id",
            "id",
            False,
            "parent branch; empty for the head office (the root)",
            references=("branches", "branch_id"),
        ),
        Column("level", "integer", False, "depth in the tree: 0 = head office, 1 = province, …", min_value=0),
    ),
    key=("branch_id",),
)

CUSTOMERS = TableSchema(
    "customers",
    "One row per customer.",
    (
        Column("customer_id", "id", True, "unique customer identifier"),
        Column(
            "branch_id",
            "id",
            True,
            "the branch that owns the customer",
            references=("branches", "branch_id"),
        ),
        Column("signup_date", "date", True, "first day as a customer", not_in_future=True),
        Column("plan", "text", False, "current plan or product line"),
        Column("segment", "text", False, "customer segment (consumer, business, …)"),
        Column("owner_id", "id", False, "the account manager responsible"),
        Column("tier_override", "text", False, "a value tier set by hand (e.g. VIP), overriding the computed one"),
    ),
    key=("customer_id",),
    time_column="signup_date",
    parents=("branches",),
)

SUBSCRIPTIONS = TableSchema(
    "subscriptions",
    "Contracts and subscriptions; the basis of contractual churn.",
    (
        _cid(),
        Column("plan", "text", True, "the plan subscribed to"),
        Column("start_date", "date", True, "first day of the subscription", not_in_future=True),
        Column("end_date", "date", False, "last day; empty while the subscription is active"),
        Column("recurring_revenue", "number", False, "monthly recurring revenue (MRR)", min_value=0),
    ),
    key=("customer_id", "plan", "start_date"),
    time_column="start_date",
    ordered=(("start_date", "end_date"),),
    parents=("customers",),
)

TRANSACTIONS = TableSchema(
    "transactions",
    "Purchases, bills and payments.",
    (
        _cid(),
        Column("ts", "timestamp", True, "when it happened", not_in_future=True),
        Column("amount", "number", False, "money amount; empty when unknown (visit logs)", min_value=0),
        Column("margin", "number", False, "profit margin of the amount, in money (optional)"),
        Column("product", "text", False, "product, plan or item"),
    ),
    time_column="ts",
    parents=("customers",),
)

EVENTS = TableSchema(
    "events",
    "Usage and behaviour: logins, calls, traffic, visits.",
    (
        _cid(),
        Column("ts", "timestamp", True, "when it happened", not_in_future=True),
        Column("event_type", "text", True, "what happened (login, call, data_mb, …)"),
        Column("value", "number", False, "a measure of the event (minutes, MB, count)"),
    ),
    time_column="ts",
    parents=("customers",),
)

TICKETS = TableSchema(
    "tickets",
    "Service tickets: complaints, faults, requests.",
    (
        _cid(),
        Column("opened_at", "timestamp", True, "when the ticket was opened", not_in_future=True),
        Column("resolved_at", "timestamp", False, "when it was resolved; empty while open", not_in_future=True),
        Column("category", "text", False, "ticket category (billing, network, …)"),
        Column("satisfaction", "number", False, "satisfaction with the resolution, 1–5", min_value=1, max_value=5),
    ),
    time_column="opened_at",
    ordered=(("opened_at", "resolved_at"),),
    parents=("customers",),
)

SURVEYS = TableSchema(
    "surveys",
    "Experience surveys (NPS, CSAT).",
    (
        _cid(),
        Column("ts", "timestamp", True, "when the answer was given", not_in_future=True),
        Column("kind", "text", True, "NPS (score 0–10) or CSAT (score 1–5); other kinds are kept as they are"),
        Column("score", "number", True, "the answer's score", min_value=0, max_value=10),
        Column("comment", "text", False, "free-text comment"),
    ),
    time_column="ts",
    ranges_when=(RangeWhen("score", "kind", "NPS", 0, 10), RangeWhen("score", "kind", "CSAT", 1, 5)),
    parents=("customers",),
)

CHURN_EVENTS = TableSchema(
    "churn_events",
    "Recorded churn: who left, when, why and where to.",
    (
        _cid(),
        Column("churn_date", "date", True, "the day the customer left", not_in_future=True),
        Column("voluntary", "bool", False, "true: the customer chose to leave; false: non-payment, closure"),
        Column(
            "reason_code",
            "text",
            False,
            "reason code from the taxonomy (docs/data-model.md)",
            allowed=REASON_CODES,
        ),
        Column("destination", "text", False, "the competitor or alternative the customer went to"),
        Column("notes", "text", False, "free-text notes"),
    ),
    key=("customer_id", "churn_date"),
    time_column="churn_date",
    parents=("customers",),
)


#: Canonical tables in load order (parents before children).
TABLES: tuple[TableSchema, ...] = (
    BRANCHES,
    CUSTOMERS,
    SUBSCRIPTIONS,
    TRANSACTIONS,
    EVENTS,
    TICKETS,
    SURVEYS,
    CHURN_EVENTS,
)
_BY_NAME = {t.name: t for t in TABLES}


def table_schema(name: str) -> TableSchema:
    """Return the canonical schema of table ``name``."""
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(_BY_NAME)
        raise UnknownTableError(f'unknown table "{name}": expected one of {known}.') from None


def create_table_sql(table: TableSchema) -> str:
    """The ``CREATE TABLE`` statement for ``table`` (constraints are enforced by ingestion)."""
    cols = ",\n  ".join(f"{c.name} {c.sql_type}" for c in table.columns)
    return f"CREATE TABLE IF NOT EXISTS {table.name} (\n  {cols}\n)"


def render_markdown() -> str:
    """Render the data model as Markdown (the source of ``docs/data-model.md``)."""
    out = [
        "# Canonical data model",
        "",
        "Generated from `churnguard/store/schema.py` by `python -m churnguard.store.schema`; do not edit by hand.",
        "",
        "Extra columns in a loaded file are kept beside the canonical ones.",
        "",
    ]
    for t in TABLES:
        out += [f"## `{t.name}`", "", t.description, ""]
        if t.key:
            out += [f"Key: `({', '.join(t.key)})`.", ""]
        else:
            out += ["No key: an event log; re-loading the same rows with `--mode append` adds nothing.", ""]
        out += ["| column | type | required | meaning | rules |", "|---|---|---|---|---|"]
        for c in t.columns:
            rules = []
            if c.min_value is not None:
                rules.append(f"≥ {c.min_value:g}")
            if c.max_value is not None:
                rules.append(f"≤ {c.max_value:g}")
            if c.not_in_future:
                rules.append("not in the future")
            if c.references:
                rules.append(f"must exist in `{c.references[0]}.{c.references[1]}`")
            if c.allowed:
                rules.append("a reason code (below)")
            for a, b in t.ordered:
                if c.name == b:
                    rules.append(f"not before `{a}`")
            for r in t.ranges_when:
                if c.name == r.column:
                    rules.append(f"{r.low:g}–{r.high:g} where `{r.when_column}` is {r.when_value}")
            required = "yes" if c.required else "no"
            out.append(f"| `{c.name}` | {c.sql_type} | {required} | {c.description} | {'; '.join(rules)} |")
        out.append("")
    out += ["## Churn reason codes", "", "| code | en | zh-CN | meaning |", "|---|---|---|---|"]
    out += [f"| `{r.code}` | {r.en} | {r.zh} | {r.description} |" for r in REASONS]
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(render_markdown(), end="")
