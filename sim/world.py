"""The world under test: the real services on in-memory adapters, fault proxies and a virtual clock.

Wired as ``chalicelib.bootstrap`` wires them in a Lambda container, with the fakes the unit
tests use (``tests/payout_world.py``) and a clock on every service that takes one:

    Ledger(FaultyLedgerStore(MemoryLedgerStore()), clock_ns=clock.ns)
    IndexedDynamoDocuments (the adapter Lambda runs) over FakeDynamoClient (sim/dynamo.py: DynamoDB's faults)
    QuoteService (bootstrap.build_quote_service) over the rates snapshot and a MemoryQuoteStore
    FaultyCards (FakeCardGateway) · SimRail per rail (FakeRail on virtual time) · Outbox over SimSms (FakeSms)
    EscrowService · PayoutService + PayeeGate · OrderPayouts · the workflow port = the ASL interpreter

``installed(world)`` puts these services into ``chalicelib.bootstrap`` (``override``) for the
duration of a run, so the webhook handlers (``chalicelib.api.webhooks``) and the workflow's task
functions, called through ``app.py``'s ``@app.lambda_function`` handlers, reach the same objects.
It also stops the ledger's contention backoff from sleeping on the wall clock.
"""
from __future__ import annotations

import contextlib
import inspect
import json
import logging
import types
from pathlib import Path

from chalicelib.fx import MemoryQuoteStore, SnapshotRateSource
from chalicelib.ledger import Ledger
from chalicelib.ledger.memory import MemoryLedgerStore
from chalicelib.payments.fake import FakeCardGateway
from chalicelib.settings import Settings
from sim.asl import Interpreter, TaskFailed
from sim.clock import SECOND, VirtualClock
from sim.dynamo import FakeDynamoClient
from sim.faults import AwsError, FaultPlan, FaultyLedgerStore, SimCrash
from sim.rails import SimRail, SimSms

ROOT = Path(__file__).resolve().parent.parent
ESCROW_ASL = ROOT / "infra" / "escrow.asl.json"

#: How the rails behave at the provider (as their adapters say: chalicelib/payouts/rails/*.py).
RAIL_BEHAVIOUR = {
    "mtn_momo": {"resend_is_idempotent": True, "checks_payee": True, "names_payee": False},
    "airtel_money": {"resend_is_idempotent": True, "checks_payee": True, "names_payee": False},
    "mpesa": {"resend_is_idempotent": False, "checks_payee": False, "names_payee": True},
}


class ThrottlingException(AwsError):
    """Step Functions refused a request (rate exceeded)."""

    code = "ThrottlingException"


class FaultyQuoteStore:
    """``MemoryQuoteStore`` whose consumption may reach the store at the very edge of the quote's life:
    ``fx.consumed_at_expiry`` (``now == expires_at``: refused) and ``fx.consumed_just_before_expiry``
    (one microsecond before: accepted), as a slow checkout would."""

    def __init__(self, inner: MemoryQuoteStore, plan: FaultPlan):
        self.inner = inner
        self.plan = plan

    def add(self, quote):
        return self.inner.add(quote)

    def get(self, quote_id):
        return self.inner.get(quote_id)

    def mark_consumed(self, quote_id, consumer_id, now):
        from datetime import timedelta

        quote = self.inner.get(quote_id)
        if quote is not None and quote.consumed_by is None:
            if self.plan.hit("fx.consumed_at_expiry", quote_id):
                now = quote.expires_at
            elif self.plan.hit("fx.consumed_just_before_expiry", quote_id):
                now = quote.expires_at - timedelta(microseconds=1)
        return self.inner.mark_consumed(quote_id, consumer_id, now)

    def forget(self, quote_ids) -> None:
        for quote_id in quote_ids:
            self.inner._quotes.pop(quote_id, None)


class FaultyCards(FakeCardGateway):
    """``FakeCardGateway`` whose calls to the processor may fail: ``cards.unavailable`` (nothing reached
    it) and ``cards.timeout_after_success`` (it did the work; the answer timed out). Both surface as
    ``PaymentProviderUnavailable``, as the Stripe adapter raises them; a retry under the same
    idempotency key gets the first result."""

    def __init__(self, plan: FaultPlan):
        super().__init__()
        self.plan = plan

    def create_payment_intent(self, amount, idempotency_key, metadata):
        return self._call(super().create_payment_intent, idempotency_key, amount, idempotency_key, metadata)

    def refund(self, payment_intent_id, amount, idempotency_key, metadata=None):
        return self._call(super().refund, idempotency_key, payment_intent_id, amount, idempotency_key, metadata)

    def _call(self, operation, key, *args):
        from chalicelib.payments.errors import PaymentProviderUnavailable

        if self.plan.hit("cards.unavailable", key):
            raise PaymentProviderUnavailable(message="Stripe did not answer (connection refused)", provider="sim")
        answer = operation(*args)
        if self.plan.hit("cards.timeout_after_success", key):
            raise PaymentProviderUnavailable(message="Stripe's answer timed out", provider="sim")
        return answer


class SimWorkflow:
    """The workflow port (``start``/``succeed``/``fail``, as ``StepFunctionsWorkflow``) over the interpreter.

    Faults: ``sfn.start_throttled`` (StartExecution refused), ``sfn.answer_throttled``
    (SendTaskSuccess/Failure refused: the caller sees the error), ``sfn.token_twice`` (the answer
    reaches Step Functions twice), ``sfn.token_late`` (it is processed up to a minute later). Like
    the real adapter, an answer to a token that is no longer waiting is ignored.
    """

    def __init__(self, scheduler, plan: FaultPlan, rng, trace):
        self.scheduler = scheduler
        self.plan = plan
        self.rng = rng
        self.trace = trace
        self.interpreter: Interpreter | None = None

    def start(self, name: str, payload: dict) -> None:
        if self.plan.hit("sfn.start_throttled", name):
            raise ThrottlingException("Rate exceeded")
        self.interpreter.start(name, payload)

    def succeed(self, token: str, output: dict) -> None:
        self._answer(token, ("success", json.dumps(output)))

    def fail(self, token: str, error: str, cause: str) -> None:
        self._answer(token, ("failure", error, cause))

    def _answer(self, token: str, answer: tuple) -> None:
        if self.plan.hit("sfn.answer_throttled", token):
            raise ThrottlingException("Rate exceeded (SendTask%s)" % ("Success" if answer[0] == "success" else "Failure"))
        if self.plan.hit("sfn.token_late", token):
            self.scheduler.after(self.rng.randint(1, 60) * SECOND, self._deliver, token, answer)
            return
        self._deliver(token, answer)
        if self.plan.hit("sfn.token_twice", token):
            self.scheduler.after(self.rng.randint(0, 5) * SECOND, self._deliver, token, answer)

    def _deliver(self, token: str, answer: tuple) -> None:
        if answer[0] == "success":
            taken = self.interpreter.send_task_success(token, answer[1])
        else:
            taken = self.interpreter.send_task_failure(token, answer[1], answer[2])
        if not taken:
            self.trace(f"sfn token {token} answered {answer[0]}: ignored (no longer waiting)")


def app_task_functions(app, definition: dict) -> dict:
    """``{placeholder: (function name, handler)}``: each ``${XxxArn}`` of the definition to the
    ``@app.lambda_function`` whose Chalice logical id is ``Xxx`` (the rule tests/static checks)."""
    from infra.statemachines import to_cfn_resource_name
    from sim.asl import task_functions

    by_logical_id = {to_cfn_resource_name(f.name): f.name for f in app.pure_lambda_functions}
    found = {}
    for state, placeholder in task_functions(definition).items():
        logical_id = placeholder[: -len("Arn")]
        if logical_id not in by_logical_id:
            raise LookupError(f"{ESCROW_ASL.name}: state {state} invokes {placeholder}, which app.py does not define")
        name = by_logical_id[logical_id]
        found[placeholder] = (name, app.handler_map[name])
    return found


def _optional(module: str, name: str, build):
    """``build(module.name)``, or ``None`` when the code under test does not have that part (yet)."""
    import importlib

    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    return build(found)


def _list_loader(settings):
    from chalicelib.screening.service import build_list_loader

    return build_list_loader(settings)


def documents_adapter(table: str, client):
    """The documents adapter ``bootstrap.docs()`` builds (its class, on our client)."""
    try:
        from chalicelib.order_index import IndexedDynamoDocuments as adapter
    except ImportError:  # pragma: no cover - before order projections existed
        from chalicelib.documents import DynamoDocuments as adapter
    return adapter(table, client=client)


def _accepts(callable_, name: str) -> bool:
    try:
        return name in inspect.signature(callable_).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


class World:
    """Everything one run needs (see the module doc). ``scheduler`` has ``now_ns`` and ``after``."""

    def __init__(self, scheduler, plan: FaultPlan, rngs: dict, trace, settings: Settings, on_commit=None,
                 on_execution_end=None, on_task_error=None, on_timeout=None):
        from chalicelib import bootstrap
        from chalicelib.escrow.service import EscrowService
        from chalicelib.notify.outbox import Outbox
        from chalicelib.payees import PayeeGate
        from chalicelib.payouts.service import PayoutService
        from chalicelib.rails import RAIL_NAMES
        from chalicelib.workflow.order_payouts import OrderPayouts

        self.scheduler = scheduler
        self.clock: VirtualClock = scheduler.clock
        self.plan = plan
        self.trace = trace
        self.settings = settings
        clock = self.clock

        self.ledger_memory = MemoryLedgerStore()
        self.ledger = Ledger(FaultyLedgerStore(self.ledger_memory, plan, on_commit), clock_ns=clock.ns)
        self.ledger.store.burst_attempts = self.ledger.max_attempts
        bootstrap.ensure_platform_accounts(self.ledger)
        self.docs_memory = FakeDynamoClient(plan)
        self.docs = documents_adapter(settings.table("app"), self.docs_memory)
        self.docs_memory.conflict_attempts = self.docs.max_attempts
        self.quote_store = FaultyQuoteStore(MemoryQuoteStore(), plan)
        self.quotes = bootstrap.build_quote_service(settings, store=self.quote_store, rate_source=SnapshotRateSource(),
                                                    clock=clock.now)
        self.cards = FaultyCards(plan)
        self.workflow = SimWorkflow(scheduler, plan, rngs["workflow"], trace)
        self.sms = SimSms(plan)
        outbox_kwargs = {"clock": clock.now} if _accepts(Outbox, "clock") else {}
        self.outbox = Outbox(self.docs, lambda: self.sms, **outbox_kwargs)
        self.rails = {
            name: SimRail(name, clock=clock, rng=rngs["providers"], plan=plan, callbacks=self._provider_callback,
                          trace=trace, **RAIL_BEHAVIOUR.get(name, RAIL_BEHAVIOUR["mtn_momo"]))
            for name in RAIL_NAMES
        }
        self.callback_queue = []  # (rail, reference, delay_ns): the runner schedules them
        # As bootstrap wires them (escrow(), members(), payouts(), screening(), _tiers(), treasury()), with the clock.
        self.screening = _optional("chalicelib.screening.service", "ScreeningService",
                                   lambda cls: cls(self.docs, _list_loader(settings), clock=clock.now))
        escrow_kwargs = {"languages": _optional("chalicelib.i18n.preferences", "LanguagePreferences",
                                                lambda cls: cls(self.docs))}
        self.escrow = EscrowService(self.docs, self.ledger, self.quotes, self.cards, self.workflow, settings,
                                    clock=clock.now, outbox=self.outbox, payee_rails=self.rail,
                                    **{k: v for k, v in escrow_kwargs.items() if v is not None and _accepts(EscrowService, k)})
        if self.screening is not None:
            self.escrow.screening = self.screening
        self.treasury = _optional("chalicelib.treasury.service", "Treasury", lambda cls: cls(
            _optional("chalicelib.treasury.positions", "MemoryPositionStore", lambda store: store()),
            self.quotes.rate_source, self.ledger, limits=getattr(settings, "fx_exposure_limits", None), clock=clock.now))
        if self.treasury is not None:
            self.escrow.fx_positions = self.treasury
        gate_kwargs = {"screening": self.screening} if self.screening is not None and _accepts(PayeeGate, "screening") else {}
        self.payees = PayeeGate(self.docs, self.rail, clock.now, **gate_kwargs)
        tiers = _optional("chalicelib.payouts.tiers", "TierCounters", lambda cls: cls(self.docs))
        payout_kwargs = {"tiers": tiers} if tiers is not None and _accepts(PayoutService, "tiers") else {}
        # send_threads stays 1 (bootstrap sends 8 at once on threads): a run must take one path to replay.
        self.payouts = PayoutService(self.docs, self.ledger, self.rail, clock=clock.now, payees=self.payees, **payout_kwargs)
        self.order_payouts = OrderPayouts(self.escrow, self.payouts)
        self.services = {
            "ledger": self.ledger, "docs": self.docs, "quotes": self.quotes, "rate_source": self.quotes.rate_source,
            "cards": self.cards, "workflow": self.workflow, "outbox": self.outbox, "escrow": self.escrow,
            "payouts": self.payouts, "order_payouts": self.order_payouts, "screening": self.screening,
            "treasury": self.treasury,
        }

        import app as mizani

        with open(ESCROW_ASL, encoding="utf-8") as fh:
            self.definition = json.load(fh)
        self.functions = app_task_functions(mizani.app, self.definition)
        self.task_rng = rngs["workflow"]
        self.interpreter = Interpreter(self.definition, self._invoke, scheduler, on_end=on_execution_end, trace=trace,
                                       task_latency_ns=self._task_latency, on_timeout=on_timeout)
        self.workflow.interpreter = self.interpreter
        self.invocations = 0
        self.on_task_error = on_task_error

    def rail(self, name: str) -> SimRail:
        return self.rails[name]

    def _provider_callback(self, rail: SimRail, reference: str, delay_ns: int) -> None:
        self.callback_queue.append((rail, reference, delay_ns))

    def _task_latency(self) -> int:
        return self.task_rng.randint(20, 400) * 1_000_000  # 20-400 ms between a state and its task

    def _invoke(self, placeholder: str, payload: dict, execution, state_name: str) -> dict:
        """One Lambda invocation as Step Functions makes it, with the workflow faults."""
        name, handler = self.functions[placeholder]
        where = f"{execution.name} {state_name}"
        if self.plan.hit("sfn.throttled", where):
            raise TaskFailed("Lambda.TooManyRequestsException", "Rate Exceeded.")
        runs = 2 if self.plan.hit("sfn.task_twice", where) else 1
        outcome = None
        for _ in range(runs):
            self.invocations += 1
            event = json.loads(json.dumps(payload))
            try:
                outcome = ("ok", json.loads(json.dumps(handler(event, None))))
            except SimCrash as crash:
                outcome = ("error", "Sandbox.Timedout", f"Task timed out ({crash})")
            except Exception as error:  # the Lambda runtime's view: any exception is a function error
                cause = json.dumps({"errorMessage": str(error), "errorType": type(error).__name__, "stackTrace": []})
                outcome = ("error", type(error).__name__, cause)
        if outcome[0] == "error":
            self.trace(f"task {where} -> {outcome[1]}")
            if self.on_task_error is not None:
                self.on_task_error(execution.name, state_name, outcome[1], outcome[2])
            raise TaskFailed(outcome[1], outcome[2])
        if self.plan.hit("sfn.lost_reply", where):
            raise TaskFailed("Lambda.ServiceException", "the function ran; its reply was lost")
        self.trace(f"task {where} -> {_brief(outcome[1])}")
        return outcome[1]


def _brief(result) -> str:
    if isinstance(result, dict):
        return ",".join(f"{k}={v}" for k, v in sorted(result.items()) if k != "order_id")
    return str(result)


@contextlib.contextmanager
def installed(world: World):
    """The world's services in ``chalicelib.bootstrap`` for the run; the ledger's backoff on virtual time."""
    from chalicelib import bootstrap
    from chalicelib.ledger import service as ledger_service

    bootstrap.reset()
    bootstrap.override(**{name: service for name, service in world.services.items()
                          if service is not None and callable(getattr(bootstrap, name, None))})
    saved_time = ledger_service.time
    ledger_service.time = types.SimpleNamespace(time_ns=saved_time.time_ns, sleep=lambda seconds: None)
    # The app's logging is set up on its first request or task (``observability.logs.install``, which
    # sets the level from MIZANI_LOG_LEVEL): set it up now, then silence it for the run, or every
    # task and warning of a million orders is a JSON line formatted and printed.
    _optional("chalicelib.observability.logs", "install", lambda install: install())
    mizani_logger = logging.getLogger("mizani")
    saved_level = mizani_logger.level
    mizani_logger.setLevel(logging.CRITICAL)
    try:
        yield world
    finally:
        ledger_service.time = saved_time
        mizani_logger.setLevel(saved_level)
        bootstrap.reset()
