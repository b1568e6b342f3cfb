"""A deterministic simulator of the whole money path (TigerBeetle's VOPR is the model).

One seed decides everything: the order mix, every timing and every fault. The real services
(escrow, the workflow's task bodies as ``app.py`` registers them, payouts, FX quotes, the
ledger, the outbox) run on in-memory adapters wrapped in fault-injecting proxies, on a
virtual clock; the escrow workflow is played from ``infra/escrow.asl.json`` by a small ASL
interpreter instead of Step Functions. After every step the invariants are checked; a
violation prints the seed, the step and a one-line replay command.

    python -m sim --seed 1 --orders 10000 [--trace FILE]      (make sim SEED=1 ORDERS=10000)

Modules: ``clock`` (virtual time), ``asl`` (the interpreter), ``faults`` (the fault plan and
the storage proxies), ``rails`` (the provider twins), ``world`` (the wiring), ``workload``
(what buyers, sellers, customs and Stripe do), ``checks`` (the invariants), ``runner`` (the
event loop). Nothing in ``chalicelib`` imports this package.
"""
