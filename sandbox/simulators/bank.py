"""The sandbox bank: Mizani's account there, buyers' transfers arriving, ISO 20022 camt.054 and camt.053.

A buyer paying an order by bank transfer quotes the order's RF creditor reference; when the money
is booked, the bank POSTs a camt.054 (``BankToCustomerDebitCreditNotification``, namespace
``urn:iso:std:iso:20022:tech:xsd:camt.054.001.08``) to ``<api>/v1/webhooks/bank``, signed
``Mizani-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` with ``MIZANI_BANK_SECRET``
(default ``bank-local-secret``). Each credit is one ``Ntry`` (``CRDT``, ``Sts/Cd`` ``BOOK``, the
bank's ``AcctSvcrRef`` ``SBXB<n>``) with one ``TxDtls`` carrying the reference in
``RmtInf/Strd/CdtrRefInf/Ref`` (type ``SCOR``) and the debtor's name.

Routes (sandbox controls, no auth):

- ``POST /sandbox/payments/<RF reference>/pay`` ``{"outcome": "succeeded", "amount"?: Money}``: the
  buyer's transfer arrives (``ctx.payers``; the Stripe simulator hands it here). Without ``amount``
  the bank credits what the order asks (it reads the invoice: ``GET /v1/payments/<reference>`` with a
  sandbox finance token); ``outcome: "failed"`` is a transfer that never arrives (nothing is sent).
- ``POST /sandbox/bank/credits`` ``{"reference", "amount": Money, "debtor"?}``: any credit (a partial
  or an excess payment, an unknown reference); answers the notification and its delivery.
- ``POST /sandbox/bank/transfers`` ``{"reference", "amount": Money}``: money leaving Mizani's account
  (finance sending a refund back, quoting the order's reference): a ``DBIT`` entry (statement only).
- ``POST /sandbox/bank/notifications/<MsgId>/resend``: deliver the same notification again (duplicate).
- ``GET /sandbox/bank/notifications``: every notification and its deliveries.
- ``POST /sandbox/faults/bank`` ``{"lose_notification": n}``: the next ``n`` notifications are never
  delivered (the credit is booked at the bank, the webhook lost); ``GET`` shows, ``DELETE`` clears.
- ``GET /sandbox/statements/camt053``: the bank's camt.053 statement of the account (every booked
  entry, credits and debits), which the camt.053 importer reconciles.
"""
from __future__ import annotations

import copy
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from xml.sax.saxutils import escape

from flask import Blueprint, Response, jsonify, request

from chalicelib.errors import ValidationError
from chalicelib.iso20022 import parse_creditor_reference
from chalicelib.money import Money, exponent
from chalicelib.payments.bank import LOCAL_BANK_ACCOUNTS, LOCAL_BANK_SECRET

CAMT054 = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"
CAMT053 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
WEBHOOK_PATH = "/v1/webhooks/bank"


def _sign(body: bytes, secret: str, timestamp: int) -> str:
    from chalicelib.api.signatures import sign

    return sign(body, secret, timestamp)


def _major(money: Money) -> str:
    return f"{money.to_decimal():.{exponent(money.currency)}f}"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class BankSimulator:
    """State and routes of the sandbox bank (see the module doc)."""

    def __init__(self, ctx):
        self.ctx = ctx
        accounts = json.loads(ctx.env.get("MIZANI_BANK_ACCOUNTS") or json.dumps(LOCAL_BANK_ACCOUNTS))
        self.account = next(iter(accounts.values()))
        self.iban = "".join(str(self.account.get("iban") or self.account.get("account_number")).split())
        self.secret = ctx.env.get("MIZANI_BANK_SECRET") or LOCAL_BANK_SECRET
        self._lock = threading.RLock()
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.reset()
        self.blueprint = self._build_blueprint()
        ctx.payers.append(self)

    def reset(self) -> None:
        with self._lock:
            self.entries: list[dict] = []  # every booked entry, oldest first
            self.notifications: dict[str, dict] = {}  # MsgId -> {"xml", "deliveries"}
            self._seq = itertools.count(1)
            self.lose_notifications = 0  # one-shot fault: notifications never delivered

    # -- ctx.payers --------------------------------------------------------------------------
    @staticmethod
    def owns_payment(payment_id: str) -> bool:
        return parse_creditor_reference(payment_id) == payment_id

    def pay_payment(self, reference: str, body: dict) -> tuple[int, dict]:
        if body.get("outcome", "succeeded") == "failed":
            return 200, {"reference": reference, "credited": False, "notification": None}
        amount = body.get("amount")
        if amount is None:
            invoice = self._invoice(reference)
            if invoice is None:
                return 404, {"error": "no order has this reference (and no amount was given)"}
            amount = invoice["amount"]
        return self.credit(reference, amount, body.get("debtor") or "Sandbox Buyer Ltd")

    def _invoice(self, reference: str) -> dict | None:
        """What the buyer's banking app reads off the order (``GET /v1/payments/<reference>``)."""
        from sandbox.token import mint

        req = urllib.request.Request(f"{self.ctx.api_base_url.rstrip('/')}/v1/payments/{reference}",
                                     headers={"Authorization": f"Bearer {mint('finance', 'sandbox-bank')}"})
        try:
            with self._opener.open(req, timeout=10) as reply:
                return json.loads(reply.read())
        except (urllib.error.URLError, OSError, ValueError):
            return None

    # -- entries and notifications -------------------------------------------------------------
    def credit(self, reference: str, amount: dict, debtor: str) -> tuple[int, dict]:
        try:
            money = Money.of(int(amount["amount"]), str(amount["currency"]))
        except (KeyError, TypeError, ValueError, ValidationError):
            return 400, {"error": "amount is {\"amount\": <int minor units>, \"currency\"}"}
        entry = self._book("CRDT", reference, money, debtor)
        message_id = f"SBXN{entry['n']:08d}"
        xml = self._camt054(message_id, entry)
        with self._lock:
            self.notifications[message_id] = {"xml": xml, "deliveries": [], "entry": entry["ref"]}
        with self._lock:
            lost = self.lose_notifications > 0
            self.lose_notifications -= 1 if lost else 0
        if lost:
            delivery = {"delivered": False, "status": None, "error": "lost (sandbox fault)"}
        else:
            delivery = self.deliver(message_id)
        return 200, {"reference": reference, "credited": True, "entry": entry["ref"], "message_id": message_id,
                     "notification": delivery}

    def _book(self, indicator: str, reference: str, money: Money, party: str) -> dict:
        with self._lock:
            n = next(self._seq)
            entry = {"n": n, "ref": f"SBXB{n:010d}", "indicator": indicator, "reference": reference, "money": money,
                     "party": party, "at": _now()}
            self.entries.append(entry)
            return entry

    def deliver(self, message_id: str, timestamp_offset: int = 0) -> dict:
        with self._lock:
            xml = self.notifications[message_id]["xml"].encode("utf-8")
        url = self.ctx.api_base_url.rstrip("/") + WEBHOOK_PATH
        delivery = {"url": url, "status": None, "delivered": False, "error": None, "response": None}
        req = urllib.request.Request(url, data=xml, method="POST", headers={
            "Content-Type": "application/xml", "Mizani-Signature": _sign(xml, self.secret, int(time.time()) + timestamp_offset)})
        try:
            with self._opener.open(req, timeout=float(self.ctx.env.get("MIZANI_HTTP_TIMEOUT_SECONDS") or 10)) as reply:
                delivery["status"] = reply.status
                delivery["response"] = reply.read(2000).decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            delivery["status"] = e.code
            delivery["response"] = e.read(2000).decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as e:
            delivery["error"] = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
        delivery["delivered"] = delivery["status"] is not None and 200 <= delivery["status"] < 300
        with self._lock:
            self.notifications[message_id]["deliveries"].append(delivery)
        return delivery

    def _entry_xml(self, entry: dict, indent: str) -> str:
        money, day = entry["money"], entry["at"].date().isoformat()
        party = "Dbtr" if entry["indicator"] == "CRDT" else "Cdtr"
        return f"""{indent}<Ntry>
{indent}  <NtryRef>{entry['ref']}</NtryRef>
{indent}  <Amt Ccy="{money.currency}">{_major(money)}</Amt>
{indent}  <CdtDbtInd>{entry['indicator']}</CdtDbtInd>
{indent}  <Sts><Cd>BOOK</Cd></Sts>
{indent}  <BookgDt><Dt>{day}</Dt></BookgDt>
{indent}  <ValDt><Dt>{day}</Dt></ValDt>
{indent}  <AcctSvcrRef>{entry['ref']}</AcctSvcrRef>
{indent}  <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{'RCDT' if entry['indicator'] == 'CRDT' else 'ICDT'}</Cd><SubFmlyCd>XBCT</SubFmlyCd></Fmly></Domn></BkTxCd>
{indent}  <NtryDtls>
{indent}    <TxDtls>
{indent}      <Refs><AcctSvcrRef>{entry['ref']}</AcctSvcrRef><EndToEndId>NOTPROVIDED</EndToEndId></Refs>
{indent}      <Amt Ccy="{money.currency}">{_major(money)}</Amt>
{indent}      <CdtDbtInd>{entry['indicator']}</CdtDbtInd>
{indent}      <RltdPties><{party}><Pty><Nm>{escape(entry['party'])}</Nm></Pty></{party}></RltdPties>
{indent}      <RmtInf><Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp><Ref>{escape(entry['reference'])}</Ref></CdtrRefInf></Strd></RmtInf>
{indent}    </TxDtls>
{indent}  </NtryDtls>
{indent}</Ntry>"""

    def _camt054(self, message_id: str, entry: dict) -> str:
        at = entry["at"].isoformat(timespec="seconds").replace("+00:00", "Z")
        return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{CAMT054}">
  <BkToCstmrDbtCdtNtfctn>
    <GrpHdr><MsgId>{message_id}</MsgId><CreDtTm>{at}</CreDtTm></GrpHdr>
    <Ntfctn>
      <Id>{message_id}-1</Id>
      <CreDtTm>{at}</CreDtTm>
      <Acct><Id><IBAN>{self.iban}</IBAN></Id><Ccy>{entry['money'].currency}</Ccy></Acct>
{self._entry_xml(entry, '      ')}
    </Ntfctn>
  </BkToCstmrDbtCdtNtfctn>
</Document>
"""

    def statement(self) -> str:
        with self._lock:
            entries = list(self.entries)
        at = _now().isoformat(timespec="seconds").replace("+00:00", "Z")
        body = "\n".join(self._entry_xml(e, "      ") for e in entries)
        return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{CAMT053}">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>SBXS{int(time.time())}</MsgId><CreDtTm>{at}</CreDtTm></GrpHdr>
    <Stmt>
      <Id>SBXS-{self.iban}</Id>
      <CreDtTm>{at}</CreDtTm>
      <Acct><Id><IBAN>{self.iban}</IBAN></Id></Acct>
{body}
    </Stmt>
  </BkToCstmrStmt>
</Document>
"""

    # -- routes -----------------------------------------------------------------------------------
    def _build_blueprint(self) -> Blueprint:
        bp = Blueprint("bank", __name__)

        def reply(result):
            status, body = result
            return jsonify(body), status

        @bp.post("/sandbox/bank/credits")
        def credits():
            body = request.get_json(silent=True) or {}
            if not isinstance(body.get("reference"), str):
                return jsonify({"error": "reference is the text the buyer quoted"}), 400
            return reply(self.credit(body["reference"], body.get("amount") or {}, body.get("debtor") or "Sandbox Buyer Ltd"))

        @bp.post("/sandbox/bank/transfers")
        def transfers():
            body = request.get_json(silent=True) or {}
            try:
                money = Money.of(int(body["amount"]["amount"]), str(body["amount"]["currency"]))
                reference = str(body["reference"])
            except (KeyError, TypeError, ValueError, ValidationError):
                return jsonify({"error": "body is {\"reference\", \"amount\": Money}"}), 400
            entry = self._book("DBIT", reference, money, body.get("creditor") or "Sandbox Buyer Ltd")
            return jsonify({"entry": entry["ref"], "reference": reference})

        @bp.post("/sandbox/bank/notifications/<message_id>/resend")
        def resend(message_id):
            with self._lock:
                known = message_id in self.notifications
            if not known:
                return jsonify({"error": "no such notification"}), 404
            offset = (request.get_json(silent=True) or {}).get("timestamp_offset", 0)
            return jsonify(self.deliver(message_id, int(offset) if isinstance(offset, int) else 0))

        @bp.get("/sandbox/bank/notifications")
        def notifications():
            with self._lock:
                listing = [{"message_id": k, "entry": v["entry"], "deliveries": copy.deepcopy(v["deliveries"])}
                           for k, v in self.notifications.items()]
            return jsonify({"notifications": listing})

        @bp.route("/sandbox/faults/bank", methods=["GET", "POST", "DELETE"])
        def faults():
            if request.method in ("DELETE", "POST"):
                body = request.get_json(silent=True) or {} if request.method == "POST" else {}
                count = body.get("lose_notification", 0)
                if isinstance(count, bool) or not isinstance(count, int) or count < 0 or set(body) - {"lose_notification"}:
                    return jsonify({"error": "the bank's only fault is lose_notification: n"}), 400
                with self._lock:
                    self.lose_notifications = count
            with self._lock:
                return jsonify({"lose_notification": self.lose_notifications})

        @bp.get("/sandbox/statements/camt053")
        def statement():
            return Response(self.statement(), mimetype="application/xml",
                            headers={"Content-Disposition": 'attachment; filename="camt053.xml"'})

        return bp


def make(ctx) -> BankSimulator:
    """The simulator contract: an object with ``.blueprint`` and ``.reset()``."""
    return BankSimulator(ctx)
