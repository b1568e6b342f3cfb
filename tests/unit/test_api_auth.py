"""Bearer JWTs to a Principal: HS256 locally, RS256 against a JWKS elsewhere; roles and ownership."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.api import auth
from chalicelib.errors import Forbidden, NotFound, ProviderUnavailable, Unauthorized
from chalicelib.settings import Settings
from helpers import token

LOCAL = Settings(stage="local")


def bearer(tok: str) -> str:
    return f"Bearer {tok}"


# -- local stage: HS256 -------------------------------------------------------


def test_a_valid_local_token_names_the_party_and_role():
    assert auth.authenticate(bearer(token("seller", "coop-7")), LOCAL) == auth.Principal("coop-7", "seller")


def test_an_expired_token_is_unauthorized():
    with pytest.raises(Unauthorized, match="expired"):
        auth.authenticate(bearer(token("buyer", expires_in=-3600)), LOCAL)


def test_a_token_signed_with_another_secret_is_unauthorized():
    with pytest.raises(Unauthorized):
        auth.authenticate(bearer(token("admin", secret="another-secret-of-thirty-two-bytes!")), LOCAL)


@pytest.mark.parametrize("claim", ["role", "sub"])
def test_a_token_missing_a_required_claim_is_unauthorized(claim):
    with pytest.raises(Unauthorized):
        auth.authenticate(bearer(token("buyer", omit=(claim,))), LOCAL)


def test_a_token_with_an_unknown_role_is_unauthorized():
    with pytest.raises(Unauthorized, match="role"):
        auth.authenticate(bearer(token("superuser")), LOCAL)


def test_a_token_with_an_empty_sub_is_unauthorized():
    with pytest.raises(Unauthorized):
        auth.authenticate(bearer(token("buyer", sub=" ")), LOCAL)


def test_an_unsigned_token_is_unauthorized():
    unsigned = jwt.encode({"sub": "x", "role": "admin"}, key=None, algorithm="none")
    with pytest.raises(Unauthorized):
        auth.authenticate(bearer(unsigned), LOCAL)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", "token-without-scheme"])
def test_a_missing_or_malformed_authorization_header_is_unauthorized(header):
    with pytest.raises(Unauthorized):
        auth.authenticate(header, LOCAL)


def test_garbage_in_the_bearer_is_unauthorized_without_echoing_the_parser():
    with pytest.raises(Unauthorized) as caught:
        auth.authenticate("Bearer not.a.jwt", LOCAL)
    assert caught.value.message == "the token is not valid"


def test_the_audience_and_issuer_are_checked_when_configured():
    strict = Settings(stage="local", jwt_audience="mizani-api", jwt_issuer="https://idp.example")
    good = token("finance", aud="mizani-api", iss="https://idp.example")
    assert auth.authenticate(bearer(good), strict).role == "finance"
    for bad in (token("finance", aud="other-api", iss="https://idp.example"), token("finance", iss="https://idp.example")):
        with pytest.raises(Unauthorized):
            auth.authenticate(bearer(bad), strict)


def test_the_secret_comes_from_settings():
    custom = Settings(stage="local", jwt_secret="rotated-secret-of-at-least-32-bytes")
    assert auth.authenticate(bearer(token("buyer", secret="rotated-secret-of-at-least-32-bytes")), custom).role == "buyer"
    with pytest.raises(Unauthorized):
        auth.authenticate(bearer(token("buyer")), custom)


def test_outside_local_without_a_jwks_the_public_local_secret_verifies_nothing():
    misconfigured = Settings(stage="prod", jwks_url="")
    with pytest.raises(Unauthorized, match="not configured"):
        auth.authenticate(bearer(token("admin")), misconfigured)
    own_secret = Settings(stage="dev", jwks_url="", jwt_secret="a-dev-stage-secret-of-32-bytes!!")
    assert auth.authenticate(bearer(token("admin", secret=own_secret.jwt_secret)), own_secret).role == "admin"


# -- roles and ownership ----------------------------------------------------------


def test_a_role_outside_the_routes_roles_is_forbidden():
    with pytest.raises(Forbidden):
        auth.authorize(auth.Principal("b1", "buyer"), auth.STAFF)
    assert auth.authorize(auth.Principal("f1", "finance"), auth.STAFF).sub == "f1"


def test_staff_see_any_party_and_a_party_sees_only_its_own():
    auth.require_party(auth.Principal("admin-1", "admin"), "seller-9")
    auth.require_party(auth.Principal("seller-9", "seller"), "buyer-1", "seller-9")
    with pytest.raises(NotFound):
        auth.require_party(auth.Principal("seller-8", "seller"), "buyer-1", "seller-9", what="order")


# -- other stages: RS256 via JWKS ------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks_url(rsa_key):
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
    document = json.dumps({"keys": [jwk]}).encode()
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    auth.reset()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json", hits
    server.shutdown()
    server.server_close()
    thread.join()
    auth.reset()


def rs256(rsa_key, **claims) -> str:
    payload = {"sub": "seller-1", "role": "seller", "exp": int(time.time()) + 600, **claims}
    return jwt.encode(payload, rsa_key, algorithm="RS256", headers={"kid": "k1"})


def test_outside_local_tokens_are_verified_against_the_jwks_and_keys_are_cached(rsa_key, jwks_url):
    url, hits = jwks_url
    prod = Settings(stage="prod", jwks_url=url, jwt_secret="unused")
    assert auth.authenticate(bearer(rs256(rsa_key)), prod) == auth.Principal("seller-1", "seller")
    assert auth.authenticate(bearer(rs256(rsa_key, sub="seller-2")), prod).sub == "seller-2"
    assert len(hits) == 1


def test_outside_local_an_hs256_token_is_refused_even_with_the_local_secret(jwks_url):
    url, _ = jwks_url
    prod = Settings(stage="prod", jwks_url=url)
    with pytest.raises(Unauthorized):
        auth.authenticate(bearer(token("admin")), prod)


def test_outside_local_a_token_must_expire(rsa_key, jwks_url):
    url, _ = jwks_url
    prod = Settings(stage="prod", jwks_url=url)
    forever = jwt.encode({"sub": "s", "role": "seller"}, rsa_key, algorithm="RS256", headers={"kid": "k1"})
    with pytest.raises(Unauthorized):
        auth.authenticate(bearer(forever), prod)


def test_an_unreachable_identity_provider_is_provider_trouble_not_a_bad_token(rsa_key):
    auth.reset()
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()  # nothing listens on this port any more
    prod = Settings(stage="prod", jwks_url=f"http://127.0.0.1:{port}/jwks.json")
    with pytest.raises(ProviderUnavailable):
        auth.authenticate(bearer(rs256(rsa_key)), prod)
    auth.reset()
