"""Mizani's Chalice app: the HTTP routes (and, later, webhooks and workflow tasks).

Thin by design: each view parses (done by ``api.route``), authorizes (done by
``api.route``; ownership by ``auth.require_party``), calls one service from
``chalicelib.bootstrap`` and shapes the reply with a schema. Errors are domain
exceptions, mapped to HTTP in ``chalicelib/api/errors.py``. Importing this module
builds no service and imports neither boto3 nor stripe.
"""
import os

from chalice import Chalice

from chalicelib import bootstrap
from chalicelib.api.auth import ANY_ROLE, STAFF
from chalicelib.api.routing import PUBLIC, Api, Call, Reply
from chalicelib.api.schemas import (
    HealthResponse,
    LedgerAccountResponse,
    QuoteRequest,
    QuoteResponse,
    RatesQuery,
    RatesResponse,
    TrialBalanceResponse,
)
from chalicelib.api.trade_schemas import (
    Acknowledged,
    AllocationRequest,
    AllocationResponse,
    BalanceResponse,
    BankNotificationAck,
    MemberRequest,
    MemberResponse,
    MembersResponse,
    PageQuery,
    OrderRequest,
    OrderResponse,
    PaymentLookup,
    PayoutsResponse,
    PayoutView,
    ReconciliationQuery,
    ReconciliationRequest,
    ReconciliationResponse,
    RefundPaidRequest,
    RefundsQuery,
    RefundsResponse,
    SellerPatch,
    SellerRequest,
    SellerResponse,
    ShipmentRequest,
    WithdrawalRequest,
)
from chalicelib.api.member_schemas import MembersBatchRequest, MembersBatchResponse
from chalicelib.api.treasury_schemas import ExposureResponse, PositionsResponse
from chalicelib.api.treasury_schemas import OrderStoryResponse, ReconciliationRunsResponse
from chalicelib.api.trust_schemas import (
    DisputeResponse,
    DisputesQuery,
    DisputesResponse,
    ScreeningCaseResponse,
    ScreeningCasesQuery,
    ScreeningCasesResponse,
    ScreeningDecisionRequest,
)
from chalicelib.api.treasury_schemas import ClearanceQuery, ClearanceResponse, OrdersQuery, OrdersResponse
from chalicelib.api import webhook_schemas as hooks
from chalicelib.errors import NotFound, ValidationError
from chalicelib.escrow.model import public_seller
from chalicelib.observability.middleware import task_scope

app = Chalice(app_name="mizani")
# Chalice leaves its app logger ("mizani") at ERROR; our modules log under "mizani.*" (access lines at INFO).
app.log.setLevel(os.environ.get("MIZANI_LOG_LEVEL", "INFO"))
api = Api(app, idempotency_store=bootstrap.idempotency_store)
# Workflow tasks and scheduled functions log JSON in their own scope (request id, function, order id).
app.register_middleware(task_scope, "pure_lambda")
app.register_middleware(task_scope, "scheduled")


# -- meta ------------------------------------------------------------------------


@api.get("/v1/health", roles=PUBLIC, response=HealthResponse, summary="Liveness check")
def health(call: Call) -> HealthResponse:
    return HealthResponse()


@api.get("/v1/openapi.json", roles=PUBLIC, summary="This API's OpenAPI 3.1 description")
def openapi_document(call: Call) -> dict:
    from chalicelib.api import openapi  # only this route needs the JSON Schema generator

    return openapi.document(api)


# -- FX -----------------------------------------------------------------------------


@api.get("/v1/fx/rates", roles=ANY_ROLE, query=RatesQuery, response=RatesResponse, summary="Indicative mid rates")
def fx_rates(call: Call) -> RatesResponse:
    from chalicelib.fx.rates import rates_view

    return RatesResponse.model_validate(rates_view(bootstrap.rate_source().latest(), call.query.base))


@api.post(
    "/v1/fx/quotes",
    roles=ANY_ROLE,
    body=QuoteRequest,
    response=QuoteResponse,
    status=201,
    summary="Lock a firm FX quote (exactly one of from_amount / to_amount)",
)
def create_quote(call: Call) -> QuoteResponse:
    req: QuoteRequest = call.body
    quote = bootstrap.quotes().quote(
        req.from_currency, req.to_currency, from_amount=req.from_amount, to_amount=req.to_amount
    )
    return QuoteResponse.of(quote)


# -- ledger ----------------------------------------------------------------------------


@api.get(
    "/v1/ledger/accounts/{account_id}",
    roles=STAFF,
    response=LedgerAccountResponse,
    summary="One ledger account's counters and balance",
)
def get_ledger_account(call: Call, account_id: str) -> LedgerAccountResponse:
    account = bootstrap.ledger().get_account(account_id)
    if account is None:
        raise NotFound("not_found", f"no ledger account {account_id}")
    return LedgerAccountResponse.of(account)


@api.get("/v1/ledger/trial-balance", roles=STAFF, response=TrialBalanceResponse, summary="Trial balance per currency")
def trial_balance(call: Call) -> TrialBalanceResponse:
    return TrialBalanceResponse.of(bootstrap.ledger().trial_balance())


# -- sellers ----------------------------------------------------------------------------

SELLER_OR_ADMIN = frozenset({"seller", "admin"})
SELLER_OR_STAFF = frozenset({"seller", "admin", "finance"})


@api.post("/v1/sellers", roles=SELLER_OR_ADMIN, body=SellerRequest, response=SellerResponse, status=201,
          summary="Register a seller and the wallet it is paid to")
def register_seller(call: Call) -> dict:
    req: SellerRequest = call.body
    if call.principal.role == "seller" and req.seller_id not in (None, call.principal.sub):
        raise ValidationError("validation_error", "a seller registers as itself", path="seller_id")
    payout = {**req.payout.model_dump(), "seller_id": req.seller_id}
    return public_seller(bootstrap.escrow().register_seller(call.principal, req.name, req.country, payout))


@api.get("/v1/sellers/{seller_id}", roles=SELLER_OR_STAFF, response=SellerResponse, summary="A seller")
def get_seller(call: Call, seller_id: str) -> dict:
    return public_seller(bootstrap.escrow().get_seller(call.principal, seller_id))


@api.route("PATCH", "/v1/sellers/{seller_id}", roles=frozenset({"admin"}), idempotent=False, body=SellerPatch,
           response=SellerResponse, errors=(409, 422),
           summary="An admin clears a seller under review (active) or blocks it; sets reserve_bps, kyc_tier")
def update_seller(call: Call, seller_id: str) -> dict:
    patch: SellerPatch = call.body
    return public_seller(bootstrap.parties().update_seller(call.principal, seller_id, patch.status, patch.reserve_bps,
                                                           patch.kyc_tier))


@api.get("/v1/sellers/{seller_id}/balance", roles=SELLER_OR_STAFF, response=BalanceResponse,
         summary="What the seller can withdraw, what waits in escrow, what is being paid out")
def seller_balance(call: Call, seller_id: str) -> dict:
    return bootstrap.escrow().seller_balance(call.principal, seller_id)


@api.get("/v1/sellers/{seller_id}/payouts", roles=SELLER_OR_STAFF, query=PageQuery, response=PayoutsResponse,
         summary="The seller's payouts and its members', newest first (?limit=, ?cursor=)")
def seller_payouts(call: Call, seller_id: str) -> dict:
    bootstrap.escrow().get_seller(call.principal, seller_id)  # ownership: 404 if not theirs
    found, following = bootstrap.payouts().page_for_seller(seller_id, call.query.page_size, call.query.cursor)
    return {"payouts": found, "has_more": following is not None, "next_cursor": following}


@api.post("/v1/sellers/{seller_id}/payouts", roles=frozenset({"seller"}), body=WithdrawalRequest, response=PayoutView,
          status=201, summary="Withdraw from the available balance to the seller's wallet")
def withdraw(call: Call, seller_id: str) -> dict:
    seller = bootstrap.escrow().get_seller(call.principal, seller_id)
    return bootstrap.payouts().withdraw(seller, call.body.amount.to_money(), call.idempotency_key)


# -- co-operatives' members --------------------------------------------------------------


@api.post("/v1/sellers/{seller_id}/members", roles=SELLER_OR_ADMIN, body=MemberRequest, response=MemberResponse,
          status=201, summary="Register a co-operative's member and the wallet it is paid to")
def register_member(call: Call, seller_id: str) -> dict:
    req: MemberRequest = call.body
    return bootstrap.cooperatives().register_member(call.principal, seller_id, req.name, req.payout.model_dump())


@api.post("/v1/sellers/{seller_id}/members/batch", roles=SELLER_OR_ADMIN, body=MembersBatchRequest,
          response=MembersBatchResponse, status=201,
          summary="Register up to 100 members at once (each as POST .../members; all or none are refused)")
def register_members(call: Call, seller_id: str) -> dict:
    entries = [(m.name, m.payout.model_dump()) for m in call.body.members]
    return {"members": bootstrap.cooperatives().register_members(call.principal, seller_id, entries)}


@api.get("/v1/sellers/{seller_id}/members", roles=SELLER_OR_STAFF, query=PageQuery, response=MembersResponse,
         summary="A co-operative's members, oldest first (?limit=, ?cursor=)")
def list_members(call: Call, seller_id: str) -> dict:
    return bootstrap.cooperatives().list_members(call.principal, seller_id, call.query.page_size, call.query.cursor)


@api.get("/v1/sellers/{seller_id}/members/{member_id}", roles=SELLER_OR_STAFF, response=MemberResponse,
         summary="A member and its balance")
def get_member(call: Call, seller_id: str, member_id: str) -> dict:
    return bootstrap.cooperatives().get_member(call.principal, seller_id, member_id)


@api.route("PATCH", "/v1/sellers/{seller_id}/members/{member_id}", roles=frozenset({"admin"}), idempotent=False,
           body=SellerPatch, response=MemberResponse, errors=(409, 422),
           summary="An admin clears a member under review (active) or blocks it; sets kyc_tier")
def update_member(call: Call, seller_id: str, member_id: str) -> dict:
    from chalicelib.members.service import public_member

    patch: SellerPatch = call.body
    return public_member(bootstrap.parties().update_member(call.principal, seller_id, member_id, patch.status,
                                                           patch.reserve_bps, patch.kyc_tier))


# -- orders -------------------------------------------------------------------------------


@api.post("/v1/orders", roles=frozenset({"buyer"}), body=OrderRequest, response=OrderResponse, status=201, errors=(404,),
          summary="Check out: price the lines, lock both FX quotes, start the payment by its method")
def create_order(call: Call) -> dict:
    req: OrderRequest = call.body
    lines = [{**line.model_dump(exclude={"unit_price"}), "unit_price": line.unit_price.to_money()} for line in req.lines]
    return bootstrap.escrow().create_order(call.principal, req.seller_id, req.pay_currency, lines, call.idempotency_key,
                                           req.payment_method, req.payer_msisdn)


@api.get("/v1/orders/{order_id}", roles=ANY_ROLE, response=OrderResponse, summary="An order and its timeline")
def get_order(call: Call, order_id: str) -> dict:
    return bootstrap.escrow().get_order(call.principal, order_id)


@api.post("/v1/orders/{order_id}/shipment", roles=frozenset({"seller"}), body=ShipmentRequest, response=OrderResponse,
          status=200, summary="The seller records the shipment and its customs declaration")
def record_shipment(call: Call, order_id: str) -> dict:
    req: ShipmentRequest = call.body
    return bootstrap.escrow().record_shipment(call.principal, order_id, req.carrier, req.tracking_number,
                                              req.customs_declaration_ref, customs_office=req.customs_office)


@api.route("PUT", "/v1/orders/{order_id}/allocation", roles=frozenset({"seller"}), idempotent=False,
           body=AllocationRequest, response=AllocationResponse, errors=(409, 422),
           summary="The co-operative shares the order's payout among its members by quantity delivered")
def put_allocation(call: Call, order_id: str) -> dict:
    shares = [(share.member_id, share.quantity) for share in call.body.shares]
    return bootstrap.cooperatives().allocate(call.principal, order_id, shares, call.body.retain_bps)


# -- bank-transfer refunds (finance) ------------------------------------------------------------


@api.get("/v1/refunds", roles=STAFF, query=RefundsQuery, response=RefundsResponse,
         summary="Bank-transfer refunds owed to buyers (or already paid), oldest first (?status=, ?limit=, ?cursor=)")
def list_refunds(call: Call) -> dict:
    return bootstrap.escrow().refunds(call.query.status, call.query.page_size, call.query.cursor)


@api.get("/v1/payments/{payment_id}", roles=STAFF, response=PaymentLookup,
         summary="Which order a payment is for: a PaymentIntent id, a collection reference or a bank reference")
def payment_lookup(call: Call, payment_id: str) -> dict:
    return bootstrap.escrow().payment_lookup(payment_id)


@api.post("/v1/orders/{order_id}/refund/paid", roles=STAFF, body=RefundPaidRequest, response=OrderResponse, status=200,
          summary="Finance sent a bank-transfer refund back to the buyer: owed becomes paid (once)")
def refund_paid(call: Call, order_id: str) -> dict:
    from chalicelib.escrow.model import public_order

    return public_order(bootstrap.escrow().bank_refund_paid(order_id, call.body.bank_reference, call.principal.sub))


# -- disputes (card chargebacks) ----------------------------------------------------------------


@api.get("/v1/disputes", roles=STAFF, query=DisputesQuery, response=DisputesResponse,
         summary="Card disputes, newest first (?status=, ?limit=, ?cursor=)")
def list_disputes(call: Call) -> dict:
    return bootstrap.disputes().page(call.query.status, call.query.page_size, call.query.cursor)


@api.get("/v1/disputes/{dispute_id}", roles=SELLER_OR_STAFF, response=DisputeResponse,
         summary="A card dispute: its order, amount, status, evidence, and where the money came from")
def get_dispute(call: Call, dispute_id: str) -> dict:
    return bootstrap.disputes().get(call.principal, dispute_id)


# -- sanctions screening (admin) ---------------------------------------------------------------

ADMIN = frozenset({"admin"})


@api.get("/v1/screening/cases", roles=ADMIN, query=ScreeningCasesQuery, response=ScreeningCasesResponse,
         summary="Sanctions screening cases, newest first (?status=open|cleared|blocked, ?limit=, ?cursor=)")
def list_screening_cases(call: Call) -> dict:
    return bootstrap.screening().page(call.query.status, call.query.page_size, call.query.cursor)


@api.get("/v1/screening/cases/{case_id}", roles=ADMIN, response=ScreeningCaseResponse,
         summary="A screening case: the party, the list version, the entries it possibly matches, the decision")
def get_screening_case(call: Call, case_id: str) -> dict:
    return bootstrap.screening().get_case(case_id)


@api.post("/v1/screening/cases/{case_id}/decision", roles=ADMIN, body=ScreeningDecisionRequest,
          response=ScreeningCaseResponse, status=200,
          summary="An admin's decision on a possible match: clear (payouts go) or block (payouts refused)")
def decide_screening_case(call: Call, case_id: str) -> dict:
    req: ScreeningDecisionRequest = call.body
    return bootstrap.screening().decide(call.principal, case_id, req.decision, req.note)


# -- USSD (Africa's Talking callback: basic phones) ------------------------------------------


@api.post("/v1/ussd", roles=PUBLIC, idempotent=False, media_type="text/plain", request_doc=hooks.USSD_REQUEST,
          content_types=["application/x-www-form-urlencoded", "*/*"],  # any body gets a screen, never a 415
          summary="Africa's Talking USSD callback (form: sessionId, serviceCode, phoneNumber, networkCode, text): "
                  "always 200 text/plain, CON <screen> or END <screen>")
def ussd_callback(call: Call) -> Reply:
    from chalicelib.ussd.service import answer_callback

    return Reply(body=answer_callback(bootstrap.ussd, call.raw_body), content_type="text/plain; charset=utf-8")


# -- webhooks ------------------------------------------------------------------------------


@api.post("/v1/webhooks/stripe", roles=PUBLIC, idempotent=False, response=Acknowledged,
          request_doc=hooks.STRIPE_REQUEST, errors=(404, 409),
          summary="Stripe events (Stripe-Signature verified, 300 s tolerance; deduplicated by event id)")
def stripe_webhook(call: Call) -> dict:
    from chalicelib.api import webhooks

    return webhooks.handle_stripe(call.raw_body, call.header("stripe-signature"))


@api.post("/v1/webhooks/bank", roles=PUBLIC, idempotent=False, response=BankNotificationAck,
          request_doc=hooks.BANK_REQUEST, errors=(404, 409),
          content_types=["application/xml", "text/xml", "*/*"],
          summary="The bank's ISO 20022 camt.054 credit notifications (Mizani-Signature verified; each bank entry "
                  "booked once)")
def bank_webhook(call: Call) -> dict:
    from chalicelib.api import webhooks

    return webhooks.handle_bank(call.raw_body, call.header("mizani-signature"))


@api.post("/v1/webhooks/collections/{rail}/{reference}/{token}", roles=PUBLIC, idempotent=False, response=Acknowledged,
          request_doc=hooks.COLLECTION_REQUEST,
          summary="A mobile-money collection's callback (M-Pesa STK push result, reversal result) on its own "
                  "tokened URL: a hint, the provider is asked")
def collection_callback(call: Call, rail: str, reference: str, token: str) -> dict:
    from chalicelib.api import webhooks

    return webhooks.handle_collection_callback(rail, reference, token, call.raw_body)


@api.route("PUT", "/v1/webhooks/collections/{rail}/{reference}/{token}", roles=PUBLIC, idempotent=False,
           response=Acknowledged, request_doc=hooks.COLLECTION_REQUEST, summary="MTN MoMo's request-to-pay callback (PUT, sent once) on the collection's "
                                          "own tokened URL: a hint, the status is asked")
def collection_callback_put(call: Call, rail: str, reference: str, token: str) -> dict:
    from chalicelib.api import webhooks

    return webhooks.handle_collection_callback(rail, reference, token, call.raw_body)


@api.post("/v1/webhooks/customs", roles=PUBLIC, idempotent=False, response=Acknowledged,
          request_doc=hooks.CUSTOMS_REQUEST, errors=(404, 409),
          summary="Customs decisions (Mizani-Signature verified; deduplicated by event_id)")
def customs_webhook(call: Call) -> dict:
    from chalicelib.api import webhooks

    return webhooks.handle_customs(call.raw_body, call.header("mizani-signature"))


@api.post("/v1/webhooks/sms/delivery", roles=PUBLIC, idempotent=False, response=Acknowledged,
          request_doc=hooks.SMS_DELIVERY_REQUEST,
          content_types=["application/x-www-form-urlencoded", "*/*"],  # another body: our 400, not Chalice's 415
          summary="Africa's Talking SMS delivery reports (form: id, status, phoneNumber, networkCode, failureReason)")
def sms_delivery_report(call: Call) -> dict:
    from chalicelib.api import webhooks

    return webhooks.handle_sms_delivery(call.raw_body, call.header("content-type"))


@api.post("/v1/webhooks/rails/{rail}", roles=PUBLIC, idempotent=False, response=Acknowledged,
          request_doc=hooks.AIRTEL_REQUEST,
          summary="A rail's callback to the one URL set in its portal (Airtel): a hint, the provider is asked")
def rail_callback(call: Call, rail: str) -> dict:
    from chalicelib.api import webhooks

    return webhooks.handle_rail_callback(rail, call.raw_body)


@api.post("/v1/webhooks/rails/{rail}/{kind}/{payout_id}/{token}", roles=PUBLIC, idempotent=False, response=Acknowledged,
          request_doc=hooks.RAIL_REQUEST,
          summary="A rail's callback on the payout's own tokened URL: a hint, the provider is asked")
def rail_callback_for_payout(call: Call, rail: str, kind: str, payout_id: str, token: str) -> dict:
    from chalicelib.api import webhooks

    return webhooks.handle_rail_callback(rail, call.raw_body, payout_id, token, kind)


@api.route("PUT", "/v1/webhooks/momo", roles=PUBLIC, idempotent=False, response=Acknowledged,
           request_doc=hooks.MOMO_REQUEST,
           summary="MTN MoMo's callback on the bare URL (transfers sent before tokened URLs): a hint only")
def momo_callback(call: Call) -> dict:
    from chalicelib.api import webhooks

    return webhooks.handle_rail_callback("mtn_momo", call.raw_body)


@api.route("PUT", "/v1/webhooks/momo/{payout_id}/{token}", roles=PUBLIC, idempotent=False, response=Acknowledged,
           request_doc=hooks.MOMO_REQUEST,
           summary="MTN MoMo's callback on the payout's own tokened URL: a hint only, the status is re-queried")
def momo_callback_tokened(call: Call, payout_id: str, token: str) -> dict:
    from chalicelib.api import webhooks

    return webhooks.handle_rail_callback("mtn_momo", call.raw_body, payout_id, token)


@api.post("/v1/webhooks/momo/{payout_id}", roles=PUBLIC, idempotent=False, response=Acknowledged,
          request_doc=hooks.MOMO_REQUEST,
          summary="A MoMo callback naming the payout in its path: a hint only, the status is re-queried")
def momo_callback_for_payout(call: Call, payout_id: str) -> dict:
    bootstrap.payouts().on_provider_callback(payout_id, rail="mtn_momo")
    return {"received": True}


@api.post("/v1/webhooks/mpesa/result", roles=PUBLIC, idempotent=False, response=Acknowledged,
          request_doc=hooks.MPESA_REQUEST,
          summary="The bare M-Pesa result URL: carries no payout token, so it is acknowledged and changes nothing")
def mpesa_result(call: Call) -> dict:
    from chalicelib.api import webhooks

    return webhooks.handle_rail_callback("mpesa", call.raw_body)


@api.post("/v1/webhooks/mpesa/result/{payout_id}/{token}", roles=PUBLIC, idempotent=False, response=Acknowledged,
          request_doc=hooks.MPESA_REQUEST,
          summary="M-Pesa B2C result and Transaction Status answers for one payout (a hint: Safaricom is asked)")
def mpesa_result_for_payout(call: Call, payout_id: str, token: str) -> dict:
    from chalicelib.api import webhooks

    return webhooks.handle_rail_callback("mpesa", call.raw_body, payout_id, token)


@api.post("/v1/webhooks/mpesa/timeout", roles=PUBLIC, idempotent=False, response=Acknowledged,
          request_doc=hooks.MPESA_REQUEST,
          summary="The bare M-Pesa queue-timeout URL: acknowledged, changes nothing")
def mpesa_timeout(call: Call) -> dict:
    from chalicelib.api import webhooks

    return webhooks.handle_rail_callback("mpesa", call.raw_body, kind="timeout")


@api.post("/v1/webhooks/mpesa/timeout/{payout_id}/{token}", roles=PUBLIC, idempotent=False, response=Acknowledged,
          request_doc=hooks.MPESA_REQUEST,
          summary="M-Pesa B2C queue timeout for one payout: the outcome is unknown, the payout is polled")
def mpesa_timeout_for_payout(call: Call, payout_id: str, token: str) -> dict:
    from chalicelib.api import webhooks

    return webhooks.handle_rail_callback("mpesa", call.raw_body, payout_id, token, "timeout")


# -- reconciliation (finance) ------------------------------------------------------------------


@api.post("/v1/reconciliations", roles=STAFF, body=ReconciliationRequest, response=ReconciliationResponse, status=201,
          errors=(404,),
          summary="Reconcile a provider statement (inline or an S3 key) against the ledger")
def create_reconciliation(call: Call) -> dict:
    req: ReconciliationRequest = call.body
    return bootstrap.reconciliations().submit(req.source, content=req.content, s3_key=req.s3_key,
                                              period=req.period.days() if req.period else None)


@api.get("/v1/reconciliations/{reconciliation_id}", roles=STAFF, query=ReconciliationQuery, response=ReconciliationResponse,
         summary="A reconciliation: summary, settlement per provider/currency/day, one page of breaks "
                 "(?page= or ?cursor=, ?limit=)")
def get_reconciliation(call: Call, reconciliation_id: str) -> dict:
    q: ReconciliationQuery = call.query
    return bootstrap.reconciliations().page(reconciliation_id, int(q.page or 1), int(q.limit) if q.limit else None,
                                            q.cursor)


@api.get("/v1/reconciliations/{reconciliation_id}/breaks.csv", roles=STAFF, media_type="text/csv", errors=(409,),
         summary="Every break of a reconciliation as CSV")
def get_reconciliation_breaks(call: Call, reconciliation_id: str) -> Reply:
    csv_text = bootstrap.reconciliations().breaks_csv(reconciliation_id)
    return Reply(body=csv_text, content_type="text/csv",
                 headers={"Content-Disposition": f'attachment; filename="{reconciliation_id}-breaks.csv"'})


# -- treasury (finance): the FX position of the seller's guarantee ----------------------------------


@api.get("/v1/treasury/exposure", roles=STAFF, response=ExposureResponse,
         summary="Open FX exposure per currency: guaranteed, held, marked to market; unrealized and realized P&L")
def treasury_exposure(call: Call) -> dict:
    return bootstrap.treasury().exposure()


@api.get("/v1/treasury/positions", roles=STAFF, query=PageQuery, response=PositionsResponse,
         summary="Closed FX positions, latest first: each released order's realized P&L (?limit=, ?cursor=)")
def treasury_positions(call: Call) -> dict:
    return bootstrap.treasury().closed_page(call.query.page_size, call.query.cursor)


# -- one order's whole story and the reconciliation runs (finance console) ----------------------------


@api.get("/v1/orders/{order_id}/story", roles=ANY_ROLE, response=OrderStoryResponse,
         summary="An order's whole story: every ledger transfer with its legs, every provider reference, "
                 "each movement's latest reconciliation (its buyer and seller: their own orders only)")
def order_story(call: Call, order_id: str) -> dict:
    return bootstrap.stories().story(call.principal, order_id)


@api.get("/v1/reconciliations", roles=STAFF, query=PageQuery, response=ReconciliationRunsResponse,
         summary="Reconciliation runs, latest submitted first (?limit=, ?cursor=)")
def list_reconciliations(call: Call) -> dict:
    return bootstrap.reconciliation_runs().page(call.query.page_size, call.query.cursor)


# -- customs against eWTP's 24-hour promise; orders by status (finance console) -----------------------


@api.get("/v1/customs/clearance", roles=STAFF, query=ClearanceQuery, response=ClearanceResponse,
         summary="Per customs office: decisions (median and p90 hours from shipped), orders waiting past 24 h "
                 "(?days=, ?limit=, ?cursor=)")
def customs_clearance(call: Call) -> dict:
    q: ClearanceQuery = call.query
    return bootstrap.customs().report(int(q.days or 30), int(q.limit) if q.limit else None, q.cursor)


@api.get("/v1/orders", roles=STAFF, query=OrdersQuery, response=OrdersResponse,
         summary="Orders in one status, the latest changed first (?status=, ?limit=, ?cursor=)")
def list_orders(call: Call) -> dict:
    found, following = bootstrap.order_index().by_status(call.query.status, call.query.page_size, call.query.cursor)
    return {"orders": found, "has_more": following is not None, "next_cursor": following}


@app.schedule("rate(15 minutes)", name="customs_reminders")
def customs_reminders(event):
    """Text each seller whose order has waited at customs past eWTP's 24-hour promise (once an order)."""
    bootstrap.customs().remind()


# -- the finance console (static page; it calls only the public API above) ---------------------------


@api.get("/console", roles=PUBLIC, media_type="text/html",
         summary="The finance console: a web page for the finance and admin roles (strict Content-Security-Policy)")
def console_page(call: Call) -> Reply:
    from chalicelib import console

    body, content_type, headers = console.page()
    return Reply(body=body, content_type=content_type, headers=headers)


@api.get("/console/{asset}", roles=PUBLIC, media_type="application/javascript",
         other_media_types=("text/css",), summary="The console's script and style sheet")
def console_asset(call: Call, asset: str) -> Reply:
    from chalicelib import console

    body, content_type, headers = console.asset(asset)
    return Reply(body=body, content_type=content_type, headers=headers)


# -- the API reference (a page rendering the OpenAPI document above; vendored viewer, no CDN) ------------


@api.get("/v1/docs", roles=PUBLIC, media_type="text/html",
         summary="This API's reference: the OpenAPI document rendered by a vendored Swagger UI (strict "
                 "Content-Security-Policy)")
def docs_page(call: Call) -> Reply:
    from chalicelib import apidocs

    body, content_type, headers = apidocs.page()
    return Reply(body=body, content_type=content_type, headers=headers)


@api.get("/v1/docs/{asset}", roles=PUBLIC, media_type="application/javascript",
         other_media_types=("text/css", "text/plain"),
         summary="The reference page's script, style sheets and the viewer's licence")
def docs_asset(call: Call, asset: str) -> Reply:
    from chalicelib import apidocs

    body, content_type, headers = apidocs.asset(asset)
    return Reply(body=body, content_type=content_type, headers=headers)


# -- escrow workflow tasks (Step Functions Lambda tasks) -----------------------------------------


@app.lambda_function(name="customs_wait")
def customs_wait(event, context):
    return tasks().customs_wait(event)


@app.lambda_function(name="release_escrow")
def release_escrow(event, context):
    return tasks().release_escrow(event)


@app.lambda_function(name="start_payout")
def start_payout(event, context):
    return tasks().start_payout(event)


@app.lambda_function(name="check_payout")
def check_payout(event, context):
    return tasks().check_payout(event)


@app.lambda_function(name="settle")
def settle(event, context):
    return tasks().settle(event)


@app.lambda_function(name="refund")
def refund(event, context):
    return tasks().refund(event)


@app.lambda_function(name="manual_review")
def manual_review(event, context):
    return tasks().manual_review(event)


@app.lambda_function(name="dispute_wait")
def dispute_wait(event, context):
    """AwaitDispute*: the order is disputed; the dispute's close answers the task token."""
    return tasks().dispute_wait(event)


# -- reconciliation of large statements (infra/reconcile.asl.json, a Distributed Map) -----------


@app.lambda_function(name="reconcile_plan")
def reconcile_plan_task(event, context):
    """First step: the stored statement and the ledger lines of its period, written as chunks."""
    from chalicelib.recon import distributed

    return distributed.plan_stored(bootstrap.recon_archive(), bootstrap.recon_ledger(), event)


@app.lambda_function(name="reconcile_chunk")
def reconcile_chunk_task(event, context):
    """One Map item: reconcile one chunk of the statement, store its result in S3."""
    from chalicelib.recon import distributed

    return distributed.run_chunk(bootstrap.recon_archive(), event)


@app.lambda_function(name="reconcile_finish")
def reconcile_finish_task(event, context):
    """After the Map: combine the chunk results into the reconciliation GET reads."""
    from chalicelib.recon import distributed

    keys = [result["result_key"] for result in event["results"]]
    rec = distributed.finish(bootstrap.recon_archive(), event["reconciliation_id"], event["source"], keys)
    return {"reconciliation_id": rec.reconciliation_id, "status": rec.status, "breaks": len(rec.breaks)}


@app.lambda_function(name="reconcile_failed")
def reconcile_failed_task(event, context):
    """The state machine's Catch: record why the reconciliation failed (GET shows it)."""
    from chalicelib.recon import distributed

    distributed.mark_failed(bootstrap.recon_archive(), event["reconciliation_id"], event.get("error"),
                            event.get("source", ""))
    return {"reconciliation_id": event["reconciliation_id"], "status": "failed"}


@app.schedule("rate(1 minute)", name="expire_pending")
def expire_pending(event):
    """Void pending ledger transfers whose timeout passed."""
    bootstrap.ledger().expire_pending()


@app.schedule("rate(1 minute)", name="poll_collections")
def poll_collections(event):
    """Ask the providers about every open mobile-money collection (poll-first: callbacks are hints)."""
    bootstrap.collections().poll_open()


@app.schedule("rate(1 day)", name="release_reserves")
def release_reserves(event):
    """Give back the chargeback reserves held 120 days (``MIZANI_RESERVE_DAYS``) since their card payment."""
    bootstrap.reserves().release_due()


@app.schedule("rate(6 hours)", name="refresh_sanctions")
def refresh_sanctions(event):
    """Load the sanctions lists in force; a new version screens every party again."""
    bootstrap.screening().refresh()


@app.schedule("cron(30 0 * * ? *)", name="seal_books")
def seal_books(event):
    """Seal yesterday's transfers: their Merkle root, signed (``python -m chalicelib.ledger.seal verify DAY``)."""
    from chalicelib.ledger.seal import build_sealer, yesterday

    build_sealer().seal(yesterday())


@app.schedule("rate(1 minute)", name="drain_outbox")
def drain_outbox(event):
    """Send queued SMS and advance open payouts (withdrawals have no workflow of their own)."""
    bootstrap.outbox().drain()
    bootstrap.payouts().poll_open()


def tasks():
    from chalicelib.workflow import tasks as workflow_tasks

    return workflow_tasks
