"""Signed status lists kept for a few seconds, in a bounded cache.

Signing a status list compresses 32 KiB; kiosks may poll every list often, so
each signed list is kept briefly. The cache is bounded: entries are keyed by
list ids, and a deployment's lists only grow in number over its life.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["StatusListCache"]


class StatusListCache:
    def __init__(self, max_entries: int = 256) -> None:
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def get(self, list_id: str, now: float) -> str | None:
        """The signed list while it is fresh at ``now`` (monotonic seconds)."""
        entry = self._entries.get(list_id)
        if entry is None or entry[0] < now:
            return None
        self._entries.move_to_end(list_id)
        return entry[1]

    def put(self, list_id: str, token: str, fresh_until: float) -> None:
        self._entries[list_id] = (fresh_until, token)
        self._entries.move_to_end(list_id)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)  # the least recently served

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
