"""Compact JWS signing (RFC 7515 §7.1) with the ring's active Ed25519 key.

The serialisation is three base64url parts joined by dots; we build it with
orjson and sign with cryptography directly because PyJWT's encoder, going
through the stdlib json module, cost 72 µs per token against 47 µs here
(measured on the project machine). Verification — the part where a library's
care matters — is left to standard libraries: the tests verify every kind of
token we sign with PyJWT and joserfc through the served JWKS.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.tokens.keys import KeyRing, b64url

__all__ = ["BENEFIT_TYP", "STATUS_LIST_TYP", "Signer"]

BENEFIT_TYP = "benefit+jwt"
STATUS_LIST_TYP = "statuslist+jwt"


class Signer:
    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring
        self._headers: dict[tuple[str, str], bytes] = {}

    def _header(self, kid: str, typ: str) -> bytes:
        cached = self._headers.get((kid, typ))
        if cached is None:
            header = {"alg": "EdDSA", "kid": kid, "typ": typ}
            cached = b64url(orjson.dumps(header)).encode("ascii")
            self._headers[(kid, typ)] = cached
        return cached

    def sign(self, claims: dict[str, Any], typ: str) -> str:
        key = self._ring.active
        if key is None:
            raise RuntimeError("no active signing key")
        signing_input = self._header(key.kid, typ) + b"." + b64url(orjson.dumps(claims)).encode()
        signature = key.private.sign(signing_input)
        return (signing_input + b"." + b64url(signature).encode()).decode("ascii")
