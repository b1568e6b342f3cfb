"""Mobile-money collection adapters (MTN MoMo Collection, M-Pesa STK push) and the Collections service
against their simulators over HTTP: every test number, a 5xx after the request was made, a timeout that
then succeeds, a lost and a duplicated callback, refunds; money reported paid exactly once."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from chalicelib.documents import MemoryDocuments
from chalicelib.http import HttpClient
from chalicelib.money import Money
from chalicelib.payments.collections.momo import (
    LOCAL_COLLECTION_API_KEY, LOCAL_COLLECTION_API_USER, LOCAL_COLLECTION_SUBSCRIPTION_KEY, MtnMomoCollection,
)
from chalicelib.payments.collections.mpesa import LOCAL_PASSKEY, LOCAL_STK_SHORTCODE, MpesaStkPush
from chalicelib.payments.collections.service import Collections, collection_reference
from chalicelib.payments.collections.store import CollectionStore
from chalicelib.payouts.rails import config as c
from chalicelib.payouts.rails.callbacks import CallbackUrls
from sandbox.providers import ProviderServer

MODULES = ["sandbox.simulators.stripe", "sandbox.simulators.momo", "sandbox.simulators.mpesa",
           "sandbox.simulators.momo_collection", "sandbox.simulators.mpesa_stk"]
FAILS, REJECTED, TIMES_OUT, ONGOING = "46733123450", "46733123451", "46733123452", "46733123453"
PAYERS = {"mtn_momo": "250788123456", "mpesa": "254712345678"}
AMOUNTS = {"mtn_momo": Money(862_500, "RWF"), "mpesa": Money(15_500_000, "KES")}


class Callbacks:
    """Stands in for the API: records each callback (path ``/<rail>/<reference>/<token>``)."""

    def __init__(self):
        self.received = []
        state = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                _, rail, reference, token = self.path.split("/")
                state.received.append((rail, reference, token, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = _record

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def of(self, reference, wait=5.0, count=1):
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            found = [r for r in self.received if r[1] == reference]
            if len(found) >= count:
                return found
            time.sleep(0.02)
        return []


@pytest.fixture(scope="module")
def world():
    callbacks = Callbacks()
    providers = ProviderServer(port=0, modules=MODULES).start(api_base_url=callbacks.url, env={})
    yield providers, callbacks
    providers.stop()
    callbacks.server.shutdown()


@pytest.fixture
def service(world):
    providers, callbacks = world
    requests.post(f"{providers.url}/sandbox/reset", timeout=10)
    docs = MemoryDocuments()
    store = CollectionStore(docs)
    http = HttpClient(timeout_seconds=0.4)
    rails = {
        "mtn_momo": MtnMomoCollection(
            providers.url, LOCAL_COLLECTION_API_USER, LOCAL_COLLECTION_API_KEY, LOCAL_COLLECTION_SUBSCRIPTION_KEY,
            "sandbox", f"{callbacks.url}/mtn_momo", CallbackUrls("test-key", "mtn_momo_collection"),
            disbursement_user=c.LOCAL_MOMO_API_USER, disbursement_key=c.LOCAL_MOMO_API_KEY,
            disbursement_subscription_key=c.LOCAL_MOMO_SUBSCRIPTION_KEY, http=http),
        "mpesa": MpesaStkPush(
            providers.url, c.LOCAL_MPESA_CONSUMER_KEY, c.LOCAL_MPESA_CONSUMER_SECRET, LOCAL_STK_SHORTCODE, LOCAL_PASSKEY,
            f"{callbacks.url}/mpesa", CallbackUrls("test-key", "mpesa_collection"),
            initiator_name=c.LOCAL_MPESA_INITIATOR_NAME, security_credential=c.LOCAL_MPESA_SECURITY_CREDENTIAL,
            store=store, http=http),
    }
    paid, failed = [], []
    svc = Collections(docs, rails.__getitem__, on_paid=lambda o, a, r: paid.append((o, a, r)),
                      on_failed=lambda o, reason: failed.append((o, reason)))
    svc.paid, svc.failed, svc.providers, svc.callbacks = paid, failed, providers, callbacks
    yield svc
    for rail in ("momo_collection", "mpesa_stk"):
        requests.delete(f"{providers.url}/sandbox/faults/{rail}", timeout=10)


def pay(svc, reference, outcome="succeeded"):
    return requests.post(f"{svc.providers.url}/sandbox/payments/{reference}/pay", json={"outcome": outcome}, timeout=10)


def deliver_callbacks(svc, rail, reference, count=1):
    """What the API's webhook does with each callback the provider sent: ``Collections.on_callback``."""
    return [svc.on_callback(rail, ref, token, body) for _, ref, token, body in svc.callbacks.of(reference, count=count)]


def fault(svc, rail, **faults):
    name = {"mtn_momo": "momo_collection", "mpesa": "mpesa_stk"}[rail]
    assert requests.post(f"{svc.providers.url}/sandbox/faults/{name}", json=faults, timeout=10).status_code == 200


RAILS = ["mtn_momo", "mpesa"]


@pytest.mark.parametrize("rail", RAILS)
def test_a_collection_is_requested_once_approved_on_the_phone_and_paid_once(service, rail):
    order = f"ord-ok-{rail}"
    payment = service.request(order, rail, AMOUNTS[rail], PAYERS[rail])
    reference = payment["payment_id"]
    assert reference == collection_reference(order) and len(reference) == 12
    assert service.request(order, rail, AMOUNTS[rail], PAYERS[rail]) == payment  # a retried checkout: same, not re-sent
    assert service.advance(reference)["state"] == "pending" and service.paid == []
    assert pay(service, reference).status_code == 200
    deliver_callbacks(service, rail, reference)  # the hint advances it at once
    deliver_callbacks(service, rail, reference)  # the same callback again changes nothing
    service.poll_open()
    assert service.paid == [(order, AMOUNTS[rail], reference)]
    assert service.store.get(reference)["state"] == "succeeded" and service.store.open() == []


@pytest.mark.parametrize("rail", RAILS)
@pytest.mark.parametrize("number, reason", [(FAILS, {"mtn_momo": "INTERNAL_PROCESSING_ERROR", "mpesa": "1: "}),
                                            (REJECTED, {"mtn_momo": "APPROVAL_REJECTED", "mpesa": "1032: "})])
def test_a_test_number_that_declines_or_rejects_fails_the_collection_and_nothing_is_paid(service, rail, number, reason):
    order = f"ord-{number}-{rail}"
    reference = service.request(order, rail, AMOUNTS[rail], number)["payment_id"]
    record = service.advance(reference)
    assert record["state"] == "failed" and reason[rail] in record["reason"]
    assert service.paid == [] and service.failed == [(order, f"{rail}: {record['reason']}")]
    service.poll_open()
    assert len(service.failed) == 1


@pytest.mark.parametrize("rail", RAILS)
def test_a_request_that_timed_out_is_unknown_not_failed_and_paid_once_when_it_succeeds(service, rail):
    fault(service, rail, timeout_delay_ms=1200)
    order = f"ord-timeout-{rail}"
    reference = service.request(order, rail, AMOUNTS[rail], TIMES_OUT)["payment_id"]
    record = service.store.get(reference)
    assert record["state"] == "pending" and record["last_status"]["state"] == "unknown"  # never failed
    time.sleep(1.0)  # the provider made it meanwhile
    service.poll_open()
    assert service.paid == [] and service.store.get(reference)["state"] == "pending"
    assert pay(service, reference).status_code == 200  # the payer approves late
    deliver_callbacks(service, rail, reference)
    service.poll_open()
    service.poll_open()
    assert service.paid == [(order, AMOUNTS[rail], reference)]


@pytest.mark.parametrize("rail", RAILS)
def test_a_number_that_never_answers_stays_pending_however_often_it_is_polled(service, rail):
    reference = service.request(f"ord-silent-{rail}", rail, AMOUNTS[rail], ONGOING)["payment_id"]
    for _ in range(3):
        service.poll_open()
    assert service.store.get(reference)["state"] == "pending" and service.paid == service.failed == []
    assert pay(service, reference).status_code == 409  # the phone never shows it
    assert service.store.open() == [reference]


@pytest.mark.parametrize("rail", RAILS)
def test_a_5xx_after_the_request_was_made_is_unknown_and_the_collection_is_paid_once(service, rail):
    fault(service, rail, error_after_success=1)
    order = f"ord-5xx-{rail}"
    reference = service.request(order, rail, AMOUNTS[rail], PAYERS[rail])["payment_id"]
    assert service.store.get(reference)["last_status"] == {"state": "unknown", "reason": "http_500"}
    assert pay(service, reference).status_code == 200
    deliver_callbacks(service, rail, reference)
    service.poll_open()
    assert service.paid == [(order, AMOUNTS[rail], reference)]


def test_a_lost_mtn_callback_changes_nothing_the_poll_finds_the_payment(service):
    fault(service, "mtn_momo", lose_callback=1)
    reference = service.request("ord-lost", "mtn_momo", AMOUNTS["mtn_momo"], PAYERS["mtn_momo"])["payment_id"]
    pay(service, reference)
    assert service.callbacks.of(reference, wait=0.5) == []
    service.poll_open()
    assert [p[0] for p in service.paid] == ["ord-lost"]


def test_a_lost_mpesa_callback_changes_nothing_the_stk_query_finds_the_payment(service):
    fault(service, "mpesa", lose_callback=1)
    reference = service.request("ord-lost-mp", "mpesa", AMOUNTS["mpesa"], PAYERS["mpesa"])["payment_id"]
    pay(service, reference)
    service.poll_open()
    assert [p[0] for p in service.paid] == ["ord-lost-mp"]


@pytest.mark.parametrize("rail", RAILS)
def test_a_callback_without_the_collections_token_or_for_an_unknown_reference_is_refused(service, rail):
    reference = service.request(f"ord-forged-{rail}", rail, AMOUNTS[rail], PAYERS[rail])["payment_id"]
    assert service.on_callback(rail, reference, "0" * 32, b'{"status": "SUCCESSFUL"}') is None
    assert service.on_callback(rail, "MZUNKNOWN000", "0" * 32, b"{}") is None
    assert service.paid == [] and service.store.get(reference)["state"] == "pending"


def test_an_mtn_collection_is_refunded_to_the_payers_wallet_once(service):
    amount = AMOUNTS["mtn_momo"]
    reference = service.request("ord-refund", "mtn_momo", amount, PAYERS["mtn_momo"])["payment_id"]
    pay(service, reference)
    service.poll_open()
    first = service.refund(reference, amount)
    again = service.refund(reference, amount)
    assert first.state == again.state == "succeeded" and first.reference == again.reference
    wallet = requests.get(f"{service.providers.url}/sandbox/momo_collection/wallets/{PAYERS['mtn_momo']}", timeout=10).json()
    assert wallet["paid"] == [{"amount": 0, "currency": "RWF"}]  # paid, then given back, once
    statement = requests.get(f"{service.providers.url}/sandbox/statements/mtn_momo_collection", timeout=10).text
    assert [line.split(",")[2] for line in statement.splitlines()[1:]] == ["REQUEST_TO_PAY", "REFUND"]


def test_an_mpesa_collection_is_reversed_and_the_reversal_result_decides_the_refund(service):
    amount = AMOUNTS["mpesa"]
    reference = service.request("ord-reverse", "mpesa", amount, PAYERS["mpesa"])["payment_id"]
    pay(service, reference)
    deliver_callbacks(service, "mpesa", reference)  # brings the receipt a reversal needs
    assert service.store.get(reference)["receipt"]
    first = service.refund(reference, amount)
    assert first.state == "pending"  # Daraja answers the reversal at its ResultURL
    deliver_callbacks(service, "mpesa", reference, count=2)
    done = service.refund(reference, amount)
    assert done.state == "succeeded" and service.refund(reference, amount).state == "succeeded"
    statement = requests.get(f"{service.providers.url}/sandbox/statements/mpesa_c2b", timeout=10).text
    assert [line.split(",")[8] for line in statement.splitlines()[1:]] == ["Pay Bill Online", "Reversal"]
