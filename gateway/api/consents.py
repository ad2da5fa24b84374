"""Consent records (API.md "Consent"): created and revoked by platform partners."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from gateway.api.http import json_response, read_json, require_object
from gateway.api.idempotency import run_idempotent
from gateway.api.keys import GATEWAY
from gateway.api.schemas import ConsentBody, field_errors
from gateway.errors import FieldError, InvalidRequest, NotFound
from gateway.identifiers import InvalidIdentifier, validate_subject_id
from gateway.runtime import Gateway
from gateway.settings import Partner

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.post("/v1/consents")
async def create_consent(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    caller = await gw.authenticate(request, scope="consents")
    gw.partners.require_kind(caller, "platform")
    data = require_object(await read_json(request))
    return await run_idempotent(gw, request, caller, lambda: _create_consent(gw, caller, data))


async def _create_consent(gw: Gateway, caller: Partner, data: dict[str, Any]) -> web.Response:
    try:
        body = ConsentBody.model_validate(data)
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
    partner = gw.partners.by_id.get(body.partner)
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
    if errors:
        raise InvalidRequest("the consent has invalid fields", errors=errors)
    consent = await gw.consents.create(
        kind=body.subject.kind,
        subject_id=subject_id,
        partner=body.partner,
        scenes=body.scenes,
        purpose=body.purpose,
        expires_at=body.expires_at,
        now=gw.now(),
        created_by=caller.id,
    )
    return json_response(
        {
            "consent_id": consent.consent_id,
            "partner": consent.partner,
            "scenes": list(consent.scenes),
            "purpose": consent.purpose,
            "expires_at": consent.expires_at.isoformat(),
        },
        status=201,
    )


@routes.delete("/v1/consents/{consent_id}")
async def revoke_consent(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    caller = await gw.authenticate(request, scope="consents")
    gw.partners.require_kind(caller, "platform")
    consent_id = request.match_info["consent_id"]
    consent = await gw.store.get_consent(consent_id)
    # Only the platform that recorded a consent may revoke it; to others it does not exist.
    if consent is None or (consent.created_by not in (None, caller.id)):
        raise NotFound("no such consent")
    if consent.revoked_at is None:
        await gw.consents.revoke(consent, by=caller.id, now=gw.now())
    return web.Response(status=204)
