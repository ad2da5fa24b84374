"""The restorations store contract, one implementation per backend.

Links are keyed by the subject's internal pseudonym and the platform's record
id (record ids are unique per subject, not across subjects); no subject id
reaches the store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import orjson

__all__ = ["RESTORING_EVENTS", "ConstraintLink", "Restoration", "RestorationStore"]

# Events after which a record is no basis for any measure (objection_closed counts
# only when the objection was upheld: the caller decides that).
RESTORING_EVENTS = frozenset({"repaired", "delisted", "objection_upheld"})


@dataclass(frozen=True, slots=True)
class ConstraintLink:
    """A constrained decision, as the credit office needs to find it again."""

    decision_id: str
    partner: str
    scene: str
    measures: tuple[str, ...]
    decided_at: str

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> ConstraintLink:
        data: dict[str, Any] = orjson.loads(raw)
        data["measures"] = tuple(data["measures"])
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Restoration:
    """One decision whose constraint lost its basis, and why."""

    cursor: str
    link: ConstraintLink
    record_id: str
    event: str
    restored_at: str

    def as_json(self) -> dict[str, Any]:
        return {
            "cursor": self.cursor,
            "decision_id": self.link.decision_id,
            "partner": self.link.partner,
            "scene": self.link.scene,
            "measures": list(self.link.measures),
            "decided_at": self.link.decided_at,
            "record_id": self.record_id,
            "event": self.event,
            "restored_at": self.restored_at,
        }


class RestorationStore(ABC):
    """Links from records to constrained decisions, and the log of restorations."""

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def link(self, subject_key: str, record_ids: Sequence[str], link: ConstraintLink) -> None:
        """Remember that a constrained decision rested on these records."""

    @abstractmethod
    async def restore(
        self, subject_key: str, record_id: str, event: str, at: str
    ) -> list[Restoration]:
        """Move the record's links to the log, at once and once: a repeated event finds none."""

    @abstractmethod
    async def restorations(self, after: str | None, limit: int) -> list[Restoration]:
        """The log in order, from just after ``after`` (a cursor it handed out)."""
