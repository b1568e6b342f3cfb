"""Inbound webhooks: verify, de-duplicate, hand the event to its service.

The de-duplication marker is written *after* the event was handled: a crash
in between makes the sender retry, and handling is idempotent anyway (ledger ids
and status steps derive from the order), so a retry converges instead of being
dropped. A marker only saves work on the common duplicate.
"""
from __future__ import annotations

from chalicelib import bootstrap, settings
from chalicelib.errors import InvalidState, ValidationError


def _ack(duplicate: bool = False) -> dict:
    return {"received": True, "duplicate": duplicate}


def handle_stripe(raw_body: bytes, signature: str | None) -> dict:
    """``payment_intent.succeeded`` → escrow; ``payment_intent.payment_failed`` → timeline."""
    from chalicelib.payments import PaymentFailed, PaymentSucceeded, parse_event, verify_webhook

    cfg = settings.get()
    event = verify_webhook(raw_body, signature, cfg.stripe_webhook_secret, tolerance=cfg.webhook_tolerance_seconds)
    parsed = parse_event(event)
    docs = bootstrap.docs()
    marker = f"event#stripe#{parsed.event_id}"
    if docs.get(marker, "claim") is not None:
        return _ack(duplicate=True)
    escrow = bootstrap.escrow()
    if isinstance(parsed, PaymentSucceeded):
        escrow.payment_succeeded(parsed.payment_intent_id, parsed.amount, parsed.order_id)
    elif isinstance(parsed, PaymentFailed):
        escrow.payment_failed(parsed.payment_intent_id, parsed.failure_code or parsed.failure_message or "declined",
                              parsed.order_id)
    docs.claim(marker)
    return _ack()


def handle_customs(raw_body: bytes, signature: str | None) -> dict:
    """A customs decision for a shipped order (see API.md "Customs webhook")."""
    from chalicelib.api.routing import parse_json_object, validate
    from chalicelib.api.signatures import verify
    from chalicelib.api.trade_schemas import CustomsEvent

    cfg = settings.get()
    verify(raw_body, signature, cfg.customs_secret, cfg.webhook_tolerance_seconds)
    event: CustomsEvent = validate(CustomsEvent, parse_json_object(raw_body))
    docs = bootstrap.docs()
    marker = f"event#customs#{event.event_id}"
    if docs.get(marker, "claim") is not None:
        return _ack(duplicate=True)
    escrow = bootstrap.escrow()
    try:
        escrow.customs_event(event.order_id, event.status, event.customs_declaration_ref, event.office, event.event_id)
    except InvalidState:
        order = escrow.order(event.order_id)
        if (order.get("customs") or {}).get("event_id") != event.event_id:
            raise
        # This very event was handled before a crash kept us from marking it.
    docs.claim(marker)
    return _ack()


def handle_momo_callback(raw_body: bytes, payout_id: str | None = None, token: str | None = None) -> dict:
    """MTN's one callback: it names the payout (``externalId``); the payout's status is then
    re-queried from MTN, because the callback itself is not signed and is only a hint.

    On the payout's own URL (``payout_id`` and ``token``) a wrong token, or a body naming another
    payout, is acknowledged and changes nothing. The bare URL is kept for callbacks of transfers
    sent before tokened URLs: it can only make us ask MTN about a payout we sent."""
    from chalicelib.payouts.rails.momo import parse_callback

    callback = parse_callback(raw_body or b"{}")
    if payout_id is not None:
        rail = bootstrap.rail("mtn_momo")
        if rail.callbacks is None or not rail.callbacks.verify(payout_id, token) or callback.reference not in (None, payout_id):
            return _ack(duplicate=True)
        bootstrap.payouts().on_provider_callback(payout_id)
    elif callback.reference:
        bootstrap.payouts().on_provider_callback(callback.reference)
    return _ack()


def handle_mpesa_result(payout_id: str | None, token: str | None, raw_body: bytes, queue_timeout: bool = False) -> dict:
    """M-Pesa's B2C result, queue timeout or Transaction Status answer, POSTed to the payout's own
    callback URL. The rail keeps it only if the URL's token is the payout's and the body matches
    what Daraja acknowledged at send time; only then is the payout advanced (which asks Safaricom).
    Anything else (no token: the bare URL; an unknown or unsent payout; a forgery) is acknowledged
    and changes nothing."""
    if not payout_id or not token:
        return _ack()
    rail = bootstrap.rail("mpesa")
    try:
        kept = rail.accept_callback(payout_id, token, raw_body or b"{}", queue_timeout=queue_timeout)
    except (ValueError, KeyError, TypeError) as error:
        raise ValidationError("validation_error", f"not an M-Pesa callback: {error}") from None
    if not kept:
        return _ack(duplicate=True)
    bootstrap.payouts().on_provider_callback(payout_id)
    return _ack()
