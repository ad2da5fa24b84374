"""What the audit tree keeps beside the log, on every backend (and what retention drops).

The log itself (records, chain head) belongs to the core store. Beside it:
the tree's frontier and size, the stored perfect-subtree nodes
(``merkle.STORED_LEVEL`` and up), the signed checkpoints, and two indexes the
tree builder fills as it goes: decision id → sequence number (inclusion
proofs) and subject pseudonym → sequence numbers (a subject's own view); and
the builder's lease, so that one replica at a time does the building.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from gateway.audit.merkle import Frontier
from gateway.store.base import AuditRecord, Store

__all__ = ["AuditTreeStore", "TreeExtension", "audit_tree_store"]


@dataclass(slots=True)
class TreeExtension:
    """What one step of the tree builder writes, all or nothing."""

    old_size: int
    frontier: Frontier
    nodes: list[tuple[int, int, bytes]]  # (level, index, hash)
    decisions: list[tuple[str, int]]  # (decision id, seq)
    subjects: list[tuple[str, int]]  # (subject pseudonym, seq); backends may not index them


class AuditTreeStore(ABC):
    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def tree_state(self) -> Frontier: ...

    @abstractmethod
    async def extend_tree(self, step: TreeExtension) -> bool:
        """Apply ``step`` if the stored tree still has ``step.old_size`` leaves (else False:
        another replica got there first)."""

    @abstractmethod
    async def take_builder_lease(self, holder: str, ttl_ms: int) -> bool:
        """Take the tree builder's lease for ``holder``, or renew it if ``holder`` has
        it, for ``ttl_ms``; False while another holder's lease runs.

        The lease only saves work: replicas that do not hold it leave the tree to
        the one that does. Correctness never rests on it (``extend_tree`` checks the
        size), so a lease lost to a stalled clock or a failover costs a repeated step.
        """

    @abstractmethod
    async def release_builder_lease(self, holder: str) -> None:
        """Give the lease up if ``holder`` has it, so another replica takes over at once."""

    @abstractmethod
    async def node(self, level: int, index: int) -> bytes | None: ...

    @abstractmethod
    async def put_checkpoint(self, size: int, note: str) -> bool:
        """Keep the first checkpoint signed for ``size``; False when one was already kept."""

    @abstractmethod
    async def checkpoint(self, size: int) -> str | None: ...

    @abstractmethod
    async def latest_checkpoint(self) -> tuple[int, str] | None: ...

    @abstractmethod
    async def checkpoints(self, after_size: int, limit: int) -> list[tuple[int, str]]:
        """Checkpoints of tree sizes above ``after_size``, smallest first."""

    @abstractmethod
    async def scan(self, cursor: int, limit: int) -> tuple[list[AuditRecord], int]:
        """Records in stored order from ``cursor`` (0 first) and the cursor after them.

        Unlike ``Store.audit_records`` this trusts no sequence number, so ``audit
        verify`` sees a damaged log as it is stored.
        """

    @abstractmethod
    async def archived_size(self) -> int:
        """How many records (seq 1 … this) have moved to archive segments."""

    @abstractmethod
    async def drop_archived(self, upto: int, records: list[AuditRecord]) -> None:
        """Let archived records go from hot state, all or nothing: the records up to
        ``upto`` (``records`` are they), their index entries and decision bodies,
        small stored nodes inside the range and the checkpoints below ``upto``."""

    @abstractmethod
    async def purge_expired(self, now: float, token_grace_s: float, feedback_before: str) -> int:
        """Drop expired idempotency and replay entries, token records expired more than
        ``token_grace_s`` ago and feedback older than ``feedback_before`` (ISO time)
        where the backend does not expire them itself; how many went."""

    @abstractmethod
    async def decision_seq(self, decision_id: str) -> int | None: ...

    @abstractmethod
    async def subject_seqs(self, subjects: set[str]) -> list[int]:
        """Seqs of the hot records carrying any of these pseudonyms, in order."""


def audit_tree_store(store: Store) -> AuditTreeStore:
    """The tree store that lives beside ``store``'s log."""
    from gateway.store.embedded import EmbeddedStore

    if isinstance(store, EmbeddedStore):
        from gateway.store.embedded.audit_tree import EmbeddedAuditTree

        return EmbeddedAuditTree(store)
    from gateway.store.redis import RedisStore

    if isinstance(store, RedisStore):
        from gateway.store.redis.audit_tree import RedisAuditTree

        return RedisAuditTree(store)
    raise TypeError(f"no audit tree for {type(store).__name__}")
