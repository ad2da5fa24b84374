"""Minted identifiers: unique, unguessable, and sorted by the time they were made."""

from __future__ import annotations

import time

from gateway.ids import ordered_id


def test_an_id_is_the_prefix_then_milliseconds_then_80_random_bits() -> None:
    before = time.time_ns() // 1_000_000
    minted = ordered_id("dec_")
    after = time.time_ns() // 1_000_000
    assert minted.startswith("dec_")
    body = minted.removeprefix("dec_")
    assert len(body) == 32
    raw = bytes.fromhex(body)  # lower-case hex, nothing else
    assert body == raw.hex()
    assert before <= int.from_bytes(raw[:6], "big") <= after


def test_ids_minted_later_sort_after_earlier_ones() -> None:
    minted = []
    for _ in range(5):
        minted.append(ordered_id())
        time.sleep(0.002)
    assert minted == sorted(minted)


def test_ids_minted_in_the_same_millisecond_still_differ() -> None:
    minted = {ordered_id() for _ in range(10_000)}
    assert len(minted) == 10_000
