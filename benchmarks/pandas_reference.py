"""The pandas side of ``benchmarks/metrics_1m.py``: the same computations, from the Parquet files.

Written as a competent pandas user would: only the needed columns are read (pyarrow reads the
Parquet files; the events' time filter is applied while reading; customer ids are factorised to
integer codes, dates become ``datetime64``), everything is vectorised (groupby, ``bincount``,
cumulative sums, difference arrays) and no Python loop runs over customers.
The churn definition is the one the demo data set declares (contractual, 30 days of grace,
as of 2025-12-31), written out here as constants: pandas has no store to read it from.

Each function returns the result in the same normalised form as the churnguard side of the
benchmark, so the two can be compared exactly.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

GRACE_DAYS = 30
AS_OF = dt.date(2025, 12, 31)
OPEN_END = np.datetime64("9999-12-31", "D")


def read(folder: Path, table: str, columns: list[str], dictionary: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read ``columns`` of one table's Parquet part files; ``dictionary`` columns as categoricals."""
    t = pq.read_table(folder / table, columns=columns, read_dictionary=list(dictionary) or None)
    return t.to_pandas(date_as_object=False, self_destruct=True)


def days(values: pd.Series, fill: np.datetime64 | None = None) -> np.ndarray:
    """Dates as whole days since 1970-01-01 (int64); empty dates get ``fill`` (or stay NaT -> min int)."""
    out = values.to_numpy(dtype="datetime64[D]")
    if fill is not None:
        out = np.where(np.isnat(out), fill, out)
    return out.astype("int64")


def day_number(d: dt.date) -> int:
    return (d - dt.date(1970, 1, 1)).days


def month_index(day: np.ndarray, first: dt.date) -> np.ndarray:
    """Calendar month of each day number, counted from ``first``'s month (0 = that month)."""
    months = day.astype("datetime64[D]").astype("datetime64[M]").astype("int64")
    return months - (first.year - 1970) * 12 - (first.month - 1)


def province_of(branches: pd.DataFrame) -> pd.Series:
    """Each branch -> the child of the root whose subtree holds it (the root maps to itself)."""
    parent = branches.set_index("branch_id")["parent_id"]
    root = parent[parent.isna()].index.min()
    up = pd.Series(parent.index, index=parent.index)
    # climb until the parent is the root: the tree is a few levels deep (vectorised over branches)
    for _ in range(64):
        p = parent.reindex(up.to_numpy()).to_numpy()
        climb = (p != root) & pd.notna(p)
        if not climb.any():
            break
        up = up.where(~climb, p)
    return up.where(up.index != root, root)


def spells(folder: Path, as_of: dt.date = AS_OF) -> tuple[pd.DataFrame, pd.Index]:
    """Contractual spells: subscriptions merged when one starts within the grace period of the latest end.

    Returns the spells and the customer ids: columns ``code`` (the customer's position in the ids),
    ``spell_no``, ``start`` and ``end`` (day numbers; ``end`` is -1 while the spell is open: its
    end + grace is after ``as_of`` and no churn event recorded by ``as_of`` lies within the grace
    period of its end), ``first_spell``.  Spells that begin after ``as_of`` are dropped.
    """
    subs = read(folder, "subscriptions", ["customer_id", "start_date", "end_date"])
    codes, ids = pd.factorize(subs["customer_id"])
    subs = pd.DataFrame({"code": codes, "start": days(subs["start_date"]), "end": days(subs["end_date"], OPEN_END)})
    subs = subs.sort_values(["code", "start", "end"], kind="stable", ignore_index=True)
    by_customer = subs.groupby("code", sort=False)["end"]
    # running max of the earlier rows' ends, per customer
    prev_end = by_customer.cummax().groupby(subs["code"], sort=False).shift().to_numpy()
    new_spell = np.isnan(prev_end) | (subs["start"].to_numpy() > prev_end + GRACE_DAYS)
    subs["spell"] = new_spell.cumsum()  # rows are in customer order, so spells are consecutive
    sp = subs.groupby("spell", sort=False).agg(code=("code", "first"), start=("start", "min"), end=("end", "max"))
    sp["spell_no"] = sp.groupby("code", sort=False).cumcount() + 1
    last = day_number(as_of)
    sp = sp[sp["start"] <= last].reset_index(drop=True)
    # a spell has ended once its grace period has passed by the as-of date, or earlier when a churn
    # event recorded by then lies within the grace period of its end
    ended = (sp["end"] + GRACE_DAYS <= last).to_numpy()
    pending = np.flatnonzero(~ended & (sp["end"] <= last).to_numpy())
    ids = pd.Index(ids)
    events = read(folder, "churn_events", ["customer_id", "churn_date"])
    events = pd.DataFrame({"code": ids.get_indexer(events["customer_id"]), "day": days(events["churn_date"])})
    events = events[(events["code"] >= 0) & (events["day"] <= last)]
    cand = pd.DataFrame({"row": pending, "code": sp["code"].to_numpy()[pending], "end": sp["end"].to_numpy()[pending]})
    hits = cand.merge(events, on="code")
    hits = hits[(hits["day"] - hits["end"]).abs() <= GRACE_DAYS]
    ended[hits["row"].unique()] = True
    sp["end"] = np.where(ended, sp["end"], -1)
    sp["first_spell"] = sp["spell_no"] == 1
    return sp, ids


def churn_by_month_branch(folder: Path, start: dt.date, end: dt.date) -> dict[str, Any]:
    """Churn counts per calendar month x province (the children of the root branch)."""
    sp, ids = spells(folder)
    cust = read(folder, "customers", ["customer_id", "branch_id"])
    prov = province_of(read(folder, "branches", ["branch_id", "parent_id"]))
    # each spell's province: customer -> branch -> the root's child holding it (customers not found drop out)
    grp_of_id = cust.set_index("customer_id")["branch_id"].map(prov).reindex(ids).to_numpy()
    sp["grp"] = grp_of_id[sp["code"].to_numpy()]
    sp = sp[pd.notna(sp["grp"])]

    n_months = (end.year - start.year) * 12 + end.month - start.month + 1
    s_day, e_day = sp["start"].to_numpy(), sp["end"].to_numpy()
    is_open = e_day < 0
    # month of the start / end, clipped to [-1, n_months]: -1 = before the range, n_months = after it (or open)
    sm = np.clip(month_index(s_day, start), -1, n_months)
    em = np.where(is_open, n_months, np.clip(month_index(np.where(is_open, 0, e_day), start), -1, n_months))
    groups = np.sort(sp["grp"].unique())
    g = pd.Categorical(sp["grp"], categories=groups).codes.astype("int64")
    width = n_months + 2  # slots -1 .. n_months

    def count(month: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """(groups, width) counts of spells per group and month slot."""
        m = np.ones(len(month), bool) if mask is None else mask
        flat = np.bincount(g[m] * width + (month[m] + 1), minlength=len(groups) * width)
        return flat.reshape(len(groups), width)

    starts, ends = count(sm), count(em)
    cum_s, cum_e = starts.cumsum(axis=1), ends.cumsum(axis=1)
    k = np.arange(n_months) + 1  # slot of month k
    start_c = cum_s[:, k - 1] - cum_e[:, k - 1]  # started before month k, not ended before it
    new_c = count(sm, sp["first_spell"].to_numpy())[:, k]
    react_c = count(sm, ~sp["first_spell"].to_numpy())[:, k]
    churned = ends[:, k]
    churned_from_start = count(em, sm < em)[:, k]
    end_c = cum_s[:, k] - cum_e[:, k]

    # customer-days: active spells per day (a difference array over the range's days), summed per month
    d0, d1 = day_number(start), day_number(end)
    n_days = d1 - d0 + 1
    a = np.clip(s_day - d0, 0, n_days)
    b = np.where(is_open, n_days, np.clip(e_day - d0 + 1, 0, n_days))
    diff = np.zeros((len(groups), n_days + 1), np.int64)
    np.add.at(diff, (g, a), 1)
    np.add.at(diff, (g, b), -1)
    active = diff.cumsum(axis=1)[:, :n_days]
    day_month = month_index(np.arange(d0, d1 + 1), start)
    cust_days = np.add.reduceat(active, np.flatnonzero(np.r_[True, day_month[1:] != day_month[:-1]]), axis=1)

    labels = pd.period_range(start, periods=n_months, freq="M").strftime("%Y-%m")
    rows = []
    for gi, grp in enumerate(groups):
        for mi, label in enumerate(labels):
            counts = (start_c, new_c, react_c, churned, churned_from_start, end_c, cust_days)
            rows.append([label, str(grp), *(int(c[gi, mi]) for c in counts)])
    rows.sort()
    return {"rows": rows, "spells": len(sp)}


def observed_from(folder: Path) -> dt.date:
    """The first day the data observe: the data set's own period start (its ``truth.json``)."""
    return dt.date.fromisoformat(json.loads((folder / "truth.json").read_text())["start"])


def cohort_retention(folder: Path, *, max_age: int = 24) -> dict[str, Any]:
    """Signup-month cohorts x months since signup: customers in a spell on the last day of each month.

    A cohort is the month in which a customer's first spell began (from the first observed day to the
    as-of date); ``retained[k]`` counts its customers in any spell on the last day of the k-th month
    after it (start <= that day < end, or open); ages whose last day is after the as-of date are ``None``.
    """
    sp, ids = spells(folder)
    first_day = observed_from(folder)
    last = day_number(AS_OF)
    s_day, e_day = sp["start"].to_numpy(), sp["end"].to_numpy()
    members = sp["first_spell"].to_numpy() & (s_day >= day_number(first_day)) & (s_day <= last)
    codes = sp["code"].to_numpy()
    cohort_by_code = np.full(len(ids), -1, np.int64)
    cohort_by_code[codes[members]] = month_index(s_day[members], first_day)
    # every spell of every member, with the member's cohort
    cohort = cohort_by_code[codes]
    mine = cohort >= 0
    cohort = cohort[mine]
    s_m = month_index(s_day[mine], first_day)
    is_open = e_day[mine] < 0
    # month-ends inside [start, end): from the start's month to the month before the end's month
    e_m = np.where(is_open, np.iinfo(np.int64).max // 2, month_index(np.where(is_open, 0, e_day[mine]), first_day) - 1)
    lo = np.clip(s_m - cohort, 0, max_age + 1)
    hi = np.clip(e_m - cohort + 1, 0, max_age + 1)
    keep = hi > lo
    n_cohorts = int(cohort_by_code.max()) + 1
    diff = np.zeros((n_cohorts, max_age + 2), np.int64)
    np.add.at(diff, (cohort[keep], lo[keep]), 1)
    np.add.at(diff, (cohort[keep], hi[keep]), -1)
    retained = diff.cumsum(axis=1)[:, : max_age + 1]
    sizes = np.bincount(cohort_by_code[cohort_by_code >= 0], minlength=n_cohorts)
    # a cell is reached when the last day of month (cohort + k) is on or before the as-of date
    ends = (np.arange(n_cohorts)[:, None] + np.arange(max_age + 1)[None, :] + 1 + (first_day.year - 1970) * 12).astype(
        "datetime64[M]"
    ).astype("datetime64[D]").astype("int64") - 1
    reached = ends <= last

    labels = pd.period_range(first_day, periods=n_cohorts, freq="M").strftime("%Y-%m")
    cohorts = []
    for c in np.flatnonzero(sizes):  # one row per cohort (36), not per customer
        size = int(sizes[c])
        kept = [int(retained[c, k]) if reached[c, k] else None for k in range(max_age + 1)]
        ratio = [None if n is None else round(n / size, 6) for n in kept]
        cohorts.append([labels[c], size, kept, ratio])
    average = []
    for k in range(max_age + 1):
        rows = [c for c in cohorts if c[2][k] is not None]
        total = sum(c[1] for c in rows)
        average.append(round(sum(c[2][k] for c in rows) / total, 6) if total else None)
    return {
        "observed_from": first_day.isoformat(),
        "cohorts": cohorts,
        "average_retention": average,
        "info": {"members": int(sizes.sum()), "spells": len(sp)},
    }


def implicit_churn(
    folder: Path,
    *,
    as_of: dt.date,
    recent_days: int = 30,
    baseline_days: int = 90,
    drop: float = 0.5,
    min_baseline: float = 1.0,
    limit: int = 100,
) -> dict[str, Any]:
    """Customers in an open spell on ``as_of`` whose events per 30 days fell by more than ``drop``.

    Recent window: the last ``recent_days`` days to ``as_of``; baseline: the ``baseline_days`` before
    it.  Judged: the spell began by the baseline's first day and the baseline rate is >= ``min_baseline``
    (> 0).  Returns the counts and the ``limit`` largest falls (ties: higher baseline, then id).
    """
    recent_from = as_of - dt.timedelta(days=recent_days - 1)
    baseline_from = recent_from - dt.timedelta(days=baseline_days)
    sp, ids = spells(folder, as_of)
    active = sp.loc[sp["end"] < 0, ["code", "start"]]
    active.insert(0, "customer_id", ids[active["code"].to_numpy()])
    # only the two windows' rows of events: the filter is applied while the files are read
    ev = read_filtered(
        folder,
        "events",
        ["customer_id", "ts"],
        [
            ("ts", ">=", pd.Timestamp(baseline_from)),
            ("ts", "<", pd.Timestamp(as_of + dt.timedelta(days=1))),
        ],
    )
    recent = ev["ts"].to_numpy() >= np.datetime64(recent_from)
    counts = pd.DataFrame({"customer_id": ev["customer_id"], "recent": recent, "baseline": ~recent})
    counts = counts.groupby("customer_id", observed=True).sum()
    counts.index = counts.index.astype(str)
    del ev
    cust = read(folder, "customers", ["customer_id", "branch_id", "plan"])
    per = active.merge(cust, on="customer_id", how="inner")
    per = per.merge(counts, left_on="customer_id", right_index=True, how="left").fillna({"recent": 0, "baseline": 0})
    per["baseline_rate"] = 30 * per["baseline"].astype("int64") / baseline_days
    per["recent_rate"] = 30 * per["recent"].astype("int64") / recent_days
    judged = per[
        (per["start"] <= day_number(baseline_from))
        & (per["baseline_rate"] >= min_baseline)
        & (per["baseline_rate"] > 0)
    ].copy()
    judged["change"] = judged["recent_rate"] / judged["baseline_rate"] - 1
    churners = judged[judged["change"] < -drop]
    top = churners.sort_values(["change", "baseline_rate", "customer_id"], ascending=[True, False, True]).head(limit)
    listed = [
        [r.customer_id, r.branch_id, r.plan, round(r.baseline_rate, 6), round(r.recent_rate, 6), round(r.change, 6)]
        for r in top.itertuples()  # the ``limit`` listed rows only
    ]
    return {
        "active_customers": len(per),
        "judged_customers": len(judged),
        "implicit_churners": len(churners),
        "customers": listed,
        "info": {"events_in_windows": int(counts.to_numpy().sum()), "spells": len(sp)},
    }


def read_filtered(folder: Path, table: str, columns: list[str], filters: list[tuple[str, str, Any]]) -> pd.DataFrame:
    """Like :func:`read`, with row filters applied by pyarrow while reading; ``customer_id`` as a categorical."""
    t = pq.read_table(folder / table, columns=columns, filters=filters, read_dictionary=["customer_id"])
    return t.to_pandas(date_as_object=False, self_destruct=True)
