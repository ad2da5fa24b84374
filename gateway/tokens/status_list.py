"""IETF OAuth Token Status List: 2 bits per token, zlib-compressed, signed as a JWT.

Statuses: 0 valid, 1 invalid (revoked), 2 suspended. The packing (entry ``i``
in byte ``i // 4`` from the least significant bits) lives in the store, which
keeps the bytes; here they are compressed and signed for publication.
"""

from __future__ import annotations

import time
import zlib

from gateway.tokens.keys import b64url
from gateway.tokens.signer import STATUS_LIST_TYP, Signer

__all__ = ["BITS", "INVALID", "SUSPENDED", "VALID", "encode_list", "status_list_jwt"]

BITS = 2
VALID, INVALID, SUSPENDED = 0, 1, 2


def encode_list(packed: bytes) -> str:
    return b64url(zlib.compress(packed, 9))


def status_list_jwt(signer: Signer, issuer: str, uri: str, packed: bytes, ttl: int) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer,
        "sub": uri,
        "iat": now,
        # A cached copy must not outlive a revocation by much: exp bounds it.
        "exp": now + ttl * 2,
        "ttl": ttl,
        "status_list": {"bits": BITS, "lst": encode_list(packed)},
    }
    return signer.sign(claims, STATUS_LIST_TYP)
