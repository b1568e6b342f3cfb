"""Mizani's Chalice app: the HTTP routes (and, later, webhooks and workflow tasks).

Thin by design: each view parses (done by ``api.route``), authorizes (done by
``api.route``; ownership by ``auth.require_party``), calls one service from
``chalicelib.bootstrap`` and shapes the reply with a schema. Errors are domain
exceptions, mapped to HTTP in ``chalicelib/api/errors.py``. Importing this module
builds no service and imports neither boto3 nor stripe.
"""
from chalice import Chalice

from chalicelib import bootstrap
from chalicelib.api.auth import ANY_ROLE, STAFF
from chalicelib.api.routing import PUBLIC, Api, Call
from chalicelib.api.schemas import (
    HealthResponse,
    LedgerAccountResponse,
    QuoteRequest,
    QuoteResponse,
    RatesQuery,
    RatesResponse,
    TrialBalanceResponse,
)
from chalicelib.errors import NotFound

app = Chalice(app_name="mizani")
api = Api(app, idempotency_store=bootstrap.idempotency_store)


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
