"""The seeded demo simulator: determinism, the canonical contract, and the built-in causes of churn.

The causal tests measure each documented cause in the output tables with SQL, the way an
analyst would, so they also show that the signal is there to be found.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import churnguard
from churnguard.datasets.simulator import Simulation, simulate, simulate_to_dir
from churnguard.errors import ConfigError
from churnguard.reasons import REASON_CODES
from churnguard.store.schema import TABLES

N = 15_000
SEED = 11
LOAD_ORDER = [t.name for t in TABLES]
ARROW_TYPES = {
    "id": pa.string(),
    "text": pa.string(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "number": pa.float64(),
    "integer": pa.int32(),
    "bool": pa.bool_(),
}


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(N, seed=SEED)


@pytest.fixture(scope="module")
def db(sim: Simulation) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    for name, table in sim.tables.items():
        con.register(name, table)
    yield con
    con.close()


def one(db: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    return db.execute(sql).fetchone()


# ----------------------------------------------------------------------------- API and determinism
def test_tables_come_in_load_order_with_truth(sim: Simulation) -> None:
    assert list(sim.tables) == LOAD_ORDER
    assert (sim.seed, sim.start, sim.end) == (SEED, dt.date(2023, 1, 1), dt.date(2025, 12, 31))
    truth = json.loads(json.dumps(sim.truth))
    assert truth["customers"] == N
    assert truth["price_change"] == sim.truth["price_change"]
    assert truth["price_change"]["date"] == "2024-07-01"
    assert [(p["province"], p["start"], p["end"]) for p in truth["promotions"]] == [
        ("GD", "2023-11-01", "2024-04-30"),
        ("SC", "2025-04-01", "2025-06-30"),
    ]


def test_same_seed_gives_equal_tables_and_another_seed_does_not() -> None:
    a, b, c = simulate(3_000, seed=5), simulate(3_000, seed=5), simulate(3_000, seed=6)
    for name in LOAD_ORDER:
        assert a.tables[name].equals(b.tables[name]), name
    assert a.truth == b.truth
    for name in LOAD_ORDER[1:]:
        assert not a.tables[name].equals(c.tables[name]), name


def test_a_smaller_run_is_a_prefix_of_a_larger_one() -> None:
    small, large = simulate(2_000, seed=5), simulate(3_500, seed=5)
    for name in LOAD_ORDER[1:]:
        t = large.tables[name]
        head = t.filter(pa.compute.less_equal(t["customer_id"], "C0002000"))
        assert head.equals(small.tables[name]), name


def test_volumes_per_customer(sim: Simulation) -> None:
    rows = {name: t.num_rows for name, t in sim.tables.items()}
    assert rows["customers"] == N
    levels = pa.compute.value_counts(sim.tables["branches"]["level"]).to_pylist()
    assert sorted((v["values"], v["counts"]) for v in levels)[:2] == [(0, 1), (1, 5)]
    assert 80 * N <= rows["events"] <= 130 * N
    assert 25 * N <= rows["transactions"] <= 60 * N
    assert 0.25 * N <= rows["churn_events"] <= 0.6 * N


# ----------------------------------------------------------------------------- the canonical contract
@pytest.mark.parametrize("schema", TABLES, ids=lambda t: t.name)
def test_canonical_columns_and_types(sim: Simulation, schema) -> None:
    table = sim.tables[schema.name]
    assert tuple(table.column_names[: len(schema.columns)]) == schema.column_names
    for col in schema.columns:
        assert table.schema.field(col.name).type == ARROW_TYPES[col.kind], (schema.name, col.name)
        if col.required:
            assert table[col.name].null_count == 0, (schema.name, col.name)
    extras = table.column_names[len(schema.columns) :]
    assert len(extras) <= 3


def test_the_loader_accepts_every_table(sim: Simulation, tmp_path: Path) -> None:
    store = churnguard.connect(tmp_path / "churn.duckdb")
    try:
        specs = [churnguard.LoadSpec(name, table) for name, table in sim.tables.items()]
        results = churnguard.ingest_tables(store, specs, as_of=sim.end)
        assert {r.table: r.rows_added for r in results} == {n: t.num_rows for n, t in sim.tables.items()}
    finally:
        store.close()


def test_nothing_after_the_end(sim: Simulation, db: duckdb.DuckDBPyConnection) -> None:
    assert sim.end < dt.date.today()
    for name, table in sim.tables.items():
        for field in table.schema:
            if pa.types.is_date(field.type) or pa.types.is_timestamp(field.type):
                (latest,) = one(db, f"SELECT max({field.name})::DATE FROM {name}")
                assert latest is None or latest <= sim.end, (name, field.name, latest)


RULES = {
    "negative amount": "SELECT count(*) FROM transactions WHERE amount < 0 OR margin < 0",
    "negative revenue": "SELECT count(*) FROM subscriptions WHERE recurring_revenue < 0",
    "subscription ends before it starts": "SELECT count(*) FROM subscriptions WHERE end_date < start_date",
    "two open subscriptions": "SELECT count(*) FROM (SELECT customer_id FROM subscriptions WHERE end_date IS NULL "
    "GROUP BY 1 HAVING count(*) > 1)",
    "overlapping subscriptions": "SELECT count(*) FROM (SELECT start_date, lag(end_date) OVER w prev FROM "
    "subscriptions WINDOW w AS (PARTITION BY customer_id ORDER BY start_date)) WHERE start_date <= prev",
    "open subscription before an ended one": "SELECT count(*) FROM (SELECT end_date, lead(start_date) OVER w nxt "
    "FROM subscriptions WINDOW w AS (PARTITION BY customer_id ORDER BY start_date)) WHERE end_date IS NULL "
    "AND nxt IS NOT NULL",
    "ticket resolved before opened": "SELECT count(*) FROM tickets WHERE resolved_at < opened_at",
    "satisfaction out of 1..5 or on an open ticket": "SELECT count(*) FROM tickets WHERE satisfaction NOT BETWEEN "
    "1 AND 5 OR satisfaction <> round(satisfaction) OR (resolved_at IS NULL AND satisfaction IS NOT NULL)",
    "survey not NPS 0..10": "SELECT count(*) FROM surveys WHERE kind <> 'NPS' OR score NOT BETWEEN 0 AND 10",
    "orphan branch": "SELECT count(*) FROM branches WHERE parent_id IS NOT NULL AND parent_id NOT IN "
    "(SELECT branch_id FROM branches)",
    "bad tree levels": "SELECT count(*) FROM branches b LEFT JOIN branches p ON b.parent_id = p.branch_id "
    "WHERE b.level <> coalesce(p.level + 1, 0)",
    "customer not in a city": "SELECT count(*) FROM customers c LEFT JOIN branches b USING (branch_id) "
    "WHERE b.level IS DISTINCT FROM 2",
    "duplicate customer": "SELECT count(*) - count(DISTINCT customer_id) FROM customers",
    "duplicate subscription key": "SELECT count(*) FROM (SELECT customer_id, plan, start_date FROM subscriptions "
    "GROUP BY ALL HAVING count(*) > 1)",
    "duplicate churn key": "SELECT count(*) FROM (SELECT customer_id, churn_date FROM churn_events GROUP BY ALL "
    "HAVING count(*) > 1)",
    "unknown reason": f"SELECT count(*) FROM churn_events WHERE reason_code IS NULL OR reason_code NOT IN "
    f"({', '.join(repr(c) for c in sorted(REASON_CODES))})",
    "voluntary flag disagrees with the reason": "SELECT count(*) FROM churn_events "
    "WHERE voluntary <> (reason_code <> 'involuntary')",
    "churn without the subscription ending that day": "SELECT count(*) FROM churn_events c WHERE NOT EXISTS "
    "(SELECT 1 FROM subscriptions s WHERE s.customer_id = c.customer_id AND s.end_date = c.churn_date)",
    "subscription before sign-up": "SELECT count(*) FROM subscriptions s JOIN customers c USING (customer_id) "
    "WHERE s.start_date < c.signup_date",
    "payment without its bill": "SELECT count(*) FROM transactions p WHERE kind = 'payment' AND NOT EXISTS "
    "(SELECT 1 FROM transactions b WHERE b.kind = 'bill' AND b.customer_id = p.customer_id "
    "AND b.due_date = p.due_date AND b.paid_at = p.ts AND b.ts <= p.ts AND b.amount = p.amount)",
    "bill without a due date": "SELECT count(*) FROM transactions WHERE kind = 'bill' AND (due_date IS NULL "
    "OR due_date < ts::DATE OR paid_at < ts)",
    "unknown kind": "SELECT count(*) FROM transactions WHERE kind NOT IN ('bill', 'payment', 'topup')",
}


@pytest.mark.parametrize("rule", RULES)
def test_rule_holds(db: duckdb.DuckDBPyConnection, rule: str) -> None:
    assert one(db, RULES[rule]) == (0,)


@pytest.mark.parametrize("child", [t.name for t in TABLES if t.parents == ("customers",)])
def test_every_child_row_has_its_customer(db: duckdb.DuckDBPyConnection, child: str) -> None:
    assert one(db, f"SELECT count(*) FROM {child} WHERE customer_id NOT IN (SELECT customer_id FROM customers)") == (0,)


# ----------------------------------------------------------------------------- the built-in causes
def test_unresolved_tickets_raise_churn(db: duckdb.DuckDBPyConnection) -> None:
    """Churn within 90 days of a ticket: unresolved (or > 7 days) versus solved within 2 days."""
    slow, fast = one(
        db,
        """
        WITH t AS (
            SELECT resolved_at IS NULL OR resolved_at > opened_at + INTERVAL 7 DAY AS slow,
                   resolved_at <= opened_at + INTERVAL 2 DAY AS fast,
                   EXISTS (SELECT 1 FROM churn_events c WHERE c.customer_id = t.customer_id
                           AND c.churn_date > opened_at AND c.churn_date <= opened_at + INTERVAL 90 DAY) AS churned
            FROM tickets t WHERE opened_at < DATE '2025-09-01')
        SELECT avg(churned::INT) FILTER (WHERE slow), avg(churned::INT) FILTER (WHERE fast) FROM t
        """,
    )
    assert slow > 1.5 * fast


def test_competitor_promotion_raises_price_and_competitor_churn(sim: Simulation, db: duckdb.DuckDBPyConnection):
    for promo in sim.truth["promotions"]:
        rows = db.execute(
            f"""
            WITH cust AS (SELECT customer_id, split_part(branch_id, '-', 1) = '{promo["province"]}' AS hit
                          FROM customers),
            base AS (SELECT hit, count(DISTINCT customer_id) n FROM subscriptions JOIN cust USING (customer_id)
                     WHERE start_date < DATE '{promo["start"]}'
                       AND (end_date IS NULL OR end_date >= DATE '{promo["start"]}') GROUP BY hit),
            lost AS (SELECT hit, count(*) c, avg((reason_code IN ('price', 'competitor'))::INT) pc,
                            avg((destination = '{promo["competitor"]}')::INT)
                              FILTER (WHERE reason_code = 'competitor') dest
                     FROM churn_events JOIN cust USING (customer_id)
                     WHERE churn_date BETWEEN DATE '{promo["start"]}' AND DATE '{promo["end"]}' GROUP BY hit)
            SELECT hit, c / n, pc, dest FROM base JOIN lost USING (hit)
            """
        ).fetchall()
        got = {hit: (rate, pc, dest) for hit, rate, pc, dest in rows}
        (rate_in, pc_in, dest_in), (rate_out, pc_out, dest_out) = got[True], got[False]
        assert rate_in > 1.3 * rate_out, promo["name"]
        assert pc_in > pc_out + 0.15, promo["name"]
        assert dest_in > 0.75 > dest_out, promo["name"]


def test_usage_falls_in_the_months_before_churn(db: duckdb.DuckDBPyConnection) -> None:
    """Daily data use in the 60 days before a voluntary churn versus days 240–120 before it."""
    ratio, share_lower = one(
        db,
        """
        WITH c AS (SELECT customer_id, min(churn_date) d FROM churn_events
                   WHERE voluntary AND reason_code <> 'natural' GROUP BY 1),
        cc AS (SELECT c.* FROM c JOIN customers USING (customer_id)
               WHERE signup_date < d - 300 AND d >= DATE '2023-01-01' + 300),
        e AS (SELECT customer_id,
                     coalesce(sum(value) FILTER (WHERE ts >= d - 60 AND ts < d), 0) / 60 AS recent,
                     coalesce(sum(value) FILTER (WHERE ts >= d - 240 AND ts < d - 120), 0) / 120 AS earlier
              FROM events JOIN cc USING (customer_id) WHERE event_type = 'data_mb' GROUP BY 1)
        SELECT sum(recent) / sum(earlier), avg((recent < earlier)::INT) FROM e
        """,
    )
    assert ratio < 0.7
    assert share_lower > 0.7


def test_price_change_raises_price_churn_on_its_plan(sim: Simulation, db: duckdb.DuckDBPyConnection) -> None:
    pc = sim.truth["price_change"]
    day = dt.date.fromisoformat(pc["date"])
    before, after = day - dt.timedelta(days=182), day + dt.timedelta(days=182)
    promo_provinces = ", ".join(repr(p["province"]) for p in sim.truth["promotions"])
    counts = dict(
        db.execute(
            f"""
            SELECT c.churn_date >= DATE '{day}', count(*) FROM churn_events c
            JOIN subscriptions s ON s.customer_id = c.customer_id AND s.end_date = c.churn_date
            JOIN customers cu ON cu.customer_id = c.customer_id
            WHERE s.plan = '{pc["plan"]}' AND c.reason_code = 'price'
              AND split_part(cu.branch_id, '-', 1) NOT IN ({promo_provinces})
              AND c.churn_date >= DATE '{before}' AND c.churn_date < DATE '{after}'
            GROUP BY 1
            """
        ).fetchall()
    )
    assert counts[True] > 2.5 * counts[False]
    fees = dict(
        db.execute(
            f"SELECT ts >= DATE '{day}', min(amount) FROM transactions "
            f"WHERE kind = 'bill' AND product = '{pc['plan']}' GROUP BY 1"
        ).fetchall()
    )
    assert (fees[False], fees[True]) == (pc["old_fee"], pc["new_fee"])


def test_involuntary_churners_had_unpaid_bills(db: duckdb.DuckDBPyConnection) -> None:
    rows = db.execute(
        """
        SELECT reason_code = 'involuntary',
               count(*),
               min(unpaid),
               avg(unpaid)
        FROM (SELECT c.reason_code,
                     (SELECT count(*) FROM transactions t WHERE t.customer_id = c.customer_id AND t.kind = 'bill'
                      AND t.paid_at IS NULL AND t.ts < c.churn_date) AS unpaid
              FROM churn_events c)
        GROUP BY 1
        """
    ).fetchall()
    got = {invol: (n, least, mean) for invol, n, least, mean in rows}
    n, least, mean = got[True]
    assert n > 50 and least >= 2
    assert got[False][2] < 0.2 * mean


def test_some_churners_come_back(db: duckdb.DuckDBPyConnection) -> None:
    back, churners, shortest = one(
        db,
        """
        SELECT count(DISTINCT c.customer_id), (SELECT count(DISTINCT customer_id) FROM churn_events),
               min(s.start_date - c.churn_date)
        FROM churn_events c JOIN subscriptions s ON s.customer_id = c.customer_id AND s.start_date > c.churn_date
        """,
    )
    assert 0.04 < back / churners < 0.25
    assert shortest >= 30


def test_prepaid_churns_more_than_contract_plans(db: duckdb.DuckDBPyConnection) -> None:
    rates = dict(
        db.execute(
            """
            SELECT s.plan, count(c.customer_id) / sum(least(coalesce(s.end_date, DATE '2025-12-31'), DATE '2025-12-31')
                   - greatest(s.start_date, DATE '2023-01-01') + 1) * 30.4375
            FROM subscriptions s LEFT JOIN churn_events c ON c.customer_id = s.customer_id AND c.churn_date = s.end_date
            GROUP BY 1
            """
        ).fetchall()
    )
    assert rates["prepaid"] > 1.8 * rates["family"]
    assert rates["prepaid"] > rates["smart"] > rates["family"]


# ----------------------------------------------------------------------------- writing to a folder
def _digests(paths: dict[str, list[Path]]) -> dict[str, list[str]]:
    return {name: [hashlib.sha256(p.read_bytes()).hexdigest() for p in files] for name, files in paths.items()}


def test_simulate_to_dir_writes_the_rows_of_simulate(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    paths = simulate_to_dir(
        tmp_path / "a", 5_500, seed=3, chunk_customers=2_000, progress=lambda d, n: seen.append((d, n))
    )
    assert seen == [(2_000, 5_500), (4_000, 5_500), (5_500, 5_500)]
    expected = simulate(5_500, seed=3)
    assert [p.relative_to(tmp_path / "a").as_posix() for p in paths["events"]] == [
        f"events/part-{i:05d}.parquet" for i in range(3)
    ]
    assert len(paths["branches"]) == 1
    for name, files in paths.items():
        assert pa.concat_tables(pq.read_table(f) for f in files).equals(expected.tables[name]), name
    con = duckdb.connect()
    n, ts_type = con.execute(
        f"SELECT count(*), any_value(typeof(ts)) FROM read_parquet('{tmp_path / 'a' / 'events'}/*.parquet')"
    ).fetchone()
    assert (n, ts_type) == (expected.tables["events"].num_rows, "TIMESTAMP")
    unit = pq.ParquetFile(paths["events"][0]).schema_arrow.field("ts").type.unit
    assert unit == "us"
    assert json.loads((tmp_path / "a" / "truth.json").read_text()) == json.loads(json.dumps(expected.truth))
    again = simulate_to_dir(tmp_path / "b", 5_500, seed=3, chunk_customers=2_000)
    assert _digests(again) == _digests(paths)


def test_a_parquet_folder_loads_into_the_store(tmp_path: Path) -> None:
    paths = simulate_to_dir(tmp_path / "out", 2_500, seed=4, chunk_customers=1_000)
    store = churnguard.connect(tmp_path / "churn.duckdb")
    try:
        specs = [churnguard.LoadSpec(name, tmp_path / "out" / name) for name in paths]
        results = churnguard.ingest_tables(store, specs, as_of=dt.date(2025, 12, 31))
        assert {r.table: r.rows_added for r in results}["customers"] == 2_500
    finally:
        store.close()


def test_csv_output_reads_back(tmp_path: Path) -> None:
    paths = simulate_to_dir(tmp_path, 1_500, seed=2, fmt="csv", chunk_customers=1_000)
    expected = simulate(1_500, seed=2)
    con = duckdb.connect()
    for name, files in paths.items():
        assert [f.suffix for f in files] == [".csv"] * len(files)
        (n,) = con.execute(f"SELECT count(*) FROM read_csv({[str(f) for f in files]}, header = true)").fetchone()
        assert n == expected.tables[name].num_rows, name


def test_rewriting_a_folder_replaces_its_parts(tmp_path: Path) -> None:
    simulate_to_dir(tmp_path, 2_500, chunk_customers=1_000)
    paths = simulate_to_dir(tmp_path, 1_200, chunk_customers=1_000)
    assert sorted(p.name for p in (tmp_path / "events").iterdir()) == [p.name for p in paths["events"]]


# ----------------------------------------------------------------------------- arguments
def test_a_custom_period() -> None:
    s = simulate(1_000, seed=1, start=dt.date(2020, 3, 15), end=dt.date(2021, 2, 28))
    assert s.truth["months"] == 12
    con = duckdb.connect()
    con.register("events", s.tables["events"])
    assert con.execute("SELECT min(ts)::DATE, max(ts)::DATE FROM events").fetchone() >= (dt.date(2020, 3, 15),)
    assert con.execute("SELECT max(ts)::DATE FROM events").fetchone()[0] <= dt.date(2021, 2, 28)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"customers": 0}, "customers"),
        ({"seed": -1}, "seed"),
        ({"start": dt.date(2024, 1, 1), "end": dt.date(2024, 3, 31)}, "at least 6"),
        ({"end": dt.date.today()}, "in the past"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        simulate(**{"customers": 100, **kwargs})


def test_rejects_an_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="parquet"):
        simulate_to_dir(tmp_path, 100, fmt="xlsx")  # type: ignore[arg-type]
