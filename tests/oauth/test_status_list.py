"""IETF OAuth Token Status List, read back with a decoder independent of the gateway.

The decoder (``jose_kit.status_decoder``: base64url → zlib → 2 bits per entry
from the least significant bits of byte ``i // 4``) is first checked against the
draft's own example vectors, then used on the lists the gateway serves, which
are verified with PyJWT and joserfc through the JWKS.
"""

from __future__ import annotations

import itertools
import random
import time
import zlib
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jwt
import pytest

from gateway.store.embedded import STATUS_LIST_SIZE, _StatusList
from gateway.tokens.status_list import encode_list
from tests.oauth.jose_kit import (
    b64u,
    joserfc_decode,
    split_jws,
    status_decoder,
    status_list_size,
)

if TYPE_CHECKING:
    from tests.oauth.conftest import OAuthDemo

LIBRARY = "demo-library"
OPERATOR = "demo-operator"
PLATFORM = "demo-platform"
PERSON_650 = "person, credit score 650"

# draft-ietf-oauth-status-list, "Status List" examples.
DRAFT_2BIT = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]
DRAFT_2BIT_BYTES = bytes([0xC9, 0x44, 0xF9])
DRAFT_2BIT_LST = "eNo76fITAAPfAgc"
DRAFT_1BIT = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
DRAFT_1BIT_BYTES = bytes([0xB9, 0xA3])
DRAFT_1BIT_LST = "eNrbuRgAAhcBXQ"


# -- the decoder and the packer against the draft ---------------------------------------------
def test_the_independent_decoder_reads_the_drafts_vectors() -> None:
    two = status_decoder(DRAFT_2BIT_LST, 2)
    assert [two(i) for i in range(len(DRAFT_2BIT))] == DRAFT_2BIT
    one = status_decoder(DRAFT_1BIT_LST, 1)
    assert [one(i) for i in range(len(DRAFT_1BIT))] == DRAFT_1BIT
    # and from the raw bytes, compressed here with plain zlib
    raw = status_decoder(b64u(zlib.compress(DRAFT_2BIT_BYTES)), 2)
    assert [raw(i) for i in range(len(DRAFT_2BIT))] == DRAFT_2BIT
    # A decoder with the wrong bit order (most significant first) would disagree.
    msb_first = [(DRAFT_2BIT_BYTES[i // 4] >> (6 - (i % 4) * 2)) & 3 for i in range(12)]
    assert msb_first != DRAFT_2BIT


def test_the_gateways_packer_produces_the_drafts_bytes_and_lst() -> None:
    packed = _StatusList()
    for index, status in enumerate(DRAFT_2BIT):
        packed.set(index, status)
    assert bytes(packed.bits[:3]) == DRAFT_2BIT_BYTES
    assert not any(packed.bits[3:])
    assert [packed.get(i) for i in range(len(DRAFT_2BIT))] == DRAFT_2BIT
    assert encode_list(DRAFT_2BIT_BYTES) == DRAFT_2BIT_LST
    assert encode_list(DRAFT_1BIT_BYTES) == DRAFT_1BIT_LST


def test_the_packer_and_the_decoder_agree_everywhere() -> None:
    rng = random.Random(7)
    packed = _StatusList()
    expected: dict[int, int] = {}
    for _ in range(2000):
        index, status = rng.randrange(STATUS_LIST_SIZE), rng.choice((0, 1, 2, 3))
        packed.set(index, status)
        expected[index] = status
    # overwriting an entry leaves its neighbours alone
    packed.set(5, 3)
    packed.set(5, 1)
    expected[5] = 1
    decode = status_decoder(encode_list(bytes(packed.bits)), 2)
    assert all(decode(i) == s for i, s in expected.items())
    untouched = [i for i in range(0, STATUS_LIST_SIZE, 97) if i not in expected]
    assert all(decode(i) == 0 for i in untouched)


# -- the served list ----------------------------------------------------------------------------
async def test_the_served_status_list_is_a_verified_statuslist_jwt(oauth_demo: OAuthDemo) -> None:
    token = await oauth_demo.granted_token(oauth_demo.subject(PERSON_650), "library", LIBRARY)
    uri = split_jws(token)[1]["status"]["status_list"]["uri"]
    response = await oauth_demo.client.get(urlsplit(uri).path)  # public: no credentials
    assert response.status == 200
    assert response.content_type == "application/statuslist+jwt"
    assert int(response.headers["Cache-Control"].rsplit("=", 1)[1]) <= 60
    text = await response.text()

    header, claims = await oauth_demo.status_list(token)  # verified with PyJWT
    assert header["typ"] == "statuslist+jwt"
    assert header["alg"] == "EdDSA"
    assert claims["sub"] == uri
    assert claims["iss"] == oauth_demo.issuer
    assert isinstance(claims["ttl"], int)
    assert claims["ttl"] > 0
    assert claims["exp"] > claims["iat"]
    assert claims["exp"] > time.time()
    assert claims["status_list"]["bits"] == 2
    assert status_list_size(claims["status_list"]["lst"], 2) >= 131_072

    by_joserfc = joserfc_decode(text, await oauth_demo.jwks(), ["EdDSA"])
    assert by_joserfc.header["typ"] == "statuslist+jwt"
    assert by_joserfc.claims == claims

    assert await oauth_demo.status_bit(token) == 0
    # A status list is not a benefit token: introspection refuses it.
    assert await oauth_demo.introspect(text, LIBRARY) == {"active": False}


async def test_unknown_status_lists_are_404(oauth_demo: OAuthDemo) -> None:
    for list_id in ("0000000000000000", "..%2F..%2Fring.json", "x' OR '1'='1"):
        response = await oauth_demo.client.get(f"/v1/status-lists/{list_id}")
        assert response.status == 404, list_id
        assert response.content_type == "application/problem+json"


async def test_indexes_are_handed_out_at_random(oauth_demo: OAuthDemo) -> None:
    person = oauth_demo.subject(PERSON_650)
    indexes = []
    for _ in range(6):
        token = await oauth_demo.granted_token(person, "library", LIBRARY)
        indexes.append(split_jws(token)[1]["status"]["status_list"]["idx"])
    assert len(set(indexes)) == len(indexes)
    steps = {b - a for a, b in itertools.pairwise(indexes)}
    assert steps != {1}, "sequential indexes would let a list reveal issuance order"


async def test_forced_key_retirement_sets_the_bit(oauth_demo: OAuthDemo) -> None:
    demo = oauth_demo
    person = demo.subject(PERSON_650)
    token = await demo.granted_token(person, "library", LIBRARY)
    other_list_entries = await _live_neighbours(demo)
    assert await demo.status_bit(token) == 0

    admin = await demo.bearer(OPERATOR)
    old_kid = jwt.get_unverified_header(token)["kid"]
    new_kid = (await (await demo.client.post("/v1/admin/keys", json={}, headers=admin)).json())[
        "kid"
    ]
    activated = await demo.client.post(
        f"/v1/admin/keys/{new_kid}/activate", json={"force": True}, headers=admin
    )
    assert activated.status == 200
    survivor = await demo.granted_token(person, "library", LIBRARY)
    retired = await demo.client.post(
        f"/v1/admin/keys/{old_kid}/retire", json={"force": True}, headers=admin
    )
    assert retired.status == 200

    header, _ = await demo.status_list(token)
    assert header["kid"] == new_kid  # re-signed by the new key, verified through the JWKS
    assert await demo.status_bit(token) == 1
    assert await demo.status_bit(survivor) == 0
    for other in other_list_entries:
        assert await demo.status_bit(other) == 1  # also signed by the retired key


async def _live_neighbours(demo: OAuthDemo) -> list[str]:
    """Two more tokens from the same key (another subject), to see more than one bit move."""
    subject = demo.subject("person, score 640")
    return [await demo.granted_token(subject, "library", LIBRARY) for _ in range(2)]


async def test_a_credit_event_sets_the_bit_within_the_resign_window(
    oauth_demo: OAuthDemo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Introspection sees a revocation at once; the public list at its next re-signing (≤ 5 s)."""
    demo = oauth_demo
    person = demo.subject(PERSON_650)
    token = await demo.granted_token(person, "library", LIBRARY)
    assert await demo.status_bit(token) == 0

    response = await demo.client.post(
        "/v1/events/credit",
        json=_listing(person, demo.gateway.today().isoformat()),
        headers=demo.api_auth(PLATFORM),
    )
    assert response.status == 202, await response.text()
    assert (await response.json())["tokens_revoked"] >= 1
    assert await demo.introspect(token, LIBRARY) == {"active": False}

    real = time.monotonic
    monkeypatch.setattr(
        "gateway.api.service.time", SimpleNamespace(monotonic=lambda: real() + 6, time=time.time)
    )
    assert await demo.status_bit(token) == 1


def _listing(person: dict[str, Any], today: str) -> dict[str, Any]:
    return {
        "subject": {"kind": person["kind"], "id": person["id"]},
        "event": "listed",
        "record": {
            "record_id": "ev-status-1",
            "type": "dishonest_executed",
            "domain": "court_enforcement",
            "effective_document": True,
            "adverse": True,
            "decided_on": today,
        },
    }
