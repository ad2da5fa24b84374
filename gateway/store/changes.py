"""Change announcements between replicas: the fast path and the truth behind it.

A replica that changes something other replicas hold in memory (a subject's
cached credit records, the policy set, the key ring, published status lists)
announces it. Each topic has a generation counter in the store: that counter
is the truth, and a replica that sees it move without having seen the message
(pub/sub is fire-and-forget) applies the change broadly — clears the whole
cache, reloads the whole set — so a lost message costs a little work, never a
stale answer for long.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Change", "ChangeFeed", "LocalChangeFeed", "Topic"]


class Topic(StrEnum):
    RECORDS = "records"  # key: the subject's internal pseudonym
    POLICIES = "policies"
    KEYS = "keys"
    STATUS = "status"  # token statuses changed: republish status lists


@dataclass(frozen=True, slots=True)
class Change:
    topic: Topic
    generation: int
    key: str = ""
    origin: str = ""  # the announcing replica, which has applied it already


class ChangeFeed(ABC):
    """Announce changes to the other replicas and hear theirs."""

    @abstractmethod
    async def announce(self, topic: Topic, key: str = "") -> int:
        """Publish a change; the topic's new generation."""

    @abstractmethod
    async def generations(self) -> dict[Topic, int]:
        """Every topic's current generation (the periodic re-check reads this)."""

    @abstractmethod
    def listen(self) -> AsyncIterator[Change]:
        """Other replicas' announcements as they arrive, until cancelled."""


class LocalChangeFeed(ChangeFeed):
    """One process owns the embedded store: nobody else to tell."""

    def __init__(self) -> None:
        self._generations = dict.fromkeys(Topic, 0)

    async def announce(self, topic: Topic, key: str = "") -> int:
        self._generations[topic] += 1
        return self._generations[topic]

    async def generations(self) -> dict[Topic, int]:
        return dict(self._generations)

    async def listen(self) -> AsyncIterator[Change]:
        # Nothing ever arrives; the generator exists so callers need no special case.
        return
        yield  # pragma: no cover
