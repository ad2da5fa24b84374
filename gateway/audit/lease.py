"""One replica's hold on the audit tree builder's lease (``AuditTreeStore.take_builder_lease``).

Every replica's ``AuditLog`` follows the log in the background. Were each to
build the tree, N replicas would read every record and hash it N times, and
``extend_tree``'s compare-and-set would keep one result. So the background
builder runs only while its replica holds the lease: it takes the lease when
it is free, renews it three times per lifetime (one late renewal does not lose
it) and gives it up on a clean shutdown. A replica that dies keeps the lease
until it expires; the next replica to ask then takes it, so the tree and its
checkpoints pause for at most the lifetime plus one renewal interval.
"""

from __future__ import annotations

import math
import os
import secrets
import time

from gateway.audit.store import AuditTreeStore

__all__ = ["LEASE_S", "BuilderLease"]

# How long a silent holder keeps the lease: the bound on a failover's pause.
LEASE_S = 3.0


class BuilderLease:
    __slots__ = ("_at", "_ms", "_tree", "held", "holder", "renew_every")

    def __init__(self, tree: AuditTreeStore, seconds: float = LEASE_S) -> None:
        # The pid says which process holds it (GET on Redis); the random part tells
        # apart two logs in one process, or a pid reused on another host.
        self.holder = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._tree = tree
        self._ms = max(1, round(seconds * 1000))
        self.renew_every = seconds / 3
        self.held = False
        self._at = -math.inf  # when it was last asked for (monotonic)

    async def hold(self) -> bool:
        """Take the lease if it is free, renew it if this replica has it; whether it does."""
        # Taken before the call: the store's expiry starts later, never earlier.
        self._at = time.monotonic()
        self.held = await self._tree.take_builder_lease(self.holder, self._ms)
        return self.held

    async def keep(self) -> None:
        """Renew the lease if this replica has it and a renewal is due (a long catch-up)."""
        if self.held and time.monotonic() - self._at >= self.renew_every:
            await self.hold()

    async def release(self) -> None:
        """Give the lease up (if held), so that another replica takes over at once."""
        if self.held:
            self.held = False
            await self._tree.release_builder_lease(self.holder)
