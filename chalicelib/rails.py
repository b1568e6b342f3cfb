"""The rail registry: everything Mizani knows about a mobile-money rail, in one entry.

A rail is data plus one adapter. Its entry says where it pays (countries, and the mobile
networks whose numbers it serves), in which currencies, in what steps (whole units only,
or minor units), within which default limits, from which float account, under which name a
farmer reads it in an SMS, which adapter module builds it, and which reconciliation source
reads its statements. Every other part of the tree asks this module:

* escrow: which currencies a seller may be paid in, and the whole-unit rounding of a guarantee;
* payouts: limits and splitting, the float account of the pending transfer;
* bootstrap: one float account per rail and currency;
* notify: the rail's display name;
* api: the ``rail`` values the schemas accept;
* parties: which numbers are valid wallets for a rail (``networks``, via ``phones``);
* recon: the rail's statement source and importer, and which ledger lines are its payouts;
* payments: a rail's other half, collection (``Rail.collection``): a buyer paying from a wallet of
  the rail (MTN MoMo Collection request-to-pay, M-Pesa STK push), with its currencies, its limit per
  payment, its adapter and its own statement source (``chalicelib.payments.methods`` makes each rail
  that collects a payment method).

Adding a rail: its adapter module (``chalicelib/payouts/rails/<name>.py`` with a
``from_settings(settings, **ports)`` builder implementing ``PayoutRail``), one entry below,
its simulator in ``sandbox/simulators/``, and (to reconcile its statements) an importer in
``chalicelib/recon/importers/``. The adapter is imported only when the rail is used, so this module stays cheap to import (no phone or provider libraries here).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.accounts import float_account_id


@dataclass(frozen=True)
class Limits:
    """What one payout may be on a rail, in minor units: per transaction and per wallet per day."""

    min_per_tx: int
    max_per_tx: int
    max_per_day: int


@dataclass(frozen=True)
class Collection:
    """A rail's other half: a buyer paying from a wallet of the rail into Mizani's account there.

    ``max_per_tx``: per currency it collects, the most one payment may be, in minor units (shaped
    like the wallets' per-transaction limits; an order above it answers ``limit_exceeded``).
    ``adapter``: ``"module:function"`` building the collection adapter from settings
    (``chalicelib/payments/collections/``). The money lands in ``psp:<rail>:<CUR>``; the provider's
    statement of the collection account is reconciled as ``recon_source`` with ``recon_importer``,
    against the ledger lines of provider ``<rail>_collection``."""

    adapter: str
    max_per_tx: dict[str, int]
    recon_source: str
    recon_importer: str
    #: True when the provider collects whole units only (STK push: whole KES); the order's price rounds UP.
    whole_units: bool = False

    @property
    def currencies(self) -> frozenset[str]:
        return frozenset(self.max_per_tx)


@dataclass(frozen=True)
class Rail:
    """One rail's entry (see the module doc)."""

    name: str
    display_name: str
    #: ISO 3166 alpha-2 country -> the currencies paid there.
    countries: dict[str, frozenset[str]]
    #: Mobile networks (as libphonenumber names the carrier of a number) whose wallets the rail pays.
    networks: frozenset[str]
    #: Default limits per currency (``MIZANI_PAYOUT_LIMITS`` overrides them per stage).
    limits: dict[str, Limits]
    #: ``"module:function"`` building the adapter from settings.
    adapter: str
    #: The reconciliation source that reads this rail's statements, and its importer module
    #: (``chalicelib/recon/importers/<recon_importer>.py``, with ``parse(content)``).
    recon_source: str
    recon_importer: str
    #: True when the provider takes whole units of the currency only (M-Pesa B2C: whole KES).
    whole_units: bool = False
    #: Numbers valid for this rail in the local stage whatever their country (MTN's sandbox numbers).
    sandbox_numbers: frozenset[str] = field(default_factory=frozenset)
    #: The provider's simulator's scripted numbers (each plays one outcome): in the local stage several
    #: parties may register them (``chalicelib.wallets``), as they may MTN's sandbox numbers.
    test_numbers: frozenset[str] = field(default_factory=frozenset)
    #: Buyers paying from this rail's wallets (``None``: the rail only pays out).
    collection: Collection | None = None

    def shareable(self, msisdn: str, local_stage: bool) -> bool:
        """May ``msisdn`` be registered to several parties? Only a test number, in the local stage."""
        return local_stage and (msisdn in self.sandbox_numbers or msisdn in self.test_numbers)

    @property
    def currencies(self) -> frozenset[str]:
        return frozenset().union(*self.countries.values())

    def float_account(self, currency: str) -> str:
        return float_account_id(self.name, currency)

    def step(self, currency: str) -> int:
        """The smallest amount, in minor units, this rail can pay in ``currency``."""
        from chalicelib.money import exponent

        return 10 ** exponent(currency) if self.whole_units else 1


#: MTN's documented sandbox numbers (API.md): each plays one outcome, in any country.
MTN_SANDBOX_NUMBERS = frozenset({f"4673312345{i}" for i in range(6)})

RAILS: dict[str, Rail] = {
    rail.name: rail
    for rail in (
        Rail(
            name="mtn_momo",
            display_name="MTN MoMo",
            countries={
                "RW": frozenset({"RWF"}), "UG": frozenset({"UGX"}), "GH": frozenset({"GHS"}),
                "CI": frozenset({"XOF"}), "BJ": frozenset({"XOF"}), "ZA": frozenset({"ZAR"}),
                "NG": frozenset({"NGN"}),
                # MTN's sandbox pays in EUR only (its test numbers are Swedish): local stage only.
                "SE": frozenset({"EUR"}),
            },
            networks=frozenset({"MTN"}),
            limits={
                "RWF": Limits(100, 1_000_000, 5_000_000),
                "UGX": Limits(500, 5_000_000, 20_000_000),
                "GHS": Limits(100, 1_000_000, 5_000_000),
                "XOF": Limits(100, 1_500_000, 5_000_000),
                "ZAR": Limits(100, 500_000, 2_500_000),
                "NGN": Limits(10_000, 50_000_000, 200_000_000),
                "EUR": Limits(100, 200_000, 1_000_000),
            },
            adapter="chalicelib.payouts.rails.momo:from_settings",
            recon_source="mtn_momo",
            recon_importer="momo",
            sandbox_numbers=MTN_SANDBOX_NUMBERS,
            collection=Collection(
                adapter="chalicelib.payments.collections.momo:from_settings",
                max_per_tx={"RWF": 5_000_000, "UGX": 20_000_000, "GHS": 1_000_000, "XOF": 2_000_000,
                            "ZAR": 500_000, "NGN": 50_000_000, "EUR": 200_000},
                recon_source="mtn_momo_collection",
                recon_importer="momo_collection",
            ),
        ),
        Rail(
            name="mpesa",
            display_name="M-Pesa",
            countries={"KE": frozenset({"KES"}), "TZ": frozenset({"TZS"})},
            networks=frozenset({"Safaricom", "Vodacom"}),
            limits={
                "KES": Limits(1_000, 25_000_000, 50_000_000),
                "TZS": Limits(100_000, 500_000_000, 1_000_000_000),
            },
            adapter="chalicelib.payouts.rails.mpesa:from_settings",
            recon_source="mpesa_b2c",
            recon_importer="mpesa",
            whole_units=True,
            sandbox_numbers=MTN_SANDBOX_NUMBERS,  # the M-Pesa simulator plays MTN's test numbers too
            # Lipa na M-Pesa Online (STK push): Kenyan wallets, whole KES, at most 250,000 KES a payment.
            collection=Collection(
                adapter="chalicelib.payments.collections.mpesa:from_settings",
                max_per_tx={"KES": 25_000_000},
                recon_source="mpesa_c2b",
                recon_importer="mpesa_c2b",
                whole_units=True,
            ),
        ),
        Rail(
            name="airtel_money",
            display_name="Airtel Money",
            countries={"RW": frozenset({"RWF"}), "UG": frozenset({"UGX"}), "KE": frozenset({"KES"}),
                       "TZ": frozenset({"TZS"})},
            networks=frozenset({"Airtel"}),
            limits={
                "RWF": Limits(100, 1_000_000, 5_000_000),
                "UGX": Limits(500, 5_000_000, 20_000_000),
                "KES": Limits(1_000, 15_000_000, 30_000_000),
                "TZS": Limits(100_000, 500_000_000, 1_000_000_000),
            },
            adapter="chalicelib.payouts.rails.airtel:from_settings",
            recon_source="airtel_money",
            recon_importer="airtel",
            whole_units=True,  # Airtel's amount is a number of major units; we send whole ones only
            # sandbox/simulators/airtel.py: fails, times out, stays pending, ambiguous; the inactive wallet
            test_numbers=frozenset({"256700000010", "256700000011", "256700000012", "256700000013", "250730000001"}),
        ),
    )
}

RAIL_NAMES: tuple[str, ...] = tuple(RAILS)


def rail(name: str) -> Rail:
    """The entry of ``name``; ``KeyError`` for a rail that does not exist."""
    return RAILS[name]


def rail_currencies(name: str) -> frozenset[str]:
    return RAILS[name].currencies if name in RAILS else frozenset()


def collecting_rails() -> tuple[Rail, ...]:
    """The rails buyers can pay from (their ``collection`` half), in registry order."""
    return tuple(r for r in RAILS.values() if r.collection is not None)


def display_name(name: str) -> str:
    return RAILS[name].display_name if name in RAILS else "mobile money"
