"""Request bodies of the HTTP contract (API.md) as pydantic models."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, cast

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
)
from pydantic_core import CoreSchema, SchemaValidator, core_schema

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
    "decision_validator",
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


def decision_validator(context_model: type[BaseModel]) -> SchemaValidator:
    """``DecisionBody`` with its context checked by a scene's context model, in one pass.

    The decision path validated twice (the body, then its context) and dumped
    the context model back to a dict: ~25 k instructions a decision. This is
    the same check in one call, built from the two models' own core schemas,
    so each field has the very validator it has in the models; only the
    containers become typed dicts, which answer with plain dicts. The answer:
    ``subject`` (``kind``, ``id``), ``purpose``, ``consent_id``, ``staff_id``
    and ``context``, whose optional members are None when not given (the
    models' defaults; ``model_dump(exclude_none=True)`` left them out).

    It accepts what the two models accept, and nothing else, so a body it
    refuses goes to the models for the errors they report (the pointers and
    messages of API.md): see ``gateway.api.decisions``. Memoised per context
    model (a policy reload brings new ones).
    """
    validator = _DECISION_VALIDATORS.get(context_model)
    if validator is None:
        if len(_DECISION_VALIDATORS) > 64:  # reloads leave old models behind
            _DECISION_VALIDATORS.clear()
        fields = _typed_fields(DecisionBody)
        # DecisionBody's context: {} when absent, then checked like a given one.
        fields["context"] = core_schema.typed_dict_field(
            core_schema.with_default_schema(
                _as_typed_dict(context_model.__pydantic_core_schema__),
                default_factory=dict,
                validate_default=True,
            ),
            required=False,
        )
        validator = SchemaValidator(_typed_dict(fields))
        _DECISION_VALIDATORS[context_model] = validator
    return validator


_DECISION_VALIDATORS: dict[type[BaseModel], SchemaValidator] = {}


def _as_typed_dict(schema: CoreSchema) -> core_schema.TypedDictSchema:
    """A model's core schema as a typed dict's: the same fields, nested models likewise."""
    if schema["type"] != "model":
        raise TypeError(f"not a model's core schema: {schema['type']}")
    inner_schema = cast(core_schema.ModelSchema, schema)["schema"]
    if inner_schema["type"] != "model-fields":
        raise TypeError(f"not a plain model's core schema: {inner_schema['type']}")
    fields = {}
    for name, field in cast(core_schema.ModelFieldsSchema, inner_schema)["fields"].items():
        inner: CoreSchema = field["schema"]
        # A field with a default may be left out (typed dicts fill in the default too).
        required = inner["type"] != "default"
        if inner["type"] == "model":
            inner = _as_typed_dict(inner)
        fields[name] = core_schema.typed_dict_field(inner, required=required)
    return _typed_dict(fields)


def _typed_fields(model: type[BaseModel]) -> dict[str, core_schema.TypedDictField]:
    return dict(_as_typed_dict(model.__pydantic_core_schema__)["fields"])


def _typed_dict(fields: dict[str, core_schema.TypedDictField]) -> core_schema.TypedDictSchema:
    # extra="forbid", as every request body and context model has it.
    return core_schema.typed_dict_schema(fields, extra_behavior="forbid")


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
