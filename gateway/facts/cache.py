"""A small TTL cache of credit records per subject, bounded in size.

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
        self._entries: OrderedDict[
            tuple[str, str], tuple[float, Sequence[CreditRecord], str | None]
        ] = OrderedDict()
        # internal pseudonym -> entry key, so a change heard from another replica
        # (which names subjects only by pseudonym) finds the entry to forget
        self._by_subject_key: dict[str, tuple[str, str]] = {}

    def get(self, kind: str, subject_id: str) -> Sequence[CreditRecord] | None:
        key = (kind, subject_id)
        hit = self._entries.get(key)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            del self._entries[key]
            if hit[2] is not None:
                self._by_subject_key.pop(hit[2], None)
            return None
        return hit[1]

    def put(
        self,
        kind: str,
        subject_id: str,
        records: Sequence[CreditRecord],
        subject_key: str | None = None,
    ) -> None:
        if self._ttl <= 0 or self._max <= 0:
            return
        self._entries[(kind, subject_id)] = (time.monotonic() + self._ttl, records, subject_key)
        if subject_key is not None:
            self._by_subject_key[subject_key] = (kind, subject_id)
        if len(self._entries) > self._max:
            _, (_, _, old_key) = self._entries.popitem(last=False)
            if old_key is not None:
                self._by_subject_key.pop(old_key, None)

    def forget(self, kind: str, subject_id: str) -> None:
        entry = self._entries.pop((kind, subject_id), None)
        if entry is not None and entry[2] is not None:
            self._by_subject_key.pop(entry[2], None)

    def forget_subject_key(self, subject_key: str) -> None:
        """Forget a subject known only by its internal pseudonym."""
        key = self._by_subject_key.pop(subject_key, None)
        if key is not None:
            self._entries.pop(key, None)
