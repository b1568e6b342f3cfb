"""camt.053 bank statements: float top-ups read from ISO 20022 XML, safely."""
from __future__ import annotations

from datetime import date

import pytest

from chalicelib.money import Money
from chalicelib.recon import StatementError, parse_statement
from chalicelib.recon.model import PENDING, SETTLED

NS02 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"
NS08 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"


def statement(entries: str, ns: str = NS02) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{ns}">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>MSG-1</MsgId><CreDtTm>2026-05-10T06:00:00</CreDtTm></GrpHdr>
    <Stmt>
      <Id>STMT-2026-05-09</Id>
      <CreDtTm>2026-05-10T06:00:00</CreDtTm>
      <FrToDt><FrDtTm>2026-05-09T00:00:00</FrDtTm><ToDtTm>2026-05-09T23:59:59</ToDtTm></FrToDt>
      <Acct><Id><IBAN>RW0000000000000000000001</IBAN></Id><Ccy>RWF</Ccy></Acct>
{entries}
    </Stmt>
  </BkToCstmrStmt>
</Document>
"""


def entry(amount="1500000", ccy="RWF", ind="CRDT", sts="<Sts>BOOK</Sts>", ref="<NtryRef>TOPUP-1</NtryRef>",
          day="<BookgDt><Dt>2026-05-09</Dt></BookgDt>", svcr="<AcctSvcrRef>BANK-1</AcctSvcrRef>", extra="") -> str:
    return f"""      <Ntry>
        {ref}
        <Amt Ccy="{ccy}">{amount}</Amt>
        <CdtDbtInd>{ind}</CdtDbtInd>
        {sts}
        {day}
        <ValDt><Dt>2026-05-09</Dt></ValDt>
        {svcr}
        {extra}
      </Ntry>"""


def test_a_booked_credit_is_a_float_top_up_keyed_on_its_end_to_end_id():
    details = """<NtryDtls><TxDtls><Refs><EndToEndId>ft_2026_05_09_1</EndToEndId></Refs></TxDtls></NtryDtls>"""
    xml = statement(entry(extra=details) + entry(amount="250.50", ccy="USD", ref="<NtryRef>TOPUP-2</NtryRef>",
                                                 svcr="<AcctSvcrRef>BANK-2</AcctSvcrRef>"))
    lines = list(parse_statement("camt053", xml))
    assert [(p.reference, p.amount, p.kind, p.status, p.raw_id, p.day, p.provider) for p in lines] == [
        ("ft_2026_05_09_1", Money(1500000, "RWF"), "float_topup", SETTLED, "BANK-1", date(2026, 5, 9), "bank"),
        ("TOPUP-2", Money(25050, "USD"), "float_topup", SETTLED, "BANK-2", date(2026, 5, 9), "bank"),
    ]
    assert lines[0].line == 10  # where its <Ntry> starts


def test_later_versions_with_status_codes_debits_reversals_and_pending_entries_are_read():
    xml = statement(
        entry(sts="<Sts><Cd>BOOK</Cd></Sts>", ind="DBIT", ref="<NtryRef>W-1</NtryRef>")
        + entry(sts="<Sts><Cd>BOOK</Cd></Sts>", ind="DBIT", ref="<NtryRef>TOPUP-1</NtryRef>",
                extra="<RvslInd>true</RvslInd>")
        + entry(sts="<Sts><Cd>PDNG</Cd></Sts>", ref="<NtryRef>TOPUP-3</NtryRef>",
                day="<BookgDt><DtTm>2026-05-09T22:30:00-03:00</DtTm></BookgDt>"),
        ns=NS08,
    )
    lines = list(parse_statement("camt053", xml))
    assert [(p.reference, p.amount_minor, p.kind, p.status) for p in lines] == [
        ("W-1", -1500000, "float_withdrawal", SETTLED),
        ("TOPUP-1", -1500000, "float_topup", SETTLED),  # a reversed top-up nets against it
        ("TOPUP-3", 1500000, "float_topup", PENDING),
    ]
    assert lines[2].day == date(2026, 5, 10)  # 22:30 at UTC-3 is the next day in UTC


def test_a_batch_entry_becomes_one_line_per_transaction_and_must_add_up():
    details = """<NtryDtls><Btch><NbOfTxs>2</NbOfTxs></Btch>
          <TxDtls><Refs><EndToEndId>ft_a</EndToEndId></Refs><AmtDtls><TxAmt><Amt Ccy="RWF">1000000</Amt></TxAmt></AmtDtls></TxDtls>
          <TxDtls><Refs><EndToEndId>ft_b</EndToEndId></Refs><AmtDtls><TxAmt><Amt Ccy="RWF">500000</Amt></TxAmt></AmtDtls></TxDtls>
        </NtryDtls>"""
    lines = list(parse_statement("camt053", statement(entry(extra=details))))
    assert [(p.reference, p.amount_minor) for p in lines] == [("ft_a", 1000000), ("ft_b", 500000)]
    wrong = details.replace(">500000<", ">400000<")
    with pytest.raises(StatementError, match="add up"):
        parse_statement("camt053", statement(entry(extra=wrong)))


def test_an_instructed_amount_in_another_currency_is_kept_as_the_original_for_fx():
    details = """<NtryDtls><TxDtls><Refs><EndToEndId>ft_fx</EndToEndId></Refs>
        <AmtDtls><InstdAmt><Amt Ccy="USD">1150.00</Amt></InstdAmt></AmtDtls></TxDtls></NtryDtls>"""
    (line,) = parse_statement("camt053", statement(entry(extra=details)))
    assert line.original == Money(115000, "USD") and line.amount == Money(1500000, "RWF")


def test_malformed_entries_are_each_reported_at_their_line():
    xml = statement(
        entry()
        + entry(amount="12.5", ref="<NtryRef>A</NtryRef>")  # RWF has no decimals
        + entry(ind="SIDEWAYS", ref="<NtryRef>B</NtryRef>")
        + entry(day="<BookgDt><Dt>2026-13-01</Dt></BookgDt>", ref="<NtryRef>C</NtryRef>")
        + entry(ref="", svcr="")
    )
    with pytest.raises(StatementError) as info:
        parse_statement("camt053", xml)
    numbers = [n for n, _ in info.value.errors]
    assert len(numbers) == 4 and numbers == sorted(numbers) and numbers[0] > 10
    reasons = " | ".join(r for _, r in info.value.errors)
    assert "12.5" in reasons and "SIDEWAYS" in reasons and "2026-13-01" in reasons and "reference" in reasons


def test_xml_that_is_not_well_formed_is_reported_at_its_line():
    with pytest.raises(StatementError) as info:
        parse_statement("camt053", statement(entry()).replace("</Amt>", "</Amount>", 1))
    assert info.value.errors[0][0] == 12 and "well-formed" in info.value.errors[0][1]


def test_a_document_of_another_kind_is_refused():
    with pytest.raises(StatementError, match="camt.053"):
        parse_statement("camt053", statement(entry(), ns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"))


def test_entity_expansion_is_refused_before_any_entity_is_expanded():
    laughs = """<?xml version="1.0"?>
<!DOCTYPE Document [
  <!ENTITY a "aaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
  <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><Stmt><Ntry>
<NtryRef>&d;&d;&d;&d;&d;&d;&d;&d;&d;</NtryRef></Ntry></Stmt></BkToCstmrStmt></Document>"""
    with pytest.raises(StatementError, match="DOCTYPE"):
        parse_statement("camt053", laughs)
    external = """<?xml version="1.0"?><!DOCTYPE Document SYSTEM "file:///etc/passwd"><Document/>"""
    with pytest.raises(StatementError, match="DOCTYPE"):
        parse_statement("camt053", external)
