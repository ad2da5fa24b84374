"""A small TTL cache of credit records per subject, bounded in size.

Entries are keyed by the subject's internal pseudonym, never its id, so a
replica told by another which subject changed (``gateway.sync``) can evict it.
Credit events (listing, repair, objection) call ``forget`` so a change takes
effect on the next decision instead of after the TTL.
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
        self._entries[key] = (time.monotonic() + self._ttl, records)
        if len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
