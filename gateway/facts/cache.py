"""A small TTL cache of credit records per subject, bounded in size.

Entries are keyed by the subject's internal pseudonym, never its id, so a
replica told by another which subject changed (``gateway.sync``) can evict it.
Credit events (listing, repair, objection) call ``forget`` so a change takes
effect on the next decision instead of after the TTL.

Entries stay in the order they were put, and every entry lives the same TTL,
so the oldest entry is also the first to expire: each ``put`` drops the expired
ones from the front. Held memory then follows the subjects asked about within
one TTL (at most ``max_entries``, ~0.8 kB each with one or two records), not
every subject ever asked about.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence

from adapters.credit.base import CreditRecord

__all__ = ["RecordCache"]


class RecordCache:
    def __init__(self, ttl_seconds: float, max_entries: int) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[float, Sequence[CreditRecord]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Sequence[CreditRecord] | None:
        hit = self._entries.get(key)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            del self._entries[key]
            return None
        return hit[1]

    def put(self, key: str, records: Sequence[CreditRecord]) -> None:
        if self._ttl <= 0 or self._max <= 0:
            return
        now = time.monotonic()
        entries = self._entries
        entries[key] = (now + self._ttl, records)
        entries.move_to_end(key)  # a refreshed entry expires last, so it belongs last
        # The front holds the earliest expiry: sweep while it has passed (amortised O(1)).
        while entries:
            first = next(iter(entries.values()))
            if first[0] >= now and len(entries) <= self._max:
                break
            entries.popitem(last=False)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
