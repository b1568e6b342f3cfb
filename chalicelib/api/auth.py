"""Who is calling: ``Authorization: Bearer <JWT>`` to a ``Principal(sub, role)``.

The ``local`` stage (or any stage without a JWKS URL) verifies HS256 tokens with
``settings.jwt_secret``; otherwise tokens are RS256, verified against the identity
provider's JWKS (one ``PyJWKClient`` per container, keys cached), with audience
and issuer checked when configured. No token, a bad or expired one, or claims
that do not name a party and a known role → ``Unauthorized`` (401); outside the
``local`` stage a token without ``exp``, or issued (``iat``) in the future, too; a role the
route does not admit → ``Forbidden`` (403).
"""
from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

from chalicelib import settings as settings_mod
from chalicelib.errors import Forbidden, NotFound, ProviderUnavailable, Unauthorized
from chalicelib.secrets import secret_of

BUYER, SELLER, FINANCE, ADMIN = "buyer", "seller", "finance", "admin"
ROLES: frozenset[str] = frozenset({BUYER, SELLER, FINANCE, ADMIN})
#: Every authenticated role (routes that any signed-in party may call).
ANY_ROLE: frozenset[str] = ROLES
#: Roles that see every party's objects (ownership checks let them through).
STAFF: frozenset[str] = frozenset({FINANCE, ADMIN})

logger = logging.getLogger("mizani.api")

_LEEWAY_SECONDS = 30  # clock skew between the identity provider and Lambda

_jwks_lock = threading.Lock()
_jwks_clients: dict[str, object] = {}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: ``sub`` is the party id (buyer, seller, staff member)."""

    sub: str
    role: str

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, else ``Unauthorized``."""
    if not authorization:
        raise Unauthorized("unauthorized", "an Authorization: Bearer <token> header is required")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("unauthorized", "the Authorization header must be 'Bearer <token>'")
    return token.strip()


def authenticate(authorization: str | None, settings: settings_mod.Settings | None = None) -> Principal:
    """Verify the bearer token and return who is calling."""
    settings = settings or settings_mod.get()
    claims = decode(bearer_token(authorization), settings)
    sub, role = claims.get("sub"), claims.get("role")
    if not isinstance(sub, str) or not sub.strip():
        raise Unauthorized("unauthorized", "the token does not name a party (claim 'sub')")
    if not isinstance(role, str) or role not in ROLES:  # identity providers send groups as lists or objects
        raise Unauthorized("unauthorized", "the token does not carry a known role (claim 'role')")
    return Principal(sub=sub, role=role)


def decode(token: str, settings: settings_mod.Settings) -> dict:
    """The verified claims of ``token`` (signature, expiry, audience, issuer)."""
    import jwt  # lazily: keeps `import app` cheap

    # Outside the sandbox every token must expire; PyJWT also refuses an ``iat`` in the future (beyond leeway).
    options: dict = {"require": ["sub", "role"] if settings.is_local else ["sub", "role", "exp"]}
    kwargs: dict = {"leeway": _LEEWAY_SECONDS}
    if settings.jwt_audience:
        kwargs["audience"] = settings.jwt_audience
    else:
        options["verify_aud"] = False
    if settings.jwt_issuer:
        kwargs["issuer"] = settings.jwt_issuer
    try:
        if settings.is_local or not settings.jwks_url:
            if not settings.is_local and secret_of(settings, "jwt_secret") == settings_mod.LOCAL_JWT_SECRET:
                # The local default is public (it is in the docs): outside the sandbox it
                # would let anyone mint an admin token. Refuse every token instead.
                logger.error("stage %s has no JWKS URL and the public local JWT secret: refusing tokens", settings.stage)
                raise Unauthorized("unauthorized", "token verification is not configured for this stage")
            key, algorithms = secret_of(settings, "jwt_secret"), ["HS256"]
        else:
            key, algorithms = _jwks_client(settings.jwks_url).get_signing_key_from_jwt(token).key, ["RS256"]
        if settings.is_local:
            # The local secret is a documented 16-byte sandbox default; PyJWT's key-length
            # warning stays on for every other stage, where a short secret is a real problem.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
                return jwt.decode(token, key, algorithms=algorithms, options=options, **kwargs)
        return jwt.decode(token, key, algorithms=algorithms, options=options, **kwargs)
    except jwt.ExpiredSignatureError:
        raise Unauthorized("unauthorized", "the token has expired") from None
    except jwt.PyJWKClientConnectionError:
        raise ProviderUnavailable("provider_unavailable", "the identity provider's keys are unreachable") from None
    except jwt.PyJWTError:
        # Never echo the library's reason: it can help an attacker probe the verifier.
        raise Unauthorized("unauthorized", "the token is not valid") from None


def _jwks_client(url: str):
    """One ``PyJWKClient`` per JWKS URL per container: signing keys are fetched once and cached."""
    found = _jwks_clients.get(url)
    if found is None:
        with _jwks_lock:
            found = _jwks_clients.get(url)
            if found is None:
                from jwt import PyJWKClient

                found = PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=5)
                _jwks_clients[url] = found
    return found


def authorize(principal: Principal, roles: Iterable[str]) -> Principal:
    """``principal`` if its role is one of ``roles``, else ``Forbidden``."""
    if principal.role not in roles:
        raise Forbidden("forbidden", f"the {principal.role} role may not use this route")
    return principal


def require_party(principal: Principal, *party_ids: str | None, what: str = "object") -> None:
    """Ownership: staff see everything; anyone else only objects naming them.

    Someone else's object answers ``NotFound`` (404), exactly like a missing one,
    so ids cannot be probed.
    """
    if principal.is_staff or principal.sub in party_ids:
        return
    raise NotFound("not_found", f"no such {what}")


def reset() -> None:
    """Forget cached JWKS clients (tests)."""
    with _jwks_lock:
        _jwks_clients.clear()
