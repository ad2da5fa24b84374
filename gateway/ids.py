"""Identifiers the gateway mints: unguessable, unique, and ordered by time.

A random id lands on a random leaf of the store's primary-key index, so each
group commit dirtied several index pages per decision. With the creation time
in front, new ids go to the right-most leaf, as an append would. The time
they show is the decision's own ``iat``, which whoever holds the id already
has; 80 random bits follow it.

Lower-case hex sorts like the bytes it encodes (base32hex would too, but the
stdlib's encoder is pure Python and cost ~5 µs an id).
"""

from __future__ import annotations

import secrets
import time

__all__ = ["ordered_id"]


def ordered_id(prefix: str = "") -> str:
    """``prefix`` + 32 hex digits: 48 bits of Unix milliseconds, then 80 random bits."""
    return f"{prefix}{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"
