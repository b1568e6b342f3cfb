"""The bank's ISO 20022 camt.054 credit notifications as Mizani reads them, and camt.053 statements of bank
transfers as reconciliation classifies them."""
import pytest

from chalicelib.errors import ValidationError
from chalicelib.money import Money
from chalicelib.payments.bank import BankTransfers, parse_notification, reference_for
from chalicelib.documents import MemoryDocuments
from chalicelib.recon.importers import parse_statement
from chalicelib.recon.ledger_source import MemoryLedgerSource
from chalicelib.recon.model import LedgerLine
from chalicelib.recon.service import reconcile_statement

IBAN = "GB33BUKB20201555555555"
REF = reference_for("ord_1")
OTHER = reference_for("ord_2")


def entry(amount="1200.00", ccy="USD", indicator="CRDT", status="<Sts><Cd>BOOK</Cd></Sts>", svcr="B1", details=None):
    details = details if details is not None else f"""<NtryDtls><TxDtls><Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>
      <RmtInf><Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp><Ref>{REF}</Ref></CdtrRefInf></Strd></RmtInf>
      </TxDtls></NtryDtls>"""
    ref = f"<AcctSvcrRef>{svcr}</AcctSvcrRef>" if svcr else ""
    return f"""<Ntry><Amt Ccy="{ccy}">{amount}</Amt><CdtDbtInd>{indicator}</CdtDbtInd>{status}
      <BookgDt><Dt>2026-12-02</Dt></BookgDt>{ref}{details}</Ntry>"""


def camt054(*entries, version="08", iban=IBAN, msg="M1"):
    return f"""<?xml version="1.0"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.{version}"><BkToCstmrDbtCdtNtfctn>
  <GrpHdr><MsgId>{msg}</MsgId><CreDtTm>2026-12-02T10:00:00Z</CreDtTm></GrpHdr>
  <Ntfctn><Id>N1</Id><Acct><Id><IBAN>{iban}</IBAN></Id></Acct>{''.join(entries)}</Ntfctn>
</BkToCstmrDbtCdtNtfctn></Document>"""


def test_a_booked_credit_is_read_with_its_reference_amount_and_the_banks_entry_id():
    notification = parse_notification(camt054(entry()))
    [credit] = notification.credits
    assert notification.message_id == "M1"
    assert (credit.reference, credit.amount, credit.entry_id, credit.account) == (REF, Money(120_000, "USD"), "B1", IBAN)


@pytest.mark.parametrize("version", ["02", "08", "13"])
def test_every_camt054_version_is_read(version):
    assert len(parse_notification(camt054(entry(), version=version)).credits) == 1


def test_debits_pending_entries_and_entries_without_a_bank_id_are_not_credits():
    notification = parse_notification(camt054(entry(indicator="DBIT", svcr="B2"),
                                              entry(status="<Sts><Cd>PDNG</Cd></Sts>", svcr="B3"),
                                              entry(svcr=None)))
    assert notification.credits == [] and len(notification.skipped) == 3


def test_a_batch_entry_is_one_credit_per_transaction_and_an_rf_in_unstructured_text_counts():
    details = f"""<NtryDtls>
      <TxDtls><Refs><AcctSvcrRef>T1</AcctSvcrRef></Refs><Amt Ccy="USD">1000.00</Amt>
        <RmtInf><Ustrd>Invoice {REF[:4]} {REF[4:8]} {REF[8:]}</Ustrd></RmtInf></TxDtls>
      <TxDtls><Refs><AcctSvcrRef>T2</AcctSvcrRef></Refs><Amt Ccy="USD">200.00</Amt>
        <RmtInf><Ustrd>coffee {OTHER}</Ustrd></RmtInf></TxDtls></NtryDtls>"""
    credits = parse_notification(camt054(entry(details=details))).credits
    assert [(c.entry_id, c.reference, c.amount.minor) for c in credits] == [("B1/T1", REF, 100_000), ("B1/T2", OTHER, 20_000)]


def test_transactions_that_do_not_add_up_to_their_entry_are_skipped():
    details = """<NtryDtls><TxDtls><Amt Ccy="USD">1.00</Amt></TxDtls><TxDtls><Amt Ccy="USD">2.00</Amt></TxDtls></NtryDtls>"""
    notification = parse_notification(camt054(entry(details=details)))
    assert notification.credits == [] and "add up" in notification.skipped[0][1]


@pytest.mark.parametrize("body", [
    "<Document/>",  # no namespace
    '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"/>',
    camt054(entry()).replace("camt.054", "camt.053"),  # a statement is not a notification
    "not xml at all",
])
def test_anything_that_is_not_a_camt054_is_a_validation_error(body):
    with pytest.raises(ValidationError):
        parse_notification(body)


def test_a_credit_is_matched_to_the_order_of_its_reference_and_another_account_is_not_ours():
    bank = BankTransfers(MemoryDocuments(), {"*": {"holder": "M", "bank": "B", "iban": IBAN}})
    payment = bank.start("ord_1", Money(120_000, "USD"))
    assert payment["payment_id"] == REF and bank.start("ord_1", Money(120_000, "USD")) == payment
    notification = parse_notification(camt054(entry(), entry(svcr="B9").replace(REF, OTHER)))
    assert [(o, c.entry_id) for o, c in bank.matched(notification)] == [("ord_1", "B1"), (None, "B9")]
    elsewhere = parse_notification(camt054(entry(), iban="DE89370400440532013000"))
    assert bank.matched(elsewhere) == []


def test_the_sandbox_banks_notification_is_a_camt054_mizani_reads():
    from sandbox.simulators import SimulatorContext
    from sandbox.simulators.bank import BankSimulator

    sim = BankSimulator(SimulatorContext(api_base_url="http://127.0.0.1:9", sandbox_base_url=""))
    booked = sim._book("CRDT", REF, Money(120_000, "USD"), "Shanghai Roasters & Co <Ltd>")
    [credit] = parse_notification(sim._camt054("SBXN1", booked)).credits
    assert (credit.reference, credit.amount, credit.entry_id) == (REF, Money(120_000, "USD"), booked["ref"])


def test_a_camt053_of_bank_transfers_reconciles_on_the_order_reference_with_one_break_found():
    from sandbox.simulators import SimulatorContext
    from sandbox.simulators.bank import BankSimulator

    sim = BankSimulator(SimulatorContext(api_base_url="http://127.0.0.1:9", sandbox_base_url=""))
    sim._book("CRDT", REF, Money(120_000, "USD"), "Buyer")
    sim._book("DBIT", OTHER, Money(5_000, "USD"), "Buyer")  # a refund sent back
    statement = sim.statement()
    batch = parse_statement("camt053", statement)
    assert list(batch.kind) == ["bank_transfer", "bank_refund"]
    day = batch.day[0]
    ledger = MemoryLedgerSource([LedgerLine(REF, "bank", 120_000, "USD", day, "bank_transfer", "pay:ord_1:bank:x"),
                                 LedgerLine(OTHER, "bank", -5_000, "USD", day, "bank_refund", "refund:ord_2:paid")])
    clean = reconcile_statement("camt053", statement, ledger)
    assert clean.summary["matched"] == 2 and clean.breaks == []
    doctored = statement.replace(">1200.00<", ">1190.00<")
    broken = reconcile_statement("camt053", doctored, ledger)
    assert [(b.reference, b.outcome) for b in broken.breaks] == [(REF, "amount_mismatch")]
