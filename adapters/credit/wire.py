"""The credit platform's record format on the wire, validated strictly.

One model serves the platform's lookup API, its bulk export (JSON Lines and
CSV rows) and the fake platform that serves both: a record that does not fit
is refused whole, never half-read. Unknown keys are refused too, so a renamed
field upstream shows up as an error instead of a silently missing fact.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from adapters.credit.base import CreditRecord, RecordStatus, SubjectKind

__all__ = ["ExportRow", "LookupAnswer", "RecordModel", "SubjectModel", "record_json"]

_Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]
_Id = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class _Strict(BaseModel):
    # strict: "true" is not a boolean and 1 is not a string; dates come as ISO text in JSON.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RecordModel(_Strict):
    record_id: _Id
    type: _Text
    domain: _Text
    effective_document: bool
    adverse: bool
    decided_on: dt.date
    publication_until: dt.date | None = None
    status: RecordStatus
    value: bool | int | float | Annotated[str, StringConstraints(max_length=1000)] | None = None
    title: Annotated[str, StringConstraints(max_length=500)] | None = None

    def record(self) -> CreditRecord:
        return CreditRecord(
            record_id=self.record_id,
            type=self.type,
            domain=self.domain,
            effective_document=self.effective_document,
            adverse=self.adverse,
            decided_on=self.decided_on,
            publication_until=self.publication_until,
            status=self.status,
            value=self.value,
            title=self.title,
        )


class SubjectModel(_Strict):
    kind: SubjectKind
    id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class LookupAnswer(_Strict):
    """The platform's answer to ``POST /v1/records/query``."""

    subject: SubjectModel
    records: list[RecordModel] = Field(max_length=10_000)


class ExportRow(RecordModel):
    """One line of the platform's bulk export: a record with its subject."""

    subject_kind: SubjectKind
    subject_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


def record_json(record: CreditRecord) -> dict[str, Any]:
    """A record as the platform writes it (dates as ISO text)."""
    return {
        "record_id": record.record_id,
        "type": record.type,
        "domain": record.domain,
        "effective_document": record.effective_document,
        "adverse": record.adverse,
        "decided_on": record.decided_on.isoformat(),
        "publication_until": (
            record.publication_until.isoformat() if record.publication_until else None
        ),
        "status": record.status.value,
        "value": record.value,
        "title": record.title,
    }
