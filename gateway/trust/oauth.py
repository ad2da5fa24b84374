"""OAuth 2.0 client credentials with ``private_key_jwt`` (RFC 7523, as FAPI 2.0 profiles it).

A partner signs a short client assertion with its registered key and trades it
for an opaque access token. The asymmetric signature is checked once here; each
API call then costs one hash and one lookup.

Assertion rules: ``iss`` = ``sub`` = the partner id; ``aud`` is the issuer id
as a single string; ``exp``, ``iat`` and ``jti`` are required; lifetime at most
5 minutes; clock skew tolerated up to 60 s; ``jti`` single-use (replay cache);
EdDSA, ES256 or PS256 only, pinned per key; ``jku``, ``x5u`` and ``jwk``
headers are never used to find a key.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from gateway.settings import Partner
from gateway.store.base import AccessToken, Store
from gateway.trust.client_keys import ALLOWED_ALGS, ClientKey

__all__ = [
    "ACCESS_TOKEN_PREFIX",
    "ASSERTION_TYPE",
    "OAuthError",
    "TokenService",
    "partner_scopes",
]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ACCESS_TOKEN_PREFIX = "xat_"  # noqa: S105 - a prefix, not a secret
ACCESS_TOKEN_TTL_S = 600
MAX_ASSERTION_LIFETIME_S = 300
SKEW_S = 60

_KIND_SCOPES = {"platform": ("consents", "events"), "auditor": ("audit",), "operator": ("admin",)}


class OAuthError(Exception):
    """An RFC 6749 §5.2 error: ``error`` code, description, HTTP status."""

    def __init__(self, error: str, description: str, retry_after_s: float = 0.0) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.retry_after_s = retry_after_s
        self.status = 429 if retry_after_s else 401 if error == "invalid_client" else 400


def partner_scopes(partner: Partner) -> tuple[str, ...]:
    """What a partner may ask for: its scenes, or its kind's endpoints."""
    return tuple(partner.scenes) or _KIND_SCOPES.get(partner.kind, ())


def access_token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Issued:
    token: str
    scopes: tuple[str, ...]
    expires_in: int


class TokenService:
    def __init__(
        self,
        *,
        issuer: str,
        partners: Mapping[str, Partner],
        client_keys: Mapping[str, Mapping[str, ClientKey]],
        store: Store,
    ) -> None:
        self._issuer = issuer
        self._partners = partners
        self._keys = client_keys
        self._store = store

    def _client(self, assertion: str, client_id: str | None) -> tuple[Partner, ClientKey]:
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.InvalidTokenError as exc:
            raise OAuthError("invalid_client", "the client assertion is not a JWT") from exc
        alg = header.get("alg")
        if alg not in ALLOWED_ALGS:
            raise OAuthError("invalid_client", "client assertions must use EdDSA, ES256 or PS256")
        iss = unverified.get("iss")
        partner = self._partners.get(iss) if isinstance(iss, str) else None
        if partner is None or (client_id is not None and client_id != iss):
            raise OAuthError("invalid_client", "unknown client")
        keys = self._keys.get(partner.id, {})
        kid = header.get("kid")
        key: ClientKey | None
        if kid is None and len(keys) == 1:
            key = next(iter(keys.values()))
        else:
            # A dict lookup by exact string: path-like or injected kids match nothing.
            key = keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise OAuthError(
                "invalid_client", "the assertion's key is not registered for this client"
            )
        if key.alg != alg:
            raise OAuthError(
                "invalid_client", "the assertion's alg does not match the registered key"
            )
        return partner, key

    async def exchange(self, form: Mapping[str, str]) -> Issued:
        if form.get("grant_type") != "client_credentials":
            raise OAuthError("unsupported_grant_type", "only client_credentials is supported")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError("invalid_client", f"client_assertion_type must be {ASSERTION_TYPE}")
        assertion = form.get("client_assertion")
        if not assertion:
            raise OAuthError("invalid_request", "client_assertion is missing")
        partner, key = self._client(assertion, form.get("client_id"))
        # Each request costs a signature check: it counts against the partner's
        # rate limit like any API call, before the expensive part.
        limit = partner.rate_limit
        wait = await self._store.rate_limit(f"rl:{partner.id}", limit.per_second, limit.burst)
        if wait > 0:
            raise OAuthError("invalid_request", "too many token requests", retry_after_s=wait)
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                key.key,
                algorithms=[key.alg],
                audience=self._issuer,
                issuer=partner.id,
                leeway=SKEW_S,
                options={"require": ["exp", "iat", "jti", "iss", "sub", "aud"], "strict_aud": True},
            )
        except jwt.InvalidTokenError as exc:
            raise OAuthError("invalid_client", f"client assertion refused: {exc}") from exc
        now = time.time()
        iat, exp, jti = claims["iat"], claims["exp"], claims["jti"]
        # PyJWT coerces "123" to a number when it checks; RFC 7519 NumericDate is a JSON number.
        times = (iat, exp, claims.get("nbf", 0))
        if not all(isinstance(t, int | float) and not isinstance(t, bool) for t in times):
            raise OAuthError("invalid_client", "iat, exp and nbf must be JSON numbers")
        if claims["sub"] != partner.id:
            raise OAuthError("invalid_client", "sub must equal iss (the client id)")
        if iat > now + SKEW_S:
            raise OAuthError("invalid_client", "the assertion was issued in the future")
        if exp - iat > MAX_ASSERTION_LIFETIME_S:
            raise OAuthError("invalid_client", "client assertions may live at most 5 minutes")
        if not isinstance(jti, str) or not 8 <= len(jti) <= 256:
            raise OAuthError("invalid_client", "jti must be a string of 8 to 256 characters")
        ttl = max(exp - now, 0) + SKEW_S
        if not await self._store.claim_once(f"jti:{partner.id}:{jti}", ttl):
            raise OAuthError("invalid_client", "this client assertion was already used")

        allowed = partner_scopes(partner)
        requested = tuple(dict.fromkeys(form.get("scope", "").split()))
        if any(scope not in allowed for scope in requested):
            raise OAuthError("invalid_scope", f"this client may ask for: {' '.join(allowed)}")
        scopes = requested or allowed
        token = ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)
        await self._store.put_access_token(
            access_token_digest(token),
            AccessToken(partner.id, scopes, now + ACCESS_TOKEN_TTL_S),
        )
        return Issued(token, scopes, ACCESS_TOKEN_TTL_S)
