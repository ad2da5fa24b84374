"""JOSE helpers for the OAuth tests, written here rather than taken from the gateway.

Hand-built compact JWS (for headers and algorithms no library will produce),
verification with PyJWT and joserfc through a served JWKS, and an independent
decoder for the IETF OAuth Token Status List.
"""

from __future__ import annotations

import base64
import warnings
import zlib
from collections.abc import Callable
from typing import Any

import jwt
import orjson
from joserfc import jwt as jose_jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def compact(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """``header.claims.signature`` with ``sign`` applied to the signing input."""
    signing_input = f"{b64u(orjson.dumps(header))}.{b64u(orjson.dumps(claims))}".encode()
    return f"{signing_input.decode()}.{b64u(sign(signing_input))}"


def split_jws(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (header, claims) of a compact JWS, unverified."""
    header, payload, _ = token.split(".")
    return orjson.loads(b64u_decode(header)), orjson.loads(b64u_decode(payload))


def status_decoder(lst: str, bits: int) -> Callable[[int], int]:
    """IETF Token Status List: base64url → zlib → entry i from the low bits of its byte.

    For bits = 2 this is ``(byte[i // 4] >> ((i % 4) * 2)) & 3``.
    """
    if bits not in (1, 2, 4, 8):
        raise ValueError(f"a status list has 1, 2, 4 or 8 bits per entry, not {bits}")
    raw = zlib.decompress(b64u_decode(lst))
    per_byte = 8 // bits
    mask = (1 << bits) - 1

    def status(index: int) -> int:
        return (raw[index // per_byte] >> ((index % per_byte) * bits)) & mask

    return status


def status_list_size(lst: str, bits: int) -> int:
    return len(zlib.decompress(b64u_decode(lst))) * 8 // bits


def pyjwt_decode(token: str, jwks: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Verify with PyJWT, the key found by exact kid in ``jwks`` and its alg pinned."""
    kid = jwt.get_unverified_header(token)["kid"]
    matches = [k for k in jwks["keys"] if k["kid"] == kid]
    if len(matches) != 1:
        raise jwt.InvalidKeyError(f"kid {kid!r} is served {len(matches)} times")
    key = jwt.PyJWK(matches[0])
    claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=[matches[0]["alg"]], **kwargs)
    return claims


def joserfc_decode(token: str, jwks: dict[str, Any], algorithms: list[str]) -> Any:
    """Verify with joserfc through a KeySet imported from ``jwks``.

    joserfc warns that the polymorphic ``EdDSA`` name is deprecated by RFC 9864
    (in favour of ``Ed25519``); our tokens say ``EdDSA`` as DESIGN §6 and the
    JWKS do, so that one warning is silenced here and nowhere else.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "EdDSA is deprecated", SecurityWarning)
        return jose_jwt.decode(token, KeySet.import_key_set(jwks), algorithms=algorithms)


def joserfc_claims_check(token: Any, *, iss: str, aud: str) -> None:
    """joserfc's own claims registry: iss, aud, exp, nbf, iat."""
    jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": iss},
        aud={"essential": True, "value": aud},
        exp={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
    ).validate(token.claims)
