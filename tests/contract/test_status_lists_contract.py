"""Token status lists' contract: unique slots, two bits an entry in the draft's layout."""

from __future__ import annotations

import base64
import time
import zlib

from gateway.store.base import StatusRef, Store
from gateway.tokens.status_list import encode_list
from tests.contract.records import decision_write, issued_token


async def test_status_bits_round_trip_in_the_drafts_layout(store: Store) -> None:
    refs = [await store.allocate_status() for _ in range(200)]
    assert len({(r.list_id, r.index) for r in refs}) == 200
    assert all(0 <= r.index < 131_072 for r in refs)
    ref = refs[0]
    await store.record_decision(
        decision_write(1, issued_token(ref, "s", "k", int(time.time()) + 60), ref)
    )
    assert await store.token_status(ref) == 0
    await store.set_status(ref, 1)
    await store.set_status(StatusRef(ref.list_id, ref.index ^ 1), 2)
    assert await store.token_status(ref) == 1
    assert await store.token_status(StatusRef(ref.list_id, ref.index ^ 1)) == 2
    found = await store.status_list(ref.list_id)
    assert found is not None
    packed, size = found
    assert size == 131_072
    assert len(packed) == size // 4
    for index, expected in ((ref.index, 1), (ref.index ^ 1, 2)):
        assert (packed[index // 4] >> ((index % 4) * 2)) & 0b11 == expected
    assert zlib.decompress(_b64(encode_list(packed))) == packed
    assert await store.status_list("no-such-list") is None


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
