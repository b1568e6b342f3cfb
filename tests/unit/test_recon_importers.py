"""Statement importers: each provider's format parsed exactly; malformed lines all reported with numbers."""
from __future__ import annotations

import json
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.errors import ValidationError
from chalicelib.money import Money
from chalicelib.recon import StatementError, parse_statement, read_ledger_csv, write_ledger_csv
from chalicelib.recon.importers import momo
from chalicelib.recon.model import FAILED, PENDING, SETTLED, LedgerLine
from chalicelib.recon.parsing import BadLine, fast_amounts, fast_instant_days, parse_instant_day

MOMO_HEADER = "financialTransactionId,externalId,amount,currency,status,date\n"


def bad_lines(source: str, content) -> list[int]:
    with pytest.raises(StatementError) as info:
        parse_statement(source, content)
    return [n for n, _ in info.value.errors]


# -- MTN MoMo ------------------------------------------------------------------------------------

def test_an_mtn_statement_becomes_negative_payout_lines_in_minor_units():
    content = MOMO_HEADER + (
        "5001,po_a,1500,RWF,SUCCESSFUL,2026-05-09T10:00:00Z\n"
        "5002,po_b,12.50,GHS,SUCCESSFUL,2026-05-09T23:59:59Z\n"
        ",po_c,100,RWF,FAILED,2026-05-10T01:00:00Z\n"
    )
    batch = parse_statement("mtn_momo", content)
    lines = list(batch)
    assert [(p.line, p.reference, p.amount, p.kind, p.status, p.raw_id) for p in lines] == [
        (2, "po_a", Money(-1500, "RWF"), "payout", SETTLED, "5001"),
        (3, "po_b", Money(-1250, "GHS"), "payout", SETTLED, "5002"),
        (4, "po_c", Money(-100, "RWF"), "payout", FAILED, ""),
    ]
    assert lines[0].day == date(2026, 5, 9) and lines[0].provider == "mtn_momo" and lines[0].fee is None


def test_an_mtn_date_with_an_offset_counts_on_its_utc_day():
    content = MOMO_HEADER + "1,po_a,10,RWF,SUCCESSFUL,2026-05-10T01:30:00+03:00\n"
    assert next(iter(parse_statement("mtn_momo", content))).day == date(2026, 5, 9)


def test_mtn_pending_and_ongoing_are_pending():
    content = MOMO_HEADER + "1,po_a,10,RWF,PENDING,2026-05-09\n2,po_b,10,RWF,ONGOING,2026-05-09\n"
    assert [p.status for p in parse_statement("mtn_momo", content)] == [PENDING, PENDING]


def test_a_malformed_mtn_statement_lists_every_bad_line_with_its_number_and_reason():
    content = MOMO_HEADER + (
        "1,po_a,1500,RWF,SUCCESSFUL,2026-05-09T10:00:00Z\n"
        "2,po_b,15.5.0,RWF,SUCCESSFUL,2026-05-09T10:00:00Z\n"  # 3: amount
        "3,,100,RWF,SUCCESSFUL,2026-05-09T10:00:00Z\n"  # 4: no externalId
        "4,po_d,100,XYZ,SUCCESSFUL,2026-05-09T10:00:00Z\n"  # 5: currency
        "5,po_e,100,RWF,DONE,2026-05-09T10:00:00Z\n"  # 6: status
        "6,po_f,100,RWF,SUCCESSFUL,2026-02-30T10:00:00Z\n"  # 7: no such day
        "7,po_g,100,RWF,SUCCESSFUL\n"  # 8: a field short
        "8,po_h,-100,RWF,SUCCESSFUL,2026-05-09T10:00:00Z\n"  # 9: not positive
        "9,po_i,1.5,RWF,SUCCESSFUL,2026-05-09T10:00:00Z\n"  # 10: RWF has no decimals
        "10,po_j,100,RWF,SUCCESSFUL,2026-05-09T10:00:00Z\n"
    )
    with pytest.raises(StatementError) as info:
        parse_statement("mtn_momo", content)
    err = info.value
    assert [n for n, _ in err.errors] == [3, 4, 5, 6, 7, 8, 9, 10]
    reasons = dict(err.errors)
    assert "15.5.0" in reasons[3] and "externalId" in reasons[4] and "XYZ" in reasons[5]
    assert "DONE" in reasons[6] and "2026-02-30" in reasons[7] and "expected 6 fields" in reasons[8]
    assert "positive" in reasons[9] and "decimal" in reasons[10]
    assert isinstance(err, ValidationError) and err.code == "malformed_statement"
    assert err.detail["fields"][0] == {"path": "line 3", "message": reasons[3]}
    assert "line 3" in err.message


def test_a_statement_without_a_required_column_is_refused_on_its_header():
    with pytest.raises(StatementError) as info:
        parse_statement("mtn_momo", "financialTransactionId,amount,currency,status,date\n1,10,RWF,SUCCESSFUL,2026-05-09\n")
    assert info.value.errors[0][0] == 1 and "externalid" in info.value.errors[0][1]


def test_an_empty_file_or_bytes_that_are_not_utf8_are_malformed():
    assert bad_lines("mtn_momo", "") == [1]
    assert bad_lines("mtn_momo", (MOMO_HEADER + "1,po_\xe9,10,RWF,SUCCESSFUL,2026-05-09\n").encode("latin-1")) == [2]


def test_crlf_line_ends_blank_lines_a_bom_and_quoted_fields_are_read_like_any_csv():
    content = "\ufeff" + MOMO_HEADER.replace("\n", "\r\n") + (
        '1,"po,a",10,RWF,SUCCESSFUL,2026-05-09\r\n\r\n2,po_b,20,RWF,SUCCESSFUL,2026-05-09\r\n')
    assert [(p.line, p.reference) for p in parse_statement("mtn_momo", content)] == [(2, "po,a"), (4, "po_b")]
    plain = MOMO_HEADER.replace("\n", "\r\n") + "1,po_a,10,RWF,SUCCESSFUL,2026-05-09\r\n"
    assert [p.reference for p in parse_statement("mtn_momo", plain.encode())] == ["po_a"]


def test_a_quoted_field_spanning_lines_keeps_the_line_numbers_of_later_records_right():
    content = MOMO_HEADER + '1,"po\na",10,RWF,SUCCESSFUL,2026-05-09\n2,po_b,x,RWF,SUCCESSFUL,2026-05-09\n'
    assert bad_lines("mtn_momo", content) == [4]


def test_the_fast_and_the_line_by_line_path_read_an_mtn_statement_alike(monkeypatch):
    rows = [f"{i},po_{i},{i}.{i % 100:02d},GHS,{'SUCCESSFUL' if i % 7 else 'FAILED'},2026-05-{1 + i % 28:02d}T0{i % 10}:00:00Z"
            for i in range(1, 300)]
    content = MOMO_HEADER + "\n".join(rows) + "\n"
    fast = list(parse_statement("mtn_momo", content))
    monkeypatch.setattr(momo.FORMAT, "fast", lambda raw, n: None)
    assert list(parse_statement("mtn_momo", content)) == fast


# -- Stripe ------------------------------------------------------------------------------------

STRIPE_HEADER = "balance_transaction_id,created_utc,reporting_category,currency,gross,fee,net,payment_intent_id\n"


def test_a_stripe_balance_report_keys_charges_and_refunds_on_the_payment_intent_with_fees():
    content = STRIPE_HEADER + (
        "txn_1,2026-05-09 10:00:00,charge,usd,100.00,3.20,96.80,pi_1\n"
        "txn_2,2026-05-09 11:00:00,refund,usd,-100.00,0.00,-100.00,pi_1\n"
        "txn_3,2026-05-09 12:00:00,charge,rwf,15000,465,14535,pi_2\n"
        "txn_4,2026-05-10 00:00:00,payout,usd,-50.00,0.00,-50.00,\n"
    )
    lines = list(parse_statement("stripe_balance", content))
    assert [(p.reference, p.kind, p.amount, p.fee, p.raw_id) for p in lines] == [
        ("pi_1", "card_payment", Money(10000, "USD"), Money(320, "USD"), "txn_1"),
        ("pi_1", "card_refund", Money(-10000, "USD"), Money(0, "USD"), "txn_2"),
        ("pi_2", "card_payment", Money(15000, "RWF"), Money(465, "RWF"), "txn_3"),
        ("txn_4", "payout", Money(-5000, "USD"), Money(0, "USD"), "txn_4"),
    ]
    assert lines[0].provider == "stripe" and lines[3].day == date(2026, 5, 10)


def test_a_stripe_line_whose_net_is_not_gross_less_fee_is_malformed():
    content = STRIPE_HEADER + "txn_1,2026-05-09 10:00:00,charge,usd,100.00,3.20,96.00,pi_1\n"
    with pytest.raises(StatementError) as info:
        parse_statement("stripe_balance", content)
    assert info.value.errors[0][0] == 2 and "net" in info.value.errors[0][1]


def test_a_stripe_customer_facing_amount_in_another_currency_is_kept_as_the_original():
    content = ("balance_transaction_id,created_utc,reporting_category,currency,gross,fee,net,payment_intent_id,"
               "customer_facing_amount,customer_facing_currency\n"
               "txn_1,2026-05-09 10:00:00,charge,usd,14.05,0.71,13.34,pi_1,100.00,cny\n")
    (line,) = parse_statement("stripe_balance", content)
    assert line.amount == Money(1405, "USD") and line.original == Money(10000, "CNY")


def test_the_stripe_api_list_is_accepted_with_the_payment_intent_from_the_expanded_source():
    doc = {"object": "list", "has_more": False, "url": "/v1/balance_transactions", "data": [
        {"id": "txn_1", "object": "balance_transaction", "amount": 10000, "fee": 320, "net": 9680,
         "currency": "usd", "created": 1778320800, "reporting_category": "charge",
         "source": {"id": "ch_1", "object": "charge", "payment_intent": "pi_1", "amount": 10000, "currency": "usd"}},
        {"id": "txn_2", "object": "balance_transaction", "amount": -10000, "fee": 0, "net": -10000,
         "currency": "usd", "created": 1778324400, "reporting_category": "refund", "source": "re_1",
         "payment_intent": "pi_1"},
        {"id": "txn_3", "object": "balance_transaction", "amount": 500, "fee": 0, "net": 500,
         "currency": "usd", "created": 1778324400, "reporting_category": "adjustment", "source": "adj_1"},
    ]}
    lines = list(parse_statement("stripe_balance", json.dumps(doc)))
    assert [(p.line, p.reference, p.kind, p.amount_minor, p.fee_minor) for p in lines] == [
        (1, "pi_1", "card_payment", 10000, 320), (2, "pi_1", "card_refund", -10000, 0),
        (3, "adj_1", "adjustment", 500, 0)]
    assert lines[0].day == date(2026, 5, 9)


def test_a_stripe_api_page_with_more_to_come_is_refused_rather_than_reported_as_breaks():
    doc = {"object": "list", "has_more": True, "data": []}
    with pytest.raises(StatementError, match="has_more"):
        parse_statement("stripe_balance", json.dumps(doc))


def test_malformed_stripe_api_items_are_reported_by_their_position():
    doc = {"object": "list", "has_more": False, "data": [
        {"id": "txn_1", "amount": 100, "fee": 0, "net": 100, "currency": "usd", "created": 1778320800,
         "reporting_category": "charge", "payment_intent": "pi_1"},
        {"id": "txn_2", "amount": "1.00", "fee": 0, "net": 100, "currency": "usd", "created": 1778320800,
         "reporting_category": "charge"},
        {"id": "txn_3", "amount": 100, "fee": 0, "net": 100, "currency": "usd", "created": "yesterday",
         "reporting_category": "charge"},
        "not an object",
    ]}
    assert bad_lines("stripe_balance", json.dumps(doc)) == [2, 3, 4]
    with pytest.raises(StatementError) as info:
        parse_statement("stripe_balance", '{"object": "list",\n "data": [}')
    assert info.value.errors[0][0] == 2


# -- M-Pesa --------------------------------------------------------------------------------------

MPESA_HEADER = "ConversationID,OriginatorConversationID,TransactionID,Amount,Currency,ResultCode,ResultDesc,PartyB,CompletedAt\n"


def test_the_mpesa_statement_of_the_sandbox_is_read_with_failed_results_counted_apart():
    content = MPESA_HEADER + (
        "AG_1,po_a,QKA1,8000,KES,0,The service request is processed successfully.,254700000001,2026-05-09T10:00:00Z\n"
        "AG_2,po_b,QKA0000000,500,KES,1,The balance is insufficient.,254700000002,2026-05-09T10:05:00Z\n"
    )
    lines = list(parse_statement("mpesa_b2c", content))
    assert [(p.reference, p.amount, p.status, p.raw_id, p.provider) for p in lines] == [
        ("po_a", Money(-800000, "KES"), SETTLED, "QKA1", "mpesa"),
        ("po_b", Money(-50000, "KES"), FAILED, "QKA0000000", "mpesa")]


def test_mpesa_result_callbacks_as_json_are_read_with_their_nairobi_completion_time():
    def result(code, originator, receipt=None, amount=None, when=None):
        body = {"ResultType": 0, "ResultCode": code, "ResultDesc": "x", "OriginatorConversationID": originator,
                "ConversationID": f"AG_{originator}", "TransactionID": receipt}
        if code == 0:
            body["ResultParameters"] = {"ResultParameter": [
                {"Key": "TransactionAmount", "Value": amount}, {"Key": "TransactionReceipt", "Value": receipt},
                {"Key": "TransactionCompletedDateTime", "Value": when}]}
        return {"Result": body}

    content = json.dumps([result(0, "po_a", "QKA1", 8000, "10.05.2026 02:30:00"), result(2001, "po_b", "QKA0")])
    lines = list(parse_statement("mpesa_b2c", content))
    assert [(p.line, p.reference, p.amount_minor, p.status) for p in lines] == [
        (1, "po_a", -800000, SETTLED), (2, "po_b", 0, FAILED)]
    assert lines[0].day == date(2026, 5, 9)  # 02:30 in Nairobi is 23:30 UTC the day before


def test_malformed_mpesa_lines_are_listed():
    content = MPESA_HEADER + (
        "AG_1,,QKA1,8000,KES,0,ok,2547,2026-05-09T10:00:00Z\n"
        "AG_2,po_b,QKA2,80.001,KES,0,ok,2547,2026-05-09T10:00:00Z\n"
        "AG_3,po_c,,100,KES,0,ok,2547,2026-05-09T10:00:00Z\n"
        "AG_4,po_d,QKA4,100,KES,zero,ok,2547,2026-05-09T10:00:00Z\n"
        "AG_5,po_e,QKA5,100,KES,0,ok,2547,2026-05-09T10:00:00Z\n"
    )
    assert bad_lines("mpesa_b2c", content) == [2, 3, 4, 5]
    assert bad_lines("mpesa_b2c", '[{"Result": {"ResultCode": 0, "OriginatorConversationID": "po_a"}}, 3]') == [1, 2]


# -- the ledger export ------------------------------------------------------------------------------

def test_the_ledger_csv_export_round_trips():
    lines = [LedgerLine("po_1", "mtn_momo", -1500, "RWF", date(2026, 5, 9), "payout", "po_1"),
             LedgerLine("pi_1", "stripe", 10000, "USD", date(2026, 5, 9), "card_payment", "tr_pi_1")]
    assert list(read_ledger_csv(write_ledger_csv(lines))) == lines


def test_a_malformed_ledger_export_lists_its_bad_lines():
    content = ("transfer_id,provider,kind,reference,amount_minor,currency,day\n"
               "t1,mtn_momo,payout,po_1,-1500,RWF,2026-05-09\n"
               "t2,mtn_momo,payout,po_2,-15.00,RWF,2026-05-09\n"
               "t3,mtn_momo,payout,,-1,RWF,2026-05-09\n"
               "t4,mtn_momo,payout,po_4,-1,RWF,09/05/2026\n")
    with pytest.raises(StatementError) as info:
        read_ledger_csv(content)
    assert [n for n, _ in info.value.errors] == [3, 4, 5]


# -- the fast paths hold to the exact rules --------------------------------------------------------

amount_text = st.one_of(
    st.from_regex(r"-?[0-9]{1,18}(\.[0-9]{1,3})?", fullmatch=True),
    st.text(alphabet="0123456789.-+_ e\u0663", min_size=0, max_size=8),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(amount_text, min_size=1, max_size=6), st.sampled_from(["USD", "RWF", "KES"]), st.booleans())
def test_fast_amount_parsing_accepts_only_what_money_parse_accepts_and_agrees_with_it(values, currency, payout):
    from chalicelib.money import exponent

    fast = fast_amounts(values, exponent(currency), positive=payout, negate=payout)
    if fast is None:
        return
    exact = [Money.parse(v, currency).minor for v in values]
    if payout:
        assert all(x > 0 for x in exact) and fast == [-x for x in exact]
    else:
        assert fast == exact


def test_fast_amount_parsing_takes_the_common_forms_itself():
    assert fast_amounts(["12.50", "0.01", "-3.00"], 2) == [1250, 1, -300]
    assert fast_amounts(["8000", "15"], 2, positive=True, negate=True) == [-800000, -1500]
    assert fast_amounts(["1500", "7"], 0) == [1500, 7]
    assert fast_amounts(["12.5"], 2) is None and fast_amounts(["1500.00"], 0) is None


day_text = st.one_of(
    st.builds(lambda d, t, z: d.isoformat() + t + z, st.dates(), st.sampled_from(["", "T10:11:12", " 23:59:59"]),
              st.sampled_from(["", "Z"])),
    st.text(alphabet="0123456789-:TZ ", max_size=21),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(day_text, min_size=1, max_size=5))
def test_fast_date_parsing_accepts_only_valid_dates_and_agrees_with_the_exact_parser(values):
    fast = fast_instant_days(values)
    if fast is None:
        return
    assert fast == [parse_instant_day(v) for v in values]
    for v in values:
        try:
            parse_instant_day(v)
        except BadLine:  # pragma: no cover - the assertion above would have failed first
            pytest.fail(f"fast path accepted {v!r}")


def test_fast_date_parsing_of_a_column_in_time_order_or_not_gives_each_line_its_day():
    stamps = [f"2026-05-{d:02d}T{h:02d}:00:00Z" for d in (1, 2, 2, 5) for h in (0, 12, 23)]
    expected = [parse_instant_day(s) for s in stamps]
    assert fast_instant_days(stamps) == expected
    assert fast_instant_days(stamps[::-1]) == expected[::-1]
    assert fast_instant_days(["2026-05-01T24:00:00Z"]) is None and fast_instant_days(["2026-05-01T09:60:00Z"]) is None
