"""A commitment record: what a hall registered, on which decision, and how it ended."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any, Literal

import orjson

__all__ = [
    "BREACH_RECORD_TYPE",
    "Commitment",
    "CommitmentKind",
    "CommitmentStatus",
    "index_member",
]

# The record type a breach becomes for the fact builder (policies/catalogue.yaml).
BREACH_RECORD_TYPE = "commitment_breached"

CommitmentKind = Literal["tolerant_acceptance", "notification"]
CommitmentStatus = Literal["open", "fulfilled", "breached"]
KINDS: tuple[CommitmentKind, ...] = ("tolerant_acceptance", "notification")
STATUSES: tuple[CommitmentStatus, ...] = ("open", "fulfilled", "breached")


def index_member(due: dt.date, commitment_id: str) -> str:
    """How indexes order commitments: by due date, then id (also the list cursor)."""
    return f"{due.isoformat()}|{commitment_id}"


@dataclass(frozen=True, slots=True)
class Commitment:
    commitment_id: str
    partner: str  # the hall that registered it (and made the decision)
    decision_id: str
    kind: CommitmentKind
    subject_kind: str
    subject_key: str  # internal pseudonym (keyed hash): never leaves the gateway
    subject: str  # the hall's pseudonym of the subject, as its decision token's `sub`
    missing_materials: tuple[str, ...]
    due: dt.date
    created_at: str
    withhold_days: int  # how long a breach withholds 容缺 (from the granting policy)
    status: CommitmentStatus = "open"
    closed_at: str | None = None
    breach: Literal["overdue", "false_commitment"] | None = None
    withhold_until: dt.date | None = None  # set on breach
    check_result: bool | None = None  # 告知承诺: what the later check found

    @property
    def member(self) -> str:
        return index_member(self.due, self.commitment_id)

    def closed(self, **changes: Any) -> Commitment:
        return replace(self, **changes)

    def public(self) -> dict[str, Any]:
        """What the hall sees (API.md "Commitments")."""
        body: dict[str, Any] = {
            "commitment_id": self.commitment_id,
            "decision_id": self.decision_id,
            "kind": self.kind,
            "status": self.status,
            "subject": self.subject,
            "missing_materials": list(self.missing_materials),
            "due": self.due.isoformat(),
            "created_at": self.created_at,
        }
        if self.closed_at is not None:
            body["closed_at"] = self.closed_at
        if self.breach is not None:
            body["breach"] = self.breach
        if self.check_result is not None:
            body["check_result"] = "true" if self.check_result else "false"
        return body

    def to_json(self) -> bytes:
        d = {name: getattr(self, name) for name in self.__dataclass_fields__}
        d["missing_materials"] = list(self.missing_materials)
        d["due"] = self.due.isoformat()
        d["withhold_until"] = self.withhold_until.isoformat() if self.withhold_until else None
        return orjson.dumps(d)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Commitment:
        d = orjson.loads(raw)
        d["missing_materials"] = tuple(d["missing_materials"])
        d["due"] = dt.date.fromisoformat(d["due"])
        if d.get("withhold_until"):
            d["withhold_until"] = dt.date.fromisoformat(d["withhold_until"])
        return cls(**d)
