"""Consent records (API.md "Consent").

Platforms (the channel the subject uses) record and revoke consents for any
partner. A library, transit operator or service hall records the consent a
person gives at its own counter or kiosk (``POST /v1/consents/counter``) — for
itself alone, with the signed form's or the kiosk confirmation's reference —
and the subject revokes it through the platform.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from gateway.api.components import idempotent, link
from gateway.api.http import json_response, read_json, require_object
from gateway.api.idempotency import run_idempotent
from gateway.api.keys import GATEWAY
from gateway.api.schemas import ConsentBody, CounterConsentBody, field_errors
from gateway.api.spec import (
    AUTH_ERRORS,
    BEARER,
    WRITE_ERRORS,
    ApiPart,
    json_content,
    model_ref,
    path_param,
    problem,
)
from gateway.errors import FieldError, InvalidRequest, NotFound
from gateway.identifiers import InvalidIdentifier, validate_subject_id
from gateway.runtime import Gateway
from gateway.settings import Partner
from gateway.store.changes import Topic

__all__ = ["openapi", "routes"]

routes = web.RouteTableDef()
openapi = ApiPart()

# Partners that may record consent given at their own counter or kiosk.
COUNTER_KINDS = ("library", "transit", "service_hall")


@routes.post("/v1/consents")
async def create_consent(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    caller = await gw.authenticate(request, scope="consents")
    gw.partners.require_kind(caller, "platform")
    data = require_object(await read_json(request))
    return await run_idempotent(gw, request, caller, lambda: _create_consent(gw, caller, data))


@routes.post("/v1/consents/counter")
async def create_counter_consent(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    caller = await gw.authenticate(request, scope="consents")
    gw.partners.require_kind(caller, *COUNTER_KINDS)
    data = require_object(await read_json(request))
    return await run_idempotent(
        gw, request, caller, lambda: _create_consent(gw, caller, data, at_counter=True)
    )


async def _create_consent(
    gw: Gateway, caller: Partner, data: dict[str, Any], *, at_counter: bool = False
) -> web.Response:
    try:
        body: ConsentBody | CounterConsentBody = (
            CounterConsentBody.model_validate(data)
            if at_counter
            else ConsentBody.model_validate(data)
        )
    except ValidationError as exc:
        raise InvalidRequest(
            "the consent does not match the schema", errors=field_errors(exc)
        ) from None
    errors: list[FieldError] = []
    subject_id = body.subject.id
    try:
        subject_id = validate_subject_id(body.subject.kind, body.subject.id)
    except InvalidIdentifier as exc:
        errors.append(FieldError("/subject/id", str(exc)))
    # Consent given at a counter is for that partner alone.
    partner = (
        caller if isinstance(body, CounterConsentBody) else gw.partners.by_id.get(body.partner)
    )
    if partner is None:
        errors.append(FieldError("/partner", "no such partner"))
    else:
        for i, scene in enumerate(body.scenes):
            if scene not in partner.scenes:
                errors.append(
                    FieldError(f"/scenes/{i}", "the partner's contract does not cover this scene")
                )
        if body.purpose not in partner.purposes:
            errors.append(
                FieldError("/purpose", "the partner's contract does not cover this purpose")
            )
    if errors or partner is None:
        raise InvalidRequest("the consent has invalid fields", errors=errors)
    evidence = None
    if isinstance(body, CounterConsentBody):
        evidence = (body.evidence.kind, body.evidence.reference)
    now = gw.now()
    consent = await gw.consents.create(
        kind=body.subject.kind,
        subject_id=subject_id,
        partner=partner.id,
        scenes=body.scenes,
        purpose=body.purpose,
        expires_at=body.expires_at,
        now=now,
        created_by=caller.id,
        evidence=evidence,
    )
    answer: dict[str, Any] = {
        "consent_id": consent.consent_id,
        "partner": consent.partner,
        "scenes": list(consent.scenes),
        "purpose": consent.purpose,
        "expires_at": consent.expires_at.isoformat(),
    }
    if evidence is not None:
        answer["evidence"] = {"kind": evidence[0], "reference": evidence[1]}
    return json_response(answer, status=201)


@routes.delete("/v1/consents/{consent_id}")
async def revoke_consent(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    caller = await gw.authenticate(request, scope="consents")
    gw.partners.require_kind(caller, "platform")
    consent_id = request.match_info["consent_id"]
    consent = await gw.store.get_consent(consent_id)
    # Only the platform that recorded a consent may revoke it, and any platform one
    # given at a partner's counter (the subject revokes through the platform it
    # uses); to others it does not exist. A consent with no recorded creator
    # (seeded outside the API) is nobody's to revoke here.
    revocable = consent is not None and (
        consent.created_by == caller.id or consent.evidence_kind is not None
    )
    if consent is None or not revocable:
        raise NotFound("no such consent")
    if consent.revoked_at is not None:
        return web.Response(status=204)  # revoked already: nothing more to announce
    now = gw.now()
    await gw.consents.revoke(consent, by=caller.id, now=now)
    # The live tokens issued under it go too, and the partner hears of both.
    if await gw.revocations.consent_revoked(consent, now):
        gw.status_cache.clear()  # publish the new bits now, not after the re-sign interval
        await gw.announce(Topic.STATUS)
    return web.Response(status=204)


_CREATED = json_content(
    {
        "type": "object",
        "required": ["consent_id"],
        "properties": {"consent_id": {"type": "string"}},
    },
    "created",
)
_PLATFORM_ONLY = problem(
    "platform partners only (forbidden_kind), with the consents scope (insufficient_scope)"
)

openapi.model(ConsentBody)
openapi.add(
    "/v1/consents",
    "post",
    idempotent(
        {
            "summary": "Record a subject's consent (platform partners)",
            "security": BEARER,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": model_ref("ConsentBody")}},
            },
            "responses": {
                "201": _CREATED
                | {
                    "links": {
                        "RevokeConsent": link(
                            "/v1/consents/{consent_id}",
                            "delete",
                            {"consent_id": "$response.body#/consent_id"},
                            "revoke this consent",
                        )
                    }
                },
                **AUTH_ERRORS,
                "403": _PLATFORM_ONLY,
                **WRITE_ERRORS,
            },
        }
    ),
)
openapi.add(
    "/v1/consents/{consent_id}",
    "delete",
    {
        "summary": "Revoke a consent (the platform that recorded it; any platform for "
        "consent given at a partner's counter)",
        "security": BEARER,
        "parameters": [path_param("consent_id")],
        "responses": {
            "204": {"description": "revoked"},
            **AUTH_ERRORS,
            "403": _PLATFORM_ONLY,
            "404": problem("no such consent"),
        },
    },
)
openapi.model(CounterConsentBody)
openapi.add(
    "/v1/consents/counter",
    "post",
    idempotent(
        {
            "summary": "Record consent a person gave at this partner's counter or kiosk",
            "description": "Libraries, transit operators and service halls. The consent is for "
            "the calling partner alone; `evidence` names the signed form or the kiosk "
            "confirmation. The subject revokes it through the platform (DELETE /v1/consents/{id}).",
            "security": BEARER,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/CounterConsentBody"}
                    }
                },
            },
            "responses": {
                "201": _CREATED,
                **AUTH_ERRORS,
                "403": problem("only libraries, transit operators and service halls"),
                **WRITE_ERRORS,
            },
        }
    ),
)
