"""ISO 20022 camt.053 bank-to-customer statement (XML): the float top-ups.

Accepted: a ``Document`` in any ``urn:iso:std:iso:20022:tech:xsd:camt.053.001.NN``
namespace (``.02`` to today's ``.13``), one or more ``BkToCstmrStmt/Stmt``, each
with ``Ntry`` entries. Per entry:

- ``Amt`` (decimal, ``Ccy`` attribute) and ``CdtDbtInd``: ``CRDT`` is a float top-up
  (``float_topup``, ``+``); ``DBIT`` money leaving (``float_withdrawal``, ``-``), except a
  ``DBIT`` with ``RvslInd`` true, which reverses a top-up (``float_topup``, ``-``).
- ``Sts`` (``BOOK`` settled; ``PDNG``/``INFO``/``FUTR`` pending, counted, not matched),
  either as text (``.02``-``.07``) or ``Sts/Cd`` (``.08`` on).
- the day: ``BookgDt/Dt`` or ``BookgDt/DtTm`` (UTC day), else ``ValDt``.
- the reference (our top-up reference): ``NtryDtls/TxDtls/Refs/EndToEndId`` unless
  absent or ``NOTPROVIDED``, else ``NtryRef``, else ``AcctSvcrRef``. ``raw_id``: the
  bank's ``AcctSvcrRef`` (else ``NtryRef``).
- a buyer's bank transfer: a transaction whose remittance information carries an ISO 11649
  creditor reference (``RmtInf/Strd/CdtrRefInf/Ref``, or an ``RF..`` in ``RmtInf/Ustrd``: the
  order's reference, ``chalicelib.payments.bank``) is ``bank_transfer`` (``CRDT``, ``+``) or
  ``bank_refund`` (``DBIT``, ``-``: finance sending a refund back under the same reference),
  with that reference.
- a batch entry with several ``TxDtls`` becomes one line per transaction (amount from
  ``TxDtls/Amt`` or ``TxDtls/AmtDtls/TxAmt/Amt``); their sum must equal the entry.
- ``AmtDtls/InstdAmt/Amt`` in another currency is the amount before the bank converted
  it (``orig_*``), for the ``fx`` classification.

``line`` is the XML line where the ``<Ntry>`` (or ``<TxDtls>``) starts.

Safety. The file comes from outside, so the parser is expat used directly with
any ``<!DOCTYPE>`` refused: no DTD means no entity declarations, so no
billion-laughs or quadratic-blowup expansion and no external entities, whatever
the expat version (this Python's is 2.5.0, which also has expat's own
amplification limits since 2.4). The document is fed to expat in one call (the
quadratic re-parsing of huge tokens fixed in expat 2.6 happens only when a token
spans many feeds) and is capped at ``MAX_BYTES``. So ``defusedxml`` is not needed
and not added.
"""
from __future__ import annotations

import re

from chalicelib import iso20022
from chalicelib.iso20022 import Node
from chalicelib.recon.importers.shared import make_batch
from chalicelib.recon.model import PENDING, SETTLED, ProviderBatch, StatementError
from chalicelib.recon.parsing import BadLine, Errors, parse_currency, parse_decimal, parse_instant_day

SOURCE = "camt053"
MAX_BYTES = 64 * 1024 * 1024
NAMESPACE = re.compile(r"urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.\d{2}")
STATUSES = {"BOOK": SETTLED, "PDNG": PENDING, "INFO": PENDING, "FUTR": PENDING}
OUTPUTS = ("reference", "amount_minor", "currency", "day", "kind", "raw_id", "status", "orig_minor", "orig_currency")


def _tree(data: bytes) -> tuple[Node, str]:
    """The document and its camt.053 namespace (``chalicelib.iso20022``: expat, any DTD refused)."""
    try:
        return iso20022.parse(data, NAMESPACE)
    except iso20022.XmlRefused as e:
        raise StatementError(SOURCE, [(e.line, e.message)]) from None


def parse(content: str | bytes) -> ProviderBatch:
    """Parse a camt.053 statement; ``StatementError`` lists every malformed entry with its line."""
    data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    if len(data) > MAX_BYTES:
        raise StatementError(SOURCE, [(0, f"the statement is larger than {MAX_BYTES} bytes")])
    document, uri = _tree(data)
    if document.tag != "Document" or not uri:
        raise StatementError(SOURCE, [(document.line, "expected a camt.053 Document in namespace "
                                                      "urn:iso:std:iso:20022:tech:xsd:camt.053.001.NN")])
    statements = [s for b in document.findall("BkToCstmrStmt") for s in b.findall("Stmt")]
    if not statements:
        raise StatementError(SOURCE, [(document.line, "no BkToCstmrStmt/Stmt in the document")])
    errors = Errors(SOURCE)
    cols = {name: [] for name in OUTPUTS}
    lines: list[int] = []
    for stmt in statements:
        for entry in stmt.findall("Ntry"):
            try:
                rows = _entry(entry)
            except BadLine as e:
                errors.add(entry.line, str(e))
                continue
            for line, values in rows:
                for name, value in zip(OUTPUTS, values):
                    cols[name].append(value)
                lines.append(line)
    errors.raise_if_any()
    return make_batch(SOURCE, lines, cols, orig=True)


def _amount(node: Node | None, what: str) -> tuple[int, str]:
    if node is None:
        raise BadLine(f"{what} is missing")
    currency = parse_currency(node.attrs.get("Ccy"))
    return parse_decimal(node.text.strip(), currency, what), currency


def _sign(indicator: str) -> int:
    if indicator == "CRDT":
        return 1
    if indicator == "DBIT":
        return -1
    raise BadLine(f"CdtDbtInd {indicator!r} is not CRDT or DBIT")


def _entry(entry: Node) -> list[tuple[int, tuple]]:
    errors: list[str] = []

    def attempt(fn, *args):
        try:
            return fn(*args)
        except BadLine as e:
            errors.append(str(e))
            return None

    amount = attempt(_amount, entry.find("Amt"), "Amt")
    sign = attempt(_sign, entry.value("CdtDbtInd"))
    reversal = entry.value("RvslInd").lower() in ("true", "1")
    status_text = entry.value("Sts/Cd") or entry.value("Sts")
    status = STATUSES.get(status_text)
    if status is None:
        errors.append(f"Sts {status_text!r} is not one of {', '.join(STATUSES)}")
    day_text = entry.value("BookgDt/Dt") or entry.value("BookgDt/DtTm") or entry.value("ValDt/Dt") \
        or entry.value("ValDt/DtTm")
    day = attempt(parse_instant_day, day_text, "BookgDt")
    details = [t for d in entry.findall("NtryDtls") for t in d.findall("TxDtls")]
    entry_raw = entry.value("AcctSvcrRef") or entry.value("NtryRef")
    kind = None
    if sign is not None:
        kind = "float_topup" if (sign > 0) != reversal else "float_withdrawal"
    if errors:
        raise BadLine("; ".join(errors))
    minor, currency = amount
    signed = sign * minor

    def reference_of(tx: Node | None) -> str:
        creditor = iso20022.remittance_reference(tx if tx is not None else entry)
        if creditor:
            return creditor
        end_to_end = tx.value("Refs/EndToEndId") if tx is not None else ""
        if end_to_end and end_to_end.upper() != "NOTPROVIDED":
            return end_to_end
        return entry.value("NtryRef") or entry.value("AcctSvcrRef") or (tx.value("Refs/AcctSvcrRef") if tx else "")

    def orig_of(node: Node | None, sign_: int) -> tuple[int | None, str]:
        instructed = node.find("AmtDtls/InstdAmt/Amt") if node is not None else None
        if instructed is None:
            return None, ""
        value, cur = _amount(instructed, "InstdAmt")
        return (sign_ * abs(value), cur) if cur != currency else (None, "")

    if len(details) <= 1:
        tx = details[0] if details else None
        reference = reference_of(tx)
        if not reference:
            raise BadLine("the entry has no reference (EndToEndId, NtryRef or AcctSvcrRef)")
        orig = orig_of(tx, sign) if tx is not None else orig_of(entry, sign)
        raw_id = entry_raw or (tx.value("Refs/AcctSvcrRef") if tx is not None else "") or reference
        if iso20022.remittance_reference(tx if tx is not None else entry):
            kind = "bank_transfer" if sign > 0 else "bank_refund"
        return [(entry.line, (reference, signed, currency, day, kind, raw_id, status, *orig))]
    rows = []
    total = 0
    for n, tx in enumerate(details, 1):
        node = tx.find("Amt") or tx.find("AmtDtls/TxAmt/Amt")
        value, tx_currency = _amount(node, f"TxDtls {n} amount")
        if tx_currency != currency:
            raise BadLine(f"TxDtls {n} is in {tx_currency}, the entry in {currency}")
        tx_sign = _sign(tx.value("CdtDbtInd")) if tx.value("CdtDbtInd") else sign
        total += tx_sign * value
        reference = reference_of(tx)
        if not reference:
            raise BadLine(f"TxDtls {n} has no reference")
        raw_id = tx.value("Refs/AcctSvcrRef") or f"{entry_raw or reference}/{n}"
        tx_kind = "float_topup" if (tx_sign > 0) != reversal else "float_withdrawal"
        if iso20022.remittance_reference(tx):
            tx_kind = "bank_transfer" if tx_sign > 0 else "bank_refund"
        rows.append((tx.line, (reference, tx_sign * value, currency, day, tx_kind, raw_id, status,
                               *orig_of(tx, tx_sign))))
    if total != signed:
        raise BadLine(f"the {len(details)} transactions add up to {total}, the entry says {signed} (minor units)")
    return rows
