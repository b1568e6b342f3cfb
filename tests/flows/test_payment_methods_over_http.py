"""Buyers' payment methods over HTTP on the sandbox: each method from order to settled and to refunded,
the refusals a buyer sees at checkout, and the books balanced whatever the method."""
import pytest

COFFEE_LINE = {"description": "Washed arabica, grade A1", "hs_code": "0901.11", "quantity": "1", "unit": "kg",
               "unit_price": {"amount": 1200, "currency": "USD"}}


def checkout(world, seller, method, pay_currency="CNY", *, kg="1", payer=None, buyer=None, unit_price=None):
    body = {"seller_id": seller["seller_id"], "pay_currency": pay_currency, "payment_method": method,
            "lines": [{**COFFEE_LINE, "quantity": kg, **({"unit_price": unit_price} if unit_price else {})}]}
    if payer:
        body["payer_msisdn"] = payer
    return world.post("/v1/orders", "buyer", buyer or world.buyer(), body)


def pay_with_sandbox(world, order, outcome="succeeded"):
    reply = world.http.post(f"{world.sim}/sandbox/payments/{order['payment']['payment_id']}/pay",
                            json={"outcome": outcome}, timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()


def to_settled(world, order):
    paid = world.wait_for(order["order_id"], {"paid"})
    shipped = world.ok(world.ship(paid))
    assert world.customs(shipped, "cleared").status_code == 200
    return world.wait_for(order["order_id"], {"settled"})


def to_refunded(world, order):
    paid = world.wait_for(order["order_id"], {"paid"})
    shipped = world.ok(world.ship(paid))
    assert world.customs(shipped, "rejected").status_code == 200
    return world.wait_for(order["order_id"], {"refunded"})


# -- checkout's refusals ---------------------------------------------------------------------------


def test_an_unknown_method_or_an_unknown_field_is_a_validation_error(world):
    seller = world.seller()
    unknown = checkout(world, seller, "cheque")
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "validation_error"
    body = {"seller_id": seller["seller_id"], "pay_currency": "CNY", "lines": [COFFEE_LINE], "payment_method": "card",
            "card_number": "4242424242424242"}
    extra = world.post("/v1/orders", "buyer", world.buyer(), body)
    assert extra.status_code == 400 and extra.json()["error"]["code"] == "validation_error"


def test_a_method_that_cannot_pay_the_currency_or_a_payer_of_another_rail_is_a_validation_error(world):
    seller = world.seller()
    wrong_currency = checkout(world, seller, "alipay", "RWF")
    assert wrong_currency.status_code == 400
    assert wrong_currency.json()["error"]["fields"][0]["path"] == "pay_currency"
    not_mtn = checkout(world, seller, "mtn_momo", "RWF", payer="254712345678")  # a Safaricom number
    assert not_mtn.status_code == 400 and not_mtn.json()["error"]["fields"][0]["path"] == "payer_msisdn"
    no_payer = checkout(world, seller, "mpesa", "KES")
    assert no_payer.status_code == 400 and no_payer.json()["error"]["fields"][0]["path"] == "payer_msisdn"


def test_a_container_by_card_is_limit_exceeded_naming_bank_transfer(world):
    seller = world.seller()
    refused = checkout(world, seller, "card", "USD", kg="100000")  # 1,200,000.00 USD
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "limit_exceeded" and error["methods"] == ["bank_transfer"]
    assert "bank_transfer" in error["message"]


# -- Alipay and WeChat Pay (Stripe) ----------------------------------------------------------------


def test_an_alipay_order_carries_the_redirect_and_goes_from_order_to_settled(world):
    seller = world.seller()
    order = world.ok(checkout(world, seller, "alipay"), 201)
    payment = order["payment"]
    assert payment["method"] == "alipay" and payment["provider"] == "stripe"
    assert payment["payment_id"] == payment["payment_intent_id"]
    assert payment["next_action"]["type"] == "alipay_handle_redirect"
    assert payment["next_action"]["alipay_handle_redirect"]["url"].startswith(world.sim)
    assert pay_with_sandbox(world, order)["webhook"]["status"] == 200
    done = to_settled(world, order)
    assert done["payment"]["method"] == "alipay"
    assert world.wallet(seller["payout"]["msisdn"])["balances"] == [done["payout"]]
    escrow = world.account(f"escrow:{order['order_id']}")
    assert escrow["balance"] == 0 and escrow["credits_posted"] == order["pay"]["amount"]
    assert world.trial_balance()["balanced"]


def test_a_wechat_pay_order_shows_its_qr_code_and_is_refunded_when_customs_rejects(world):
    seller = world.seller()
    order = world.ok(checkout(world, seller, "wechat_pay"), 201)
    assert order["payment"]["next_action"]["wechat_pay_display_qr_code"]["data"].startswith("weixin://")
    pay_with_sandbox(world, order)
    refunded = to_refunded(world, order)
    assert refunded["payment"]["method"] == "wechat_pay"
    refunds = world.stripe_api(f"/v1/payment_intents/{order['payment']['payment_intent_id']}")
    assert refunds["status"] == "succeeded"
    assert world.account(f"escrow:{order['order_id']}")["balance"] == 0
    assert world.trial_balance()["balanced"]


def test_a_declined_alipay_attempt_is_noted_and_the_order_can_still_be_paid(world):
    seller = world.seller()
    order = world.ok(checkout(world, seller, "alipay"), 201)
    assert pay_with_sandbox(world, order, "failed")["webhook"]["status"] == 200
    noted = world.read(order["order_id"])
    assert noted["status"] == "awaiting_payment" and noted["timeline"][-1]["status"] == "payment_failed"
    pay_with_sandbox(world, order)
    assert world.wait_for(order["order_id"], {"paid"})["status"] == "paid"


# -- bank transfer ------------------------------------------------------------------------------------


def bank_credit(world, reference, amount):
    reply = world.http.post(f"{world.sim}/sandbox/bank/credits", json={"reference": reference, "amount": amount},
                            timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_a_container_by_bank_transfer_is_not_tariff_free_and_says_where_to_pay(world):
    seller = world.seller()
    order = world.ok(checkout(world, seller, "bank_transfer", "USD", kg="100000"), 201)
    assert order["tariff_free"] is False and order["status"] == "awaiting_payment"
    bank = order["payment"]["bank_transfer"]
    assert order["payment"]["method"] == "bank_transfer" and order["payment"]["payment_id"] == bank["reference"]
    assert bank["reference"].startswith("RF") and bank["amount"] == {"amount": 120_000_000, "currency": "USD"}
    assert bank["account"]["iban"] and bank["account"]["currency"] == "USD"
    found = world.ok(world.get(f"/v1/payments/{bank['reference']}", "finance", "fin-1"))
    assert found["order_id"] == order["order_id"] and found["method"] == "bank_transfer"


def test_a_bank_transfer_order_is_paid_by_the_banks_camt054_once_and_goes_to_settled(world):
    seller = world.seller()
    order = world.ok(checkout(world, seller, "bank_transfer", "USD"), 201)
    paid = pay_with_sandbox(world, order)  # the buyer's transfer arrives: the bank notifies
    assert paid["notification"]["status"] == 200
    assert '"matched": 1' in paid["notification"]["response"].replace(" ", "").replace('"matched":1', '"matched": 1')
    again = world.http.post(f"{world.sim}/sandbox/bank/notifications/{paid['message_id']}/resend", timeout=30).json()
    assert again["status"] == 200 and '"duplicate": true' in again["response"].replace('"duplicate":true', '"duplicate": true')
    done = to_settled(world, order)
    escrow = world.account(f"escrow:{order['order_id']}")
    assert escrow["credits_posted"] == order["pay"]["amount"] and escrow["balance"] == 0
    assert done["payment"]["method"] == "bank_transfer" and world.trial_balance()["balanced"]


def test_a_lost_camt054_leaves_the_order_waiting_until_the_bank_sends_it_again(world):
    seller = world.seller()
    order = world.ok(checkout(world, seller, "bank_transfer", "EUR"), 201)
    world.http.post(f"{world.sim}/sandbox/faults/bank", json={"lose_notification": 1}, timeout=30)
    lost = pay_with_sandbox(world, order)
    assert lost["notification"]["delivered"] is False
    assert world.read(order["order_id"])["status"] == "awaiting_payment"
    world.http.post(f"{world.sim}/sandbox/bank/notifications/{lost['message_id']}/resend", timeout=30)
    assert world.wait_for(order["order_id"], {"paid"})["status"] == "paid"


def test_a_partial_bank_payment_goes_to_review_stating_the_amount_received(world):
    seller = world.seller()
    order = world.ok(checkout(world, seller, "bank_transfer", "USD", kg="100"), 201)  # 1,200.00 USD
    short = {"amount": order["pay"]["amount"] - 20_000, "currency": "USD"}
    bank_credit(world, order["payment"]["payment_id"], short)
    reviewed = world.wait_for(order["order_id"], {"manual_review"})
    assert "1,000.00 USD received in all, less than the order's" in reviewed["timeline"][-1]["detail"]
    assert world.account(f"escrow:{order['order_id']}")["balance"] == short["amount"]  # held, not lost


def test_a_bank_credit_for_no_order_is_acknowledged_and_moves_nothing(world):
    before = world.account("psp:bank:GBP")
    delivery = bank_credit(world, "RF18539007547034", {"amount": 5_000, "currency": "GBP"})["notification"]
    assert delivery["status"] == 200 and '"unmatched": 1' in delivery["response"].replace('"unmatched":1', '"unmatched": 1')
    assert world.account("psp:bank:GBP") == before


def test_a_bank_notification_with_a_bad_or_stale_signature_is_refused(world):
    from chalicelib.api.signatures import sign
    import time

    body = b"<Document/>"
    for header in (None, "t=1,v1=00", sign(body, "bank-local-secret", int(time.time()) - 3600)):
        reply = world.http.post(world.api + "/v1/webhooks/bank", data=body, timeout=30,
                                headers={"Content-Type": "application/xml", **({"Mizani-Signature": header} if header else {})})
        assert reply.status_code == 400 and reply.json()["error"]["code"] == "invalid_signature"
    signed = world.http.post(world.api + "/v1/webhooks/bank", data=body, timeout=30,
                             headers={"Content-Type": "application/xml", "Mizani-Signature": sign(body, "bank-local-secret")})
    assert signed.status_code == 400 and signed.json()["error"]["code"] == "validation_error"  # not a camt.054


def test_a_bank_transfer_refund_is_owed_until_finance_marks_it_paid(world):
    seller = world.seller()
    order = world.ok(checkout(world, seller, "bank_transfer", "USD"), 201)
    pay_with_sandbox(world, order)
    refunded = to_refunded(world, order)
    assert refunded["refund"]["status"] == "owed" and refunded["refund"]["amount"] == order["pay"]
    owed = world.ok(world.get("/v1/refunds?status=owed&limit=100", "finance", "fin-1"))["refunds"]
    assert order["order_id"] in [r["order_id"] for r in owed]
    assert world.account(f"escrow:{order['order_id']}")["balance"] == 0
    buyer_try = world.post(f"/v1/orders/{order['order_id']}/refund/paid", "buyer", order["buyer_id"],
                           {"bank_reference": "X"})
    assert buyer_try.status_code == 403
    key = "refund-paid-" + order["order_id"]
    paid = world.ok(world.post(f"/v1/orders/{order['order_id']}/refund/paid", "finance", "fin-1",
                               {"bank_reference": "MIZ-OUT-0001"}, key=key))
    replay = world.ok(world.post(f"/v1/orders/{order['order_id']}/refund/paid", "finance", "fin-1",
                                 {"bank_reference": "MIZ-OUT-0001"}, key=key))
    assert paid["refund"]["status"] == "paid" == replay["refund"]["status"]
    assert paid["refund"]["bank_reference"] == "MIZ-OUT-0001"
    owed = world.ok(world.get("/v1/refunds?status=owed&limit=100", "finance", "fin-1"))["refunds"]
    assert order["order_id"] not in [r["order_id"] for r in owed]
    assert world.trial_balance()["balanced"]


# -- mobile-money collections ------------------------------------------------------------------------

KENYAN_PAYER = "254712345678"
RWANDAN_PAYER = "250788123456"


def poll_collections(world):
    """Run the ``poll_collections`` schedule now, as EventBridge would."""
    import time as _time
    import uuid as _uuid

    world.sb.invoke("poll_collections", {
        "version": "0", "id": str(_uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime()), "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/poll_collections"], "detail": {}})


def test_a_kenyan_buyer_pays_a_rwandan_cooperative_from_mpesa_with_both_quotes_locked(world):
    seller = world.seller()
    order = world.ok(checkout(world, seller, "mpesa", "KES", kg="100", payer=KENYAN_PAYER), 201)
    assert order["pay"]["currency"] == "KES" and order["payout"]["currency"] == "RWF"
    assert order["pay"]["amount"] % 100 == 0  # STK push collects whole KES: rounded up
    assert order["quotes"]["pay"] and order["quotes"]["payout"]
    assert order["payment"] == {**order["payment"], "method": "mpesa", "provider": "mpesa",
                                "payer_msisdn": KENYAN_PAYER}
    assert pay_with_sandbox(world, order)["state"] == "completed"  # the buyer enters the PIN
    done = to_settled(world, order)
    assert world.account(f"escrow:{order['order_id']}")["credits_posted"] == order["pay"]["amount"]
    assert world.wallet(seller["payout"]["msisdn"])["balances"] == [done["payout"]]
    assert world.trial_balance()["balanced"]


def test_an_mtn_momo_order_is_refunded_to_the_payers_wallet_when_customs_rejects(world):
    seller = world.seller()
    order = world.ok(checkout(world, seller, "mtn_momo", "RWF", payer=RWANDAN_PAYER), 201)
    assert order["payment"]["method"] == "mtn_momo" and order["payment"]["payment_id"].startswith("MZ")
    pay_with_sandbox(world, order)
    refunded = to_refunded(world, order)
    assert refunded["refund"]["status"] == "succeeded"
    wallet = world.sim_get(f"/sandbox/momo_collection/wallets/{RWANDAN_PAYER}")
    assert {"amount": 0, "currency": "RWF"} in wallet["paid"] or wallet["paid"] == []
    assert world.account(f"escrow:{order['order_id']}")["balance"] == 0
    assert world.trial_balance()["balanced"]


def test_an_mpesa_order_is_reversed_when_customs_rejects(world):
    seller = world.seller()
    order = world.ok(checkout(world, seller, "mpesa", "KES", payer=KENYAN_PAYER), 201)
    pay_with_sandbox(world, order)
    refunded = to_refunded(world, order)
    assert refunded["refund"]["status"] == "succeeded"
    assert world.account(f"escrow:{order['order_id']}")["balance"] == 0 and world.trial_balance()["balanced"]


def test_a_declined_collection_is_noted_and_nothing_is_in_escrow(world):
    seller = world.seller()
    order = world.ok(checkout(world, seller, "mtn_momo", "RWF", payer="46733123451"), 201)  # rejects
    poll_collections(world)
    noted = world.read(order["order_id"])
    assert noted["status"] == "awaiting_payment" and "APPROVAL_REJECTED" in noted["timeline"][-1]["detail"]
    assert world.get(f"/v1/ledger/accounts/escrow:{order['order_id']}", "finance", "fin-1").status_code == 404


def test_a_collection_whose_callback_was_lost_is_paid_once_by_the_poll(world):
    seller = world.seller()
    world.http.post(f"{world.sim}/sandbox/faults/momo_collection", json={"lose_callback": 1}, timeout=30)
    order = world.ok(checkout(world, seller, "mtn_momo", "RWF", payer=RWANDAN_PAYER), 201)
    pay_with_sandbox(world, order)
    assert world.read(order["order_id"])["status"] == "awaiting_payment"
    poll_collections(world)
    poll_collections(world)
    assert world.wait_for(order["order_id"], {"paid"})["status"] == "paid"
    escrow = world.account(f"escrow:{order['order_id']}")
    assert escrow["credits_posted"] == order["pay"]["amount"]


def test_a_collection_callback_for_an_unknown_reference_or_with_a_wrong_token_is_acknowledged(world):
    for path in ("/v1/webhooks/collections/mpesa/MZNOSUCHREF0/" + "0" * 32,
                 "/v1/webhooks/collections/mtn_momo/MZNOSUCHREF0/" + "0" * 32):
        reply = world.http.post(world.api + path, json={"Body": {"stkCallback": {"ResultCode": 0}}}, timeout=30)
        assert reply.status_code == 200 and reply.json() == {"received": True, "duplicate": True}
    unknown_rail = world.http.post(world.api + "/v1/webhooks/collections/airtel_money/MZ1/" + "0" * 32, json={}, timeout=30)
    assert unknown_rail.status_code == 404
