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
from gateway.feedback import FeedbackBody

__all__ = [
    "ConsentBody",
    "ConsentEvidence",
    "CounterConsentBody",
    "CreditEventBody",
    "DecisionBody",
    "FeedbackBody",
    "Subject",
    "SubjectUsesBody",
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


class ConsentEvidence(_Body):
    """Where a consent given at a partner's counter or kiosk is written down."""

    kind: Literal["signed_form", "kiosk_confirmation"]
    reference: str = Field(min_length=1, max_length=128)  # form number, kiosk receipt id


class SubjectUsesBody(_Body):
    subject: Subject


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


def field_errors(exc: ValidationError, prefix: str = "", body: Any = None) -> list[FieldError]:
    """Pydantic's errors as JSON pointers, without echoing the input (it may be personal).

    With ``body`` (what was validated), a location is cut to the part that
    addresses the body: pydantic appends union member tags ("int", "float")
    that name no field, so ``/context/loan_amount/float`` becomes
    ``/context/loan_amount``.
    """
    out = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = err["loc"] if body is None else _in_body(err["loc"], body)
        pointer = prefix + "".join(f"/{part}" for part in loc)
        error = FieldError(pointer or "/", err["msg"])
        if error not in out:
            out.append(error)
    return out


def _in_body(loc: tuple[int | str, ...], body: Any) -> list[int | str]:
    kept: list[int | str] = []
    node = body
    for part in loc:
        if isinstance(node, dict):
            kept.append(part)
            if part not in node:
                break  # a missing member: the last step that means anything
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            kept.append(part)
            node = node[part]
        else:
            break  # a scalar has no members: what follows is a union member tag
    return kept


class CounterConsentBody(_Body):
    """Consent a person gives at a partner's own counter or kiosk: for that partner alone."""

    subject: Subject
    scenes: list[str] = Field(min_length=1, max_length=16)
    purpose: str = Field(pattern=_NAME)
    expires_at: AwareDatetime
    evidence: ConsentEvidence
