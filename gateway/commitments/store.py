"""The commitments store contract; one implementation per backend.

A commitment closes (fulfilled or breached) only while it is open, and the
events its closing emits are written in the same transaction or script: two
replicas sweeping the same overdue commitment at once close it once and emit
once, and a crash never leaves a breach without its event.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod

from gateway.commitments.models import Commitment, CommitmentStatus
from gateway.outbox.models import OutboxItem

__all__ = ["CommitmentStore"]


class CommitmentStore(ABC):
    @abstractmethod
    async def open(self) -> None:
        """Create what the backend needs (idempotent)."""

    @abstractmethod
    async def register(self, commitment: Commitment) -> bool:
        """Store a new open commitment; False when its id exists already."""

    @abstractmethod
    async def get(self, commitment_id: str) -> Commitment | None: ...

    @abstractmethod
    async def close(self, closed: Commitment, events: list[OutboxItem]) -> bool:
        """Replace the open commitment by ``closed`` and queue ``events``, atomically;
        False (and nothing written) when it is not open any more."""

    @abstractmethod
    async def list_for(
        self,
        partner: str,
        status: CommitmentStatus | None,
        due_before: dt.date | None,
        after: str | None,
        limit: int,
    ) -> list[Commitment]:
        """A hall's commitments by due date then id, after the cursor ``after``
        (an index member), due strictly before ``due_before``."""

    @abstractmethod
    async def overdue(self, today: dt.date, limit: int) -> list[Commitment]:
        """Open commitments due before ``today``, earliest first."""

    @abstractmethod
    async def breaches(self, subject_key: str, today: dt.date) -> list[Commitment]:
        """The subject's breached commitments still withholding on ``today``."""

    @abstractmethod
    async def counts(self, partner: str) -> dict[str, int]:
        """A hall's commitments by ``kind:status`` (statistics)."""
