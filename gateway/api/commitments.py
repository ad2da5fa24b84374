"""信易批 commitments (API.md "Commitments"): registered, fulfilled, checked, listed by halls."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.api.components import idempotent
from gateway.api.http import json_response, read_json, require_object
from gateway.api.idempotency import run_idempotent
from gateway.api.keys import GATEWAY
from gateway.api.schemas import Subject, field_errors
from gateway.api.spec import (
    AUTH_ERRORS,
    BEARER,
    WRITE_ERRORS,
    ApiPart,
    json_content,
    model_ref,
    path_param,
    problem,
    query_param,
)
from gateway.commitments.models import STATUSES, index_member
from gateway.errors import FieldError, InvalidRequest
from gateway.identifiers import InvalidIdentifier, validate_subject_id
from gateway.runtime import Gateway
from gateway.settings import Partner

__all__ = ["openapi", "routes"]

routes = web.RouteTableDef()
openapi = ApiPart()

_PAGE = 50


class CommitmentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision_id: str = Field(min_length=1, max_length=64)
    kind: Literal["tolerant_acceptance", "notification"] = "tolerant_acceptance"
    # The applicant the decision was made on: the gateway keeps no subject id with
    # a decision, so the hall names it again and the gateway checks it.
    subject: Subject
    missing_materials: list[str] = Field(default_factory=list, max_length=20)
    due: dt.date


class CheckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result: Literal["true", "false"]


async def _hall(request: web.Request) -> tuple[Gateway, Partner]:
    gw = request.app[GATEWAY]
    caller = await gw.authenticate(request)
    gw.partners.require_kind(caller, "service_hall")
    return gw, caller


@routes.post("/v1/commitments")
async def register(request: web.Request) -> web.Response:
    gw, hall = await _hall(request)
    data = require_object(await read_json(request))
    return await run_idempotent(gw, request, hall, lambda: _register(gw, hall, data))


async def _register(gw: Gateway, hall: Partner, data: dict[str, Any]) -> web.Response:
    try:
        body = CommitmentBody.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(
            "the commitment does not match the schema", errors=field_errors(exc, body=data)
        ) from None
    for i, material in enumerate(body.missing_materials):
        if not material.strip() or len(material) > 200:
            raise InvalidRequest(
                "invalid material",
                errors=[FieldError(f"/missing_materials/{i}", "1 to 200 characters")],
            )
    try:
        subject_id = validate_subject_id(body.subject.kind, body.subject.id)
    except InvalidIdentifier as exc:
        raise InvalidRequest(
            "invalid subject", errors=[FieldError("/subject/id", str(exc))]
        ) from None
    commitment = await gw.commitments.register(
        hall,
        decision_id=body.decision_id,
        kind=body.kind,
        subject_kind=body.subject.kind,
        subject_id=subject_id,
        missing_materials=body.missing_materials,
        due=body.due,
        now=gw.now(),
        today=gw.today(),
    )
    return json_response(commitment.public(), status=201)


# Registered before /v1/commitments/{commitment_id}, which would take "stats" for an id.
@routes.get("/v1/commitments/stats")
async def stats(request: web.Request) -> web.Response:
    """The hall's commitments by kind and status: how many of its approvals rest on
    a commitment, and how they ended (the share per hall of approvals granted on
    commitments is also in the metrics: xinyi_commitments_total against
    xinyi_decisions_total{scene="approval"})."""
    gw, hall = await _hall(request)
    counts = await gw.commitments.store.counts(hall.id)
    by_kind: dict[str, dict[str, int]] = {}
    for kind in ("tolerant_acceptance", "notification"):
        row: dict[str, int] = {s: counts.get(f"{kind}:{s}", 0) for s in STATUSES}
        row["registered"] = sum(row.values())
        by_kind[kind] = row
    return json_response({"hall": hall.id, "commitments": by_kind})


@routes.get("/v1/commitments/{commitment_id}")
async def get_one(request: web.Request) -> web.Response:
    gw, hall = await _hall(request)
    commitment = await gw.commitments.own(hall, request.match_info["commitment_id"])
    return json_response(commitment.public())


@routes.post("/v1/commitments/{commitment_id}/fulfil")
async def fulfil(request: web.Request) -> web.Response:
    gw, hall = await _hall(request)
    commitment = await gw.commitments.fulfil(hall, request.match_info["commitment_id"], gw.now())
    return json_response(commitment.public())


@routes.post("/v1/commitments/{commitment_id}/check")
async def check(request: web.Request) -> web.Response:
    gw, hall = await _hall(request)
    data = require_object(await read_json(request))
    try:
        body = CheckBody.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(
            "the check does not match the schema", errors=field_errors(exc, body=data)
        ) from None
    commitment = await gw.commitments.check(
        hall, request.match_info["commitment_id"], body.result == "true", gw.now()
    )
    return json_response(commitment.public())


def _cursor(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        member = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        due, ident = member.split("|", 1)
        dt.date.fromisoformat(due)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidRequest(
            "invalid cursor", errors=[FieldError("/cursor", "use the next_cursor of a page")]
        ) from None
    return index_member(dt.date.fromisoformat(due), ident)


@routes.get("/v1/commitments")
async def list_own(request: web.Request) -> web.Response:
    gw, hall = await _hall(request)
    query = request.query
    # A parameter given empty is a bad value, not an absent one.
    raw_status = query.get("status")
    status = next((s for s in STATUSES if s == raw_status), None)
    if raw_status is not None and status is None:
        raise InvalidRequest(
            "invalid status", errors=[FieldError("/status", f"one of {', '.join(STATUSES)}")]
        )
    due_before = None
    if "due_before" in query:
        try:
            due_before = dt.date.fromisoformat(query["due_before"])
        except ValueError:
            raise InvalidRequest(
                "invalid due_before", errors=[FieldError("/due_before", "a date, YYYY-MM-DD")]
            ) from None
    after = _cursor(query.get("cursor"))
    page = await gw.commitments.store.list_for(
        hall.id,
        status,
        due_before,
        after,
        _PAGE + 1,
    )
    body: dict[str, Any] = {"commitments": [c.public() for c in page[:_PAGE]]}
    if len(page) > _PAGE:
        last = page[_PAGE - 1].member.encode()
        body["next_cursor"] = base64.urlsafe_b64encode(last).decode().rstrip("=")
    return json_response(body)


# -- OpenAPI ------------------------------------------------------------------------------
_COMMITMENT = {
    "type": "object",
    "required": ["commitment_id", "decision_id", "kind", "status", "due"],
    "properties": {
        "commitment_id": {"type": "string"},
        "decision_id": {"type": "string"},
        "kind": {"enum": ["tolerant_acceptance", "notification"]},
        "status": {"enum": list(STATUSES)},
        "subject": {"type": "string", "description": "the hall's pseudonym of the subject"},
        "missing_materials": {"type": "array", "items": {"type": "string"}},
        "due": {"type": "string", "format": "date"},
        "created_at": {"type": "string", "format": "date-time"},
        "closed_at": {"type": "string", "format": "date-time"},
        "breach": {"enum": ["overdue", "false_commitment"]},
        "check_result": {"enum": ["true", "false"]},
    },
}
_ERRORS = {
    **AUTH_ERRORS,
    "403": problem("the caller is not a service hall"),
}
_ID = path_param("commitment_id")
openapi.schemas["Commitment"] = _COMMITMENT
openapi.model(CommitmentBody, CheckBody)
openapi.add(
    "/v1/commitments",
    "post",
    idempotent(
        {
            "summary": "Register a commitment (容缺受理 or 告知承诺) on the hall's own decision",
            "description": "The decision must have granted the matching benefit; a 容缺 commitment "
            "names at most the materials and days the decision allowed. Idempotency-Key accepted.",
            "security": BEARER,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": model_ref("CommitmentBody")}},
            },
            "responses": {
                "201": json_content(model_ref("Commitment"), "registered, status open"),
                **_ERRORS,
                **WRITE_ERRORS,
            },
        }
    ),
)
openapi.add(
    "/v1/commitments",
    "get",
    {
        "summary": "The hall's own commitments, ordered by due date",
        "security": BEARER,
        "parameters": [
            query_param("status", {"enum": list(STATUSES)}),
            query_param("due_before", {"type": "string", "format": "date"}, "due strictly before"),
            query_param("cursor", {"type": "string"}, "next_cursor of the previous page"),
        ],
        "responses": {
            "200": json_content(
                {
                    "type": "object",
                    "properties": {
                        "commitments": {"type": "array", "items": model_ref("Commitment")},
                        "next_cursor": {"type": "string"},
                    },
                }
            ),
            **_ERRORS,
            "422": problem("a query parameter fails validation"),
        },
    },
)
openapi.add(
    "/v1/commitments/stats",
    "get",
    {
        "summary": "The hall's commitments by kind and status (registered, open, fulfilled, "
        "breached)",
        "security": BEARER,
        "responses": {"200": json_content({"type": "object"}), **_ERRORS},
    },
)
openapi.add(
    "/v1/commitments/{commitment_id}",
    "get",
    {
        "summary": "One of the hall's commitments",
        "security": BEARER,
        "parameters": [_ID],
        "responses": {
            "200": json_content(model_ref("Commitment")),
            **_ERRORS,
            "404": problem("no such commitment of this hall"),
        },
    },
)
openapi.add(
    "/v1/commitments/{commitment_id}/fulfil",
    "post",
    {
        "summary": "The applicant supplied what it committed to: status fulfilled",
        "security": BEARER,
        "parameters": [_ID],
        "responses": {
            "200": json_content(model_ref("Commitment")),
            **_ERRORS,
            "404": problem("no such commitment of this hall"),
            "409": problem("the commitment is breached, or is a notification commitment"),
        },
    },
)
openapi.add(
    "/v1/commitments/{commitment_id}/check",
    "post",
    {
        "summary": "告知承诺: the hall's later check found the commitment true or false",
        "description": "true fulfils it; false breaches it (a false commitment), which "
        "withholds 容缺 and 告知承诺 from the subject's later approval decisions.",
        "security": BEARER,
        "parameters": [_ID],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model_ref("CheckBody")}},
        },
        "responses": {
            "200": json_content(model_ref("Commitment")),
            **_ERRORS,
            **WRITE_ERRORS,
            "404": problem("no such commitment of this hall"),
            "409": problem("not a notification commitment, or closed already"),
        },
    },
)
