"""What the outside world does, drawn from the seed: sellers, and for each order its buyer, lines,
currencies and the timings of payment, shipment and the customs decision.

Sellers are paid on the three rails in the currencies their countries use (MTN MoMo: RW, UG;
M-Pesa: KE; Airtel Money: RW, UG, KE, TZ). Most orders go to a long tail of small sellers;
one in ten goes to a few busy co-operatives, whose wallets meet the rails' daily limits. A few
wallets are held under another name than the seller's, so the payee check puts the seller in
review (at registration where the rail checks a holder's name, after the first payout on M-Pesa)
until an admin clears it.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from chalicelib.money import Money

#: (rail, country, currency, wallet prefix, weight): wallet numbers are the prefix + 7 digits.
ROUTES = (
    ("mtn_momo", "RW", "RWF", "25078", 30),
    ("mtn_momo", "UG", "UGX", "25677", 15),
    ("mpesa", "KE", "KES", "25471", 30),
    ("airtel_money", "RW", "RWF", "25073", 8),
    ("airtel_money", "UG", "UGX", "25670", 7),
    ("airtel_money", "KE", "KES", "25473", 5),
    ("airtel_money", "TZ", "TZS", "25568", 5),
)
PAY_CURRENCIES = (("USD", 35), ("CNY", 35), ("EUR", 15), ("GBP", 10), ("KES", 5))
LISTING_CURRENCIES = (("USD", 80), ("EUR", 15), ("GBP", 5))
PRODUCTS = (("Washed arabica", "090111"), ("Natural robusta", "090111"), ("Black tea", "090240"),
            ("Dried chili", "090421"), ("Cashew nuts", "080132"), ("Vanilla beans", "090510"))
CUSTOMS_OFFICES = ("Kigali", "Mombasa", "Kampala", "Dar es Salaam", "Shanghai", "Guangzhou")
SECONDS_PER_DAY = 86400


def _weighted(rng: random.Random, choices):
    total = sum(w for *_, w in choices)
    pick = rng.random() * total
    for choice in choices:
        pick -= choice[-1]
        if pick < 0:
            return choice
    return choices[-1]


@dataclass(frozen=True)
class SellerPlan:
    """A seller of the run: who, paid on which rail, in which currency, to which wallet (and under whose name)."""

    seller_id: str
    name: str
    rail: str
    country: str
    currency: str
    msisdn: str
    holder_name: str  # what the rail says of the wallet's holder
    busy: bool  # one of the co-operatives


@dataclass
class OrderPlan:
    """One order's story: who buys what from whom, and when each party acts (seconds of virtual time)."""

    index: int
    buyer: str
    seller: SellerPlan
    pay_currency: str
    lines: list[dict]
    pay_after: int  # after checkout
    declines: int  # card declines before the payment that succeeds
    ship_after: int  # after the seller hears the order is paid
    customs: str  # cleared | rejected | silent (customs never answers: the workflow times out)
    inspection_first: bool
    customs_after: int  # after the shipment is recorded
    office: str
    extras: dict = field(default_factory=dict)


class Workload:
    """Draws sellers and orders from ``rng`` (see the module doc)."""

    def __init__(self, rng: random.Random, orders: int, mean_interarrival_s: float):
        self.rng = rng
        self.orders = orders
        self.mean_interarrival_s = mean_interarrival_s
        per_day = SECONDS_PER_DAY / mean_interarrival_s
        # A long-tail seller gets an order every ~two days; a co-operative several a day.
        tail = max(20, min(int(per_day / 2), max(orders // 2, 20)))
        busy = max(2, tail // 25)
        self.sellers = [self._seller(i, busy=False) for i in range(tail)] + \
                       [self._seller(tail + i, busy=True) for i in range(busy)]
        self.tail = self.sellers[:tail]
        self.busy = self.sellers[tail:]
        self.buyers = max(10, orders // 3)

    def _seller(self, i: int, busy: bool) -> SellerPlan:
        rng = self.rng
        rail, country, currency, prefix, _ = _weighted(rng, ROUTES)
        name = f"{'Cooperative' if busy else 'Farm'} {i:05d} {rng.choice(('Kivu', 'Nyeri', 'Mbale', 'Arusha', 'Huye'))}"
        msisdn = f"{prefix}{(i * 7919 + 1234567) % 10_000_000:07d}"
        holder = name if rng.random() >= 0.03 else f"Someone Else {i}"
        return SellerPlan(f"sel{i:05d}", name, rail, country, currency, msisdn, holder, busy)

    def interarrival(self) -> float:
        return self.rng.expovariate(1.0 / self.mean_interarrival_s)

    def order(self, index: int) -> OrderPlan:
        rng = self.rng
        seller = rng.choice(self.busy) if rng.random() < 0.1 else rng.choice(self.tail)
        listing = _weighted(rng, LISTING_CURRENCIES)[0]
        pay = _weighted(rng, PAY_CURRENCIES)[0]
        draw = rng.random()
        # The order's total in listing minor units (USD-like scales): mostly small, some large.
        if draw < 0.70:
            total = rng.randint(2_000, 50_000)
        elif draw < 0.98:
            total = rng.randint(50_000, 150_000)
        else:
            total = rng.randint(150_000, 300_000)
        lines = []
        count = rng.choice((1, 1, 1, 2, 3))
        for n in range(count):
            share = total // count
            quantity = rng.choice((1, 5, 10, 25, 50, 100, 250))
            unit_price = max(1, share // quantity)
            description, hs_code = rng.choice(PRODUCTS)
            lines.append({"description": description, "hs_code": hs_code, "quantity": str(quantity), "unit": "kg",
                          "unit_price": Money(unit_price, listing)})
        customs_draw = rng.random()
        customs = "cleared" if customs_draw < 0.86 else "rejected" if customs_draw < 0.94 else "silent"
        slow = rng.random() < 0.05
        return OrderPlan(
            index=index,
            buyer=f"buyer-{rng.randrange(self.buyers):06d}",
            seller=seller,
            pay_currency=pay,
            lines=lines,
            pay_after=rng.randint(10, 1800),
            declines=1 if rng.random() < 0.05 else 0,
            ship_after=rng.randint(300, 12 * 3600),
            customs=customs,
            inspection_first=rng.random() < 0.05,
            customs_after=rng.randint(2 * 86400, 4 * 86400) if slow else rng.randint(1800, 36 * 3600),
            office=rng.choice(CUSTOMS_OFFICES),
        )
