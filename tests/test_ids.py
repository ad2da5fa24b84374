"""Minted identifiers: unique, unguessable, and sorted by the time they were made."""

from __future__ import annotations

import os
import time

import pytest

from gateway.ids import ordered_id, random_below, random_bytes


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


def test_random_below_stays_in_range_and_reaches_both_ends() -> None:
    for n in (1, 2, 3, 5, 6):
        assert {random_below(n) for _ in range(500)} == set(range(n))
    drawn = [random_below(131_072) for _ in range(4000)]
    assert all(0 <= d < 131_072 for d in drawn)
    assert min(drawn) < 1000
    assert max(drawn) > 130_000


def test_random_bytes_never_repeat_across_pool_refills() -> None:
    chunks = [random_bytes(10) for _ in range(2000)]  # several 4 KiB pools
    assert len(set(chunks)) == len(chunks)
    assert all(len(c) == 10 for c in chunks)


def test_a_forked_child_draws_bytes_of_its_own() -> None:
    random_bytes(1)  # the parent's pool is filled
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports what it would mint next
        os.write(write, random_bytes(16))
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 16)
    os.close(read)
    os.close(write)
    assert child != random_bytes(16)


def test_random_below_refuses_an_empty_range() -> None:
    for n in (0, -3):
        with pytest.raises(ValueError, match="positive"):
            random_below(n)
