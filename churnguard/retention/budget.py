"""Budget allocation: which customers to treat, and with which action, for the most expected gain.

Each customer ``i`` has candidate options ``j`` (the playbook's actions for their tier and reason)
with cost ``c_ij`` and expected gain ``g_ij``; at most one option per customer may be chosen.
Choose ``x_ij ∈ {0, 1}`` to

    maximise   Σ_ij g_ij x_ij
    subject to Σ_j x_ij ≤ 1                         (one action per customer)
               Σ_ij c_ij x_ij ≤ B                    (money budget, optional)
               Σ_{i in group k} Σ_j x_ij ≤ K_k       (contact capacity: in total, or per branch; optional)

— a multiple-choice knapsack (with a cardinality constraint when capacity is given).  Options with
``g_ij ≤ 0`` are never chosen.

Methods (``method="auto"`` picks):

``all``
    No budget and no capacity: every customer gets their best option.  Exact.
``top``
    Capacity only: the ``K_k`` customers of each group with the largest best gain.  Exact.
``dp``
    Dynamic programming over (contacts used, budget used) within each capacity group, then a
    max-plus convolution over the groups' budgets.  Exact; needs costs in whole money units, tenths
    or cents (they are scaled to integers), and is used for small instances (``n · (B+1) · (K+1)``
    cells, B in those units, up to ``max_dp_cells``).
``greedy``
    The LP-greedy for the multiple-choice knapsack (Sinha & Zoltners 1979; Kellerer, Pferschy &
    Pisinger 2004, ch. 11): each customer's options are reduced to the upper concave hull of
    ``(cost, gain)`` points from ``(0, 0)``; the hull's steps (incremental cost, incremental gain)
    are taken in order of falling gain/cost while they fit, then the pass repeats over the steps
    that still fit.  The "best single item" fix — compare with the single best option that fits —
    makes the result at least **½ of the optimum** for the budget-only problem (the LP optimum is
    at most the greedy's gain plus one step, and that step's gain is at most the best single
    option's).  With capacity as well, the greedy is also run with each contact priced at
    ``λ · B / K`` for a few λ, and by gain alone, and the best run is kept; there the ½ bound is
    not proven (it held in every brute-force test case).  Everything is vectorised with numpy;
    100,000 customers take well under a second.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from churnguard.errors import ConfigError

METHODS: tuple[str, ...] = ("auto", "dp", "greedy")
#: Largest DP table (customers × budget units × contacts) that ``auto`` solves exactly.
MAX_DP_CELLS = 4_000_000
_EPS = 1e-9


@dataclass(frozen=True)
class Allocation:
    """The chosen option of every customer.

    Attributes
    ----------
    choice : ``choice[i]`` = the chosen option's column, or -1 (not treated).
    gain, cost, contacts : totals of the chosen options.
    method : ``all``, ``top``, ``dp`` or ``greedy``.
    upper_bound : for ``greedy`` without capacity, the LP bound (no solution can gain more);
        for the exact methods, ``gain``; else None.
    """

    choice: np.ndarray
    gain: float
    cost: float
    contacts: int
    method: str
    upper_bound: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "gain": self.gain,
            "cost": self.cost,
            "contacts": self.contacts,
            "upper_bound": self.upper_bound,
        }


def allocate(
    gains: Any,
    costs: Any,
    *,
    budget: float | None = None,
    capacity: int | Mapping[Any, int] | None = None,
    groups: Sequence[Any] | np.ndarray | None = None,
    method: str = "auto",
    max_dp_cells: int = MAX_DP_CELLS,
    min_gain: float = 0.0,
) -> Allocation:
    """Choose at most one option per customer to maximise total expected gain (module docstring).

    Parameters
    ----------
    gains, costs : arrays of shape ``(n, m)`` (or ``(n,)`` for one option each); NaN marks a
        missing option.  Costs must be ``≥ 0``.
    budget : money available (``Σ cost ≤ budget``); None for no money limit.
    capacity : contacts available: an int for all customers, or a mapping group → int with
        ``groups`` (customers of a group not in the mapping get no contact); None for no limit.
    groups : the group (e.g. branch) of each customer, needed for a capacity mapping.
    method : ``auto`` (exact where cheap, else greedy), ``dp`` (exact; integer costs) or ``greedy``.
    min_gain : options must gain more than this.  Below 0, customers whose options all lose money
        are still treated when nothing limits the campaign (``all``) or capacity is left (``top``);
        with a budget, an option that loses money is never worth choosing.
    """
    g, c = _as_options(gains, costs)
    n, m = g.shape
    if method not in METHODS:
        raise ConfigError(f'allocation method: expected one of {", ".join(METHODS)}, got "{method}".')
    if budget is not None and (not np.isfinite(budget) or budget < 0):
        raise ConfigError(f"budget: expected a number ≥ 0, got {budget!r}.")
    group_idx, caps = _capacity(capacity, groups, n)
    # options that can never be chosen: missing, no gain, or dearer than the whole budget
    usable = np.isfinite(g) & np.isfinite(c) & (g > min_gain + _EPS if min_gain >= 0 else g > min_gain)
    if budget is not None:
        usable &= (c <= budget + _EPS) & (g > _EPS)
    g = np.where(usable, g, np.nan)
    c = np.where(usable, c, np.nan)

    if budget is None and caps is None:
        choice = _best_option(g)
        return _result(choice, g, c, "all", exact=True)
    if budget is None:
        return _result(_top_by_gain(g, group_idx, caps), g, c, "top", exact=True)
    scale = _cost_scale(c)
    n_groups = 1 if caps is None else len(caps)
    k_max = 0 if caps is None else int(min(n, caps.max(initial=0)))
    units = int(np.floor(budget * (scale or 1) + _EPS))
    cells = n * (units + 1) * (k_max + 1) * max(m, 1) + n_groups * (units + 1) ** 2
    if method == "dp" or (method == "auto" and scale is not None and cells <= max_dp_cells):
        if scale is None:
            raise ConfigError("allocation method dp: expected costs in whole cents. Fix: use method greedy.")
        choice = _dp(g, np.round(c * scale), units, group_idx, caps)
        return _result(choice, g, c, "dp", exact=True)
    return _greedy(g, c, float(budget), group_idx, caps)


def _cost_scale(c: np.ndarray) -> int | None:
    """The smallest of 1, 10, 100 that makes every cost a whole number (None: finer than cents)."""
    known = c[np.isfinite(c)]
    for scale in (1, 10, 100):
        scaled = known * scale
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6):
            return scale
    return None


# -- helpers --------------------------------------------------------------------------------------


def _as_options(gains: Any, costs: Any) -> tuple[np.ndarray, np.ndarray]:
    g = np.asarray(gains, dtype=float)
    c = np.asarray(costs, dtype=float)
    if g.ndim == 1:
        g = g[:, None]
    if c.ndim == 1:
        c = c[:, None]
    if g.shape != c.shape or g.ndim != 2:
        raise ConfigError(f"gains and costs: expected arrays of the same shape (n, m), got {g.shape} and {c.shape}.")
    if np.any(c[np.isfinite(c)] < 0):
        raise ConfigError("costs: expected numbers ≥ 0, got a negative cost.")
    return g, c


def _capacity(
    capacity: int | Mapping[Any, int] | None, groups: Sequence[Any] | np.ndarray | None, n: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Each customer's capacity group (index) and the groups' capacities (None: unlimited)."""
    if capacity is None:
        return np.zeros(n, dtype=np.int64), None
    if isinstance(capacity, Mapping):
        if groups is None:
            raise ConfigError("capacity per group: expected the groups (e.g. branch) of the customers.")
        labels = np.asarray(groups, dtype=object)
        if labels.shape != (n,):
            raise ConfigError(f"groups: expected one label per customer ({n}), got {labels.shape}.")
        uniq, idx = np.unique(labels.astype(str), return_inverse=True)
        text_caps = {str(k): v for k, v in capacity.items()}
        caps = np.array([int(text_caps.get(u, 0)) for u in uniq], dtype=np.int64)
        if np.any(caps < 0):
            raise ConfigError("capacity: expected whole numbers ≥ 0.")
        return idx.astype(np.int64), caps
    if isinstance(capacity, bool) or int(capacity) != capacity or capacity < 0:
        raise ConfigError(f"capacity: expected a whole number ≥ 0, got {capacity!r}.")
    return np.zeros(n, dtype=np.int64), np.array([int(capacity)], dtype=np.int64)


def _best_option(g: np.ndarray) -> np.ndarray:
    has = np.any(np.isfinite(g), axis=1)
    best = np.argmax(np.where(np.isfinite(g), g, -np.inf), axis=1)
    return np.where(has, best, -1)


def _top_by_gain(g: np.ndarray, group_idx: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Capacity only: in each group, the customers with the largest best gain."""
    best = _best_option(g)
    n = len(best)
    value = np.where(best >= 0, g[np.arange(n), np.maximum(best, 0)], -np.inf)
    order = np.lexsort((np.arange(n), -value, group_idx))  # by group, then gain descending
    rank = np.empty(n, dtype=np.int64)
    sorted_groups = group_idx[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    counts = np.diff(np.r_[starts, n])
    rank[order] = np.arange(n) - np.repeat(starts, counts)
    keep = (best >= 0) & (rank < caps[group_idx])
    return np.where(keep, best, -1)


def _result(choice: np.ndarray, g: np.ndarray, c: np.ndarray, method: str, *, exact: bool) -> Allocation:
    rows = np.flatnonzero(choice >= 0)
    gain = float(g[rows, choice[rows]].sum())
    cost = float(c[rows, choice[rows]].sum())
    return Allocation(choice, gain, cost, int(rows.size), method, upper_bound=gain if exact else None)


# -- exact: dynamic programming -------------------------------------------------------------------


def _dp(g: np.ndarray, c: np.ndarray, budget: int, group_idx: np.ndarray, caps: np.ndarray | None) -> np.ndarray:
    """Exact DP (integer costs).  ``dp[k, b]`` = best gain with ≤ k contacts and ≤ b budget."""
    n, m = g.shape
    choice = np.full(n, -1, dtype=np.int64)
    n_groups = 1 if caps is None else len(caps)
    best_by_group = []
    tables = []
    members_by_group = []
    for k in range(n_groups):
        members = np.flatnonzero(group_idx == k)
        members_by_group.append(members)
        cap = None if caps is None else int(min(caps[k], len(members)))
        rows = 1 if cap is None else cap + 1
        dp = np.zeros((rows, budget + 1))
        picks = np.full((len(members), rows, budget + 1), -1, dtype=np.int8)
        for t, i in enumerate(members):  # exact DP for small instances: a loop over customers is fine here
            new = dp.copy()
            for j in range(m):
                if not np.isfinite(g[i, j]):
                    continue
                cost = round(c[i, j])
                cand = np.full_like(dp, -np.inf)
                if cap is None:
                    cand[:, cost:] = dp[:, : budget + 1 - cost] + g[i, j]
                else:
                    cand[1:, cost:] = dp[:-1, : budget + 1 - cost] + g[i, j]
                better = cand > new + _EPS
                new = np.where(better, cand, new)
                picks[t][better] = j
            dp = new
        tables.append((dp, picks, cap))
        best_by_group.append(dp[-1])
    # combine the groups: max-plus convolution over the budget
    total = best_by_group[0].copy()
    splits = [np.arange(budget + 1)]  # budget given to group 0 at each total budget
    for k in range(1, n_groups):
        f = best_by_group[k]
        b = np.arange(budget + 1)
        # cand[b, x] = total[x] + f[b - x] for x ≤ b
        x = np.arange(budget + 1)
        mat = np.where(x[None, :] <= b[:, None], total[None, :] + f[np.clip(b[:, None] - x[None, :], 0, None)], -np.inf)
        arg = np.argmax(mat, axis=1)
        total = mat[b, arg]
        splits.append(arg)
    # walk back: the budget of each group
    rest = budget
    group_budget = [0] * n_groups
    for k in range(n_groups - 1, 0, -1):
        x = int(splits[k][rest])
        group_budget[k] = rest - x
        rest = x
    group_budget[0] = rest
    for k, (dp, picks, cap) in enumerate(tables):
        members = members_by_group[k]
        kk = dp.shape[0] - 1
        bb = group_budget[k]
        for t in range(len(members) - 1, -1, -1):
            j = int(picks[t, kk, bb])
            if j >= 0:
                i = members[t]
                choice[i] = j
                bb -= round(c[i, j])
                if cap is not None:
                    kk -= 1
    return choice


# -- approximate: the LP greedy -------------------------------------------------------------------


def _hull_steps(g: np.ndarray, c_eff: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The upper concave hull of each customer's ``(c_eff, g)`` points from ``(0, 0)``.

    Returns the hull steps as ``(customer, option, step number)``, vectorised over customers
    (one pass per hull point: at most ``m`` passes).  Each step goes to the point of largest
    slope ``Δg / Δc`` beyond the current one; slopes fall along the hull.
    """
    n, m = g.shape
    cur_c = np.zeros(n)
    cur_g = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    cust, opt, step = [], [], []
    for s in range(m):
        dg = g - cur_g[:, None]
        dc = c_eff - cur_c[:, None]
        ok = np.isfinite(g) & (dg > _EPS) & (dc >= -_EPS) & alive[:, None]
        # zero extra cost and more gain: infinitely efficient; among equal slopes prefer more gain
        slope = np.where(ok, np.where(dc > _EPS, dg / np.maximum(dc, _EPS), np.inf), -np.inf)
        best_slope = slope.max(axis=1)
        tol = np.where(np.isfinite(best_slope), 1e-12 * np.abs(best_slope), 0.0)
        tie = ok & (slope >= (best_slope - tol)[:, None])
        pick = np.argmax(np.where(tie, g, -np.inf), axis=1)
        has = ok.any(axis=1)
        rows = np.flatnonzero(has)
        if rows.size == 0:
            break
        cust.append(rows)
        opt.append(pick[rows])
        step.append(np.full(rows.size, s))
        cur_c[rows] = c_eff[rows, pick[rows]]
        cur_g[rows] = g[rows, pick[rows]]
        alive &= has
    if not cust:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(cust), np.concatenate(opt), np.concatenate(step)


def _greedy_run(
    g: np.ndarray,
    c: np.ndarray,
    budget: float,
    group_idx: np.ndarray,
    caps: np.ndarray | None,
    contact_price: float,
    by_gain: bool = False,
    max_passes: int = 64,
) -> tuple[np.ndarray, float]:
    """One greedy fill; returns the choice and, without capacity, the LP upper bound."""
    n, _ = g.shape
    choice = np.full(n, -1, dtype=np.int64)
    if by_gain:
        # whole customers (their best option), largest gain first
        best = _best_option(g)
        cust = np.flatnonzero(best >= 0)
        opt = best[cust]
        step = np.zeros(cust.size, dtype=np.int64)
        d_cost, d_gain = c[cust, opt], g[cust, opt]
        key = d_gain
    else:
        c_eff = c + contact_price
        cust, opt, step = _hull_steps(g, c_eff)
        # incremental (real) cost and gain of each step; sorted by customer then step first
        order0 = np.lexsort((step, cust))
        cust, opt, step = cust[order0], opt[order0], step[order0]
        prev_opt = np.where(step > 0, np.r_[-1, opt[:-1]], -1)
        had_prev = prev_opt >= 0
        safe_prev = np.maximum(prev_opt, 0)
        d_cost = c[cust, opt] - np.where(had_prev, c[cust, safe_prev], 0.0)
        d_gain = g[cust, opt] - np.where(had_prev, g[cust, safe_prev], 0.0)
        d_eff = c_eff[cust, opt] - np.where(had_prev, c_eff[cust, safe_prev], 0.0)
        key = np.where(d_eff > _EPS, d_gain / np.maximum(d_eff, _EPS), np.inf)
    if cust.size == 0:
        return choice, 0.0
    order = np.lexsort((step, cust, -key))
    cust, opt, step, d_cost, d_gain = cust[order], opt[order], step[order], d_cost[order], d_gain[order]

    remaining = budget
    counts = np.zeros(1 if caps is None else len(caps), dtype=np.int64)
    cap_of = None if caps is None else caps[group_idx]
    blocked = np.zeros(n, dtype=bool)
    alive = np.ones(cust.size, dtype=bool)
    bound = None
    for _ in range(max_passes):
        idx = np.flatnonzero(alive & ~blocked[cust])
        if idx.size == 0:
            break
        skip = np.zeros(idx.size, dtype=bool)
        if cap_of is not None:
            first = step[idx] == 0
            grp = group_idx[cust[idx]]
            # running count of first steps per group, in order
            pos = np.zeros(idx.size, dtype=np.int64)
            fi = np.flatnonzero(first)
            if fi.size:
                fg = grp[fi]
                o = np.lexsort((fi, fg))
                sg = fg[o]
                starts = np.r_[0, np.flatnonzero(np.diff(sg)) + 1]
                within = np.arange(fi.size) - np.repeat(starts, np.diff(np.r_[starts, fi.size]))
                run = np.empty(fi.size, dtype=np.int64)
                run[o] = within
                pos[fi] = run
            over = first & (counts[grp] + pos + 1 > cap_of[cust[idx]])
            over_cust = np.zeros(n, dtype=bool)
            over_cust[cust[idx][over]] = True
            skip = over_cust[cust[idx]]
        cand = idx[~skip]
        cs = np.cumsum(d_cost[cand])
        fits = cs <= remaining + _EPS
        s = int(np.argmin(fits)) if not fits.all() else cand.size
        taken = cand[:s]
        if bound is None and caps is None:
            # LP bound: the greedy prefix plus the fitting fraction of the split step
            frac = 0.0
            if s < cand.size:
                room = remaining - (cs[s - 1] if s else 0.0)
                frac = d_gain[cand[s]] * room / d_cost[cand[s]] if d_cost[cand[s]] > _EPS else d_gain[cand[s]]
            bound = float(d_gain[taken].sum() + frac)
        choice[cust[taken]] = opt[taken]  # steps are in order: the last taken step of a customer wins
        if cap_of is not None:
            np.add.at(counts, group_idx[cust[taken][step[taken] == 0]], 1)
        remaining -= float(d_cost[taken].sum())
        alive[taken] = False
        if cap_of is not None:
            # over capacity before the split: refused for good (counts only grow)
            limit = cand[s] if s < cand.size else np.iinfo(np.int64).max
            refused = idx[skip & (idx < limit)] if s < cand.size else idx[skip]
            blocked[cust[refused]] = True
        if s == cand.size and not skip.any():
            break
        if s < cand.size:
            blocked[cust[cand[s]]] = True
        # steps dearer than what is left can never be taken: their customers stop there
        rest = np.flatnonzero(alive & ~blocked[cust])
        blocked[cust[rest[d_cost[rest] > remaining + _EPS]]] = True
    return choice, (bound if bound is not None else 0.0)


def _greedy(g: np.ndarray, c: np.ndarray, budget: float, group_idx: np.ndarray, caps: np.ndarray | None) -> Allocation:
    runs: list[np.ndarray] = []
    choice, bound = _greedy_run(g, c, budget, group_idx, caps, 0.0)
    runs.append(choice)
    if caps is not None:
        k_total = max(int(caps.sum()), 1)
        for f in (0.25, 0.5, 1.0, 2.0, 4.0):
            runs.append(_greedy_run(g, c, budget, group_idx, caps, f * budget / k_total)[0])
        runs.append(_greedy_run(g, c, budget, group_idx, caps, 0.0, by_gain=True)[0])
    # the best single option that fits (the fix that guarantees half the optimum)
    single = np.full(len(g), -1, dtype=np.int64)
    fits = np.isfinite(g) & (c <= budget + _EPS)
    if caps is not None:
        fits &= (caps[group_idx] >= 1)[:, None]
    if fits.any():
        flat = int(np.argmax(np.where(fits, g, -np.inf)))
        i, j = divmod(flat, g.shape[1])
        single[i] = j
    runs.append(single)
    gains = []
    for ch in runs:
        rows = np.flatnonzero(ch >= 0)
        gains.append(float(g[rows, ch[rows]].sum()))
    best = runs[int(np.argmax(gains))]
    result = _result(best, g, c, "greedy", exact=False)
    return Allocation(
        result.choice,
        result.gain,
        result.cost,
        result.contacts,
        "greedy",
        upper_bound=max(bound, result.gain) if caps is None else None,
    )
