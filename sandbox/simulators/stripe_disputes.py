"""Disputes in the Stripe simulator (mixed into ``StripeSimulator``): Stripe's Dispute object, its
statuses and events, its balance transactions, and the sandbox controls API.md names.

Stripe's API:

- ``GET /v1/disputes`` (list object, ``limit``, ``charge``, ``payment_intent``), ``GET /v1/disputes/<id>``
- ``POST /v1/disputes/<id>`` (``evidence[...]``, ``metadata[...]``, ``submit``; ``Idempotency-Key``):
  evidence is staged, or with ``submit=true`` (Stripe's default) submitted: ``needs_response`` ->
  ``under_review`` (``warning_needs_response`` -> ``warning_under_review``), ``evidence_details.submission_count``
  + 1, a ``charge.dispute.updated`` event. Evidence on a closed dispute or after the due date is refused.
- ``POST /v1/disputes/<id>/close``: the merchant accepts the dispute (``lost``).

Sandbox controls (no auth):

- ``POST /sandbox/payments/<pi_id>/dispute`` ``{"reason", "amount"?, "inquiry"?: bool}``: the cardholder's
  bank opens a dispute on the PaymentIntent's charge. A chargeback withdraws the amount and the dispute
  fee at once (a balance transaction ``reporting_category: dispute``); events ``charge.dispute.created``
  and ``charge.dispute.funds_withdrawn``. An inquiry (``inquiry: true``) withdraws nothing
  (``warning_needs_response``). Answers ``{"dispute_id", "dispute", "webhooks"}``.
- ``POST /sandbox/disputes/<id>/close`` ``{"outcome": "won" | "lost"}``: the bank decides. Won: the
  amount comes back (``dispute_reversal``; the fee is not returned, as in the US), events
  ``charge.dispute.closed`` and ``charge.dispute.funds_reinstated``; lost: ``charge.dispute.closed``.
- ``GET /sandbox/disputes/<id>``: the dispute as Stripe holds it, evidence included.

While a dispute is open its charge cannot be refunded (``charge_disputed``); once lost, only what
the dispute did not take.
"""
from __future__ import annotations

import copy
from typing import Optional

from flask import Blueprint, g, request

#: Stripe's dispute fee as modelled here, in the charge currency's minor units.
DISPUTE_FEE_MINOR = 1500
#: Days the merchant has to respond (Stripe's due_by is typically 7-21 days out).
RESPONSE_DAYS = 7
DISPUTE_REASONS = frozenset([
    "bank_cannot_process", "check_returned", "credit_not_processed", "customer_initiated", "debit_not_authorized",
    "duplicate", "fraudulent", "general", "incorrect_account_details", "insufficient_funds", "product_not_received",
    "product_unacceptable", "subscription_canceled", "unrecognized",
])
EVIDENCE_FIELDS = frozenset([
    "access_activity_log", "billing_address", "cancellation_policy", "cancellation_policy_disclosure",
    "cancellation_rebuttal", "customer_communication", "customer_email_address", "customer_name",
    "customer_purchase_ip", "customer_signature", "duplicate_charge_documentation", "duplicate_charge_explanation",
    "duplicate_charge_id", "product_description", "receipt", "refund_policy", "refund_policy_disclosure",
    "refund_refusal_explanation", "service_date", "service_documentation", "shipping_address", "shipping_carrier",
    "shipping_date", "shipping_documentation", "shipping_tracking_number", "uncategorized_file", "uncategorized_text",
])
DISPUTE_UPDATE_PARAMS = frozenset(["evidence", "metadata", "submit", "expand"])
DISPUTE_EVENTS = ("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
                  "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated")
_FINAL = frozenset({"won", "lost", "warning_closed", "prevented"})


class StripeDisputes:
    """The dispute half of ``StripeSimulator`` (its lock, charges, events and deliveries)."""

    def _reset_disputes(self) -> None:
        self.disputes: dict[str, dict] = {}

    # -- sandbox controls --------------------------------------------------------------------
    def open_dispute(self, pi_id: str, reason: str, amount: Optional[int] = None, inquiry: bool = False):
        from sandbox.simulators.stripe import StripeError, new_id

        if reason not in DISPUTE_REASONS:
            raise StripeError(400, f"reason must be one of {', '.join(sorted(DISPUTE_REASONS))}", param="reason")
        with self._lock:
            intent = self._intent(pi_id, param="payment_intent")
            charge = self.charges.get(intent.get("latest_charge") or "")
            if intent["status"] != "succeeded" or charge is None or charge["status"] != "succeeded":
                raise StripeError(400, f"PaymentIntent {pi_id} has no successful charge to dispute",
                                  code="payment_intent_unexpected_state", param="payment_intent")
            if charge.get("dispute"):
                raise StripeError(400, f"Charge {charge['id']} is already disputed ({charge['dispute']})",
                                  code="charge_disputed", param="payment_intent")
            disputable = charge["amount"] - charge["amount_refunded"]
            amount = disputable if amount is None else amount
            if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= disputable:
                raise StripeError(400, f"amount must be between 1 and {disputable}", param="amount")
            now, currency = self._now(), charge["currency"]
            dispute_id = new_id("du_1")
            dispute = {
                "id": dispute_id, "object": "dispute", "amount": amount, "balance_transactions": [],
                "charge": charge["id"], "created": now, "currency": currency,
                "evidence": {name: None for name in sorted(EVIDENCE_FIELDS)},
                "evidence_details": {"due_by": now + RESPONSE_DAYS * 86400, "has_evidence": False, "past_due": False,
                                     "submission_count": 0},
                "is_charge_refundable": inquiry, "livemode": False, "metadata": {}, "payment_intent": pi_id,
                "reason": reason, "status": "warning_needs_response" if inquiry else "needs_response",
            }
            self.disputes[dispute_id] = dispute
            charge["disputed"], charge["dispute"] = True, dispute_id
            events = []
            if not inquiry:
                self._dispute_txn(dispute, -amount, DISPUTE_FEE_MINOR, "dispute", "Chargeback withdrawal")
            events.append(self._dispute_event("charge.dispute.created", dispute))
            if not inquiry:
                events.append(self._dispute_event("charge.dispute.funds_withdrawn", dispute))
            snapshot = copy.deepcopy(dispute)
        return snapshot, [self._deliver_if_subscribed(e) for e in events]

    def close_dispute(self, dispute_id: str, outcome: str):
        snapshot, events = self._close(dispute_id, outcome)
        return snapshot, [self._deliver_if_subscribed(e) for e in events]

    def _close(self, dispute_id: str, outcome: str) -> tuple[dict, list[str]]:
        """Close the dispute; its snapshot and the events to deliver (once the lock is released)."""
        from sandbox.simulators.stripe import StripeError

        if outcome not in ("won", "lost"):
            raise StripeError(400, "outcome must be 'won' or 'lost'", param="outcome")
        with self._lock:
            dispute = self._dispute(dispute_id)
            if dispute["status"] in _FINAL:
                raise StripeError(400, f"Dispute {dispute_id} is already closed ({dispute['status']})",
                                  code="dispute_already_closed", param="outcome")
            inquiry = dispute["status"].startswith("warning_")
            withdrawn = any(t["amount"] < 0 for t in dispute["balance_transactions"])
            events = []
            if inquiry:
                dispute["status"] = "warning_closed" if outcome == "won" else "lost"
                if outcome == "lost":  # an inquiry escalated and lost: now the money goes
                    self._dispute_txn(dispute, -dispute["amount"], DISPUTE_FEE_MINOR, "dispute", "Chargeback withdrawal")
                    events.append(self._dispute_event("charge.dispute.funds_withdrawn", dispute))
            else:
                dispute["status"] = outcome
                if outcome == "won" and withdrawn:
                    self._dispute_txn(dispute, dispute["amount"], 0, "dispute_reversal", "Chargeback reversal")
            dispute["evidence_details"]["past_due"] = False
            events.insert(0, self._dispute_event("charge.dispute.closed", dispute))
            if dispute["status"] == "won" and withdrawn:
                events.append(self._dispute_event("charge.dispute.funds_reinstated", dispute))
            return copy.deepcopy(dispute), events

    # -- Stripe's API ----------------------------------------------------------------------------
    def update_dispute(self, params: dict, dispute_id: str) -> tuple[int, dict]:
        from sandbox.simulators.stripe import StripeError

        self._only(params, DISPUTE_UPDATE_PARAMS)
        evidence = params.get("evidence") or {}
        if not isinstance(evidence, dict):
            raise StripeError(400, "Invalid object", param="evidence")
        for name, value in evidence.items():
            if name not in EVIDENCE_FIELDS:
                raise StripeError(400, f"Received unknown parameter: evidence[{name}]", code="parameter_unknown",
                                  param=f"evidence[{name}]")
            if not isinstance(value, str):
                raise StripeError(400, f"Invalid string: evidence[{name}]", param=f"evidence[{name}]")
        if sum(len(v) for v in evidence.values()) > 150_000:
            raise StripeError(400, "The combined character count of evidence fields is limited to 150,000",
                              param="evidence")
        submit = params.get("submit", "true")
        if submit not in ("true", "false"):
            raise StripeError(400, "Invalid boolean: submit", param="submit")
        metadata = self._metadata(params.get("metadata"))
        with self._lock:
            dispute = self._dispute(dispute_id)
            if dispute["status"] in _FINAL or dispute["status"] in ("under_review", "warning_under_review"):
                raise StripeError(400, f"This dispute is {dispute['status']}; its evidence can no longer be changed.",
                                  code="dispute_already_closed" if dispute["status"] in _FINAL else None)
            if self._now() > dispute["evidence_details"]["due_by"]:
                dispute["evidence_details"]["past_due"] = True
                raise StripeError(400, "The due date for submitting evidence has passed.", code="dispute_past_due")
            dispute["evidence"].update(evidence)
            dispute["metadata"].update(metadata)
            dispute["evidence_details"]["has_evidence"] = any(v for v in dispute["evidence"].values())
            if submit == "true":
                dispute["evidence_details"]["submission_count"] += 1
                dispute["status"] = {"needs_response": "under_review",
                                     "warning_needs_response": "warning_under_review"}[dispute["status"]]
            event_id = self._dispute_event("charge.dispute.updated", dispute)
            if self._subscribed(event_id):
                g.stripe_pending_deliveries.append(event_id)
            return 200, copy.deepcopy(dispute)

    def accept_dispute(self, params: dict, dispute_id: str) -> tuple[int, dict]:
        snapshot, events = self._close(dispute_id, "lost")
        g.stripe_pending_deliveries.extend(e for e in events if self._subscribed(e))  # sent once the lock is free
        return 200, snapshot

    def get_dispute(self, params: dict, dispute_id: str) -> tuple[int, dict]:
        with self._lock:
            return 200, copy.deepcopy(self._dispute(dispute_id))

    def list_disputes(self, params: dict) -> tuple[int, dict]:
        from sandbox.simulators.stripe import StripeError

        limit = params.get("limit", "10")
        if not isinstance(limit, str) or not limit.isdigit() or not 1 <= int(limit) <= 100:
            raise StripeError(400, "Invalid integer: limit must be between 1 and 100", param="limit")
        with self._lock:
            rows = [d for d in reversed(list(self.disputes.values()))
                    if params.get("charge") in (None, d["charge"]) and params.get("payment_intent") in (None, d["payment_intent"])]
            return 200, {"object": "list", "data": copy.deepcopy(rows[:int(limit)]), "has_more": len(rows) > int(limit),
                         "url": "/v1/disputes"}

    # -- internals ---------------------------------------------------------------------------------
    def _dispute(self, dispute_id: str) -> dict:
        from sandbox.simulators.stripe import StripeError

        dispute = self.disputes.get(dispute_id)
        if dispute is None:
            raise StripeError(404, f"No such dispute: '{dispute_id}'", code="resource_missing", param="dispute")
        return dispute

    def _dispute_txn(self, dispute: dict, amount: int, fee: int, category: str, description: str) -> None:
        txn = self._balance_transaction(amount=amount, fee=fee, currency=dispute["currency"], source=dispute["id"],
                                        kind=category, description=description,
                                        payment_intent=dispute["payment_intent"], created=self._now())
        txn["type"] = "adjustment"  # Stripe's type; the category says what it is
        if fee:
            txn["fee_details"] = [{"amount": fee, "application": None, "currency": dispute["currency"],
                                   "description": "Dispute fee", "type": "stripe_fee"}]
        dispute["balance_transactions"].append(copy.deepcopy(txn))

    def _dispute_event(self, event_type: str, dispute: dict) -> str:
        from sandbox.simulators.stripe import DEFAULT_API_VERSION

        version = self._api_versions.get(dispute["payment_intent"] or "", DEFAULT_API_VERSION)
        return self._record_event(event_type, dispute, version)

    def _deliver_if_subscribed(self, event_id: str) -> dict:
        if self._subscribed(event_id):
            return self.deliver(event_id)
        return {"event_id": event_id, "type": self.events[event_id]["event"]["type"], "delivered": False,
                "status": None, "error": "event type not subscribed (MIZANI_STRIPE_WEBHOOK_EVENTS)"}

    def refund_refused_by_dispute(self, charge: dict, amount: int) -> None:
        """Stripe refuses to refund a charge while its dispute is open, and anything a lost dispute took."""
        from sandbox.simulators.stripe import StripeError

        dispute = self.disputes.get(charge.get("dispute") or "")
        if dispute is None:
            return
        if dispute["status"] not in _FINAL:
            raise StripeError(400, f"Charge {charge['id']} has been disputed; it cannot be refunded while the dispute "
                              "is open.", code="charge_disputed", param="charge")
        taken = dispute["amount"] if dispute["status"] == "lost" else 0
        if amount > charge["amount"] - charge["amount_refunded"] - taken:
            raise StripeError(400, f"Charge {charge['id']} was charged back; only what the dispute did not take can be "
                              "refunded.", code="charge_disputed", param="amount")

    def _dispute_routes(self, bp: Blueprint) -> None:
        from sandbox.simulators.stripe import StripeError, new_id

        bp.add_url_rule("/v1/disputes", "list_disputes", self._api(self.list_disputes), methods=["GET"])
        bp.add_url_rule("/v1/disputes/<dispute_id>", "get_dispute", self._api(self.get_dispute), methods=["GET"])
        bp.add_url_rule("/v1/disputes/<dispute_id>", "update_dispute", self._api(self.update_dispute, idempotent=True),
                        methods=["POST"])
        bp.add_url_rule("/v1/disputes/<dispute_id>/close", "accept_dispute",
                        self._api(self.accept_dispute, idempotent=True), methods=["POST"])

        @bp.route("/sandbox/payments/<pi_id>/dispute", methods=["POST"])
        def sandbox_dispute(pi_id: str):
            g.stripe_request_id = new_id("req_", 14)
            body = request.get_json(silent=True) or {}
            try:
                dispute, webhooks = self.open_dispute(pi_id, str(body.get("reason", "product_not_received")),
                                                      body.get("amount"), bool(body.get("inquiry", False)))
            except StripeError as e:
                return self._reply(e.body, e.status)
            return self._reply({"dispute_id": dispute["id"], "dispute": dispute, "webhooks": webhooks})

        @bp.route("/sandbox/disputes/<dispute_id>/close", methods=["POST"])
        def sandbox_close_dispute(dispute_id: str):
            g.stripe_request_id = new_id("req_", 14)
            body = request.get_json(silent=True) or {}
            try:
                dispute, webhooks = self.close_dispute(dispute_id, str(body.get("outcome", "")))
            except StripeError as e:
                return self._reply(e.body, e.status)
            return self._reply({"dispute": dispute, "webhooks": webhooks})

        @bp.route("/sandbox/disputes/<dispute_id>", methods=["GET"])
        def sandbox_get_dispute(dispute_id: str):
            g.stripe_request_id = new_id("req_", 14)
            try:
                with self._lock:
                    return self._reply(copy.deepcopy(self._dispute(dispute_id)))
            except StripeError as e:
                return self._reply(e.body, e.status)
