"""Identifiers the gateway mints: unguessable, unique, and ordered by time.

A random id lands on a random leaf of the store's primary-key index, so each
group commit dirtied several index pages per decision. With the creation time
in front, new ids go to the right-most leaf, as an append would. The time
they show is the decision's own ``iat``, which whoever holds the id already
has; 80 random bits follow it.

Lower-case hex sorts like the bytes it encodes (base32hex would too, but the
stdlib's encoder is pure Python and cost ~5 µs an id).

Random bytes come from ``os.urandom`` 4 KiB at a time: one getrandom call
per ~400 ids instead of one per id (1.4 → 0.3 µs an id here). A forked worker
starts with an empty pool, so no two processes ever share bytes. The pool has
no lock: call it from the event loop's thread only (every caller does; the
SQLite writer thread never mints ids).
"""

from __future__ import annotations

import os
import time

__all__ = ["ordered_id", "random_below", "random_bytes"]

_POOL_SIZE = 4096


class _RandomPool:
    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._pool = b""
        self._pos = 0

    def take(self, n: int) -> bytes:
        pos = self._pos
        if pos + n > len(self._pool):
            self._pool, pos = os.urandom(max(_POOL_SIZE, n)), 0
        self._pos = pos + n
        return self._pool[pos : pos + n]


_pool = _RandomPool()
random_bytes = _pool.take


def random_below(n: int) -> int:
    """A uniform random integer in [0, n), by rejection: no modulo bias."""
    if n <= 0:
        raise ValueError("random_below needs a positive bound")
    bits = (n - 1).bit_length()
    mask = (1 << bits) - 1
    size = (bits + 7) // 8
    while True:
        value = int.from_bytes(random_bytes(size), "big") & mask
        if value < n:
            return value


def ordered_id(prefix: str = "") -> str:
    """``prefix`` + 32 hex digits: 48 bits of Unix milliseconds, then 80 random bits."""
    return f"{prefix}{time.time_ns() // 1_000_000:012x}{random_bytes(10).hex()}"
