"""Provider simulators, served together on 127.0.0.1:8001 (``MIZANI_SANDBOX_PORT``).

Each simulator module exposes ``make(ctx: SimulatorContext) -> Simulator``: an
object with a ``blueprint`` (a ``flask.Blueprint`` whose routes use the
provider's real paths and wire format), and ``reset()`` to forget its state.
The provider server (``sandbox/providers.py``) imports every module listed in
``SIMULATORS`` and registers its blueprint; a module that is missing is an error.
"""
from __future__ import annotations

from dataclasses import dataclass, field

#: Dotted module paths; each has ``make(ctx)``.
SIMULATORS = [
    "sandbox.simulators.stripe",
    "sandbox.simulators.momo",
    "sandbox.simulators.mpesa",
    "sandbox.simulators.airtel",
    "sandbox.simulators.sms",
    "sandbox.simulators.bank",
    "sandbox.simulators.momo_collection",
    "sandbox.simulators.mpesa_stk",
]


@dataclass
class SimulatorContext:
    """What a simulator needs to know about the world around it."""

    api_base_url: str  # the Mizani API, e.g. http://127.0.0.1:8000 (webhooks go there)
    sandbox_base_url: str  # where the simulators themselves are served, e.g. http://127.0.0.1:8001
    env: dict = field(default_factory=dict)  # the stage's environment (secrets, settings)
    #: Simulators that own payments other than Stripe's PaymentIntents (``owns_payment(id)``,
    #: ``pay_payment(id, body) -> (status, reply)``): ``POST /sandbox/payments/{id}/pay`` reaches them.
    payers: list = field(default_factory=list)
    #: Every simulator by module, once loaded (``sandbox/providers.py``): one simulator may ask another.
    simulators: dict = field(default_factory=dict)
