"""Compact JWS signing (RFC 7515) with the ring's active key, through PyJWT."""

from __future__ import annotations

from typing import Any

import jwt

from gateway.tokens.keys import KeyRing

__all__ = ["BENEFIT_TYP", "STATUS_LIST_TYP", "Signer"]

BENEFIT_TYP = "benefit+jwt"
STATUS_LIST_TYP = "statuslist+jwt"


class Signer:
    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    def sign(self, claims: dict[str, Any], typ: str) -> str:
        key = self._ring.active
        if key is None:
            raise RuntimeError("no active signing key")
        return jwt.encode(
            claims, key.private, algorithm="EdDSA", headers={"kid": key.kid, "typ": typ}
        )
