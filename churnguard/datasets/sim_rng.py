"""Block-wise random numbers: each block of customers owns one generator.

Every draw the simulator makes goes through :class:`BlockRNG`, with the rows grouped by
customer (rows of block 0 first, then block 1, …).  Block ``b`` draws from
``PCG64(SeedSequence([seed, b]))`` and its draws depend only on its own customers, so a
customer's data is the same whether the run is one chunk or many.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from churnguard.datasets.sim_params import BLOCK


class BlockRNG:
    """Generators for the blocks ``first_block, first_block + 1, …`` covering ``n`` customers.

    Parameters
    ----------
    seed
        The simulation seed.
    first_block
        Global index of the first block (the chunk's first customer is ``first_block * BLOCK``).
    n
        Customers in the chunk (at least one); every block is full except perhaps the last.
    """

    def __init__(self, seed: int, first_block: int, n: int) -> None:
        self.n = n
        nblocks = -(-n // BLOCK)
        self.sizes = np.full(nblocks, BLOCK, dtype=np.int64)
        self.sizes[-1] = n - BLOCK * (nblocks - 1)
        self.gens = [
            np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, first_block + b])))
            for b in range(nblocks)
        ]

    def counts(self, customer: np.ndarray) -> np.ndarray:
        """Rows per block for rows with (sorted) chunk-local customer indices ``customer``."""
        return np.bincount(customer // BLOCK, minlength=len(self.gens))

    def _each(self, counts: np.ndarray | None, draw: Callable[[np.random.Generator, int, slice], np.ndarray]):
        counts = self.sizes if counts is None else counts
        ends = np.cumsum(counts)
        parts = [draw(g, int(c), slice(int(e - c), int(e))) for g, c, e in zip(self.gens, counts, ends, strict=True)]
        return np.concatenate(parts)

    def random(self, k: int | None = None, counts: np.ndarray | None = None) -> np.ndarray:
        """Uniform [0, 1): one row per customer (``counts`` None) or per counted row; ``k`` columns."""
        return self._each(counts, lambda g, c, _: g.random(c if k is None else (c, k)))

    def normal(self, k: int | None = None, counts: np.ndarray | None = None) -> np.ndarray:
        """Standard normal draws, shaped like :meth:`random`."""
        return self._each(counts, lambda g, c, _: g.standard_normal(c if k is None else (c, k)))

    def gamma(self, shape: float, counts: np.ndarray | None = None) -> np.ndarray:
        """Standard gamma draws with one ``shape``."""
        return self._each(counts, lambda g, c, _: g.standard_gamma(shape, c))

    def poisson(self, lam: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Poisson draws with a rate per row."""
        return self._each(counts, lambda g, c, s: g.poisson(lam[s]))
