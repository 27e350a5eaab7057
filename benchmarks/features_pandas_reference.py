"""The pandas side of ``benchmarks/features_pit.py``: the usage features, from the Parquet files.

The subset computed (identical definitions to churnguard's ``usage`` block, docs/features.md),
for every customer active at each observation date d (contractual spells, as in
``pandas_reference.spells``), from the events with ``ts < d``:

- ``usage_events_{7,30,90}d``, ``usage_days_{7,30,90}d``;
- ``usage_{type}_{7,30,90}d`` (Σ value, 1 where empty) for the three event types;
- ``usage_days_change_30d`` = (last 30 − the 30 before) / max(the 30 before, 1), empty while the
  spell is younger than 60 days; ``usage_days_slope_90d`` = ((b1 − b3) / 2) / max(mean, 1), empty
  while younger than 90 days;
- ``days_since_usage`` = d − the day of the last event before d (any time before).

Written as a competent pandas user would: pyarrow reads only the needed columns (ids and event
types dictionary-encoded, so no Python string per row), customers become integer codes, days
become integers; each date is one vectorised pass (a boolean mask, ``np.bincount`` per window,
unique (customer, day) pairs for the usage days) — a loop over the 12 dates, never over
customers; the last event before each date comes from one sorted array of (customer, day) keys
and ``np.searchsorted``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pandas_reference import day_number, spells

WINDOWS = (7, 30, 90)
TYPES = ("data_mb", "call_minutes", "app_login")
#: The columns compared with churnguard's frame.
COLUMNS = (
    *(f"usage_events_{w}d" for w in WINDOWS),
    *(f"usage_days_{w}d" for w in WINDOWS),
    *(f"usage_{t}_{w}d" for t in TYPES for w in WINDOWS),
    "usage_days_change_30d",
    "usage_days_slope_90d",
    "days_since_usage",
)


def _events(folder: Path, ids: pd.Index) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(customer code, day number, type code, value) of every event; codes index ``ids`` (−1: unknown)."""
    t = pq.read_table(
        folder / "events",
        columns=["customer_id", "ts", "event_type", "value"],
        read_dictionary=["customer_id", "event_type"],
    ).unify_dictionaries()
    cust = t.column("customer_id").combine_chunks()
    code = ids.get_indexer(cust.dictionary.to_pandas())[cust.indices.to_numpy()].astype(np.int32)
    etype = t.column("event_type").combine_chunks()
    type_of = np.array([TYPES.index(x) if x in TYPES else -1 for x in etype.dictionary.to_pylist()], dtype=np.int8)
    tcode = type_of[etype.indices.to_numpy()]
    day = pc.cast(pc.cast(t.column("ts"), "date32"), "int32").to_numpy()
    value = pc.fill_null(t.column("value"), 1.0).to_numpy()
    return code, day, tcode, value


def usage_features(folder: Path, dates: list[dt.date]) -> pd.DataFrame:
    """One row per (active customer, date), the columns of :data:`COLUMNS`, sorted by as_of, customer_id."""
    sp, ids = spells(folder)
    code, day, tcode, value = _events(folder, ids)
    ok = code >= 0
    code, day, tcode, value = code[ok], day[ok], tcode[ok], value[ok]
    n_cust = len(ids)
    # (customer, day) keys of all events, sorted and unique: the last event before any date.
    keys = np.unique(code.astype(np.int64) * 100_000 + day)
    frames = []
    for d in dates:
        dn = day_number(d)
        active = sp[(sp["start"] < dn) & ((sp["end"] < 0) | (sp["end"] >= dn))]
        who = active["code"].to_numpy()
        out = pd.DataFrame({"customer_id": ids[who], "as_of": d})
        sel = (day < dn) & (day >= dn - max(WINDOWS))
        c, age, tc, v = code[sel], dn - day[sel], tcode[sel], value[sel]
        pairs = np.unique(c.astype(np.int64) * 1000 + age)  # distinct (customer, age): usage days
        pc_, pa_ = pairs // 1000, pairs % 1000
        for w in WINDOWS:
            m = age <= w
            out[f"usage_events_{w}d"] = np.bincount(c[m], minlength=n_cust)[who]
            out[f"usage_days_{w}d"] = np.bincount(pc_[pa_ <= w], minlength=n_cust)[who]
            for j, t in enumerate(TYPES):
                mt = m & (tc == j)
                out[f"usage_{t}_{w}d"] = np.bincount(c[mt], weights=v[mt], minlength=n_cust)[who]
        b = [np.bincount(pc_[(pa_ > lo) & (pa_ <= lo + 30)], minlength=n_cust)[who] for lo in (0, 30, 60)]
        tenure = dn - active["start"].to_numpy()
        change = (b[0] - b[1]) / np.maximum(b[1], 1)
        out["usage_days_change_30d"] = np.where(tenure >= 60, change, np.nan)
        slope = ((b[0] - b[2]) / 2.0) / np.maximum((b[0] + b[1] + b[2]) / 3.0, 1)
        out["usage_days_slope_90d"] = np.where(tenure >= 90, slope, np.nan)
        q = who.astype(np.int64) * 100_000 + dn
        i = np.searchsorted(keys, q) - 1
        found = (i >= 0) & (keys[np.maximum(i, 0)] // 100_000 == who)
        out["days_since_usage"] = np.where(found, dn - keys[np.maximum(i, 0)] % 100_000, np.nan)
        frames.append(out.sort_values("customer_id", kind="stable"))
    return pd.concat(frames, ignore_index=True)
