"""``POST /v1/sellers`` by a seller whose ``sub`` cannot be an id (a space, over 100 characters) is a 400
before anything is written: the wallet is not claimed, no account is opened, no seller is stored."""
from __future__ import annotations

import pytest
from chalice.test import Client

import app as mizani
from chalicelib import bootstrap
from chalicelib.payouts.rails import FakeRail
from helpers import body, post_headers

WALLET = "250788123456"  # an MTN Rwanda number, not one of the shareable sandbox test numbers


def registration(msisdn: str = WALLET) -> dict:
    return {"name": "Maraba Coffee", "country": "RW", "payout": {"rail": "mtn_momo", "msisdn": msisdn, "currency": "RWF"}}


@pytest.fixture
def client(aws_env):
    bootstrap.reset()
    rail = FakeRail("mtn_momo")  # the wallet check answers "active", without the simulators
    rail.checked = []
    check = rail.check_payee
    rail.check_payee = lambda msisdn, currency: (rail.checked.append(msisdn), check(msisdn, currency))[1]
    bootstrap._services["rail:mtn_momo"] = rail  # what bootstrap.rail("mtn_momo") builds once per container
    with Client(mizani.app, stage_name="local") as c:
        yield c
    bootstrap.reset()


def register(client, sub: str, role: str = "seller", data: dict | None = None):
    return client.http.post("/v1/sellers", body=body(data or registration()), headers=post_headers(role, sub))


@pytest.mark.parametrize("sub", ["maraba coffee", "s" * 101, "s" * 201, "tab\tseller", "nul\x00"],
                         ids=["space", "101-chars", "201-chars", "tab", "nul"])
def test_a_seller_whose_sub_cannot_be_an_id_is_refused_and_nothing_is_stored(client, sub):
    reply = register(client, sub)
    assert reply.status_code == 400 and reply.json_body["error"]["code"] == "validation_error"
    assert bootstrap.rail("mtn_momo").checked == []  # the rail was not even asked
    # The wallet was not claimed: another seller registers it as its own.
    second = register(client, "maraba-coffee")
    assert second.status_code == 201, second.body
    assert second.json_body["seller_id"] == "maraba-coffee"
    # And nothing was stored under the refused id.
    assert bootstrap.docs().get(f"seller#{sub}") is None


def test_a_seller_whose_sub_is_100_visible_characters_registers(client):
    sub = "auth0|" + "s" * 94  # identity providers' subs carry characters admins' ids may not
    reply = register(client, sub)
    assert reply.status_code == 201 and reply.json_body["seller_id"] == sub
