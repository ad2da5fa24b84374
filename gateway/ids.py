"""Identifiers the gateway mints: unguessable, unique, and ordered by time.

A random id lands on a random leaf of the store's primary-key index, so each
group commit dirtied several index pages per decision. With the creation time
in front, new ids go to the right-most leaf, as an append would. The time
they show is the decision's own ``iat``, which whoever holds the id already
has; 80 random bits follow it.

Base32 "extended hex" keeps the characters' sort order equal to the bytes'.
"""

from __future__ import annotations

import base64
import secrets
import time

__all__ = ["ordered_id"]


def ordered_id(prefix: str = "") -> str:
    """``prefix`` + 26 characters: 48 bits of Unix milliseconds, then 80 random bits."""
    raw = (time.time_ns() // 1_000_000).to_bytes(6, "big") + secrets.token_bytes(10)
    return prefix + base64.b32hexencode(raw).decode("ascii").rstrip("=").lower()
