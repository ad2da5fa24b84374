"""Token status lists: the IETF draft's 2-bit example and the published JWT."""

from __future__ import annotations

import base64
import zlib
from pathlib import Path

import jwt

from gateway.store.embedded import STATUS_LIST_SIZE, _StatusList
from gateway.tokens.keys import KeyRing
from gateway.tokens.signer import Signer
from gateway.tokens.status_list import (
    BITS,
    INVALID,
    SUSPENDED,
    VALID,
    encode_list,
    status_list_jwt,
)

# draft-ietf-oauth-status-list, "Status List Token with 2-bit status values":
# statuses of entries 0..11, the byte array they pack to, and the encoded list.
DRAFT_STATUSES = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]
DRAFT_BYTES = b"\xc9\x44\xf9"
DRAFT_LST = "eNo76fITAAPfAgc"


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def reference_pack(statuses: list[int], bits: int) -> bytes:
    """Entry i sits in byte i * bits // 8, starting from the least significant bits."""
    per_byte = 8 // bits
    out = bytearray((len(statuses) + per_byte - 1) // per_byte)
    for i, status in enumerate(statuses):
        out[i // per_byte] |= status << ((i % per_byte) * bits)
    return bytes(out)


def test_reference_packer_agrees_with_the_draft() -> None:
    assert reference_pack(DRAFT_STATUSES, 2) == DRAFT_BYTES


def test_store_packing_reproduces_the_draft_vector() -> None:
    slist = _StatusList()
    for index, status in enumerate(DRAFT_STATUSES):
        slist.set(index, status)
    assert bytes(slist.bits[:3]) == DRAFT_BYTES
    assert not any(slist.bits[3:])
    assert [slist.get(i) for i in range(12)] == DRAFT_STATUSES


def test_store_packing_in_any_order_and_overwrites() -> None:
    slist = _StatusList()
    for index in reversed(range(12)):
        slist.set(index, 3)
    for index, status in reversed(list(enumerate(DRAFT_STATUSES))):
        slist.set(index, status)
    assert bytes(slist.bits[:3]) == DRAFT_BYTES


def test_store_packing_far_into_the_list() -> None:
    slist = _StatusList()
    last = STATUS_LIST_SIZE - 1
    slist.set(last, SUSPENDED)
    slist.set(1001, INVALID)
    expected = [0] * STATUS_LIST_SIZE
    expected[last] = SUSPENDED
    expected[1001] = INVALID
    assert bytes(slist.bits) == reference_pack(expected, 2)


def test_encode_list_matches_the_draft_and_decodes() -> None:
    assert zlib.decompress(b64url_decode(DRAFT_LST)) == DRAFT_BYTES
    assert zlib.decompress(b64url_decode(encode_list(DRAFT_BYTES))) == DRAFT_BYTES
    # compression level 9 with the same zlib gives the draft's very text
    assert encode_list(DRAFT_BYTES) == DRAFT_LST


def test_encode_list_roundtrips_a_full_list() -> None:
    slist = _StatusList()
    for index in range(0, STATUS_LIST_SIZE, 997):
        slist.set(index, (index // 997) % 3)
    lst = encode_list(bytes(slist.bits))
    assert "=" not in lst
    assert zlib.decompress(b64url_decode(lst)) == bytes(slist.bits)


def test_status_values() -> None:
    assert (VALID, INVALID, SUSPENDED, BITS) == (0, 1, 2, 2)


def test_status_list_jwt_verifies_with_pyjwt(tmp_path: Path) -> None:
    ring = KeyRing.load(tmp_path / "keys", create=True)
    token = status_list_jwt(
        Signer(ring), "https://gw.example", "https://gw.example/status/1", DRAFT_BYTES, ttl=300
    )
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "statuslist+jwt"
    key = jwt.PyJWK(ring.jwks()["keys"][0])
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"])
    assert claims["sub"] == "https://gw.example/status/1"
    assert claims["iss"] == "https://gw.example"
    assert claims["status_list"]["bits"] == 2
    assert zlib.decompress(b64url_decode(claims["status_list"]["lst"])) == DRAFT_BYTES
    assert claims["exp"] - claims["iat"] == 600
    assert claims["ttl"] == 300
