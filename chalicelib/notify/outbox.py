"""The SMS outbox: messages are stored first, then drained to the gateway, and each
message's fate is written on its own document.

``enqueue`` is idempotent per message id (derived from the event, e.g.
``paid:<order_id>``), so a retried Lambda never queues a second copy. ``drain``
claims each due message with one conditional write (two overlapping drains never
send the same message), sends it and records the answer; a crash between the gateway's
answer and the record can send one message twice after the claim lapses (at-least-once),
never lose it. Texts are fitted to one SMS part (GSM-7 where they can be).

A message's ``status``::

    pending --claim--> sending --accepted (100/101/102)------------------------> sent
                          |----the number is the problem (403/404/406), or the
                          |    text cannot be sent at all (bad number) ---------> rejected  (never retried)
                          |----retryable (timeout, 5xx, 401/402/405/407/409/
                          |    500/501/502): attempts + 1, ``not_before`` -------> pending
                          '----retryable, but ``RetryPolicy`` is used up -------> failed    (kept, not retried)

Which answer is which lives with the answers, in ``sms_gateway.RECIPIENT_STATUSES``;
the outbox reads only ``error.retryable`` and ``error.detail["account_wide"]`` (an empty
AT balance fails every message alike, so the drain stops at the first such answer instead
of spending an attempt of each). The document also carries ``attempts``, ``status_code``
(AT's per-recipient code of the last answer), ``gateway_status``, ``last_error``,
``provider_id`` (AT's messageId), ``attempts_log``, and what delivery reports said:
``delivery_status``, ``failure_reason``, ``network_code``.

Documents (app table):

``sms#<message_id>``          the message
``smsq#<message_id>#<n>``     its place in the queue before attempt n+1 (gsi1 ``outbox#pending``,
                              sorted by when it is due, so a drain reads only what is due)
``smsid#<AT messageId>``      which message a delivery report is about
``smsx#<message_id>``         a message given up on (gsi1 ``outbox#not_sent``, ``Outbox.not_sent()``)

Delivery reports are information only: a report never moves money and never resends;
it can only move a message's ``delivery_status`` forward (see
``sms_gateway.DELIVERY_STATUSES``), so duplicates and late reports change nothing.
A report that overtakes our record of AT's messageId (AT answers the send, the report
follows seconds later; we write the id milliseconds after the answer) finds no message
and is acknowledged unrecorded.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from chalicelib.documents import DocumentExists, Documents, Versioned, WriteContended, WriteRefused
from chalicelib.errors import MizaniError, ProviderUnavailable
from chalicelib.notify.sms_gateway import DELIVERY_STATUSES, SmsReceipt, fit_one_sms, submit_to

logger = logging.getLogger("mizani.notify")

#: How long a drain may hold a message before another may take it over (a crashed drain).
CLAIM_LEASE_SECONDS = 120
PENDING_INDEX = "outbox#pending"
NOT_SENT_INDEX = "outbox#not_sent"  # rejected and failed messages, newest first (``Outbox.not_sent``)

PENDING, SENDING, SENT, REJECTED, FAILED = "pending", "sending", "sent", "rejected", "failed"
FINAL = frozenset({SENT, REJECTED, FAILED})
_LOG_ENTRIES = 20

# What ``record_delivery`` did with a report.
RECORDED, UNCHANGED, IGNORED = "recorded", "unchanged", "ignored"


@dataclass(frozen=True)
class RetryPolicy:
    """When a retryable failure is tried again, and when the outbox gives up (``failed``).

    The wait doubles from ``first_delay_seconds`` up to ``max_delay_seconds``; with the defaults
    (1 min, 2 h, 15 attempts, 24 h) the attempts spread over about 16 hours: long enough for an
    operator to top up the AT balance (405) or for AT to lift a risk hold (401), and past a night
    (409), short enough that a message about a payment is not delivered days late."""

    first_delay_seconds: int = 60
    max_delay_seconds: int = 2 * 3600
    max_attempts: int = 15
    max_age_seconds: int = 24 * 3600

    def delay_after(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt."""
        seconds = self.first_delay_seconds * 2 ** min(max(attempts - 1, 0), 30)
        return timedelta(seconds=min(seconds, self.max_delay_seconds))

    def gives_up(self, attempts: int, created_at: datetime, now: datetime) -> bool:
        return attempts >= self.max_attempts or (now - created_at).total_seconds() >= self.max_age_seconds


@dataclass(frozen=True)
class DeliveryReport:
    """One Africa's Talking delivery report, parsed (the API layer validates the form)."""

    provider_id: str
    status: str
    phone_number: str
    network_code: str = ""
    failure_reason: str = ""
    retry_count: int | None = None


def _stamp(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds: one width, so the strings sort as the moments do."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _marker_pk(message_id: str, attempts: int) -> str:
    return f"smsq#{message_id}#{attempts}"


def _queued_as(message: dict) -> str:
    # Messages queued before markers were numbered have the bare ``smsq#<id>``.
    return message.get("queued_as") or f"smsq#{message['message_id']}"


def _digits(number) -> str:
    return "".join(ch for ch in str(number or "") if ch.isdigit())


class Outbox:
    """The SMS outbox over ``Documents`` and a gateway built on first use (see the module doc)."""

    def __init__(self, docs: Documents, gateway_factory, *, clock=None, policy: RetryPolicy | None = None):
        self.docs = docs
        self.gateway_factory = gateway_factory
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.policy = policy or RetryPolicy()
        self._gateway = None

    @property
    def gateway(self):
        if self._gateway is None:
            self._gateway = self.gateway_factory()
        return self._gateway

    def message(self, message_id: str) -> dict | None:
        """The message's document (status, attempts, status code, provider id, delivery), or None."""
        return self.docs.get(f"sms#{message_id}")

    def not_sent(self, limit: int = 50) -> list[dict]:
        """The messages given up on (``rejected`` or ``failed``), newest first: what an operator
        looks at after topping up or fixing the account, or to reach a farmer another way."""
        markers = self.docs.query_index(NOT_SENT_INDEX, limit=limit, newest_first=True)
        return [m for m in (self.message(marker["message_id"]) for marker in markers) if m]

    # -- queueing --------------------------------------------------------------------------

    def enqueue(self, message_id: str, to_msisdn: str, text: str, claim: bool = False) -> dict | None:
        """Store the message (once per ``message_id``) and queue it for the next drain.

        ``claim``: the caller sends it itself right after (``send``): the message and its place in the
        queue are stored in ONE atomic write, already claimed by this invocation (``sending``, under
        the drain's lease), so no queue read and no claim are needed; if the invocation dies before
        sending, the lease lapses and a drain sends it. Returns the claimed message (``None``: it was
        stored before, and the earlier attempt's claim or a drain decides it)."""
        now = _stamp(self.clock())
        to = "+" + to_msisdn.lstrip("+")
        marker = _marker_pk(message_id, 0)
        body = {"message_id": message_id, "to": to, "message": fit_one_sms(text), "status": PENDING,
                "attempts": 0, "created_at": now, "not_before": now, "queued_as": marker}
        if claim:
            claimed = {**body, "status": SENDING, "claimed_at": now}
            try:
                self.docs.put_new_all([
                    (f"sms#{message_id}", claimed, "doc", None),
                    (marker, {"message_id": message_id, "pk": marker, "attempt": 0, "due_at": now}, "doc",
                     (PENDING_INDEX, f"{now}#{message_id}")),
                ])
                return claimed
            except DocumentExists:
                return None  # stored (and queued) by an earlier attempt: its claim, or a drain, decides
        try:
            self.docs.put_new(f"sms#{message_id}", body)
        except DocumentExists:
            existing = self.message(message_id) or {}
            if existing.get("status") != PENDING or existing.get("attempts") or _queued_as(existing) != marker:
                return  # already queued, sent or finished by an earlier attempt
            # An earlier attempt stored the message and may have died before queueing it: queue it (once).
        self._queue(message_id, marker, 0, now)

    def _queue(self, message_id: str, marker: str, attempts: int, due_at: str) -> None:
        try:
            self.docs.put_new(marker, {"message_id": message_id, "pk": marker, "attempt": attempts, "due_at": due_at},
                              index=(PENDING_INDEX, f"{due_at}#{message_id}"))
        except DocumentExists:
            pass  # the same place in the queue, written by an earlier attempt

    def _unqueue(self, *markers: str) -> None:
        for marker in dict.fromkeys(m for m in markers if m):
            self.docs.delete(marker)

    def send(self, claimed: dict) -> str:
        """Send a message ``enqueue(..., claim=True)`` stored claimed, and record the answer (its new status)."""
        status, _ = self._attempt(claimed, claimed["queued_as"], version=1)
        return status

    # -- draining --------------------------------------------------------------------------

    def drain(self, limit: int = 50) -> int:
        """Send the messages that are due, earliest first; returns how many were sent now.

        Stops early at an answer that every other message would meet too (the account's or
        the gateway's trouble): those messages keep their place and lose no attempt."""
        now = _stamp(self.clock())
        sent = 0
        for marker in self.docs.query_index(PENDING_INDEX, limit=limit, newest_first=False):
            if marker.get("due_at", "") > now:
                break  # sorted by due time: nothing after this one is due either
            message = self._claim(marker)
            if message is None:
                continue  # finished already, not due, or another drain holds it
            status, stop = self._attempt(message, marker.get("pk") or f"smsq#{marker['message_id']}")
            sent += status == SENT
            if stop:
                break
        return sent

    def _claim(self, marker: dict) -> dict | None:
        """Take the message for this drain (one conditional write): two drains that overlap
        never both send it. A claim older than ``CLAIM_LEASE_SECONDS`` (a crashed drain) lapses."""
        message_id = marker["message_id"]
        marker_pk = marker.get("pk") or f"smsq#{message_id}"
        now = self.clock()
        stamp, lapsed = _stamp(now), _stamp(now - timedelta(seconds=CLAIM_LEASE_SECONDS))
        won: dict = {}

        def claim(m: dict) -> dict | None:
            won.clear()  # decided again on every optimistic attempt
            due = m["status"] == PENDING and m.get("not_before", "") <= stamp
            if due or (m["status"] == SENDING and m.get("claimed_at", "") < lapsed):
                won["message"] = {**m, "status": SENDING, "claimed_at": stamp}
                return won["message"]
            return None

        try:
            self.docs.update(f"sms#{message_id}", claim)
        except KeyError:
            self._unqueue(marker_pk)  # a place in the queue for no message
            return None
        if "message" not in won:
            current = self.message(message_id)
            # A marker is removed only when its message is finished or has moved to a newer
            # marker (``queued_as`` names the newer one only once it exists): a message that is
            # not finished always keeps one place in the queue.
            if current is None or current["status"] in FINAL or _queued_as(current) != marker_pk:
                self._unqueue(marker_pk)
            return None
        return won["message"]

    def _attempt(self, message: dict, marker_pk: str, version: int | None = None) -> tuple[str, bool]:
        """Send one claimed message and record the answer; returns (its new status, stop the drain).
        ``version``: the claimed document's (known to the caller that wrote it: its record needs no read)."""
        try:
            receipt = submit_to(self.gateway, message["to"], message["message"])
        except MizaniError as err:
            return self._not_sent(message, marker_pk, err), bool(err.retryable and err.detail.get("account_wide"))
        except Exception as err:  # noqa: BLE001 - a defect in an adapter must not block the change that queued the SMS
            logger.exception("sms %s: the gateway raised %s", message["message_id"], type(err).__name__)
            trouble = ProviderUnavailable("provider_unavailable", f"the SMS gateway failed ({type(err).__name__})",
                                          account_wide=True)
            return self._not_sent(message, marker_pk, trouble), True
        self._sent(message, marker_pk, receipt, version)
        return SENT, False

    def _sent(self, message: dict, marker_pk: str, receipt: SmsReceipt, version: int | None = None) -> None:
        message_id = message["message_id"]
        stamp = _stamp(self.clock())
        lookup = (f"smsid#{receipt.message_id}", {"message_id": message_id, "to": message["to"]}, "doc", None)

        def mark(m: dict) -> dict | None:
            if m["status"] == SENT:
                return None  # another drain (that outlived our lease) recorded its own send first
            done = {**m, "status": SENT, "provider_id": receipt.message_id, "status_code": receipt.status_code,
                    "gateway_status": receipt.status, "attempts": int(m.get("attempts", 0)) + 1, "sent_at": stamp,
                    "attempts_log": _log(m, stamp, receipt.status_code, SENT)}
            done.pop("not_before", None)
            return done

        current = Versioned(message, version) if version is not None else None  # stale: the condition re-reads
        try:
            # Written first, on its own: a delivery report may come as soon as AT has answered, and it
            # must find its message (it then updates the message, and our mark below reads it again).
            self.docs.put_new(*lookup)
        except DocumentExists:
            pass
        # The message marked sent and its place in the queue given up, in one atomic write.
        try:
            _, write = self.docs.prepare_update(f"sms#{message_id}", mark, current=current)
            if write is not None:
                markers = list(dict.fromkeys(m for m in (marker_pk, _queued_as(write.doc)) if m))
                self.docs.commit_with(write, delete=[(m, "doc") for m in markers])
                logger.info("sms %s: sent, %s %s", message_id, receipt.status_code, receipt.message_id)
                return
        except (WriteRefused, WriteContended):
            pass  # it changed since it was claimed (a delivery report, another drain): read it again
        done = self.docs.update(f"sms#{message_id}", mark)
        self._unqueue(marker_pk, _queued_as(done))
        logger.info("sms %s: sent, %s %s", message_id, receipt.status_code, receipt.message_id)

    def _not_sent(self, message: dict, marker_pk: str, err: MizaniError) -> str:
        message_id = message["message_id"]
        now = self.clock()
        stamp = _stamp(now)
        attempts = int(message.get("attempts", 0)) + 1
        code = err.detail.get("status_code")
        if not err.retryable:
            status = REJECTED
        elif self.policy.gives_up(attempts, _parse(message["created_at"]), now):
            status = FAILED
        else:
            status = PENDING
        queued_as = _queued_as(message)
        not_before = None
        if status == PENDING:
            not_before = _stamp(now + self.policy.delay_after(attempts))
            queued_as = _marker_pk(message_id, attempts)
            self._queue(message_id, queued_as, attempts, not_before)  # before the message names it
        applied: dict = {}

        def record(m: dict) -> dict | None:
            applied.clear()
            if m["status"] != SENDING or m.get("claimed_at") != message["claimed_at"]:
                return None  # no longer ours: a drain that took over after our lease decides
            new = {**m, "status": status, "attempts": attempts, "status_code": code,
                   "gateway_status": str(err.detail.get("status") or ""),
                   "last_error": f"{err.code}: {err.message}"[:300], "last_attempt_at": stamp,
                   "attempts_log": _log(m, stamp, code, status), "queued_as": queued_as}
            new.pop("not_before", None)
            if not_before:
                new["not_before"] = not_before
            else:
                new["finished_at"] = stamp
            applied["message"] = new
            return new

        self.docs.update(f"sms#{message_id}", record)
        if "message" in applied:
            if status != PENDING:
                try:
                    self.docs.put_new(f"smsx#{message_id}", {"message_id": message_id, "status": status},
                                      index=(NOT_SENT_INDEX, f"{stamp}#{message_id}"))
                except DocumentExists:
                    pass
            # Finished: no place in the queue. Retried: only the new one (``queued_as``).
            keep = queued_as if status == PENDING else None
            self._unqueue(*(m for m in (marker_pk, _queued_as(message)) if m != keep))
            if status != PENDING:
                self._unqueue(queued_as)
        level = logging.WARNING if status in (REJECTED, FAILED) else logging.INFO
        logger.log(level, "sms %s: %s after attempt %d (%s %s)", message_id, status, attempts, code, err.code)
        return status

    # -- delivery reports ---------------------------------------------------------------------

    def record_delivery(self, report: DeliveryReport) -> str:
        """Record what a delivery report says on its message: ``recorded``; ``unchanged`` (a
        duplicate, a late report behind what is known, or a status AT does not document);
        ``ignored`` (no message has that id, or it went to another phone number)."""
        lookup = self.docs.get(f"smsid#{report.provider_id}")
        if lookup is None or _digits(lookup.get("to")) != _digits(report.phone_number):
            logger.info("sms delivery report for %s: no such message to that number", report.provider_id[:80])
            return IGNORED
        entry = DELIVERY_STATUSES.get(report.status)
        if entry is None:
            logger.warning("sms %s: delivery status %r is not one AT documents", lookup["message_id"], report.status[:40])
            return UNCHANGED
        stamp = _stamp(self.clock())
        changed: dict = {}

        def apply(m: dict) -> dict | None:
            changed.clear()
            known = DELIVERY_STATUSES.get(m.get("delivery_status") or "")
            if known is not None and (known.final or known.rank >= entry.rank):
                return None  # never back, never past a final status; the same report again changes nothing
            new = {**m, "delivery_status": entry.name, "delivery_final": entry.final, "delivery_updated_at": stamp,
                   "delivery_provider_id": report.provider_id, "failure_reason": report.failure_reason or None,
                   "network_code": report.network_code or m.get("network_code")}
            if report.retry_count is not None:
                new["retry_count"] = report.retry_count
            if entry.delivered:
                new["delivered_at"] = stamp
            changed["yes"] = True
            return new

        try:
            self.docs.update(f"sms#{lookup['message_id']}", apply)
        except KeyError:
            return IGNORED
        return RECORDED if changed else UNCHANGED


def _log(message: dict, stamp: str, status_code, outcome: str) -> list[dict]:
    """The message's attempts, newest last, at most ``_LOG_ENTRIES``."""
    entries = list(message.get("attempts_log") or [])
    entries.append({"at": stamp, "status_code": status_code, "outcome": outcome})
    return entries[-_LOG_ENTRIES:]
