"""Service objects, built lazily and cached per container (the todo-app's ``get_app_db()``).

A Lambda container builds each service on first use and keeps it for every later
invocation; ``import app`` builds nothing (no boto3, no rates file read). Tests
swap in fakes with ``override(...)`` and drop everything with ``reset()``.

    bootstrap.ledger()             Ledger over DynamoDB
    bootstrap.quotes()             fx QuoteService (rates source + quote store)
    bootstrap.rate_source()        fx RateSource (snapshot file, or live HTTP)
    bootstrap.idempotency_store()  Idempotency-Key records in the app table
    bootstrap.docs() / escrow() / payouts() / outbox() / cards() / workflow() / rail(name)
                                   the trade services and their adapters
    bootstrap.disputes() / dispute_gateway() / parties()
                                   card disputes (Stripe's charge.dispute.* webhooks), evidence;
                                   an admin's changes to sellers and members
    bootstrap.treasury()           FX positions at checkout, their capacity limits, exposure and P&L
    bootstrap.ussd()               the USSD menu (Africa's Talking callback) over directory()
    bootstrap.reconciliations()    statements reconciled against the ledger (S3)
    bootstrap.recon_archive() / recon_ledger() / large_statements()
                                   the statements bucket; the ledger by provider and day; large
                                   statements in the reconcile state machine or in one process
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib import settings

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.api.idempotency import IdempotencyStore
    from chalicelib.fx.quotes import QuoteService, QuoteStore
    from chalicelib.fx.rates import RateSource
    from chalicelib.ledger import Account, Ledger

_lock = threading.RLock()
_services: dict[str, Any] = {}

def _utc_now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


def _cached(name: str, build: Callable[[], Any]) -> Any:
    found = _services.get(name)
    if found is None:
        with _lock:
            found = _services.get(name)
            if found is None:
                found = build()
                _services[name] = found
    return found


def _build_ledger():
    from chalicelib.ledger import Ledger
    from chalicelib.ledger.dynamo import DynamoLedgerStore

    from chalicelib.ledger.shards import Shards

    return Ledger(DynamoLedgerStore(settings.get().table_prefix), shards=Shards(settings.get().ledger_shards))


# -- FX: the rate source and the quote service from Settings ------------------------------------
# ``fx_source`` picks the rates adapter (``snapshot``: the file shipped in the package; ``http``:
# ``HttpRateSource(fx_url)``); ``fx_spreads``/``fx_default_spread_bps`` price the spread and
# ``quote_ttl_seconds`` the expiry. Quotes live in the app table.


def build_rate_source(settings) -> "RateSource":
    """The configured ``RateSource``; ``ValueError`` on a misconfiguration (a deploy bug)."""
    if settings.fx_source == "snapshot":
        from chalicelib.fx.snapshot import SnapshotRateSource

        return SnapshotRateSource()
    if settings.fx_source == "http":
        if not settings.fx_url:
            raise ValueError("MIZANI_FX_SOURCE=http needs MIZANI_FX_URL")
        from chalicelib.fx.http_source import HttpRateSource

        return HttpRateSource(settings.fx_url, timeout_seconds=settings.http_timeout_seconds)
    raise ValueError(f"MIZANI_FX_SOURCE must be 'snapshot' or 'http', not {settings.fx_source!r}")


def build_quote_service(
    settings,
    *,
    store: "QuoteStore | None" = None,
    rate_source: "RateSource | None" = None,
    clock=None,
) -> "QuoteService":
    """The ``QuoteService`` for these settings; ``store``/``rate_source``/``clock`` override the
    defaults (``DynamoQuoteStore`` on ``settings.table("app")``, ``build_rate_source``, UTC now)."""
    if store is None:
        from chalicelib.fx.dynamo_store import DynamoQuoteStore

        store = DynamoQuoteStore(settings.table("app"))
    from chalicelib.fx.quotes import QuoteService

    extra = {"clock": clock} if clock is not None else {}
    return QuoteService(
        rate_source if rate_source is not None else build_rate_source(settings),
        store,
        spreads=settings.fx_spreads,
        default_spread_bps=settings.fx_default_spread_bps,
        ttl_seconds=settings.quote_ttl_seconds,
        **extra,
    )


def _build_rate_source():
    return build_rate_source(settings.get())


def _build_quotes():
    # One rate source per container: the quote service prices with the same (cached) rates.
    return build_quote_service(settings.get(), rate_source=rate_source())


def _build_idempotency_store():
    from chalicelib.api.idempotency import DynamoIdempotencyStore

    return DynamoIdempotencyStore(settings.get().table("app"))


def ledger() -> "Ledger":
    return _cached("ledger", _build_ledger)


def rate_source():
    return _cached("rate_source", _build_rate_source)


def quotes():
    return _cached("quotes", _build_quotes)


def idempotency_store() -> "IdempotencyStore":
    return _cached("idempotency_store", _build_idempotency_store)


def override(**services: Any) -> None:
    """Use these instances instead of building (tests: ``override(ledger=Ledger(MemoryLedgerStore()))``)."""
    # A service is a public zero-argument accessor of this module (``ledger``, ``quotes``, ...).
    unknown = {name for name in services if name.startswith("_") or name not in _service_names()}
    if unknown:
        raise ValueError(f"unknown services: {sorted(unknown)}")
    with _lock:
        _services.update(services)


def _service_names() -> set[str]:
    """The public service accessors of this module (computed: services added later count too)."""
    skip = {"override", "reset", "ensure_platform_accounts", "build_rate_source", "build_quote_service"}
    return {
        name
        for name, value in globals().items()
        if callable(value) and getattr(value, "__module__", None) == __name__ and not name.startswith("_")
    } - skip


def reset() -> None:
    """Forget every built service (tests that change settings or endpoints)."""
    with _lock:
        _services.clear()


def ensure_platform_accounts(ledger_service: "Ledger | None" = None) -> list["Account"]:
    """Create the platform's own accounts for every supported currency; safe to run again.

    ``Ledger.create_account`` is idempotent, so a repeat (a second deploy, a sandbox
    restart) returns the existing accounts and changes nothing.
    """
    from chalicelib.accounts import platform_accounts
    from chalicelib.money import SUPPORTED_CURRENCIES
    from chalicelib.payments.methods import providers_for
    from chalicelib.rails import RAIL_NAMES

    ledger_service = ledger_service or ledger()
    created = []
    for cur in sorted(SUPPORTED_CURRENCIES):
        for account_id, kind in platform_accounts(cur, RAIL_NAMES, providers_for(cur)):
            created.append(ledger_service.create_account(account_id, cur, kind=kind))
    return created


# -- trade services (escrow, payments, payouts, notifications) ------------------------------


def docs():
    """Versioned documents in the app table (orders, sellers, payouts, outbox, event markers); an order's
    writes carry its projections (orders by status, customs decisions: ``chalicelib.order_index``)."""
    from chalicelib.order_index import IndexedDynamoDocuments

    return _cached("docs", lambda: IndexedDynamoDocuments(settings.get().table("app")))


def order_index():
    """Orders by status and customs decisions (the projections ``docs()`` writes beside each order)."""
    from chalicelib.order_index import OrderIndex

    return _cached("order_index", lambda: OrderIndex(docs()))


def customs():
    """Customs against the 24-hour promise: the clearance report and the once-only SMS to sellers."""
    from chalicelib.customs_report import CustomsClearance

    return _cached("customs", lambda: CustomsClearance(order_index(), escrow(), outbox(), languages(),
                                                       promise_seconds=settings.get().customs_promise_seconds))


def cards():
    """The card processor (Stripe; the sandbox's Stripe locally). Imports stripe on first use only."""
    from chalicelib.payments import build_card_gateway

    return _cached("cards", lambda: build_card_gateway(settings.get()))


def checkout():
    """Starts and refunds a buyer's payment by its method (card, Alipay, WeChat Pay, mobile money, bank)."""
    from chalicelib.payments.checkout import Checkout

    from chalicelib.secrets import env_value, local_api_url

    return_url = env_value("MIZANI_PAYMENT_RETURN_URL", settings.get(), f"{local_api_url()}/v1/health", required=False)
    return _cached("checkout", lambda: Checkout(cards(), collections=collections(), bank=bank_transfers(),
                                                return_url=return_url))


def collections():
    """Mobile-money collections (MTN MoMo request-to-pay, M-Pesa STK push): requested at checkout,
    advanced by polling (``poll_collections``) and by callbacks, paid into escrow once."""
    from chalicelib.payments.collections.service import Collections

    return _cached("collections", lambda: Collections(
        docs(), collection_rail,
        on_paid=lambda order_id, amount, reference: escrow().payment_received(order_id, amount, reference),
        on_failed=lambda order_id, reason: escrow().collection_failed(order_id, reason)))


def collection_rail(name: str):
    """The collection adapter of rail ``name`` (its registry entry's ``collection.adapter``), built once."""
    import importlib

    from chalicelib.payments.collections.store import CollectionStore
    from chalicelib.rails import rail as rail_entry

    def build():
        module_name, _, function = rail_entry(name).collection.adapter.partition(":")
        return getattr(importlib.import_module(module_name), function)(settings.get(), store=CollectionStore(docs()))

    return _cached(f"collection_rail:{name}", build)


def bank_transfers():
    """Bank-transfer references, the accounts to pay (``MIZANI_BANK_ACCOUNTS``) and camt.054 matching;
    ``None`` on a stage with no bank account configured (the method then answers ``not_configured``)."""
    from chalicelib.payments.bank import BankTransfers
    from chalicelib.secrets import RailConfigError

    def build():
        try:
            return BankTransfers.from_settings(settings.get(), docs())
        except RailConfigError:
            return False

    return _cached("bank_transfers", build) or None


def workflow():
    from chalicelib.workflow.engine import StepFunctionsWorkflow

    return _cached("workflow", lambda: StepFunctionsWorkflow(settings.get().state_machine_arn))


def outbox():
    from chalicelib.notify.outbox import Outbox
    from chalicelib.notify.sms_gateway import build_sms_gateway

    return _cached("outbox", lambda: Outbox(docs(), lambda: build_sms_gateway(settings.get())))


def escrow():
    from chalicelib.escrow.service import EscrowService

    return _cached(
        "escrow", lambda: _screened(_tracking_fx(EscrowService(docs(), ledger(), quotes(), cards(), workflow(),
                                                               settings.get(), outbox=outbox(), payee_rails=rail,
                                                               languages=languages(), payments=checkout())))
    )


def _tracking_fx(service):
    """Every cross-currency order opens an FX position at checkout and closes it at release or refund."""
    service.fx_positions = treasury()
    return service


def treasury():
    """FX positions, the capacity counters (``fx_exposure_limits``) and the exposure report."""
    from chalicelib.treasury.dynamo_store import DynamoPositionStore
    from chalicelib.treasury.service import Treasury

    return _cached("treasury", lambda: Treasury(DynamoPositionStore(settings.get().table("app")), rate_source(), ledger(),
                                                limits=settings.get().fx_exposure_limits))


def languages():
    """The language each wallet number chose (its USSD screens and its SMS)."""
    from chalicelib.i18n.preferences import LanguagePreferences

    return _cached("languages", lambda: LanguagePreferences(docs()))


def members():
    """A co-operative's members: registration, balances, the parties of an allocation."""
    from chalicelib.members.service import MemberService

    return _cached("members", lambda: _screened(MemberService(docs(), ledger(), settings.get(), payee_rails=rail)))


def cooperatives():
    """The co-operative routes' service (members and allocations, ownership checked)."""
    from chalicelib.members.cooperatives import Cooperatives

    return _cached("cooperatives", lambda: Cooperatives(escrow(), members()))


def directory():
    """Who a wallet number is and what it has, for the USSD menu (co-operatives and members)."""
    from chalicelib.members.directory import PartyDirectory

    return _cached("directory", lambda: PartyDirectory(escrow(), members(), payouts()))


def ussd():
    """The USSD menu behind ``POST /v1/ussd``: sessions and PINs in the app table, callers through
    ``directory()`` (resolved on the first callback, so building this touches nothing else)."""
    from chalicelib.ussd.service import build_service

    return _cached("ussd", lambda: build_service(settings.get(), docs(), directory_factory=directory))


def rail(name: str):
    """The payout rail ``name`` (mtn_momo, mpesa), built once per container."""
    from chalicelib.payouts.rails.config import build_rail

    return _cached(f"rail:{name}", lambda: build_rail(name, settings.get(), results=mpesa_results()))


def mpesa_results():
    from chalicelib.payouts.rails.mpesa_store import MpesaResultStore

    return _cached("mpesa_results", lambda: MpesaResultStore(docs()))


def payouts():
    from chalicelib.payouts.service import PayoutService

    from chalicelib.payees import PayeeGate

    from chalicelib.payouts.service import SEND_THREADS

    return _cached("payouts", lambda: PayoutService(docs(), ledger(), rail, payees=PayeeGate(docs(), rail, _utc_now, screening=screening()),
                                                    send_threads=SEND_THREADS, tiers=_tiers()))


def order_payouts():
    """An order's payout steps for the workflow (escrow's status, payouts' money)."""
    from chalicelib.workflow.order_payouts import OrderPayouts

    return _cached("order_payouts", lambda: OrderPayouts(escrow(), payouts()))


def reconciliations():
    """Statements and reconciliations in S3, matched against the ledger's own records."""
    from chalicelib.recon.reconciliations import Reconciliations

    return _cached(
        "reconciliations",
        lambda: Reconciliations(recon_archive(), recon_ledger(), large=large_statements(), runs=reconciliation_runs()),
    )


def reconciliation_runs():
    """The list of reconciliation runs, and which run last looked at a ledger movement (the order story)."""
    from chalicelib.recon.runs import ReconciliationRuns

    return _cached("reconciliation_runs", lambda: ReconciliationRuns(docs(), load=lambda rid: reconciliations().load(rid)))


def stories():
    """One order's whole story: its transfers, provider references, reconciliation outcomes."""
    from chalicelib.orders_story import OrderStories

    return _cached("stories", lambda: OrderStories(escrow(), ledger(), payouts(), treasury(), reconciliation_runs()))


def recon_ledger():
    """The ledger's own records by provider and day (``LedgerSource``), for reconciliation."""
    from chalicelib.recon.ledger_records import StoreLedgerSource

    return _cached("recon_ledger", lambda: StoreLedgerSource(ledger().store))


# -- reconciliation of large statements (infra/reconcile.asl.json) ---------------------------


def recon_archive():
    """The statements bucket: statements, chunks, chunk results, reconciliations."""
    from chalicelib.recon.archive import S3Archive

    return _cached("recon_archive", lambda: S3Archive(settings.get().statements_bucket))


def _build_large_statements():
    from chalicelib.recon.distributed import LargeStatements

    s = settings.get()
    workflow = None  # local stage, or no state machine: chunk by chunk in this process
    if s.reconcile_state_machine_arn and not s.is_local:
        from chalicelib.workflow.engine import StepFunctionsWorkflow

        workflow = StepFunctionsWorkflow(s.reconcile_state_machine_arn)
    return LargeStatements(recon_archive(), recon_ledger(), workflow,
                           min_lines=s.recon_distributed_lines, chunk_lines=s.recon_chunk_lines)


def large_statements():
    """Statements of at least ``recon_distributed_lines`` lines: the Distributed Map in AWS."""
    return _cached("large_statements", _build_large_statements)


# -- disputes and party administration (issue 13) ------------------------------------------------------


def dispute_gateway():
    """Where dispute evidence is submitted (Stripe; the sandbox's Stripe locally)."""
    from chalicelib.payments.stripe_disputes import build_dispute_gateway

    return _cached("dispute_gateway", lambda: build_dispute_gateway(settings.get()))


def disputes():
    """Card disputes from Stripe's webhooks: the order held, the money moved, evidence submitted."""
    from chalicelib.disputes.service import DisputeService

    return _cached("disputes", lambda: DisputeService(docs(), ledger(), escrow(), dispute_gateway(), reserves=reserves(),
                                                      outbox=outbox()))


def screening():
    """Sanctions screening: the lists in force (S3, or the shipped sample), parties, cases, decisions."""
    from chalicelib.screening.service import ScreeningService, build_list_loader

    return _cached("screening", lambda: ScreeningService(docs(), build_list_loader(settings.get())))


def _tiers():
    """What each party's KYC tier may be paid per day and month (``MIZANI_TIER_LIMITS``)."""
    from chalicelib.payouts.tiers import TierCounters

    return TierCounters(docs())


def _screened(service):
    """Sellers and members are screened at registration (``service.screening``)."""
    service.screening = screening()
    return service


def reserves():
    """The chargeback reserve's tranches, released by the schedule 120 days after the card payment."""
    from chalicelib.disputes.reserve import ReserveService

    return _cached("reserves", lambda: ReserveService(docs(), ledger(), days=settings.get().reserve_days))


def parties():
    """An admin's changes to sellers and members (status, reserve_bps, kyc_tier)."""
    from chalicelib.parties import PartyAdmin

    return _cached("parties", lambda: PartyAdmin(docs(), escrow(), members()))
