"""Finance reconciles each new payment method's statement against the ledger on a fresh sandbox: the
MTN MoMo Collection account, the M-Pesa paybill, the bank's camt.053 and Stripe's balance (Alipay) with
zero breaks, then each statement with one injected break, which is found."""
import re
import time

import pytest

LINE = {"description": "Washed arabica, grade A1", "hs_code": "0901.11", "quantity": "10", "unit": "kg",
        "unit_price": {"amount": 1200, "currency": "USD"}}


def _world(sandbox_holder):
    import importlib.util
    import pathlib

    spec = importlib.util.spec_from_file_location("flows_conftest", pathlib.Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.World(sandbox_holder.get())


@pytest.fixture(scope="module")
def world(sandbox_holder):
    sandbox_holder.stop()  # a fresh sandbox: its providers' statements hold this module's payments only
    w = _world(sandbox_holder)
    yield w
    w.http.close()


def order(world, method, currency, payer=None):
    seller = world.seller()
    body = {"seller_id": seller["seller_id"], "pay_currency": currency, "payment_method": method, "lines": [LINE]}
    if payer:
        body["payer_msisdn"] = payer
    created = world.ok(world.post("/v1/orders", "buyer", world.buyer(), body), 201)
    reply = world.http.post(f"{world.sim}/sandbox/payments/{created['payment']['payment_id']}/pay",
                            json={"outcome": "succeeded"}, timeout=30)
    assert reply.status_code == 200, reply.text
    return world.wait_for(created["order_id"], {"paid"})


def refund_by_customs(world, paid):
    shipped = world.ok(world.ship(paid))
    assert world.customs(shipped, "rejected").status_code == 200
    return world.wait_for(paid["order_id"], {"refunded"})


@pytest.fixture(scope="module")
def statements(world):
    momo = [order(world, "mtn_momo", "RWF", "250788123456") for _ in range(2)]
    mpesa = [order(world, "mpesa", "KES", "254712345678") for _ in range(2)]
    refund_by_customs(world, momo[0])
    refund_by_customs(world, mpesa[0])
    bank = order(world, "bank_transfer", "USD")
    refunded = refund_by_customs(world, bank)
    # finance sends the money back, quoting the order's reference, then marks the refund paid
    world.http.post(f"{world.sim}/sandbox/bank/transfers", timeout=30,
                    json={"reference": bank["payment"]["payment_id"], "amount": refunded["refund"]["amount"]})
    world.ok(world.post(f"/v1/orders/{bank['order_id']}/refund/paid", "finance", "fin-1", {"bank_reference": "MIZ-1"}))
    order(world, "bank_transfer", "EUR")
    order(world, "alipay", "CNY")
    time.sleep(0.5)
    return {source: world.http.get(f"{world.sim}/sandbox/statements/{source}", timeout=30).text
            for source in ("mtn_momo_collection", "mpesa_c2b", "camt053", "stripe_balance")}


def reconcile(world, source, content):
    return world.ok(world.post("/v1/reconciliations", "finance", "fin-1", {"source": source, "content": content}), 201)


@pytest.mark.parametrize("source, lines", [("mtn_momo_collection", 3), ("mpesa_c2b", 3), ("camt053", 3),
                                           ("stripe_balance", 1)])
def test_each_new_methods_statement_reconciles_with_the_ledger_with_zero_breaks(world, statements, source, lines):
    rec = reconcile(world, source, statements[source])
    assert rec["status"] == "balanced", rec["breaks"]
    assert rec["summary"]["lines"] >= lines and rec["summary"]["matched"] == rec["summary"]["lines"]
    assert rec["breaks"] == []


def _doctor(source, content):
    """One injected break per statement: the first payment's amount changed at the provider."""
    if source == "camt053":
        return re.sub(r'(<Amt Ccy="USD">)(\d+)\.(\d\d)(</Amt>)', lambda m: f"{m[1]}{int(m[2]) + 1}.{m[3]}{m[4]}",
                      content, count=2)  # the entry and its transaction: one credit of 1 USD more
    lines = content.splitlines()
    header = lines[0].split(",")
    column = header.index("amount") if "amount" in header else header.index("Paid In") if "Paid In" in header \
        else header.index("gross")
    cells = lines[1].split(",")
    whole, _, cents = cells[column].partition(".")
    cells[column] = f"{int(whole) + 1}" + (f".{cents}" if cents else "")
    if source == "stripe_balance":  # keep the report consistent: net = gross - fee
        fee = header.index("fee")
        net = header.index("net")
        cells[net] = f"{float(cells[column]) - float(cells[fee]):.2f}"
    return "\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n"


@pytest.mark.parametrize("source", ["mtn_momo_collection", "mpesa_c2b", "camt053", "stripe_balance"])
def test_one_injected_break_in_each_statement_is_found(world, statements, source):
    rec = reconcile(world, source, _doctor(source, statements[source]))
    assert rec["status"] == "breaks"
    assert [b["outcome"] for b in rec["breaks"]] == ["amount_mismatch"]
