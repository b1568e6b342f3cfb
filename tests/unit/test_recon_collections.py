"""Collection accounts' statements (MTN MoMo Collection, M-Pesa paybill) read strictly for reconciliation."""
import pytest

from chalicelib.recon.importers import parse_statement
from chalicelib.recon.model import FAILED, SETTLED, SOURCES, StatementError

MOMO = """financialTransactionId,externalId,type,amount,currency,status,date
300000001,MZ0000000001,REQUEST_TO_PAY,862500,RWF,SUCCESSFUL,2026-12-02T10:00:00Z
,MZ0000000002,REQUEST_TO_PAY,1000,RWF,FAILED,2026-12-02T10:01:00Z
400000001,MZ0000000001,REFUND,862500,RWF,SUCCESSFUL,2026-12-02T11:00:00Z
"""
MPESA = """Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,Withdrawn,Balance,Reason Type,Other Party Info,Linked Transaction ID,A/C No.
TABCDEFGH1,2026-12-02T10:00:00Z,2026-12-02T09:59:00Z,Pay Bill Online,Completed,155800.00,,,Pay Bill Online,254712345678 - ,,MZ0000000003
TABCDEFGH2,2026-12-02T12:00:00Z,2026-12-02T12:00:00Z,Reversal of TABCDEFGH1,Completed,,155800.00,,Reversal,254712345678 - ,TABCDEFGH1,MZ0000000003
"""


def test_the_collection_sources_are_known_and_report_on_their_collection_accounts():
    assert SOURCES["mtn_momo_collection"] == "mtn_momo_collection" and SOURCES["mpesa_c2b"] == "mpesa_collection"


def test_an_mtn_collection_statement_has_payments_in_and_refunds_out():
    batch = parse_statement("mtn_momo_collection", MOMO)
    lines = list(batch)
    assert [(ln.reference, ln.kind, ln.amount_minor, ln.status) for ln in lines] == [
        ("MZ0000000001", "collection", 862_500, SETTLED),
        ("MZ0000000002", "collection", 1_000, FAILED),
        ("MZ0000000001", "collection_refund", -862_500, SETTLED),
    ]


def test_an_mpesa_paybill_statement_has_stk_payments_in_and_reversals_out_in_whole_kes():
    lines = list(parse_statement("mpesa_c2b", MPESA))
    assert [(ln.reference, ln.kind, ln.amount_minor, ln.currency, ln.raw_id) for ln in lines] == [
        ("MZ0000000003", "collection", 15_580_000, "KES", "TABCDEFGH1"),
        ("MZ0000000003", "collection_refund", -15_580_000, "KES", "TABCDEFGH2"),
    ]


@pytest.mark.parametrize("source, content, line", [
    ("mtn_momo_collection", MOMO.replace("REFUND", "WITHDRAW"), 4),
    ("mtn_momo_collection", MOMO.replace("300000001", ""), 2),  # a settled line needs MTN's id
    ("mpesa_c2b", MPESA.replace(",155800.00,,,Pay", ",155800.00,5.00,,Pay"), 2),  # both Paid In and Withdrawn
    ("mpesa_c2b", MPESA.replace("Reversal,254", "Business Payment,254"), 3),  # money out that is no reversal
])
def test_a_malformed_line_is_reported_with_its_number_never_dropped(source, content, line):
    with pytest.raises(StatementError) as refused:
        parse_statement(source, content)
    assert [n for n, _ in refused.value.errors] == [line]
