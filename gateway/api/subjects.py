"""A subject's own view (API.md "Audit": ``POST /v1/subjects/uses``), through its platform."""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from gateway.api.http import json_response, read_json, require_object
from gateway.api.keys import GATEWAY
from gateway.api.schemas import SubjectUsesBody, field_errors
from gateway.api.spec import (
    AUTH_ERRORS,
    BEARER,
    WRITE_ERRORS,
    ApiPart,
    json_content,
    model_ref,
    problem,
)
from gateway.audit.uses import subject_uses
from gateway.errors import FieldError, InvalidRequest
from gateway.identifiers import InvalidIdentifier, validate_subject_id

__all__ = ["openapi", "routes"]

routes = web.RouteTableDef()
openapi = ApiPart()


@routes.post("/v1/subjects/uses")
async def uses(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    caller = await gw.authenticate(request)
    gw.partners.require_kind(caller, "platform")
    data = require_object(await read_json(request))
    try:
        body = SubjectUsesBody.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(
            "the request does not match the schema", errors=field_errors(exc)
        ) from None
    try:
        subject_id = validate_subject_id(body.subject.kind, body.subject.id)
    except InvalidIdentifier as exc:
        raise InvalidRequest(
            "invalid subject", errors=[FieldError("/subject/id", str(exc))]
        ) from None
    found = await subject_uses(
        gw.audit,
        gw.store,
        gw.pseudonyms,
        list(gw.partners.by_id.values()),
        body.subject.kind,
        subject_id,
    )
    return json_response({"uses": found})


openapi.model(SubjectUsesBody)
openapi.add(
    "/v1/subjects/uses",
    "post",
    {
        "summary": "Every use of a subject's credit data (partners of kind platform)",
        "description": "A POST so that no personal id goes into a URL. Each use names the "
        "partner, time, purpose, scene and outcome; a decision also its explanation "
        "(rules, legal bases, fact names).",
        "security": BEARER,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model_ref("SubjectUsesBody")}},
        },
        "responses": {
            "200": json_content({"type": "object"}),
            "403": problem("not a platform partner (forbidden_kind)"),
            **WRITE_ERRORS,
            **AUTH_ERRORS,
        },
    },
)
