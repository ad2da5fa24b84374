"""Verify our own benefit tokens, as a kiosk would, for introspection.

The key is found by exact ``kid`` in the ring (retired keys are gone), its
algorithm is pinned, ``typ`` must be ``benefit+jwt``; headers such as ``jku``,
``x5u`` or ``jwk`` are never consulted. PyJWT does the cryptography.
"""

from __future__ import annotations

from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.tokens.keys import KeyRing
from gateway.tokens.signer import BENEFIT_TYP

__all__ = ["verify_benefit_token"]

LEEWAY_S = 60


def verify_benefit_token(token: str, ring: KeyRing, issuer: str) -> dict[str, Any] | None:
    """The token's claims when it is ours, intact and unexpired; otherwise None."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        return None
    kid = header.get("kid")
    key = ring.get(kid) if isinstance(kid, str) else None
    if key is None or key.status == "retired":
        return None
    if header.get("alg") != key.alg or header.get("typ") != BENEFIT_TYP:
        return None
    private = key.private
    public: Any = (
        private.public_key()
        if isinstance(private, Ed25519PrivateKey | ec.EllipticCurvePrivateKey)
        else None
    )
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            public,
            algorithms=[key.alg],
            issuer=issuer,
            leeway=LEEWAY_S,
            options={
                "verify_aud": False,  # the caller compares aud with who is asking
                "require": ["iss", "sub", "aud", "exp", "iat", "jti", "status"],
            },
        )
    except jwt.InvalidTokenError:
        return None
    return claims
