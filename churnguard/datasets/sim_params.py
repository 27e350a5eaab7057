"""The simulated operator and every parameter of its causal model (see ``docs/simulator.md``).

Everything the simulator draws from is declared here, once: the branch tree, the plans and
their fees, the hazard model's rates and multipliers, the promotions, the price change, the
ticket, billing, survey and usage models.  :func:`truth` turns them into the JSON-serialisable
``Simulation.truth`` record, with the dates resolved for the simulated period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from churnguard.reasons import REASON_CODES

#: Customers per random-number block: block ``b`` draws from ``SeedSequence([seed, b])``, so
#: output does not depend on how customers are grouped into chunks.
BLOCK = 1_000

#: Days in an average month; hazards are rates per average month, scaled by a month's length.
MONTH_DAYS = 30.4375

# ----------------------------------------------------------------------------- organisation
#: (province id, en name, zh name, [(city id, en, zh, customer share), ...])
PROVINCES: tuple[tuple[str, str, str, tuple[tuple[str, str, str, float], ...]], ...] = (
    (
        "GD",
        "Guangdong",
        "广东",
        (("GZ", "Guangzhou", "广州", 0.12), ("SZ", "Shenzhen", "深圳", 0.13), ("DG", "Dongguan", "东莞", 0.06)),
    ),
    (
        "ZJ",
        "Zhejiang",
        "浙江",
        (("HZ", "Hangzhou", "杭州", 0.10), ("NB", "Ningbo", "宁波", 0.06), ("WZ", "Wenzhou", "温州", 0.05)),
    ),
    (
        "JS",
        "Jiangsu",
        "江苏",
        (("NJ", "Nanjing", "南京", 0.08), ("SU", "Suzhou", "苏州", 0.08), ("WX", "Wuxi", "无锡", 0.05)),
    ),
    ("SC", "Sichuan", "四川", (("CD", "Chengdu", "成都", 0.10), ("MY", "Mianyang", "绵阳", 0.04))),
    ("HB", "Hubei", "湖北", (("WH", "Wuhan", "武汉", 0.10), ("YC", "Yichang", "宜昌", 0.03))),
)
OWNERS_PER_CITY = 3


@dataclass(frozen=True)
class City:
    branch_id: str
    province_index: int
    share: float
    owners: tuple[str, ...]


def cities() -> tuple[City, ...]:
    """The city branches customers belong to, in a fixed order."""
    out = []
    for p, (pid, _, _, cs) in enumerate(PROVINCES):
        for cid, _, _, share in cs:
            owners = tuple(f"AM-{cid}-{k:02d}" for k in range(1, OWNERS_PER_CITY + 1))
            out.append(City(f"{pid}-{cid}", p, share, owners))
    return tuple(out)


# ----------------------------------------------------------------------------- plans
#: code, segment, monthly fee, contract months (0 = none), margin rate, billed (postpaid),
#: share of new customers, daily data MB scale, monthly background churn rate
PLANS: tuple[dict[str, Any], ...] = (
    {"plan": "prepaid", "segment": "consumer", "fee": 29.0, "contract_months": 0, "margin_rate": 0.50,
     "postpaid": False, "share": 0.30, "data_mb_per_day": 250.0, "background_rate": 0.022},
    {"plan": "smart", "segment": "consumer", "fee": 58.0, "contract_months": 0, "margin_rate": 0.45,
     "postpaid": True, "share": 0.32, "data_mb_per_day": 550.0, "background_rate": 0.010},
    {"plan": "unlimited", "segment": "consumer", "fee": 128.0, "contract_months": 12, "margin_rate": 0.40,
     "postpaid": True, "share": 0.15, "data_mb_per_day": 1400.0, "background_rate": 0.007},
    {"plan": "family", "segment": "consumer", "fee": 199.0, "contract_months": 24, "margin_rate": 0.42,
     "postpaid": True, "share": 0.15, "data_mb_per_day": 1000.0, "background_rate": 0.005},
    {"plan": "business", "segment": "business", "fee": 299.0, "contract_months": 24, "margin_rate": 0.38,
     "postpaid": True, "share": 0.08, "data_mb_per_day": 800.0, "background_rate": 0.006},
)  # fmt: skip
PLAN_CODES = tuple(p["plan"] for p in PLANS)
PLAN_FEE = np.array([p["fee"] for p in PLANS])
PLAN_CONTRACT = np.array([p["contract_months"] for p in PLANS], dtype=np.float64)
PLAN_MARGIN = np.array([p["margin_rate"] for p in PLANS])
PLAN_POSTPAID = np.array([p["postpaid"] for p in PLANS])
PLAN_SHARE = np.array([p["share"] for p in PLANS])
PLAN_DATA_MB = np.array([p["data_mb_per_day"] for p in PLANS])
PLAN_BG_RATE = np.array([p["background_rate"] for p in PLANS])
PLAN_BUSINESS = np.array([p["segment"] == "business" for p in PLANS])
PREPAID, SMART, UNLIMITED, FAMILY, BUSINESS = range(5)

#: Monthly probability of a plan change, and where a change goes (rows: from, columns: to).
SWITCH_RATE = np.array([0.006, 0.004, 0.003, 0.002, 0.0])
SWITCH_TO = np.array(
    [
        [0.0, 0.7, 0.2, 0.1, 0.0],
        [0.3, 0.0, 0.4, 0.3, 0.0],
        [0.0, 0.5, 0.0, 0.5, 0.0],
        [0.0, 0.5, 0.5, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 1.0],
    ]
)

# ----------------------------------------------------------------------------- customers
EXISTING_SHARE = 0.6  # customers already on board at the start of the period
EXISTING_TENURE_MEAN_DAYS = 3 * 365.0  # exponential, capped at 10 years
CHANNELS = ("store", "online", "telesales", "partner")
CHANNEL_SHARE = np.array([0.45, 0.30, 0.10, 0.15])
CHANNEL_MULT = np.array([1.0, 1.3, 1.2, 0.9])
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
AGE_SHARE = np.array([0.14, 0.26, 0.22, 0.18, 0.12, 0.08])
AGE_MULT = np.array([1.3, 1.1, 1.0, 0.95, 0.9, 0.8])
VIP_SHARE = {"business": 0.10, "consumer": 0.005}
PRICE_SENSITIVITY_GAMMA = (2.0, 0.5)  # shape, scale: mean 1

# ----------------------------------------------------------------------------- hazard model
TENURE_EDGES = np.array([3.0, 6.0, 12.0, 24.0])  # months in the current spell
TENURE_MULT = np.array([1.8, 1.4, 1.15, 1.0, 0.8])
IN_CONTRACT_MULT = 0.5  # while tenure < the plan's contract months
CONTRACT_END_MULT = 1.6  # the two months after the contract ends
PRICE_RATE = 0.0020  # price channel, per month, times price sensitivity
COMPETITOR_RATE = 0.0025  # competitor channel, per month, times price sensitivity
SERVICE_RATE = 0.0015  # service channel, per month
SERVICE_OPEN_TICKET_MULT = 30.0  # added to 1 while a ticket is unresolved at the month start
SERVICE_POOR_MULT = 10.0  # added to 1 for 90 days after a ticket rated 1–2 or resolved after > 7 days
POOR_SERVICE_DAYS = 90
POOR_SERVICE_HOURS = 7 * 24
INVOLUNTARY_RATE = 0.7  # per month once the last two bills are unpaid
UNPAID_STREAK = 2

#: The background channel's split into reasons, consumer and business.
BACKGROUND_REASONS = ("product", "benefit", "policy", "natural", "industry_exit")
BACKGROUND_SPLIT = np.array([[0.30, 0.25, 0.20, 0.25, 0.0], [0.25, 0.20, 0.15, 0.15, 0.25]])

#: Reason codes in the order the simulator numbers them.
REASONS = ("product", "price", "service", "benefit", "policy", "competitor", "industry_exit", "natural", "involuntary")
assert set(REASONS) == REASON_CODES
R = {code: i for i, code in enumerate(REASONS)}

COMPETITORS = ("BlueWave Mobile", "Orbit Telecom", "Nova Wireless")
COMPETITOR_SHARE = np.array([0.45, 0.35, 0.20])
#: Probability that a churner of each reason names a destination (a competitor).
DESTINATION_PROB = np.array([0.6, 0.85, 0.5, 0.1, 0.3, 1.0, 0.0, 0.0, 0.0])
PROMO_DESTINATION_PROB = 0.85  # a promo-window competitor/price churner goes to the promoter

#: Probability that a churner of each reason comes back, 30–180 days later.
REACTIVATION_PROB = np.array([0.10, 0.18, 0.12, 0.08, 0.12, 0.20, 0.0, 0.0, 0.10])
REACTIVATION_DAYS = (30, 180)
REACTIVATION_SAME_PLAN = 0.6  # otherwise a plan drawn from the new-customer mix


@dataclass(frozen=True)
class Promotion:
    """A competitor promotion in one province: months are offsets in a 36-month period."""

    name: str
    competitor: str
    province: str
    first_month: int
    last_month: int  # exclusive
    competitor_mult: float
    price_mult: float


PROMOTIONS = (
    Promotion("BlueWave 5G double-data offer", "BlueWave Mobile", "GD", 10, 16, 5.0, 2.0),
    Promotion("Orbit family bundle", "Orbit Telecom", "SC", 27, 30, 6.0, 2.5),
)


@dataclass(frozen=True)
class PriceChange:
    """A plan's monthly fee rises at the start of a month (an offset in a 36-month period)."""

    plan: str
    old_fee: float
    new_fee: float
    month: int
    price_mult_first: float  # price-channel multiplier in the first `first_months` months
    first_months: int
    price_mult_after: float  # and afterwards
    downgrade_rate: float  # extra monthly probability of a move to prepaid, first 6 months


PRICE_CHANGE = PriceChange("smart", 58.0, 68.0, 18, 6.0, 3, 2.5, 0.012)

#: ``churn_events.notes``: note ``k < len(PROMOTIONS)`` names promotion ``k``; then the other drivers.
NOTES: tuple[str, ...] = (
    *(f"competitor promotion: {pr.name} ({pr.competitor})" for pr in PROMOTIONS),
    f"{PRICE_CHANGE.plan} plan fee rose from {PRICE_CHANGE.old_fee:g} to {PRICE_CHANGE.new_fee:g}",
    "left with a service ticket still unresolved",
    "a recent ticket took over a week or was rated 1-2 of 5",
    f"{UNPAID_STREAK} bills unpaid in a row; line suspended",
)
NOTE = {key: len(PROMOTIONS) + i for i, key in enumerate(("price_rise", "open_ticket", "poor_service", "unpaid"))}

# ----------------------------------------------------------------------------- billing
PAYERS = ("good", "sloppy", "bad")
PAYER_SHARE = np.array([0.88, 0.08, 0.04])
PAYER_NEVER = np.array([0.003, 0.04, 0.30])  # a bill is never paid
PAYER_LATE = np.array([0.03, 0.35, 0.40])  # paid 21–60 days after the bill
DUE_DAYS = 19  # due on the bill day + 19 (the 20th) or the month's last day, whichever comes first
LATE_DAYS = (21, 60)
BILL_HOUR = 2
ADDON_PROB = 0.2
ADDONS = np.array([10.0, 20.0, 30.0])
TOPUP_RATE = 1.15  # prepaid top-ups per month (Poisson), times the usage decay
TOPUP_AMOUNTS = np.array([30.0, 50.0, 100.0])
TOPUP_SHARE = np.array([0.6, 0.3, 0.1])

# ----------------------------------------------------------------------------- tickets
TICKET_RATE = np.array([0.030, 0.035, 0.040, 0.045, 0.060])  # per plan, per month
TICKET_CATEGORIES = ("billing", "network", "device", "account", "roaming")
TICKET_SHARE = np.array([0.30, 0.35, 0.10, 0.15, 0.10])
TICKET_NEVER = np.array([0.02, 0.06, 0.03, 0.02, 0.04])  # never resolved
TICKET_MEDIAN_HOURS = np.array([12.0, 30.0, 20.0, 8.0, 24.0])
TICKET_SIGMA = 1.3
SAT_RESPONSE = 0.6
SAT_FORMULA = (4.7, 0.9, 0.9)  # round(a − b·ln(1 + days to resolve) + c·N(0,1)), clipped to 1..5

# ----------------------------------------------------------------------------- surveys
SURVEY_RATE = 0.03  # NPS surveys per active customer-month
NPS_BASE = (7.8, 1.6)  # customer's mean score, N(mean, sd)
NPS_NOISE = 1.2
NPS_OPEN_TICKET = -3.0
NPS_POOR_SERVICE = -2.0
NPS_PRICE_RISE = -1.5  # smart customers, six months after the rise
NPS_PRE_CHURN = -2.5  # voluntary churners, in the churn month and the two before

# ----------------------------------------------------------------------------- usage
ACTIVE_DAYS_GAMMA = (3.0, 0.8)  # usage-day rate per month: Gamma(shape, scale), mean 2.4
CALL_PROB = (0.4, 0.8)  # per customer, uniform: P(call_minutes row on a usage day)
APP_PROB = (0.2, 0.8)  # per customer, uniform: P(app_login row on a usage day)
CALL_MINUTES_MEAN = 14.0
APP_LOGINS_MEAN = 1.5
DATA_SIGMA = 0.6
#: Usage multiplier by months before the churn month (0 = the churn month), per driver kind.
DECAY_VOLUNTARY = (0.45, 0.6, 0.75, 0.9)
DECAY_NATURAL = (0.8, 1.0, 1.0, 1.0)
DECAY_INVOLUNTARY = (0.5, 0.85, 1.0, 1.0)
DRIFTER_SHARE = 0.05  # customers whose usage declines with no churn (false alarms)
DRIFT_PER_MONTH = 0.12
DRIFT_FLOOR = 0.4
SEASON = np.array([1.0, 0.9, 1.0, 1.0, 1.0, 1.0, 1.05, 1.05, 1.0, 1.0, 1.0, 1.08])  # Jan..Dec


# ----------------------------------------------------------------------------- the period
@dataclass(frozen=True)
class Period:
    """The simulated months.

    ``bounds`` holds ``M + 1`` epoch days: month ``m`` covers ``[bounds[m], bounds[m + 1])``;
    the first month starts on ``start`` and the last ends after ``end``.
    """

    start: date
    end: date
    bounds: np.ndarray
    calendar_month: np.ndarray  # 1..12 per month

    @property
    def months(self) -> int:
        return len(self.bounds) - 1

    def scaled(self, month36: int) -> int:
        """Map a month offset in a 36-month period onto this period."""
        return min(self.months, max(0, round(month36 * self.months / 36)))

    def day(self, epoch_day: int) -> date:
        return date(1970, 1, 1) + timedelta(days=int(epoch_day))


def period(start: date, end: date) -> Period:
    """Split ``[start, end]`` into calendar months (the first and last may be partial)."""
    first = np.datetime64(start, "M")
    last = np.datetime64(end, "M")
    month_starts = np.arange(first, last + 1).astype("datetime64[D]")
    bounds = month_starts.astype(np.int64)
    bounds[0] = np.datetime64(start, "D").astype(np.int64)
    bounds = np.append(bounds, np.datetime64(end, "D").astype(np.int64) + 1)
    cal = (np.arange(first, last + 1).astype(np.int64) % 12) + 1
    return Period(start, end, bounds, cal)


def promo_months(p: Period, promo: Promotion) -> tuple[int, int]:
    first = p.scaled(promo.first_month)
    return first, max(first + 1, p.scaled(promo.last_month))


def truth(p: Period, customers: int, seed: int) -> dict[str, Any]:
    """The built-in causes and parameters, JSON-serialisable, with dates for period ``p``."""

    def iso(m: int) -> str:
        return p.day(p.bounds[min(m, p.months)]).isoformat()

    def last_day(m: int) -> str:
        return p.day(p.bounds[min(m, p.months)] - 1).isoformat()

    pc_month = p.scaled(PRICE_CHANGE.month)
    promos = []
    for pr in PROMOTIONS:
        a, b = promo_months(p, pr)
        promos.append(
            {
                "name": pr.name,
                "competitor": pr.competitor,
                "province": pr.province,
                "start": iso(a),
                "end": last_day(b),
                "competitor_rate_mult": pr.competitor_mult,
                "price_rate_mult": pr.price_mult,
                "destination_prob": PROMO_DESTINATION_PROB,
            }
        )
    lst = np.ndarray.tolist
    return {
        "seed": seed,
        "customers": customers,
        "start": p.start.isoformat(),
        "end": p.end.isoformat(),
        "months": p.months,
        "rng": {"block_customers": BLOCK, "scheme": "numpy PCG64(SeedSequence([seed, block]))"},
        "branches": {
            pid: {"name": en, "cities": {f"{pid}-{c}": {"name": cen, "share": s} for c, cen, _, s in cs}}
            for pid, en, _, cs in PROVINCES
        },
        "owners_per_city": OWNERS_PER_CITY,
        "plans": [dict(pl) for pl in PLANS],
        "plan_switching": {
            "monthly_rate": dict(zip(PLAN_CODES, lst(SWITCH_RATE), strict=True)),
            "to": {
                a: dict(zip(PLAN_CODES, lst(row), strict=True)) for a, row in zip(PLAN_CODES, SWITCH_TO, strict=True)
            },
        },
        "customers_model": {
            "existing_share": EXISTING_SHARE,
            "existing_tenure_mean_days": EXISTING_TENURE_MEAN_DAYS,
            "channels": dict(zip(CHANNELS, lst(CHANNEL_SHARE), strict=True)),
            "ages": dict(zip(AGE_BANDS, lst(AGE_SHARE), strict=True)),
            "vip_share": VIP_SHARE,
            "price_sensitivity_gamma": PRICE_SENSITIVITY_GAMMA,
        },
        "hazard": {
            "unit": "rate per average month (30.4375 days); P(churn in month) = 1 - exp(-sum of channels)",
            "voluntary_multiplier": {
                "tenure_edges_months": lst(TENURE_EDGES),
                "tenure_mult": lst(TENURE_MULT),
                "in_contract_mult": IN_CONTRACT_MULT,
                "contract_end_mult_two_months": CONTRACT_END_MULT,
                "channel_mult": dict(zip(CHANNELS, lst(CHANNEL_MULT), strict=True)),
                "age_mult": dict(zip(AGE_BANDS, lst(AGE_MULT), strict=True)),
            },
            "background": {
                "rate_by_plan": dict(zip(PLAN_CODES, lst(PLAN_BG_RATE), strict=True)),
                "reasons": BACKGROUND_REASONS,
                "split_consumer": lst(BACKGROUND_SPLIT[0]),
                "split_business": lst(BACKGROUND_SPLIT[1]),
            },
            "price": {"rate": PRICE_RATE, "times": "price sensitivity × price change × promotion"},
            "competitor": {"rate": COMPETITOR_RATE, "times": "price sensitivity × promotion"},
            "service": {
                "rate": SERVICE_RATE,
                "open_ticket_add": SERVICE_OPEN_TICKET_MULT,
                "poor_service_add": SERVICE_POOR_MULT,
                "poor_service_days": POOR_SERVICE_DAYS,
                "poor_service": "a ticket rated 1-2, or resolved more than 7 days after it was opened",
            },
            "involuntary": {"rate": INVOLUNTARY_RATE, "unpaid_bills_in_a_row": UNPAID_STREAK},
        },
        "promotions": promos,
        "price_change": {
            "plan": PRICE_CHANGE.plan,
            "old_fee": PRICE_CHANGE.old_fee,
            "new_fee": PRICE_CHANGE.new_fee,
            "date": iso(pc_month),
            "price_rate_mult_first_months": PRICE_CHANGE.price_mult_first,
            "first_months": PRICE_CHANGE.first_months,
            "price_rate_mult_after": PRICE_CHANGE.price_mult_after,
            "downgrade_to_prepaid_rate_6_months": PRICE_CHANGE.downgrade_rate,
        },
        "destinations": {
            "competitors": dict(zip(COMPETITORS, lst(COMPETITOR_SHARE), strict=True)),
            "prob_by_reason": dict(zip(REASONS, lst(DESTINATION_PROB), strict=True)),
        },
        "reactivation": {
            "prob_by_reason": dict(zip(REASONS, lst(REACTIVATION_PROB), strict=True)),
            "delay_days": REACTIVATION_DAYS,
            "same_plan": REACTIVATION_SAME_PLAN,
        },
        "billing": {
            "payers": dict(zip(PAYERS, lst(PAYER_SHARE), strict=True)),
            "never_paid": dict(zip(PAYERS, lst(PAYER_NEVER), strict=True)),
            "late": dict(zip(PAYERS, lst(PAYER_LATE), strict=True)),
            "due_days_after_bill": DUE_DAYS,
            "due_at_most": "the bill month's last day",
            "on_time": "uniform between the bill and the due day's end",
            "late_days": LATE_DAYS,
            "addon_prob": ADDON_PROB,
            "addons": lst(ADDONS),
            "topups_per_month": TOPUP_RATE,
            "topup_amounts": dict(zip(map(str, lst(TOPUP_AMOUNTS)), lst(TOPUP_SHARE), strict=True)),
        },
        "tickets": {
            "rate_by_plan": dict(zip(PLAN_CODES, lst(TICKET_RATE), strict=True)),
            "categories": dict(zip(TICKET_CATEGORIES, lst(TICKET_SHARE), strict=True)),
            "never_resolved": dict(zip(TICKET_CATEGORIES, lst(TICKET_NEVER), strict=True)),
            "median_hours": dict(zip(TICKET_CATEGORIES, lst(TICKET_MEDIAN_HOURS), strict=True)),
            "lognormal_sigma": TICKET_SIGMA,
            "satisfaction_response": SAT_RESPONSE,
            "satisfaction_formula": SAT_FORMULA,
        },
        "surveys": {
            "rate": SURVEY_RATE,
            "nps_base": NPS_BASE,
            "noise": NPS_NOISE,
            "open_ticket": NPS_OPEN_TICKET,
            "poor_service": NPS_POOR_SERVICE,
            "price_rise": NPS_PRICE_RISE,
            "pre_churn": NPS_PRE_CHURN,
        },
        "usage": {
            "active_days_gamma": ACTIVE_DAYS_GAMMA,
            "call_prob": CALL_PROB,
            "app_prob": APP_PROB,
            "call_minutes_mean": CALL_MINUTES_MEAN,
            "app_logins_mean": APP_LOGINS_MEAN,
            "data_sigma": DATA_SIGMA,
            "decay_voluntary": DECAY_VOLUNTARY,
            "decay_natural": DECAY_NATURAL,
            "decay_involuntary": DECAY_INVOLUNTARY,
            "drifter_share": DRIFTER_SHARE,
            "drift_per_month": DRIFT_PER_MONTH,
            "drift_floor": DRIFT_FLOOR,
            "season": lst(SEASON),
        },
    }
