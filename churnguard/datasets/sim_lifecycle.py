"""Phase 1 of the simulator: who the customers are and what happens to them, month by month.

The month loop is vectorised over all customers of a chunk; it draws churn from the monthly
competing-risks hazard model, plan changes, reactivations, bills with their payment
behaviour and service tickets, and records one activity row per customer-month.  Phase 2
(:mod:`churnguard.datasets.sim_tables`) turns these records into the canonical tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from churnguard.datasets import sim_params as P
from churnguard.datasets.sim_rng import BlockRNG

NEVER = np.iinfo(np.int64).max // 4  # a day that never comes
_U_COLUMNS = 22  # uniforms per customer per month (columns are used in the order of the loop below)

BACKGROUND_CODES = np.array([P.R[r] for r in P.BACKGROUND_REASONS])


def pick(u: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Categorical draws from uniforms ``u``: ``probs`` is one distribution or one per row."""
    cum = np.cumsum(probs, axis=-1)
    cum = cum / cum[..., -1:]
    if cum.ndim == 1:
        return np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)
    return np.minimum((u[:, None] >= cum).sum(axis=1), cum.shape[1] - 1)


@dataclass
class Customers:
    """Static attributes of a chunk's customers (chunk-local arrays)."""

    city: np.ndarray
    province: np.ndarray
    plan0: np.ndarray
    channel: np.ndarray
    age: np.ndarray
    payer: np.ndarray
    signup: np.ndarray  # epoch day
    vip: np.ndarray
    owner: np.ndarray  # index into the city's owners
    price_sens: np.ndarray
    nps_base: np.ndarray
    active_rate: np.ndarray  # usage days per month
    data_scale: np.ndarray
    call_prob: np.ndarray
    app_prob: np.ndarray
    drift_start: np.ndarray  # month the usage drift starts; NEVER for most


def draw_customers(rng: BlockRNG, p: P.Period) -> Customers:
    """Draw the static attributes of every customer in the chunk."""
    cities = P.cities()
    u = rng.random(12)
    z = rng.normal(2)
    sens = rng.gamma(P.PRICE_SENSITIVITY_GAMMA[0]) * P.PRICE_SENSITIVITY_GAMMA[1]
    rate = rng.gamma(P.ACTIVE_DAYS_GAMMA[0]) * P.ACTIVE_DAYS_GAMMA[1]
    city = pick(u[:, 0], np.array([c.share for c in cities]))
    plan0 = pick(u[:, 1], P.PLAN_SHARE)
    start, end = int(p.bounds[0]), int(p.bounds[-1]) - 1
    existing = u[:, 2] < P.EXISTING_SHARE
    tenure = np.minimum(np.floor(-np.log1p(-u[:, 3]) * P.EXISTING_TENURE_MEAN_DAYS), 3650).astype(np.int64)
    span = max(end - 14 - start, 1)
    signup = np.where(existing, start - 1 - tenure, start + np.floor(u[:, 3] * span).astype(np.int64))
    business = P.PLAN_BUSINESS[plan0]
    months = p.months
    drifter = u[:, 9] < P.DRIFTER_SHARE
    return Customers(
        city=city,
        province=np.array([c.province_index for c in cities])[city],
        plan0=plan0,
        channel=pick(u[:, 4], P.CHANNEL_SHARE),
        age=pick(u[:, 5], P.AGE_SHARE),
        payer=pick(u[:, 6], P.PAYER_SHARE),
        signup=signup,
        vip=u[:, 7] < np.where(business, P.VIP_SHARE["business"], P.VIP_SHARE["consumer"]),
        owner=np.minimum((u[:, 8] * P.OWNERS_PER_CITY).astype(np.int64), P.OWNERS_PER_CITY - 1),
        price_sens=sens,
        nps_base=P.NPS_BASE[0] + P.NPS_BASE[1] * z[:, 0],
        active_rate=rate,
        data_scale=np.exp(0.5 * z[:, 1] - 0.125),
        call_prob=P.CALL_PROB[0] + (P.CALL_PROB[1] - P.CALL_PROB[0]) * u[:, 10],
        app_prob=P.APP_PROB[0] + (P.APP_PROB[1] - P.APP_PROB[0]) * u[:, 11],
        drift_start=np.where(drifter, np.floor(u[:, 9] / P.DRIFTER_SHARE * months).astype(np.int64), NEVER),
    )


@dataclass
class Lifecycle:
    """Phase-1 records, chunk-local customer indices; each group of arrays is one record kind."""

    customers: Customers
    final_plan: np.ndarray
    # customer-months: active days [d0, d1), the plan at the month start, the bill and its payment
    cm: dict[str, np.ndarray]
    # subscription segments: starts (customer, day, plan) and ends (customer, day)
    starts: dict[str, np.ndarray]
    ends: dict[str, np.ndarray]
    # churns: customer, day, month, reason index, destination index (-1 none), note index (-1 none)
    churns: dict[str, np.ndarray]
    # tickets: customer, opened/resolved as fractional epoch days (resolved inf = never), category, satisfaction
    tickets: dict[str, np.ndarray]


class _Log:
    """Collects per-month arrays of one record kind."""

    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, mask: np.ndarray, **cols: np.ndarray) -> None:
        self.parts.append({k: v[mask] for k, v in cols.items()})

    def done(self, order: str = "customer") -> dict[str, np.ndarray]:
        out = {k: np.concatenate([p[k] for p in self.parts]) for k in self.parts[0]}
        idx = np.argsort(out[order], kind="stable")  # customer-major, time order kept within
        return {k: v[idx] for k, v in out.items()}


@dataclass(frozen=True)
class _Context:
    """What the month loop needs besides the state: the customers and the period's events."""

    c: Customers
    p: P.Period
    business: np.ndarray
    static_mult: np.ndarray
    pc_plan: int
    pc_month: int
    promos: list[tuple[P.Promotion, int, int, int]]  # promotion, first month, last month (excl.), province

    @classmethod
    def build(cls, c: Customers, p: P.Period) -> _Context:
        provinces = [pr[0] for pr in P.PROVINCES]
        promos = [(pr, *P.promo_months(p, pr), provinces.index(pr.province)) for pr in P.PROMOTIONS]
        return cls(
            c=c,
            p=p,
            business=P.PLAN_BUSINESS[c.plan0],
            static_mult=P.CHANNEL_MULT[c.channel] * P.AGE_MULT[c.age],
            pc_plan=P.PLAN_CODES.index(P.PRICE_CHANGE.plan),
            pc_month=p.scaled(P.PRICE_CHANGE.month),
            promos=promos,
        )


def _rates(x: _Context, m: int, plan: np.ndarray, tenure: np.ndarray, drivers: dict[str, np.ndarray]) -> np.ndarray:
    """Monthly hazard rates per channel (background, price, competitor, service, involuntary), one row per customer.

    ``drivers`` holds ``promo`` (the promotion hitting the customer, or -1), ``rise`` (on the
    price-changed plan after the change), ``has_open`` and ``poor_service`` (ticket state at the
    month start) and ``streak`` (unpaid bills in a row).
    """
    c, pc = x.c, P.PRICE_CHANGE
    contract = P.PLAN_CONTRACT[plan]
    v = P.TENURE_MULT[np.searchsorted(P.TENURE_EDGES, tenure, side="right")] * x.static_mult
    v = v * np.where(
        tenure < contract,
        P.IN_CONTRACT_MULT,
        np.where((contract > 0) & (tenure < contract + 2), P.CONTRACT_END_MULT, 1.0),
    )
    promo = drivers["promo"]
    price_mult = np.where(
        drivers["rise"], pc.price_mult_first if m - x.pc_month < pc.first_months else pc.price_mult_after, 1.0
    )
    comp_mult = np.ones(len(plan))
    for k, (pr, _, _, _) in enumerate(x.promos):
        price_mult = np.where(promo == k, price_mult * pr.price_mult, price_mult)
        comp_mult = np.where(promo == k, pr.competitor_mult, comp_mult)
    service = 1 + P.SERVICE_OPEN_TICKET_MULT * drivers["has_open"] + P.SERVICE_POOR_MULT * drivers["poor_service"]
    return np.stack(
        [
            P.PLAN_BG_RATE[plan] * v,
            P.PRICE_RATE * v * c.price_sens * price_mult,
            P.COMPETITOR_RATE * v * c.price_sens * comp_mult,
            P.SERVICE_RATE * v * service,
            P.INVOLUNTARY_RATE * (drivers["streak"] >= P.UNPAID_STREAK),
        ],
        axis=1,
    )


def _attribute(x: _Context, u: np.ndarray, rates: np.ndarray, drivers: dict[str, np.ndarray]):
    """Reason, destination and note of a churn: the channel is drawn in proportion to its rate."""
    channel = pick(u[:, 0], np.maximum(rates, 1e-12))
    background = BACKGROUND_CODES[pick(u[:, 1], P.BACKGROUND_SPLIT[x.business.astype(np.int64)])]
    reason = np.choose(channel, [background, P.R["price"], P.R["competitor"], P.R["service"], P.R["involuntary"]])
    promo = drivers["promo"]
    in_promo = (promo >= 0) & ((reason == P.R["price"]) | (reason == P.R["competitor"]))
    promoter = np.array([P.COMPETITORS.index(pr.competitor) for pr, *_ in x.promos])[np.maximum(promo, 0)]
    dest = np.where(
        u[:, 2] < P.DESTINATION_PROB[reason],
        np.where(in_promo & (u[:, 3] < P.PROMO_DESTINATION_PROB), promoter, pick(u[:, 4], P.COMPETITOR_SHARE)),
        -1,
    )
    note = np.select(
        [
            in_promo,
            (reason == P.R["price"]) & drivers["rise"],
            (reason == P.R["service"]) & drivers["has_open"],
            (reason == P.R["service"]) & drivers["poor_service"],
            reason == P.R["involuntary"],
        ],
        [promo, P.NOTE["price_rise"], P.NOTE["open_ticket"], P.NOTE["poor_service"], P.NOTE["unpaid"]],
        -1,
    )
    return reason, dest, note


def _payment(x: _Context, u: np.ndarray, d0: np.ndarray, me: int) -> tuple[np.ndarray, np.ndarray]:
    """Due day and payment delay (days after the bill; inf = never paid) of a bill issued on ``d0``."""
    payer = x.c.payer
    never = u[:, 0] < P.PAYER_NEVER[payer]
    late = ~never & (u[:, 0] < P.PAYER_NEVER[payer] + P.PAYER_LATE[payer])
    lo, hi = P.LATE_DAYS
    due = np.minimum(d0 + P.DUE_DAYS, me - 1)  # due within the month, so never after the period
    on_time = u[:, 1] * (due - d0 + 0.9)  # by the due day's evening (bills go out at 02:00)
    return due, np.where(never, np.inf, np.where(late, lo + u[:, 1] * (hi - lo), on_time))


def _tickets(u: np.ndarray, z: np.ndarray, active: np.ndarray, d0: np.ndarray, days: np.ndarray, plan: np.ndarray):
    """Tickets of the month: who opens one, when, its category, resolution and satisfaction."""
    tick = active & (u[:, 0] < P.TICKET_RATE[plan] * days / P.MONTH_DAYS)
    opened = d0 + u[:, 1] * days
    cat = pick(u[:, 2], P.TICKET_SHARE)
    hours = P.TICKET_MEDIAN_HOURS[cat] * np.exp(P.TICKET_SIGMA * z[:, 0])
    unresolved = u[:, 3] < P.TICKET_NEVER[cat]
    resolved = np.where(unresolved, np.inf, opened + hours / 24)
    a, b, s = P.SAT_FORMULA
    answer = ~unresolved & (u[:, 4] < P.SAT_RESPONSE)
    sat = np.where(answer, np.clip(np.round(a - b * np.log1p(hours / 24) + s * z[:, 1]), 1, 5), np.nan)
    poor = tick & ((sat <= 2) | (~unresolved & (hours > P.POOR_SERVICE_HOURS)))  # these do get resolved
    return tick, {"opened": opened, "resolved": resolved, "category": cat, "satisfaction": sat}, poor


def simulate_lifecycle(rng: BlockRNG, p: P.Period) -> Lifecycle:
    """Run the monthly hazard model over the period for every customer of the chunk.

    Each month, in order: customers active at the month start may churn (competing risks,
    reason from the channel that fired) and are scheduled to come back or not; those who stay
    may change plan; sign-ups and comebacks start; postpaid customers get the month's bill and
    draw its payment; active customers may open a ticket.  Ticket and payment state feed the
    next month's hazards.
    """
    c = draw_customers(rng, p)
    x = _Context.build(c, p)
    n = rng.n
    idx = np.arange(n)
    consumer_share = np.where(P.PLAN_BUSINESS, 0.0, P.PLAN_SHARE)

    status = np.where(c.signup < p.bounds[0], 1, 0).astype(np.int8)  # 0 not yet, 1 active, 2 churned
    plan = c.plan0.copy()
    spell_start = np.where(status == 1, c.signup, NEVER)
    react_day = np.full(n, NEVER)
    streak = np.zeros(n, dtype=np.int64)
    open_until = np.full(n, -np.inf)  # the latest resolution of the customer's tickets
    poor_day = np.full(n, -NEVER)  # the day of the latest poor service experience

    cm, starts, ends, churns, tickets = _Log(), _Log(), _Log(), _Log(), _Log()
    starts.add(status == 1, customer=idx, day=c.signup, plan=plan)

    for m in range(p.months):
        ms, me = int(p.bounds[m]), int(p.bounds[m + 1])
        dm = me - ms
        scale = dm / P.MONTH_DAYS
        u = rng.random(_U_COLUMNS)  # every customer draws every month, whatever its state
        z = rng.normal(2)

        # 1. churn of customers active at the month start
        at_risk = status == 1
        promo = np.full(n, -1)
        for k, (_, first, last, province) in enumerate(x.promos):
            if first <= m < last:
                promo = np.where(c.province == province, k, promo)
        drivers = {
            "promo": promo,
            "rise": (plan == x.pc_plan) & (m >= x.pc_month),
            "has_open": open_until > ms,
            "poor_service": (poor_day <= ms) & (ms - poor_day < P.POOR_SERVICE_DAYS),
            "streak": streak,
        }
        rates = scale * _rates(x, m, plan, (ms - spell_start) / P.MONTH_DAYS, drivers)
        churn = at_risk & (u[:, 0] < -np.expm1(-rates.sum(axis=1)))
        reason, dest, note = _attribute(x, u[:, 1:6], rates, drivers)
        churn_day = ms + np.floor(u[:, 6] * dm).astype(np.int64)
        churns.add(churn, customer=idx, day=churn_day, month=np.full(n, m), reason=reason, dest=dest, note=note)
        ends.add(churn, customer=idx, day=churn_day)
        lo, hi = P.REACTIVATION_DAYS
        back = churn & (u[:, 7] < P.REACTIVATION_PROB[reason])
        back_day = np.maximum(churn_day + lo + np.floor(u[:, 8] * (hi - lo + 1)).astype(np.int64), me)
        react_day = np.where(back, back_day, react_day)
        status[churn] = 2

        # 2. plan changes (and downgrades after the price rise) of those who stay
        stay = at_risk & ~churn & (dm > 1)
        plan_at_ms = plan
        downgrade = drivers["rise"] & (m - x.pc_month < 6) & (u[:, 9] < P.PRICE_CHANGE.downgrade_rate * scale)
        switch = stay & (downgrade | (u[:, 10] < P.SWITCH_RATE[plan] * scale))
        switch_day = ms + 1 + np.floor(u[:, 12] * (dm - 1)).astype(np.int64)
        ends.add(switch, customer=idx, day=switch_day - 1)
        plan = np.where(switch, np.where(downgrade, P.PREPAID, pick(u[:, 11], P.SWITCH_TO[plan])), plan)
        starts.add(switch, customer=idx, day=switch_day, plan=plan)

        # 3. sign-ups and comebacks (a comeback keeps its plan or picks one from the new-customer mix)
        new = (status == 0) & (c.signup < me)
        react = (status == 2) & (react_day < me)
        comeback_plan = np.where(x.business, P.BUSINESS, pick(u[:, 14], consumer_share))
        plan = np.where(react & (u[:, 13] >= P.REACTIVATION_SAME_PLAN), comeback_plan, plan)
        start_day = np.where(new, c.signup, react_day)
        starter = new | react
        starts.add(starter, customer=idx, day=start_day, plan=plan)
        spell_start = np.where(starter, start_day, spell_start)
        react_day = np.where(react, NEVER, react_day)
        streak = np.where(react, 0, streak)
        open_until = np.where(react, -np.inf, open_until)
        poor_day = np.where(react, -NEVER, poor_day)
        status[starter] = 1

        # 4. the month's activity and its bill (postpaid: at the month start, or on the start day)
        active = at_risk | starter
        d0 = np.where(starter, start_day, ms)
        d1 = np.where(churn, churn_day + 1, me)
        bill_plan = np.where(at_risk, plan_at_ms, plan)
        billed = active & P.PLAN_POSTPAID[bill_plan]
        due, delay = _payment(x, u[:, 15:17], d0, me)
        streak = np.where(billed, np.where(np.isinf(delay), streak + 1, 0), streak)

        # 5. service tickets; their state drives next month's service hazard
        tick, ticket, poor = _tickets(u[:, 17:22], z, active, d0, d1 - d0, bill_plan)
        tickets.add(tick, customer=idx, **ticket)
        cm.add(
            active,
            customer=idx,
            month=np.full(n, m),
            d0=d0,
            d1=d1,
            plan=bill_plan,
            billed=billed,
            due=due,
            delay=delay,
            has_open=drivers["has_open"],
            poor_service=drivers["poor_service"],
            rise=drivers["rise"],
        )
        open_until = np.where(tick, np.maximum(open_until, ticket["resolved"]), open_until)
        poor_day[poor] = np.floor(ticket["resolved"][poor]).astype(np.int64)

    return Lifecycle(c, plan, cm.done(), starts.done(), ends.done(), churns.done(), tickets.done())
