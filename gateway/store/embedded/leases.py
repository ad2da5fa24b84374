"""Named leases held in memory: the embedded store's answer to "which replica does this job".

One process owns a state directory (lock.py), so every would-be holder of an
embedded store's lease lives in this process, and the lease needs no row in
SQLite (nor a write and an fsync per renewal). A lease runs on the monotonic
clock; a holder that stops renewing loses it when it expires, as on Redis.
"""

from __future__ import annotations

import time

__all__ = ["ProcessLeases"]


class ProcessLeases:
    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[str, tuple[str, float]] = {}  # name → (holder, expires at)

    def take(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take ``name`` for ``holder``, or renew it if ``holder`` has it, for ``ttl_s``;
        False while another holder's lease runs."""
        now = time.monotonic()
        current = self._held.get(name)
        if current is not None and current[0] != holder and current[1] > now:
            return False
        self._held[name] = (holder, now + ttl_s)
        return True

    def release(self, name: str, holder: str) -> None:
        """Give ``name`` up if ``holder`` has it (another holder's lease is left alone)."""
        current = self._held.get(name)
        if current is not None and current[0] == holder:
            del self._held[name]
