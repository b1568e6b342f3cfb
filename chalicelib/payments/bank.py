"""Bank transfer: a reference per order, the account to pay, and the bank's camt.054 matched on it.

An order paid by ``bank_transfer`` gets an ISO 11649 creditor reference derived from its id
(``RF`` + check digits + 16 base-36 characters of a SHA-256 of the order id: the same order always
has the same reference, and a mistyped one fails the check digits) and the account to pay in its
pay currency (``MIZANI_BANK_ACCOUNTS``, JSON ``{"USD": {"holder", "bank", "iban" | "account_number",
"bic"}, "*": {...}}``; the local stage has a clearly marked sandbox account). The order's
``payment.bank_transfer`` says both, and the amount.

The bank tells us what arrived with an ISO 20022 camt.054 (BankToCustomerDebitCreditNotification),
POSTed to ``/v1/webhooks/bank`` signed like the customs webhook (``Mizani-Signature`` with
``MIZANI_BANK_SECRET``). ``parse_notification`` reads it (namespaces ``camt.054.001.02`` to ``.13``):
per ``Ntfctn`` (our account: ``Acct/Id/IBAN`` or ``Acct/Id/Othr/Id``), per ``Ntry`` that is a booked
credit (``CdtDbtInd`` ``CRDT``, ``Sts`` or ``Sts/Cd`` ``BOOK``), per transaction (``NtryDtls/TxDtls``,
or the entry itself): the amount (``TxDtls/Amt`` or ``AmtDtls/TxAmt/Amt``, else the entry's
``Amt``), the reference (``RmtInf/Strd/CdtrRefInf/Ref``, else an ``RF..`` in ``RmtInf/Ustrd``:
``chalicelib.iso20022.remittance_reference``) and the bank's id of the entry (``AcctSvcrRef``,
else ``NtryRef``; with the transaction's own ``Refs/AcctSvcrRef`` or its position for a batch).
That id is what makes a repeated notification (or the same entry in tomorrow's camt.053) move
money at most once: the escrow service books each credit under a transfer id derived from it.

Debits (our refunds going out), pending entries and other accounts' entries are not credits of
an order and are left to the camt.053 reconciliation.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from chalicelib import iso20022
from chalicelib.documents import DocumentExists
from chalicelib.errors import ValidationError
from chalicelib.money import Money, exponent

NAMESPACE = re.compile(r"urn:iso:std:iso:20022:tech:xsd:camt\.054\.001\.\d{2}")
MAX_BYTES = 4 * 1024 * 1024
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

#: The local stage's account (NOT a real account: the sandbox bank on 127.0.0.1 credits it).
LOCAL_BANK_ACCOUNTS = {"*": {"holder": "Mizani Escrow Ltd (sandbox)", "bank": "Mizani Sandbox Bank",
                             "iban": "GB33BUKB20201555555555", "bic": "SBOXGB2LXXX"}}
LOCAL_BANK_SECRET = "bank-local-secret"


def reference_for(order_id: str) -> str:
    """The order's ISO 11649 creditor reference (deterministic)."""
    number = int.from_bytes(hashlib.sha256(order_id.encode()).digest()[:12], "big")
    body = ""
    for _ in range(16):
        number, digit = divmod(number, 36)
        body = _BASE36[digit] + body
    return iso20022.creditor_reference(body)


def _account_key(account: dict) -> str:
    return "".join(str(account.get("iban") or account.get("account_number") or "").split()).upper()


@dataclass(frozen=True)
class BankCredit:
    """One booked credit of a camt.054, as the escrow service books it."""

    entry_id: str  # the bank's id of the entry (and transaction): the idempotency of the booking
    reference: str | None  # the RF reference it carries (None: no order can be told)
    amount: Money
    account: str  # our account it was credited to (IBAN or account number)
    booked_on: str  # BookgDt (or ValDt), as written
    line: int


@dataclass(frozen=True)
class Notification:
    message_id: str
    credits: list[BankCredit]
    skipped: list[tuple[int, str]]  # (line, why) of entries that are not credits to book


def _amount(node: iso20022.Node | None, what: str) -> Money:
    if node is None:
        raise ValidationError("validation_error", f"{what} is missing")
    currency = str(node.attrs.get("Ccy") or "").upper()
    try:
        exponent(currency)
        return Money.parse(node.text.strip(), currency)
    except ValidationError:
        raise ValidationError("validation_error", f"{what} {node.text.strip()!r} {currency} is not an amount") from None


def parse_notification(content: bytes | str) -> Notification:
    """A camt.054 document's booked credits (``validation_error`` for anything that is not one)."""
    data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    if len(data) > MAX_BYTES:
        raise ValidationError("validation_error", f"a camt.054 notification is at most {MAX_BYTES} bytes")
    try:
        document, uri = iso20022.parse(data, NAMESPACE)
    except iso20022.XmlRefused as e:
        raise ValidationError("validation_error", f"line {e.line}: {e.message}", path="body") from None
    body = document.find("BkToCstmrDbtCdtNtfctn")
    if document.tag != "Document" or not uri or body is None:
        raise ValidationError("validation_error", "expected a camt.054 Document (BkToCstmrDbtCdtNtfctn) in namespace "
                              "urn:iso:std:iso:20022:tech:xsd:camt.054.001.NN", path="body")
    message_id = body.value("GrpHdr/MsgId")
    if not message_id:
        raise ValidationError("validation_error", "GrpHdr/MsgId is missing", path="body")
    credits: list[BankCredit] = []
    skipped: list[tuple[int, str]] = []
    for notification in body.findall("Ntfctn"):
        account = "".join((notification.value("Acct/Id/IBAN") or notification.value("Acct/Id/Othr/Id")).split()).upper()
        for entry in notification.findall("Ntry"):
            status = entry.value("Sts/Cd") or entry.value("Sts")
            if entry.value("CdtDbtInd") != "CRDT" or entry.value("RvslInd").lower() in ("true", "1"):
                skipped.append((entry.line, "not a credit"))
                continue
            if status != "BOOK":
                skipped.append((entry.line, f"status {status or 'missing'}, not booked"))
                continue
            entry_id = entry.value("AcctSvcrRef") or entry.value("NtryRef")
            if not entry_id:
                skipped.append((entry.line, "no AcctSvcrRef or NtryRef: cannot be booked once"))
                continue
            booked_on = entry.value("BookgDt/Dt") or entry.value("BookgDt/DtTm") or entry.value("ValDt/Dt")
            details = [t for d in entry.findall("NtryDtls") for t in d.findall("TxDtls")]
            entry_amount = _amount(entry.find("Amt"), "Ntry/Amt")
            if len(details) <= 1:
                tx = details[0] if details else None
                credits.append(BankCredit(entry_id, iso20022.remittance_reference(tx or entry), entry_amount, account,
                                          booked_on, entry.line))
                continue
            parts = []
            for n, tx in enumerate(details, 1):
                amount = _amount(tx.find("Amt") or tx.find("AmtDtls/TxAmt/Amt"), f"TxDtls {n} amount")
                tx_id = f"{entry_id}/{tx.value('Refs/AcctSvcrRef') or n}"
                parts.append(BankCredit(tx_id, iso20022.remittance_reference(tx), amount, account, booked_on, tx.line))
            if sum(p.amount.minor for p in parts) != entry_amount.minor or {p.amount.currency for p in parts} != {
                    entry_amount.currency}:
                skipped.append((entry.line, "the transactions do not add up to the entry"))
                continue
            credits.extend(parts)
    return Notification(message_id, credits, skipped)


class BankTransfers:
    """References and accounts for bank-transfer orders, and which order a credit is for."""

    def __init__(self, docs, accounts: dict[str, dict]):
        if not accounts:
            raise ValidationError("validation_error", "no bank account to be paid to is configured")
        self.docs = docs
        self.accounts = {str(k).upper() if k != "*" else "*": dict(v) for k, v in accounts.items()}

    @classmethod
    def from_settings(cls, settings, docs) -> "BankTransfers":
        from chalicelib.secrets import env_value

        raw = env_value("MIZANI_BANK_ACCOUNTS", settings, json.dumps(LOCAL_BANK_ACCOUNTS))
        return cls(docs, json.loads(raw))

    def account_for(self, currency: str) -> dict:
        account = self.accounts.get(currency) or self.accounts.get("*")
        if account is None:
            raise ValidationError("validation_error", f"no bank account takes {currency} here", path="pay_currency")
        return {**account, "currency": currency}

    def ours(self, account: str) -> bool:
        return bool(account) and account in {_account_key(a) for a in self.accounts.values()}

    def start(self, order_id: str, pay: Money) -> dict:
        """The order's ``payment``: its reference, the amount and the account; the reference is linked
        to the order (``bankref#<reference>``) so that a credit finds it."""
        reference = reference_for(order_id)
        try:
            self.docs.put_new(f"bankref#{reference}", {"order_id": order_id, "amount": pay.to_json()})
        except DocumentExists:
            if (self.docs.get(f"bankref#{reference}") or {}).get("order_id") != order_id:
                raise ValidationError("validation_error", "bank reference collision; retry the order") from None
        return {
            "provider": "bank",
            "method": "bank_transfer",
            "payment_id": reference,
            "bank_transfer": {"reference": reference, "amount": pay.to_json(), "account": self.account_for(pay.currency)},
        }

    def matched(self, notification: Notification) -> list[tuple[str | None, BankCredit]]:
        """Each credit of ``notification`` to one of our accounts with the order its reference names
        (``None``: no order has that reference, or it carries none). Credits to other accounts are left out."""
        return [(self.order_for(c.reference), c) for c in notification.credits if self.ours(c.account)]

    def order_for(self, reference: str | None) -> str | None:
        if not reference:
            return None
        link = self.docs.get(f"bankref#{reference}")
        return link["order_id"] if link else None


def webhook_secret(settings) -> str:
    """The key the bank signs its notifications with (``MIZANI_BANK_SECRET``; a sandbox default locally)."""
    from chalicelib.secrets import env_value, secret_value

    env_value("MIZANI_BANK_SECRET", settings, LOCAL_BANK_SECRET)  # missing outside the local stage: refuse
    return secret_value("MIZANI_BANK_SECRET", settings, LOCAL_BANK_SECRET)()
