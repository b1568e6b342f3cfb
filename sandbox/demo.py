"""The coffee story, end to end over HTTP against the embedded sandbox (``make demo``).

A Rwandan co-operative registers with an MTN MoMo number; a buyer in China orders
100 kg of washed arabica at 12.00 USD/kg and pays in CNY with Alipay; the seller ships;
customs clears; the escrow is released at the locked rate and the farmers' wallet is
paid in RWF (split to fit MTN's per-transaction limit), with SMS along the way. A
second order is rejected by customs and refunded. Then the story is told from the
farmers' side: the co-operative registers three members (one on Airtel Money) and
allocates a third order by kilograms delivered; each farmer is paid their share and
texted; one farmer's wallet refuses the transfer, so her share waits in her Mizani
balance, and she dials the USSD code on a basic phone, checks it and withdraws with her
PIN. Buyers then pay the way they pay at home: a roastery in Nairobi pays the Rwandan
co-operative from M-Pesa (KES in, RWF out), and a 1,200,000 USD container, too large for a
card and not tariff-free, is paid by bank transfer (the bank's camt.054 matched on the order's
reference). A buyer disputes a card payment before release and the bank rules for the seller on
the shipping and customs evidence; a new seller's name is a sanctions hit an admin clears. Finance
then reconciles the providers' statements against the ledger. Everything runs on 127.0.0.1.
"""
from __future__ import annotations

import json
import sys
import time
import uuid

import requests

from chalicelib.api.signatures import sign
from sandbox.token import mint

COOP_WALLET = "250788123456"  # an ordinary number: the MTN simulator pays it
SELLER_ID = "coop-kivu-hills"
BUYER_ID = "buyer-shanghai-roasters"
KENYA_SELLER_ID = "coop-kericho-tea"
KENYA_WALLET = "254712345678"  # an ordinary number: the M-Pesa simulator pays it
UGANDA_SELLER_ID = "coop-bugisu-arabica"
UGANDA_WALLET = "256701234567"  # an ordinary Airtel Uganda number: the Airtel simulator pays it
AIRTEL_INACTIVE = "250730000001"  # Airtel's sandbox number for an inactive wallet (API.md)
TERMINAL = {"settled", "refunded", "payout_failed", "manual_review"}


class Client:
    def __init__(self, base: str, sandbox: str, env: dict):
        self.base, self.sandbox, self.env = base, sandbox, env
        self.http = requests.Session()

    def call(self, method: str, path: str, role: str, sub: str, body=None, expect=(200, 201)):
        headers = {"Authorization": f"Bearer {mint(role, sub)}"}
        if method == "POST":
            headers["Idempotency-Key"] = str(uuid.uuid4())
        reply = self.http.request(method, self.base + path, json=body, headers=headers, timeout=30)
        if reply.status_code not in expect:
            raise SystemExit(f"{method} {path} answered {reply.status_code}: {reply.text}")
        return reply.json()

    def customs(self, order: dict, status: str, event_id: str) -> int:
        body = json.dumps({
            "event_id": event_id, "order_id": order["order_id"], "status": status, "office": "Kigali Airport",
            "customs_declaration_ref": order["shipment"]["customs_declaration_ref"],
            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }).encode()
        secret = self.env.get("MIZANI_CUSTOMS_SECRET", "customs-local-secret")
        reply = self.http.post(self.base + "/v1/webhooks/customs", data=body, timeout=30,
                               headers={"Content-Type": "application/json", "Mizani-Signature": sign(body, secret)})
        return reply.status_code

    def wait_for(self, order_id: str, statuses: set[str], timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            order = self.call("GET", f"/v1/orders/{order_id}", "admin", "ops")
            if order["status"] in statuses or time.monotonic() > deadline:
                return order
            time.sleep(0.25)


def money(m: dict) -> str:
    from chalicelib.money import Money

    return Money(m["amount"], m["currency"]).format()


def show_timeline(order: dict) -> None:
    print(f"  order {order['order_id']}: {order['status']}")
    for entry in order["timeline"]:
        detail = f"  {entry['detail']}" if entry.get("detail") else ""
        print(f"    {entry['at'][11:19]}  {entry['status']:<18}{detail}")


def tell(api_url: str, sandbox_url: str, env: dict) -> bool:
    c = Client(api_url, sandbox_url, env)
    started = time.monotonic()
    print("\n1. A coffee co-operative in Rwanda registers, to be paid in RWF on MTN MoMo")
    seller = c.call("POST", "/v1/sellers", "seller", SELLER_ID, {
        "name": "Kivu Hills Coffee Co-operative", "country": "RW",
        "payout": {"rail": "mtn_momo", "msisdn": COOP_WALLET, "currency": "RWF"}})
    print(f"   seller {seller['seller_id']}, wallet +{seller['payout']['msisdn']}")

    print("\n2. A roaster in Shanghai checks the price: 1,200.00 USD of coffee, paid in CNY")
    quote = c.call("POST", "/v1/fx/quotes", "buyer", BUYER_ID,
                   {"from_currency": "CNY", "to_currency": "USD", "to_amount": 120000})
    print(f"   quote {quote['quote_id']}: pay {money(quote['from'])} for {money(quote['to'])} "
          f"(rate {quote['rate']}, mid {quote['mid_rate']}, spread {quote['spread_bps']} bps, until {quote['expires_at']})")

    lines = [{"description": "Washed arabica, fully washed, grade A1", "hs_code": "0901.11", "quantity": "100",
              "unit": "kg", "unit_price": {"amount": 1200, "currency": "USD"}}]
    order = c.call("POST", "/v1/orders", "buyer", BUYER_ID, {"seller_id": SELLER_ID, "pay_currency": "CNY", "lines": lines,
                                                             "payment_method": "alipay"})
    print(f"\n3. Order {order['order_id']}: total {money(order['total'])}, the buyer pays {money(order['pay'])}, "
          f"fee {money(order['fee'])}")
    print(f"   the seller is guaranteed {money(order['payout'])}; tariff-free under eWTP: {order['tariff_free']}")

    print("\n4. The buyer pays with Alipay (a Stripe PaymentIntent); the signed webhook moves the money into escrow")
    redirect = order["payment"]["next_action"]["alipay_handle_redirect"]
    print(f"   {order['payment']['next_action']['type']}: the buyer's app opens {redirect['url']}")
    paid = requests.post(f"{sandbox_url}/sandbox/payments/{order['payment']['payment_id']}/pay",
                         json={"outcome": "succeeded"}, timeout=30)
    print(f"   Alipay payment: {paid.status_code}; order is {c.wait_for(order['order_id'], {'paid'})['status']}")

    print("\n5. The co-operative ships and declares the coffee to customs")
    shipped = c.call("POST", f"/v1/orders/{order['order_id']}/shipment", "seller", SELLER_ID,
                     {"carrier": "Ethiopian Cargo", "tracking_number": "ET-071-88231405", "customs_declaration_ref": "RW-KGL-2026-118204"})
    print(f"   order is {shipped['status']}")

    print("\n6. Customs clears the shipment (signed webhook); Step Functions releases and pays out")
    print(f"   customs webhook: {c.customs(shipped, 'cleared', 'cust-' + uuid.uuid4().hex[:10])}")
    done = c.wait_for(order["order_id"], TERMINAL)
    show_timeline(done)

    balance = c.call("GET", f"/v1/sellers/{SELLER_ID}/balance", "seller", SELLER_ID)
    payouts = c.call("GET", f"/v1/sellers/{SELLER_ID}/payouts", "seller", SELLER_ID)["payouts"]
    wallet = requests.get(f"{sandbox_url}/sandbox/wallets/{COOP_WALLET}", timeout=10).json()
    print(f"\n7. The farmers' wallet: {json.dumps(wallet.get('balances', wallet))}")
    for p in payouts:
        print(f"   payout {p['payout_id']}: {money(p['amount'])} {p['status']} (MTN {p['provider_reference']})")
    print(f"   Mizani balance: available {money(balance['available'])}, paying out {money(balance['payout_pending'])}")
    sms = requests.get(f"{sandbox_url}/sandbox/sms", timeout=10).json()["messages"]
    print("   SMS received:")
    for m in sms:
        print(f"     {m['to']}: {m['message']}")

    print("\n8. A second order is rejected by customs: the buyer is refunded")
    order2 = c.call("POST", "/v1/orders", "buyer", BUYER_ID, {"seller_id": SELLER_ID, "pay_currency": "CNY", "lines": lines})
    requests.post(f"{sandbox_url}/sandbox/payments/{order2['payment']['payment_intent_id']}/pay", json={"outcome": "succeeded"}, timeout=30)
    c.wait_for(order2["order_id"], {"paid"})
    shipped2 = c.call("POST", f"/v1/orders/{order2['order_id']}/shipment", "seller", SELLER_ID,
                      {"carrier": "Ethiopian Cargo", "tracking_number": "ET-071-88231406", "customs_declaration_ref": "RW-KGL-2026-118205"})
    print(f"   customs webhook (rejected): {c.customs(shipped2, 'rejected', 'cust-' + uuid.uuid4().hex[:10])}")
    show_timeline(c.wait_for(order2["order_id"], TERMINAL))

    print("\n9. A tea co-operative in Kenya sells to the same buyer and is paid in KES on M-Pesa")
    c.call("POST", "/v1/sellers", "seller", KENYA_SELLER_ID, {
        "name": "Kericho Highlands Tea Growers", "country": "KE",
        "payout": {"rail": "mpesa", "msisdn": KENYA_WALLET, "currency": "KES"}})
    tea = [{"description": "Black tea, CTC grade BP1", "hs_code": "0902.40", "quantity": "250", "unit": "kg",
            "unit_price": {"amount": 450, "currency": "USD"}}]
    order3, done3 = sell_and_clear(c, sandbox_url, KENYA_SELLER_ID, tea,
                                   {"carrier": "Kenya Airways Cargo", "tracking_number": "KQ-706-4410",
                                    "customs_declaration_ref": "KE-MBA-2026-99120"})
    mpesa_wallet = requests.get(f"{sandbox_url}/sandbox/wallets/mpesa/{KENYA_WALLET}", timeout=10).json()
    print(f"   the growers' M-Pesa wallet: {json.dumps(mpesa_wallet.get('balances', mpesa_wallet))}")

    print("\n10. A co-operative on Mount Elgon, Uganda, is paid in UGX on Airtel Money")
    refused = c.call("POST", "/v1/sellers", "seller", "coop-inactive-wallet", {
        "name": "Musanze Highland Growers", "country": "RW",
        "payout": {"rail": "airtel_money", "msisdn": AIRTEL_INACTIVE, "currency": "RWF"}}, expect=(422,))
    print(f"   first, a registration with an inactive Airtel wallet ({AIRTEL_INACTIVE}): 422 {refused['error']['code']}"
          f" ({refused['error']['message']})")
    requests.post(f"{sandbox_url}/sandbox/wallets/airtel_money/{UGANDA_WALLET}",
                  json={"name": "Bugisu Arabica Farmers Cooperative"}, timeout=10)
    ug = c.call("POST", "/v1/sellers", "seller", UGANDA_SELLER_ID, {
        "name": "Bugisu Arabica Farmers Co-operative", "country": "UG",
        "payout": {"rail": "airtel_money", "msisdn": UGANDA_WALLET, "currency": "UGX"}})
    print(f"   {ug['name']} registered: {ug['status']}; Airtel's KYC says the wallet is "
          f"{ug['name_check']['provider_name']!r} (name score {ug['name_check']['score']})")
    arabica = [{"description": "Bugisu AA washed arabica", "hs_code": "0901.11", "quantity": "60", "unit": "kg",
                "unit_price": {"amount": 1100, "currency": "USD"}}]
    order4, done4 = sell_and_clear(c, sandbox_url, UGANDA_SELLER_ID, arabica,
                                   {"carrier": "Uganda Airlines Cargo", "tracking_number": "UR-416-2207",
                                    "customs_declaration_ref": "UG-EBB-2026-40411"})
    airtel_wallet = requests.get(f"{sandbox_url}/sandbox/wallets/airtel_money/{UGANDA_WALLET}", timeout=10).json()
    print(f"   the farmers' Airtel Money wallet: {json.dumps(airtel_wallet.get('balances', airtel_wallet))}")
    for p in c.call("GET", f"/v1/sellers/{UGANDA_SELLER_ID}/payouts", "seller", UGANDA_SELLER_ID)["payouts"]:
        print(f"   payout {p['payout_id']}: {money(p['amount'])} {p['status']} (Airtel {p['provider_reference']})")

    farmers_ok = farmers(c, sandbox_url)
    methods_ok = buyers_methods(c, sandbox_url, lines)
    trust_ok = trust(c, sandbox_url, lines)

    tb = c.call("GET", "/v1/ledger/trial-balance", "finance", "fin-1")
    print("\n14. Trial balance (finance)")
    for cur, row in tb["currencies"].items():
        if not (row["debits"] or row["credits"]):
            continue
        print(f"   {cur}: debits {row['debits']:>14,}  credits {row['credits']:>14,}")
    print(f"   balanced: {tb['balanced']}")

    ok = (done["status"] == "settled" and done3["status"] == "settled" and done4["status"] == "settled"
          and refused["error"]["code"] == "payee_invalid" and tb["balanced"] and farmers_ok and methods_ok
          and trust_ok)
    recon_ok = reconcile(c, sandbox_url)
    print(f"\nThe story took {time.monotonic() - started:.1f} s.")
    return ok and recon_ok


def sell_and_clear(c: Client, sandbox_url: str, seller_id: str, lines: list, shipment: dict) -> tuple[dict, dict]:
    """The buyer orders and pays by card, the seller ships, customs clears: (the order, its final state)."""
    order = c.call("POST", "/v1/orders", "buyer", BUYER_ID, {"seller_id": seller_id, "pay_currency": "CNY", "lines": lines})
    requests.post(f"{sandbox_url}/sandbox/payments/{order['payment']['payment_intent_id']}/pay",
                  json={"outcome": "succeeded"}, timeout=30)
    c.wait_for(order["order_id"], {"paid"})
    shipped = c.call("POST", f"/v1/orders/{order['order_id']}/shipment", "seller", seller_id, shipment)
    c.customs(shipped, "cleared", "cust-" + uuid.uuid4().hex[:10])
    done = c.wait_for(order["order_id"], TERMINAL)
    print(f"   order {order['order_id']}: {money(order['total'])} -> {money(order['payout'])} guaranteed; now {done['status']}")
    return order, done


#: The Kivu Hills farmers: (name, rail, wallet, kilograms delivered to the third order).
FARMERS = (
    ("Mukamana Claudine", "mtn_momo", "250788410001", 50),
    ("Habimana Jean-Baptiste", "mtn_momo", "250788410002", 30),
    ("Uwimana Francoise", "airtel_money", "250731410003", 20),
)
RETAIN_BPS = 200  # the co-operative keeps 2% for washing-station costs


def farmers(c: Client, sandbox_url: str) -> bool:
    """The farmers' side: members, an allocation by kilograms, each paid and texted, then USSD."""
    print("\n11. The farmers of Kivu Hills: three members, each paid to their own wallet")
    members = []
    for name, rail, msisdn, _ in FARMERS:
        m = c.call("POST", f"/v1/sellers/{SELLER_ID}/members", "seller", SELLER_ID,
                   {"name": name, "payout": {"rail": rail, "msisdn": msisdn, "currency": "RWF"}})
        members.append(m)
        print(f"   member {m['member_id']}: {m['name']:<24} {rail:<13} +{msisdn}  {m['status']}")
    lines = [{"description": "Washed arabica, grade A1", "hs_code": "0901.11", "quantity": "100", "unit": "kg",
              "unit_price": {"amount": 1000, "currency": "USD"}}]
    order = c.call("POST", "/v1/orders", "buyer", BUYER_ID, {"seller_id": SELLER_ID, "pay_currency": "CNY", "lines": lines})
    requests.post(f"{sandbox_url}/sandbox/payments/{order['payment']['payment_intent_id']}/pay",
                  json={"outcome": "succeeded"}, timeout=30)
    c.wait_for(order["order_id"], {"paid"})
    shares = [{"member_id": m["member_id"], "quantity": kg} for m, (_, _, _, kg) in zip(members, FARMERS)]
    allocation = c.call("PUT", f"/v1/orders/{order['order_id']}/allocation", "seller", SELLER_ID,
                        {"shares": shares, "retain_bps": RETAIN_BPS})
    print(f"   order {order['order_id']}: {money(order['payout'])} guaranteed, allocated by kilograms delivered:")
    for m, share in zip(members, allocation["shares"]):
        print(f"     {m['name']:<24} {share['quantity']:>3} kg  {money(share['amount']):>14}")
    print(f"     {'kept by the co-operative':<24} {RETAIN_BPS // 100:>2} %   {money(allocation['retained']):>14}")
    # Claudine's wallet is at its balance limit: MTN refuses the next transfer (a sandbox switch).
    claudine = members[0]["payout"]["msisdn"]
    requests.post(f"{sandbox_url}/sandbox/wallets/mtn_momo/{claudine}/refuse", json={"transfers": 1}, timeout=10)
    shipped = c.call("POST", f"/v1/orders/{order['order_id']}/shipment", "seller", SELLER_ID,
                     {"carrier": "Ethiopian Cargo", "tracking_number": "ET-071-88231499", "customs_declaration_ref": "RW-KGL-2026-118299"})
    c.customs(shipped, "cleared", "cust-" + uuid.uuid4().hex[:10])
    done = c.wait_for(order["order_id"], TERMINAL)
    print(f"   customs cleared; the order is {done['status']} ({done['timeline'][-1].get('detail', '')})")
    sms = requests.get(f"{sandbox_url}/sandbox/sms", timeout=10).json()["messages"]
    for m, (name, rail, msisdn, _) in zip(members, FARMERS):
        wallet = requests.get(f"{sandbox_url}/sandbox/wallets/{rail}/{msisdn}", timeout=10).json()
        got = sum(b["amount"] for b in wallet["balances"] if b["currency"] == "RWF")
        texts = [t["message"] for t in sms if t["to"] == "+" + msisdn]
        print(f"   {name:<24} wallet received {got:>10,} RWF; SMS: {texts[-1] if texts else '-'}")
    from sandbox.ussd_phone import DEFAULT_CODE

    print(f"\n   {FARMERS[0][0]} dials {DEFAULT_CODE} on a basic phone (Africa's Talking's USSD callback):")
    pin = "4071"
    dial(c.base, claudine, [pin, pin, "1"], secret={0, 1})  # first use: choose a PIN twice; then Balance
    available = c.call("GET", f"/v1/sellers/{SELLER_ID}/members/{members[0]['member_id']}", "seller", SELLER_ID)
    amount = available["balance"]["available"]["amount"]
    dial(c.base, claudine, ["3", str(amount), pin], secret={2})  # Withdraw: the amount, then the PIN
    after = c.call("GET", f"/v1/sellers/{SELLER_ID}/members/{members[0]['member_id']}", "seller", SELLER_ID)
    wallet = requests.get(f"{sandbox_url}/sandbox/wallets/mtn_momo/{claudine}", timeout=10).json()
    got = sum(b["amount"] for b in wallet["balances"] if b["currency"] == "RWF")
    print(f"   her wallet has now received {got:,} RWF; her Mizani balance is {money(after['balance']['available'])}")
    expected = allocation["shares"][0]["amount"]["amount"]
    others = all(
        sum(b["amount"] for b in requests.get(f"{sandbox_url}/sandbox/wallets/{rail}/{msisdn}", timeout=10).json()["balances"])
        == share["amount"]["amount"] for (_, rail, msisdn, _), share in zip(FARMERS[1:], allocation["shares"][1:]))
    return amount == expected and got == expected and others and after["balance"]["available"]["amount"] == 0


def dial(api_url: str, msisdn: str, inputs: list[str], secret: set[int]) -> str:
    """One USSD session as the gateway runs it (a new sessionId, the inputs so far joined by ``*``),
    each screen printed as the phone shows it and each key press after it (a PIN as ****)."""
    import io

    from sandbox.ussd_phone import DEFAULT_CODE, post, show

    session_id = f"ATUid_{uuid.uuid4().hex[:16]}"
    for typed in range(len(inputs) + 1):
        answer = post(api_url, session_id, "+" + msisdn, DEFAULT_CODE, inputs[:typed])
        screen = io.StringIO()
        show(answer, screen)
        print("     " + screen.getvalue().rstrip("\n").replace("\n", "\n     "))
        if not answer.startswith("CON ") or typed == len(inputs):
            return answer
        print(f"     > {'*' * len(inputs[typed]) if typed in secret else inputs[typed]}")
    return answer


KENYAN_BUYER_ID = "buyer-nairobi-roastery"
KENYAN_PAYER = "254722410011"  # a Safaricom number: the STK push simulator prompts it


def buyers_methods(c: Client, sandbox_url: str, lines: list) -> bool:
    """Buyers pay the way they pay at home: a Kenyan roastery from M-Pesa (KES in, RWF out, both quotes
    locked at checkout), and a container too large for a card, by bank transfer."""
    print("\n12. A roastery in Nairobi buys from Kivu Hills and pays from M-Pesa, in KES")
    order = c.call("POST", "/v1/orders", "buyer", KENYAN_BUYER_ID, {
        "seller_id": SELLER_ID, "pay_currency": "KES", "lines": lines, "payment_method": "mpesa",
        "payer_msisdn": KENYAN_PAYER})
    print(f"   order {order['order_id']}: the buyer pays {money(order['pay'])} (whole KES, rounded up); the co-operative "
          f"is guaranteed {money(order['payout'])}; quotes {order['quotes']['pay']} and {order['quotes']['payout']}")
    print(f"   an STK push ({order['payment']['payment_id']}) waits on +{KENYAN_PAYER}; the buyer enters the PIN")
    requests.post(f"{sandbox_url}/sandbox/payments/{order['payment']['payment_id']}/pay", json={"outcome": "succeeded"},
                  timeout=30)
    c.wait_for(order["order_id"], {"paid"})
    shipped = c.call("POST", f"/v1/orders/{order['order_id']}/shipment", "seller", SELLER_ID,
                     {"carrier": "RwandAir Cargo", "tracking_number": "WB-459-1207", "customs_declaration_ref": "RW-KGL-2026-118300"})
    c.customs(shipped, "cleared", "cust-" + uuid.uuid4().hex[:10])
    kenyan = c.wait_for(order["order_id"], TERMINAL)
    show_timeline(kenyan)

    container = [{**lines[0], "description": "Washed arabica, one 40-foot container", "quantity": "100000"}]
    print("\n   The Shanghai roaster orders a container: 100,000 kg, 1,200,000.00 USD")
    by_card = c.call("POST", "/v1/orders", "buyer", BUYER_ID, {"seller_id": SELLER_ID, "pay_currency": "USD",
                                                                "lines": container}, expect=(422,))["error"]
    print(f"   by card: 422 {by_card['code']}: {by_card['message']}")
    big = c.call("POST", "/v1/orders", "buyer", BUYER_ID, {"seller_id": SELLER_ID, "pay_currency": "USD",
                                                            "lines": container, "payment_method": "bank_transfer"})
    bank = big["payment"]["bank_transfer"]
    print(f"   by bank transfer: order {big['order_id']}, {money(big['pay'])}, tariff-free under eWTP: {big['tariff_free']}")
    print(f"   pay to {bank['account']['holder']}, IBAN {bank['account']['iban']} ({bank['account']['bank']}), "
          f"quoting reference {bank['reference']}")
    arrived = requests.post(f"{sandbox_url}/sandbox/payments/{bank['reference']}/pay", json={"outcome": "succeeded"},
                            timeout=30).json()
    held = c.wait_for(big["order_id"], {"paid"})
    print(f"   the bank's camt.054 ({arrived['message_id']}, entry {arrived['entry']}) matched the reference: order is "
          f"{held['status']}, {money(held['pay'])} held in escrow until customs clears the container")
    return kenyan["status"] == "settled" and by_card["methods"] == ["bank_transfer"] and not big["tariff_free"] \
        and held["status"] == "paid"


GUANGZHOU_BUYER_ID = "buyer-guangzhou-cafe"
HUYE_SELLER_ID = "coop-huye-mountain"  # its own wallet: Kivu Hills' has had its day's MTN limit by now
HIT_SELLER_ID = "coop-new-applicant"


def trust(c: Client, sandbox_url: str, lines: list) -> bool:
    """A card dispute before release, won with the shipping and customs evidence; a new seller whose name
    is a sanctions hit (the local stage's SAMPLE list), cleared by an admin."""
    print("\n13. Trust: a buyer in Guangzhou disputes a card payment; a new seller's name is a sanctions hit")
    huye = c.call("POST", "/v1/sellers", "seller", HUYE_SELLER_ID, {
        "name": "Huye Mountain Coffee", "country": "RW",
        "payout": {"rail": "mtn_momo", "msisdn": "25078" + str(uuid.uuid4().int % 10**7).zfill(7), "currency": "RWF"}})
    order = c.call("POST", "/v1/orders", "buyer", GUANGZHOU_BUYER_ID,
                   {"seller_id": huye["seller_id"], "pay_currency": "CNY", "lines": lines})
    pi = order["payment"]["payment_intent_id"]
    requests.post(f"{sandbox_url}/sandbox/payments/{pi}/pay", json={"outcome": "succeeded"}, timeout=30)
    c.wait_for(order["order_id"], {"paid"})
    shipped = c.call("POST", f"/v1/orders/{order['order_id']}/shipment", "seller", huye["seller_id"],
                     {"carrier": "Ethiopian Cargo", "tracking_number": "ET-071-88240311",
                      "customs_declaration_ref": "RW-KGL-2026-118301"})
    opened = requests.post(f"{sandbox_url}/sandbox/payments/{pi}/dispute", json={"reason": "product_not_received"},
                           timeout=30).json()
    dispute_id = opened["dispute_id"]
    held = c.wait_for(order["order_id"], {"disputed"})
    at_stripe = requests.get(f"{sandbox_url}/sandbox/disputes/{dispute_id}", timeout=10).json()
    evidence = at_stripe["evidence"]
    print(f"   {huye['name']} sells to a café in Guangzhou: order {order['order_id']} ({money(order['pay'])}); "
          f"the bank opened dispute {dispute_id} "
          f"({at_stripe['reason']}); the order is {held['status']}, {money(order['pay'])} withdrawn by the card network")
    print(f"   evidence sent to Stripe at once ({at_stripe['status']}): {evidence['shipping_carrier']} "
          f"{evidence['shipping_tracking_number']}, shipped {evidence['shipping_date']}")
    c.customs(shipped, "cleared", "cust-" + uuid.uuid4().hex[:10])
    print("   customs clears the shipment: recorded, but nothing is released while the dispute is open")
    requests.post(f"{sandbox_url}/sandbox/disputes/{dispute_id}/close", json={"outcome": "won"}, timeout=30)
    done = c.wait_for(order["order_id"], TERMINAL, timeout=180)
    dispute = c.call("GET", f"/v1/disputes/{dispute_id}", "finance", "fin-1")
    print(f"   the bank rules for the seller: dispute {dispute['status']}, the money reinstated; the order is "
          f"{done['status']} ({money(done['payout'])} to the co-operative's wallet)")

    msisdn = "25078" + str(uuid.uuid4().int % 10**7).zfill(7)
    seller = c.call("POST", "/v1/sellers", "seller", HIT_SELLER_ID, {
        "name": "Sanctioned Test Person", "country": "RW",
        "payout": {"rail": "mtn_momo", "msisdn": msisdn, "currency": "RWF"}})
    case = c.call("GET", f"/v1/screening/cases/{seller['screening']['case_id']}", "admin", "ops")
    match = case["matches"][0]
    print(f"   seller {seller['seller_id']} registers as {seller['name']!r}: {seller['status']}, case {case['case_id']} "
          f"({match['list']} {match['entry_id']} {match['name']!r}, score {match['score']}, lists {case['list_version']})")
    decided = c.call("POST", f"/v1/screening/cases/{case['case_id']}/decision", "admin", "ops",
                     {"decision": "clear", "note": "the sample entry: the applicant's documents were checked"})
    after = c.call("GET", f"/v1/sellers/{seller['seller_id']}", "admin", "ops")
    print(f"   an admin clears it ({decided['status']}): the seller is {after['status']} and can be paid")
    return done["status"] == "settled" and dispute["status"] == "won" and dispute["evidence_submitted"] \
        and seller["status"] == "pending_review" and after["status"] == "active"


def reconcile(c: Client, sandbox_url: str) -> bool:
    """Finance reconciles each provider's statement against the ledger, then a doctored one."""
    print("\n15. Finance reconciles the providers' statements against the ledger")
    clean = True
    for source in ("stripe_balance", "mtn_momo", "mpesa_b2c", "airtel_money", "mpesa_c2b", "camt053"):
        statement = requests.get(f"{sandbox_url}/sandbox/statements/{source}", timeout=10).text
        rec = c.call("POST", "/v1/reconciliations", "finance", "fin-1", {"source": source, "content": statement})
        s = rec["summary"]
        print(f"   {source:<15} lines {s['lines']:>3}  matched {s['matched']:>3}  breaks "
              f"{s['amount_mismatch'] + s['missing_in_ledger'] + s['missing_at_provider'] + s['duplicate']}")
        clean = clean and not rec["breaks"]
    statement = requests.get(f"{sandbox_url}/sandbox/statements/mtn_momo", timeout=10).text.splitlines()
    header, first = statement[0], statement[1].split(",")
    amount_col = header.split(",").index("amount")
    first[amount_col] = str(int(first[amount_col]) - 1000)  # one payout reported 1,000 RWF short
    doctored = "\n".join([header, ",".join(first)] + statement[2:]) + "\n"
    rec = c.call("POST", "/v1/reconciliations", "finance", "fin-1", {"source": "mtn_momo", "content": doctored})
    print("   a doctored MTN statement (one payout 1,000 RWF short):")
    for b in rec["breaks"]:
        ledger_amount = money(b["ledger_amount"]) if b["ledger_amount"] else "-"
        provider_amount = money(b["provider_amount"]) if b["provider_amount"] else "-"
        print(f"     line {b['line']}: {b['reference']} {b['outcome']}: ledger {ledger_amount}, MTN says {provider_amount}")
    return clean and len(rec["breaks"]) == 1 and rec["breaks"][0]["outcome"] == "amount_mismatch"


def main() -> int:
    import logging
    import os

    from sandbox.run import Sandbox

    # The story, not the logs: the access lines, and the warnings the story causes on purpose (a
    # sanctions hit is a WARNING of mizani.screening; a disputed order's release task raising
    # OrderDisputed is one of the sandbox's Lambda dispatcher). Errors still show.
    os.environ.setdefault("MIZANI_LOG_LEVEL", "ERROR")
    logging.getLogger("sandbox.aws").setLevel(logging.ERROR)

    print("Starting the embedded sandbox (moto: DynamoDB + Step Functions; Stripe, MTN MoMo, M-Pesa, Airtel Money, SMS simulators)...")
    with Sandbox() as world:
        print(world.describe())
        ok = tell(world.api_url, world.sandbox_url, world.env)
    print("\nDemo", "complete: the coffee order settled, the ledger balances." if ok else "FAILED: see above.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
