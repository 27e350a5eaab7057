"""Phase 2 of the simulator: the canonical tables, built from the phase-1 records.

Usage events, bills, payments, top-ups and surveys are generated here, all at once over the
chunk's customer-months, because they depend on the future: usage decays in the months
before a churn.  Every table is sorted by customer and time, so chunks concatenated in
order equal one unchunked run.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from churnguard.datasets import sim_params as P
from churnguard.datasets.sim_lifecycle import Lifecycle, pick
from churnguard.datasets.sim_rng import BlockRNG
from churnguard.store.schema import TABLES

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
EVENT_TYPES = ("data_mb", "call_minutes", "app_login")
TRANSACTION_KINDS = ("bill", "payment", "topup")

TS = pa.timestamp("us")
#: Arrow type of each canonical column kind.
ARROW_TYPES: dict[str, pa.DataType] = {
    "id": pa.string(),
    "text": pa.string(),
    "date": pa.date32(),
    "timestamp": TS,
    "number": pa.float64(),
    "integer": pa.int32(),
    "bool": pa.bool_(),
}
#: Attribute columns the simulator adds after a table's canonical columns.
EXTRA_COLUMNS: dict[str, list[tuple[str, pa.DataType]]] = {
    "branches": [("name_zh", pa.string())],
    "customers": [("age_band", pa.string()), ("channel", pa.string())],
    "transactions": [("kind", pa.string()), ("due_date", pa.date32()), ("paid_at", TS)],
}
SCHEMAS: dict[str, pa.Schema] = {
    t.name: pa.schema([(c.name, ARROW_TYPES[c.kind]) for c in t.columns] + EXTRA_COLUMNS.get(t.name, []))
    for t in TABLES
}
TABLE_NAMES = tuple(SCHEMAS)

SURVEY_COMMENTS = (
    "Support never solved my problem.",
    "Support took far too long.",
    "Too expensive since the price went up.",
    "Thinking about switching to another operator.",
    "Good coverage and fair price.",
)


def branches_table() -> pa.Table:
    """The organisation tree: head office, provinces, cities."""
    rows = [("HQ", "Head office", None, 0, "总部")]
    for pid, en, zh, cs in P.PROVINCES:
        rows.append((pid, f"{en} Province", "HQ", 1, f"{zh}省分公司"))
        rows += [(f"{pid}-{cid}", f"{cen} City", pid, 2, f"{czh}市分公司") for cid, cen, czh, _ in cs]
    return pa.Table.from_pylist(
        [dict(zip(SCHEMAS["branches"].names, r, strict=True)) for r in rows], schema=SCHEMAS["branches"]
    )


class CustomerIds:
    """The chunk's customer ids (``C`` + zero-padded global number), all of one width."""

    def __init__(self, first_customer: int, n: int, width: int) -> None:
        text = np.strings.add("C", np.strings.zfill((first_customer + 1 + np.arange(n)).astype(str), width))
        self.size = width + 1
        self.bytes = np.frombuffer(text.astype(f"S{self.size}").tobytes(), np.uint8).reshape(n, self.size)

    def take(self, customer: np.ndarray) -> pa.Array:
        """The id of each row's customer, built straight from the fixed-width bytes (no per-row objects)."""
        data = self.bytes[customer].ravel()
        offsets = np.arange(len(customer) + 1, dtype=np.int32) * self.size
        return pa.Array.from_buffers(pa.string(), len(customer), [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _labels(names: tuple[str, ...] | list[str], codes: np.ndarray) -> pa.Array:
    """String column from category codes (negative = null)."""
    codes = np.asarray(codes, dtype=np.int32)
    # decoding a dictionary array is far faster than ``take`` on a string array
    return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), pa.array(list(names), pa.string())).cast(
        pa.string()
    )


def _dates(days: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(days, dtype=np.int32), pa.date32(), mask=null)


def _us(days: np.ndarray) -> np.ndarray:
    """Fractional epoch days → microseconds, truncated to whole seconds (as source systems record them)."""
    return np.floor(np.asarray(days, dtype=np.float64) * 86_400).astype(np.int64) * 1_000_000


def _ts(us: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(us, dtype=np.int64), TS, mask=null)


def _f64(x: np.ndarray) -> pa.Array:
    x = np.asarray(x, dtype=np.float64)
    return pa.array(x, pa.float64(), mask=np.isnan(x))


def _table(name: str, cols: list[pa.Array]) -> pa.Table:
    return pa.Table.from_arrays(cols, schema=SCHEMAS[name])


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows repeated ``counts`` times: the source row and the repeat number of each copy."""
    src = np.repeat(np.arange(len(counts)), counts)
    j = np.arange(len(src)) - np.repeat(np.cumsum(counts) - counts, counts)
    return src, j


def fee(plan: np.ndarray, day: np.ndarray, p: P.Period) -> np.ndarray:
    """The monthly fee of ``plan`` on epoch ``day``, after the price change where it applies."""
    pc = P.PRICE_CHANGE
    rise_day = p.bounds[p.scaled(pc.month)]
    rised = (plan == P.PLAN_CODES.index(pc.plan)) & (day >= rise_day)
    return P.PLAN_FEE[plan] + np.where(rised, pc.new_fee - pc.old_fee, 0.0)


def build_tables(lc: Lifecycle, rng: BlockRNG, p: P.Period, first_customer: int, id_width: int) -> dict[str, pa.Table]:
    """Turn the phase-1 records of one chunk into the canonical tables (all but ``branches``).

    Parameters
    ----------
    lc
        The chunk's phase-1 records.
    rng
        The chunk's block generators, after phase 1.
    p
        The simulated period.
    first_customer
        Global index of the chunk's first customer (ids start at ``C…1``).
    id_width
        Digits in a customer id.
    """
    c, cm = lc.customers, lc.cm
    n = rng.n
    ids = CustomerIds(first_customer, n, id_width)
    end_us = int(p.bounds[-1]) * DAY_US  # first instant after the period

    # usage multiplier per customer-month: decay before a churn, drift, season
    ch = lc.churns
    base = int(p.bounds[0])
    # the churn that ends each customer-month's spell: the customer's first churn on or after d0
    ckey = np.append(ch["customer"] * (1 << 32) + (ch["day"] - base), np.iinfo(np.int64).max)
    j = np.searchsorted(ckey, cm["customer"] * (1 << 32) + (cm["d0"] - base))
    found = np.append(ch["customer"], -1)[j] == cm["customer"]
    before = np.where(found, np.append(ch["month"], 0)[j] - cm["month"], 99)
    reason = np.append(ch["reason"], 0)[j]
    kind = np.where(reason == P.R["natural"], 1, np.where(reason == P.R["involuntary"], 2, 0))
    curves = np.array([P.DECAY_VOLUNTARY, P.DECAY_NATURAL, P.DECAY_INVOLUNTARY, (1.0,) * 4])
    decay = curves[np.where(before <= 3, kind, 3), np.minimum(before, 3)]
    drift_months = cm["month"] - c.drift_start[cm["customer"]] + 1
    drift = np.where(drift_months > 0, np.maximum(P.DRIFT_FLOOR, 1 - P.DRIFT_PER_MONTH * drift_months), 1.0)
    usage = decay * drift * P.SEASON[p.calendar_month[cm["month"]] - 1]
    pre_churn = (before <= 2) & (kind == 0)
    cust, days, d0 = cm["customer"], cm["d1"] - cm["d0"], cm["d0"]
    cm_counts = rng.counts(cust)

    out: dict[str, pa.Table] = {}
    out["customers"] = _customers(lc, ids)
    out["subscriptions"] = _subscriptions(lc, ids, p)
    out["transactions"] = _transactions(lc, rng, p, ids, usage, end_us)

    # events: daily aggregates on usage days; the days are spread over the active part of the month
    lam = c.active_rate[cust] * usage * days / P.MONTH_DAYS
    k = np.minimum(rng.poisson(lam, cm_counts), days)
    row, jj = _expand(k)
    dcounts = rng.counts(cust[row])
    u = rng.random(3, dcounts)
    zd = rng.normal(None, dcounts)
    gc = rng.gamma(1.5, dcounts) / 1.5
    vm = np.sqrt(usage[row])
    lam_app = (P.APP_LOGINS_MEAN - 1) * vm
    logins = 1 + rng.poisson(lam_app, dcounts)
    kr, dr = k[row], days[row]
    lo, hi = (jj * dr) // kr, ((jj + 1) * dr) // kr
    day = d0[row] + lo + np.floor(u[:, 0] * (hi - lo)).astype(np.int64)
    rc = cust[row]
    data = np.round(
        P.PLAN_DATA_MB[cm["plan"][row]] * c.data_scale[rc] * vm * np.exp(P.DATA_SIGMA * zd - P.DATA_SIGMA**2 / 2), 1
    )
    calls = np.maximum(np.round(P.CALL_MINUTES_MEAN * vm * gc, 1), 0.1)
    values = np.stack([data, calls, logins.astype(np.float64)], axis=1)
    keep = np.stack([np.ones(len(row), bool), u[:, 1] < c.call_prob[rc], u[:, 2] < c.app_prob[rc] * vm], axis=1)
    ev_row = np.repeat(np.arange(len(row)), 3).reshape(-1, 3)[keep]
    ev_type = np.broadcast_to(np.arange(3), keep.shape)[keep]
    out["events"] = _table(
        "events",
        [ids.take(rc[ev_row]), _ts(day[ev_row] * DAY_US), _labels(EVENT_TYPES, ev_type), _f64(values[keep])],
    )

    # tickets
    tk = lc.tickets
    opened = _us(tk["opened"])
    res_us = _us(np.where(np.isfinite(tk["resolved"]), tk["resolved"], 0))
    open_ = ~np.isfinite(tk["resolved"]) | (res_us >= end_us)
    out["tickets"] = _table(
        "tickets",
        [
            ids.take(tk["customer"]),
            _ts(opened),
            _ts(res_us, open_),
            _labels(P.TICKET_CATEGORIES, tk["category"]),
            _f64(np.where(open_, np.nan, tk["satisfaction"])),
        ],
    )

    # NPS surveys: the score falls with an open ticket, poor support, the price rise and the intent to leave
    u = rng.random(4, cm_counts)
    z = rng.normal(None, cm_counts)
    asked = u[:, 0] < P.SURVEY_RATE * days / P.MONTH_DAYS
    score = (
        c.nps_base[cust]
        + P.NPS_NOISE * z
        + P.NPS_OPEN_TICKET * cm["has_open"]
        + P.NPS_POOR_SERVICE * cm["poor_service"]
        + P.NPS_PRICE_RISE * (cm["rise"] & (cm["month"] - p.scaled(P.PRICE_CHANGE.month) < 6))
        + P.NPS_PRE_CHURN * pre_churn
    )
    score = np.clip(np.round(score), 0, 10)
    says = u[:, 3] < 0.5
    comment = np.select(
        [cm["has_open"], cm["poor_service"], cm["rise"] & (score <= 6), pre_churn & (score <= 6), score >= 9],
        [0, 1, 2, 3, 4],
        -1,
    )
    comment = np.where(says, comment, -1)
    s_us = _us(d0 + np.floor(u[:, 1] * days) + (9 + 12 * u[:, 2]) / 24)
    out["surveys"] = _table(
        "surveys",
        [
            ids.take(cust[asked]),
            _ts(s_us[asked]),
            _labels(["NPS"], np.zeros(int(asked.sum()), np.int64)),
            _f64(score[asked]),
            _labels(SURVEY_COMMENTS, comment[asked]),
        ],
    )

    # churn events
    out["churn_events"] = _table(
        "churn_events",
        [
            ids.take(ch["customer"]),
            _dates(ch["day"]),
            pa.array(ch["reason"] != P.R["involuntary"], pa.bool_()),
            _labels(P.REASONS, ch["reason"]),
            _labels(P.COMPETITORS, ch["dest"]),
            _labels(P.NOTES, ch["note"]),
        ],
    )
    return {name: out[name] for name in TABLE_NAMES if name != "branches"}


def _customers(lc: Lifecycle, ids: CustomerIds) -> pa.Table:
    c = lc.customers
    cities = P.cities()
    owners = [o for city in cities for o in city.owners]
    business = P.PLAN_BUSINESS[c.plan0]
    return _table(
        "customers",
        [
            ids.take(np.arange(len(c.city))),
            _labels([x.branch_id for x in cities], c.city),
            _dates(c.signup),
            _labels(P.PLAN_CODES, lc.final_plan),
            _labels(["consumer", "business"], business.astype(np.int64)),
            _labels(owners, c.city * P.OWNERS_PER_CITY + c.owner),
            _labels(["VIP"], np.where(c.vip, 0, -1)),
            _labels(P.AGE_BANDS, np.where(business, -1, c.age)),
            _labels(P.CHANNELS, c.channel),
        ],
    )


def _subscriptions(lc: Lifecycle, ids: CustomerIds, p: P.Period) -> pa.Table:
    st, en = lc.starts, lc.ends

    def keys(cust: np.ndarray) -> np.ndarray:  # customer and the row's rank among that customer's rows
        rank = np.arange(len(cust)) - np.searchsorted(cust, cust, side="left")
        return cust * 4096 + rank

    ek = np.append(keys(en["customer"]), np.iinfo(np.int64).max)
    sk = keys(st["customer"])
    j = np.searchsorted(ek, sk)
    ended = ek[j] == sk
    end_day = np.where(ended, np.append(en["day"], 0)[j], 0)
    last = int(p.bounds[-1]) - 1
    mrr = fee(st["plan"], np.where(ended, end_day, last), p)
    return _table(
        "subscriptions",
        [
            ids.take(st["customer"]),
            _labels(P.PLAN_CODES, st["plan"]),
            _dates(st["day"]),
            _dates(end_day, ~ended),
            _f64(mrr),
        ],
    )


def _transactions(lc: Lifecycle, rng: BlockRNG, p: P.Period, ids: CustomerIds, usage: np.ndarray, end_us: int):
    cm = lc.cm
    # postpaid bills at the start of each month (or the start day), paid after the drawn delay
    b = cm["billed"]
    cust, plan, day = cm["customer"][b], cm["plan"][b], cm["d0"][b]
    u = rng.random(2, rng.counts(cust))
    addon = np.where(u[:, 0] < P.ADDON_PROB, P.ADDONS[np.minimum((u[:, 1] * 3).astype(np.int64), 2)], 0.0)
    amount = fee(plan, day, p) + addon
    bill_us = day * DAY_US + P.BILL_HOUR * HOUR_US
    delay = cm["delay"][b]
    paid_us = bill_us + _us(np.where(np.isfinite(delay), delay, 0))
    paid = np.isfinite(delay) & (paid_us < end_us)
    due = cm["due"][b]
    # prepaid top-ups, fewer as usage decays
    pre = ~P.PLAN_POSTPAID[cm["plan"]]
    tc = rng.counts(cm["customer"][pre])
    days = (cm["d1"] - cm["d0"])[pre]
    n_top = np.minimum(rng.poisson(P.TOPUP_RATE * usage[pre] * days / P.MONTH_DAYS, tc), 4)
    row, _ = _expand(n_top)
    t_cust = cm["customer"][pre][row]
    ut = rng.random(2, rng.counts(t_cust))
    t_us = _us(cm["d0"][pre][row] + ut[:, 0] * days[row])
    t_amount = P.TOPUP_AMOUNTS[pick(ut[:, 1], P.TOPUP_SHARE)]

    nb, npay, nt = len(cust), int(paid.sum()), len(t_cust)
    all_cust = np.concatenate([cust, cust[paid], t_cust])
    all_ts = np.concatenate([bill_us, paid_us[paid], t_us])
    all_kind = np.repeat([0, 1, 2], [nb, npay, nt])
    # one int64 key (customer, second, kind): all these timestamps are whole seconds
    span = (int(p.bounds[-1]) - int(p.bounds[0])) * 86_400
    seconds = all_ts // 1_000_000 - int(p.bounds[0]) * 86_400
    o = np.argsort((all_cust * span + seconds) * 4 + all_kind, kind="stable")
    all_plan = np.concatenate([plan, plan[paid], np.full(nt, P.PREPAID)])
    amounts = np.concatenate([amount, amount[paid], t_amount])
    margin = np.round(amounts * P.PLAN_MARGIN[all_plan], 2)
    margin[nb : nb + npay] = np.nan  # a payment settles a bill; the bill carries the margin
    due_all = np.concatenate([due, due[paid], np.zeros(nt, np.int64)])
    paid_all = np.concatenate([np.where(paid, paid_us, 0), paid_us[paid], t_us])
    paid_null = np.concatenate([~paid, np.zeros(npay + nt, bool)])
    return _table(
        "transactions",
        [
            ids.take(all_cust[o]),
            _ts(all_ts[o]),
            _f64(amounts[o]),
            _f64(margin[o]),
            _labels(P.PLAN_CODES, all_plan[o]),
            _labels(TRANSACTION_KINDS, all_kind[o]),
            _dates(due_all[o], (all_kind == 2)[o]),
            _ts(paid_all[o], paid_null[o]),
        ],
    )
