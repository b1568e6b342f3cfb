"""Inbound webhooks: verify, de-duplicate, hand the event to its service.

The de-duplication marker is written *after* the event was handled: a crash
in between makes the sender retry, and handling is idempotent anyway (ledger ids
and status steps derive from the order), so a retry converges instead of being
dropped. A marker only saves work on the common duplicate.
"""
from __future__ import annotations

from chalicelib import bootstrap, settings
from chalicelib.errors import InvalidState, ValidationError
from chalicelib.observability import bind
from chalicelib.secrets import secret_of


def _ack(duplicate: bool = False) -> dict:
    return {"received": True, "duplicate": duplicate}


def handle_stripe(raw_body: bytes, signature: str | None) -> dict:
    """``payment_intent.succeeded`` → escrow; ``payment_intent.payment_failed`` → timeline;
    ``charge.dispute.*`` → disputes."""
    from chalicelib.payments import PaymentFailed, PaymentSucceeded, parse_event, verify_webhook

    cfg = settings.get()
    event = verify_webhook(raw_body, signature, secret_of(cfg, "stripe_webhook_secret"), tolerance=cfg.webhook_tolerance_seconds)
    from chalicelib.disputes.events import is_dispute_event

    if is_dispute_event(event):
        return _handle_dispute(event)
    parsed = parse_event(event)
    bind(order_id=parsed.order_id)  # every line of this request, the access line included, names the order
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


def _handle_dispute(event: dict) -> dict:
    """``charge.dispute.*``: merged into the dispute's document and converged (``chalicelib.disputes``).
    A dispute of a charge Mizani does not know is acknowledged (``duplicate: true``) and moves nothing."""
    from chalicelib.disputes.events import parse_dispute_event

    parsed = parse_dispute_event(event)
    bind(dispute_id=parsed.dispute_id)
    docs = bootstrap.docs()
    marker = f"event#stripe#{parsed.event_id}"
    if docs.get(marker, "claim") is not None:
        return _ack(duplicate=True)
    handled = bootstrap.disputes().handle(parsed)
    docs.claim(marker)
    return _ack(duplicate=handled is None)


def handle_customs(raw_body: bytes, signature: str | None) -> dict:
    """A customs decision for a shipped order (see API.md "Customs webhook")."""
    from chalicelib.api.routing import parse_json_object, validate
    from chalicelib.api.signatures import verify
    from chalicelib.api.trade_schemas import CustomsEvent

    cfg = settings.get()
    verify(raw_body, signature, secret_of(cfg, "customs_secret"), cfg.webhook_tolerance_seconds)
    event: CustomsEvent = validate(CustomsEvent, parse_json_object(raw_body))
    bind(order_id=event.order_id)
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
        # This very event was recorded before a failure kept us from marking it, perhaps before the
        # workflow heard it (answering its token failed): answer the token again (a second answer
        # to a token already answered is ignored).
        escrow.redeliver_customs_outcome(event.order_id)
    docs.claim(marker)
    return _ack()


def handle_bank(raw_body: bytes, signature: str | None) -> dict:
    """The bank's ISO 20022 camt.054 credit notification (``Mizani-Signature`` with ``MIZANI_BANK_SECRET``,
    the customs webhook's scheme). Each booked credit to our account whose reference names an order is
    booked into that order's escrow, once per bank entry (``EscrowService.bank_credit``); a credit with
    no known reference is acknowledged and moves nothing (camt.053 reconciliation shows it). A repeated
    notification (same ``MsgId``) is acknowledged as a duplicate."""
    import logging

    from chalicelib.api.signatures import verify
    from chalicelib.payments.bank import parse_notification, webhook_secret
    from chalicelib.payments.checkout import MethodNotConfigured

    cfg = settings.get()
    verify(raw_body, signature, webhook_secret(cfg), cfg.webhook_tolerance_seconds)
    notification = parse_notification(raw_body)
    docs = bootstrap.docs()
    marker = f"event#bank#{notification.message_id}"
    if docs.get(marker, "claim") is not None:
        return {**_ack(duplicate=True), "matched": 0, "unmatched": 0}
    bank = bootstrap.bank_transfers()
    if bank is None:
        raise MethodNotConfigured(message="bank transfers are not configured here")
    escrow = bootstrap.escrow()
    matched = unmatched = 0
    for order_id, credit in bank.matched(notification):
        if order_id is None:
            unmatched += 1
            logging.getLogger("mizani.bank").warning("bank credit %s of %s carries no order reference (%s)",
                                                     credit.entry_id, credit.amount, credit.reference)
            continue
        escrow.bank_credit(order_id, credit.amount, credit.entry_id, credit.booked_on)
        matched += 1
    docs.claim(marker)
    return {**_ack(), "matched": matched, "unmatched": unmatched}


def handle_collection_callback(rail_name: str, reference: str, token: str, raw_body: bytes) -> dict:
    """A mobile-money collection's callback (MTN's request-to-pay PUT, M-Pesa's STK callback or reversal
    result) on the collection's own tokened URL: a hint. The collection is then advanced, which asks the
    provider; a callback for an unknown reference, or without the collection's token, is acknowledged
    (``duplicate: true``) and changes nothing; so is a late or repeated one."""
    from chalicelib.errors import NotFound
    from chalicelib.rails import RAILS

    if rail_name not in RAILS or RAILS[rail_name].collection is None:
        raise NotFound("not_found", f"no collecting rail named {rail_name}")
    advanced = bootstrap.collections().on_callback(rail_name, reference, token, raw_body or b"{}")
    return _ack(duplicate=advanced is None)


def handle_rail_callback(rail_name: str, raw_body: bytes, payout_id: str | None = None, token: str | None = None,
                         kind: str = "result") -> dict:
    """A payout rail's callback (``chalicelib.rails``): only a hint. The rail's adapter says which
    payout it is about (checking the per-payout URL token where the rail echoes one); that payout
    is then advanced, which asks the provider. A refused callback is acknowledged
    (``duplicate: true``) and changes nothing; so is one about a payout not sent yet."""
    from chalicelib.errors import NotFound
    from chalicelib.rails import RAILS

    if rail_name not in RAILS:
        raise NotFound("not_found", f"no payout rail named {rail_name}")
    try:
        reference = bootstrap.rail(rail_name).callback_payout(raw_body or b"{}", payout_id=payout_id, token=token, kind=kind)
    except (ValueError, KeyError, TypeError, RecursionError):
        raise ValidationError("validation_error", f"not a {rail_name} callback") from None
    bind(payout_id=reference)
    if reference is None or bootstrap.payouts().on_provider_callback(reference, rail=rail_name) is None:
        return _ack(duplicate=True)
    return _ack()


def handle_sms_delivery(raw_body: bytes, content_type: str | None = None) -> dict:
    """Africa's Talking's SMS delivery report (form-encoded): recorded on the message it is about,
    information only (it never moves money, never resends). A report for no message we sent, or
    for another phone number, a duplicate and a late one are acknowledged and change nothing
    (``duplicate: true``); only a body that is not such a report (another media type included) is a 400."""
    from chalicelib.api.forms import FORM, SmsDeliveryForm, parse_form
    from chalicelib.api.routing import validate
    from chalicelib.notify.outbox import RECORDED, DeliveryReport

    media_type = (content_type or FORM).split(";", 1)[0].strip().lower()
    if media_type != FORM:
        raise ValidationError("validation_error", f"a delivery report is {FORM}, not {media_type[:60]}",
                              fields=[{"path": "body", "message": f"send {FORM}"}])
    form: SmsDeliveryForm = validate(SmsDeliveryForm, parse_form(raw_body))
    outcome = bootstrap.outbox().record_delivery(DeliveryReport(
        provider_id=form.id, status=form.status, phone_number=form.phone_number, network_code=form.network_code,
        failure_reason=form.failure_reason, retry_count=form.retry_count,
    ))
    return _ack(duplicate=outcome != RECORDED)
