"""The seeded demo simulator: a telecom operator whose churn has known, built-in causes.

A head office, five provinces and thirteen cities; five plans (prepaid, smart, unlimited,
family, business) with monthly fees; bills and payments, prepaid top-ups, daily usage, service
tickets, NPS surveys; two competitor promotions in one province each, a price rise on one
plan, and churn drawn month by month from a competing-risks hazard model whose channels map
onto the churn reason codes.  Some churned customers come back.  ``docs/simulator.md`` states
every rule and parameter; :attr:`Simulation.truth` records them for each run.

Examples
--------
>>> from churnguard.datasets.simulator import simulate
>>> sim = simulate(2_000, seed=7)
>>> sim.tables["customers"].num_rows
2000
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from churnguard.datasets import sim_params as P
from churnguard.datasets.sim_lifecycle import simulate_lifecycle
from churnguard.datasets.sim_rng import BlockRNG
from churnguard.datasets.sim_tables import SCHEMAS, TABLE_NAMES, branches_table, build_tables
from churnguard.errors import ConfigError

__all__ = ["TABLE_NAMES", "Simulation", "simulate", "simulate_to_dir"]

DEFAULT_START = date(2023, 1, 1)
DEFAULT_END = date(2025, 12, 31)
#: Blocks generated at once: bounds the memory of a run and keeps the arrays cache-sized.
BATCH_BLOCKS = 20


@dataclass(frozen=True)
class Simulation:
    """A simulated operator's data and the causes built into it.

    Attributes
    ----------
    tables
        Canonical table name → data, in load order (``branches``, ``customers``,
        ``subscriptions``, ``transactions``, ``events``, ``tickets``, ``surveys``,
        ``churn_events``).  Canonical columns first, then the extra attribute columns.
    truth
        The built-in causes and every parameter (promotions, price change, hazard rates and
        multipliers, …) with dates resolved for the period; JSON-serialisable.
    seed, start, end
        The seed and the simulated period (both ends included).
    """

    tables: dict[str, pa.Table]
    truth: dict[str, Any]
    seed: int
    start: date
    end: date


def _period(customers: int, seed: int, start: date, end: date) -> P.Period:
    if not isinstance(customers, int) or customers < 1:
        raise ConfigError(f"simulator customers: expected a whole number of at least 1, got {customers!r}.")
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"simulator seed: expected a whole number of at least 0, got {seed!r}.")
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    if months < 6:
        raise ConfigError(
            f"simulator period: expected at least 6 calendar months, got {start.isoformat()} .. {end.isoformat()}. "
            "Fix: widen the period (the default is 2023-01-01 .. 2025-12-31)."
        )
    if end >= date.today():
        raise ConfigError(
            f"simulator end: expected a day in the past (data may not lie in the future), got {end.isoformat()}."
        )
    return P.period(start, end)


def _id_width(customers: int) -> int:
    return max(7, len(str(customers)))


def _batches(seed: int, p: P.Period, first_block: int, n: int, id_width: int) -> Iterator[dict[str, pa.Table]]:
    """The tables of customers ``first_block * BLOCK …`` (``n`` of them), a batch of blocks at a time."""
    nblocks = -(-n // P.BLOCK)
    for b in range(0, nblocks, BATCH_BLOCKS):
        size = min(BATCH_BLOCKS * P.BLOCK, n - b * P.BLOCK)
        rng = BlockRNG(seed, first_block + b, size)
        yield build_tables(simulate_lifecycle(rng, p), rng, p, (first_block + b) * P.BLOCK, id_width)


def simulate(
    customers: int = 20_000, *, seed: int = 7, start: date = DEFAULT_START, end: date = DEFAULT_END
) -> Simulation:
    """Simulate an operator's customers over ``[start, end]``, in memory.

    Parameters
    ----------
    customers
        Customers to simulate (about 60 % on board at ``start``, the rest signing up during
        the period).  Ids are ``C0000001``, ``C0000002``, …
    seed
        The seed: the same seed, size and period give identical tables.
    start, end
        The period, both days included; at least six calendar months, ``end`` in the past.

    Returns
    -------
    Simulation
        The canonical tables and the ``truth`` record.

    Notes
    -----
    Customers are drawn in blocks of 1,000, block ``b`` from ``SeedSequence([seed, b])``, so
    the first ``k`` blocks of a larger run equal a run of ``k × 1000`` customers, and
    :func:`simulate_to_dir` writes the same rows in any chunk size.
    """
    p = _period(customers, seed, start, end)
    batches = list(_batches(seed, p, 0, customers, _id_width(customers)))
    tables = {"branches": branches_table()}
    tables.update({name: pa.concat_tables([b[name] for b in batches]) for name in batches[0]})
    return Simulation(tables, P.truth(p, customers, seed), seed, start, end)


def simulate_to_dir(
    out: str | Path,
    customers: int,
    *,
    seed: int = 7,
    fmt: Literal["parquet", "csv"] = "parquet",
    chunk_customers: int = 100_000,
    progress: Callable[[int, int], None] | None = None,
    start: date = DEFAULT_START,
    end: date = DEFAULT_END,
) -> dict[str, list[Path]]:
    """Simulate and write each table as files ``out/<table>/part-NNNNN.<fmt>``, chunk by chunk.

    Customers are generated 20,000 at a time and streamed into the chunk's files, so a million
    customers (about a hundred million usage events) fit a laptop.  The rows written are the
    rows of :func:`simulate` with the same arguments, in the same order, whatever the chunk size.

    Parameters
    ----------
    out
        The output folder; created if needed.  Old ``part-*`` files in its table folders are
        removed first.  ``out/truth.json`` receives :attr:`Simulation.truth`.
    customers
        Customers to simulate.
    seed
        The seed.
    fmt
        ``"parquet"`` (timestamps in microseconds, readable by Spark) or ``"csv"``.
    chunk_customers
        Customers per chunk, rounded up to a multiple of 1,000 (the random-number block).
    progress
        Called as ``progress(done_customers, total)`` after each chunk.
    start, end
        The period, as for :func:`simulate`.

    Returns
    -------
    dict[str, list[pathlib.Path]]
        Table name → the files written, in order (``branches`` has one; every other table one
        per chunk).
    """
    if fmt not in ("parquet", "csv"):
        raise ConfigError(f'simulator format: expected "parquet" or "csv", got "{fmt}".')
    p = _period(customers, seed, start, end)
    if chunk_customers < 1:
        raise ConfigError(f"simulator chunk_customers: expected at least 1, got {chunk_customers}.")
    blocks_per_chunk = -(-chunk_customers // P.BLOCK)
    root = Path(out)
    written: dict[str, list[Path]] = {name: [] for name in TABLE_NAMES}
    for name in TABLE_NAMES:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in (*folder.glob("part-*.parquet"), *folder.glob("part-*.csv")):
            old.unlink()

    def writer(name: str, index: int, schema: pa.Schema) -> pq.ParquetWriter | pacsv.CSVWriter:
        path = root / name / f"part-{index:05d}.{fmt}"
        written[name].append(path)
        if fmt == "parquet":
            return pq.ParquetWriter(path, schema, coerce_timestamps="us", allow_truncated_timestamps=False)
        return pacsv.CSVWriter(path, schema)

    branches = branches_table()
    with writer("branches", 0, branches.schema) as w:
        w.write_table(branches)
    width = _id_width(customers)
    done = 0
    for index, first_block in enumerate(range(0, -(-customers // P.BLOCK), blocks_per_chunk)):
        n = min(blocks_per_chunk * P.BLOCK, customers - first_block * P.BLOCK)
        writers = {name: writer(name, index, SCHEMAS[name]) for name in TABLE_NAMES if name != "branches"}
        try:
            for batch in _batches(seed, p, first_block, n, width):
                for name, table in batch.items():
                    writers[name].write_table(table)
        finally:
            for w in writers.values():
                w.close()
        done += n
        if progress is not None:
            progress(done, customers)
    (root / "truth.json").write_text(json.dumps(P.truth(p, customers, seed), indent=2, ensure_ascii=False) + "\n")
    return written
