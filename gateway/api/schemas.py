"""Request bodies of the HTTP contract (API.md) as pydantic models."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
)

from gateway.errors import FieldError

__all__ = [
    "ConsentBody",
    "CreditEventBody",
    "DecisionBody",
    "FeedbackBody",
    "Subject",
    "field_errors",
]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Subject(_Body):
    kind: Literal["enterprise", "person"]
    id: str = Field(min_length=1, max_length=32)


class DecisionBody(_Body):
    subject: Subject
    purpose: str = Field(pattern=_NAME)
    consent_id: str | None = Field(None, max_length=128)
    staff_id: str | None = Field(None, max_length=64)
    context: dict[str, Any] = Field(default_factory=dict)


class FeedbackBody(_Body):
    applied: StrictBool
    detail: dict[str, Any] = Field(default_factory=dict)


class ConsentBody(_Body):
    subject: Subject
    partner: str = Field(pattern=_NAME)
    scenes: list[str] = Field(min_length=1, max_length=16)
    purpose: str = Field(pattern=_NAME)
    expires_at: AwareDatetime


class EventRecord(_Body):
    record_id: str = Field(min_length=1, max_length=128)
    type: str | None = Field(None, max_length=64)
    domain: str | None = Field(None, max_length=64)
    effective_document: StrictBool = False
    adverse: StrictBool = True
    decided_on: dt.date | None = None
    publication_until: dt.date | None = None
    status: Literal["active", "repaired", "expired", "under_objection"] = "active"
    value: StrictBool | StrictInt | float | str | None = None
    title: str | None = Field(None, max_length=256)


class CreditEventBody(_Body):
    subject: Subject
    event: Literal[
        "listed", "delisted", "repaired", "objection_opened", "objection_closed", "record_added"
    ]
    record: EventRecord


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """Pydantic's errors as JSON pointers, without echoing the input (it may be personal)."""
    out = []
    for err in exc.errors(include_input=False, include_url=False):
        pointer = prefix + "".join(f"/{part}" for part in err["loc"])
        out.append(FieldError(pointer or "/", err["msg"]))
    return out
