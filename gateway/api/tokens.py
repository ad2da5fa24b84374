"""Token introspection (RFC 7662 shape), for the token's audience only."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.http import json_response, read_json, require_object
from gateway.api.keys import GATEWAY
from gateway.api.spec import AUTH_ERRORS, BEARER, WRITE_ERRORS, ApiPart, json_content
from gateway.audit.events import audit_event
from gateway.errors import FieldError, InvalidRequest
from gateway.runtime import Gateway
from gateway.store.base import StatusRef
from gateway.tokens.status_list import VALID
from gateway.tokens.verify import verify_benefit_token

__all__ = ["openapi", "routes"]

routes = web.RouteTableDef()
openapi = ApiPart()

_INACTIVE = {"active": False}


def _status_ref(claims: dict[str, Any], issuer: str) -> StatusRef | None:
    entry = claims.get("status", {}).get("status_list", {})
    uri, idx = entry.get("uri"), entry.get("idx")
    prefix = f"{issuer}/v1/status-lists/"
    if not isinstance(uri, str) or not uri.startswith(prefix) or not isinstance(idx, int):
        return None
    return StatusRef(uri.removeprefix(prefix), idx)


@routes.post("/v1/tokens/introspect")
async def introspect(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    caller = await gw.authenticate(request)
    data = require_object(await read_json(request, form_fields=("token",)))
    token = data.get("token")
    if not isinstance(token, str) or not token or len(token) > 8192:
        raise InvalidRequest(
            "token is required", errors=[FieldError("/token", "a token string is required")]
        )
    claims = verify_benefit_token(token, gw.keys, gw.settings.issuer)
    # Anyone but the audience learns nothing, not even whether the token is ours.
    if claims is None or claims.get("aud") != caller.id:
        await _record(gw, caller.id, None, "inactive")
        return json_response(_INACTIVE)
    ref = _status_ref(claims, gw.settings.issuer)
    if ref is None or await gw.store.token_status(ref) != VALID:
        await _record(gw, caller.id, claims, "inactive")
        return json_response(_INACTIVE)
    await _record(gw, caller.id, claims, "active")
    return json_response({"active": True, "token_type": "benefit+jwt", **claims})


async def _record(gw: Gateway, partner: str, claims: dict[str, Any] | None, outcome: str) -> None:
    """An introspection discloses a token's standing: on the record, by token id only."""
    claims = claims or {}
    await gw.store.append_audit(
        audit_event(
            "token_introspected",
            partner,
            gw.now(),
            subject=claims.get("sub"),
            outcome=outcome,
            token_jti=claims.get("jti"),
        )
    )


_INTROSPECT_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["token"],
    "properties": {"token": {"type": "string", "minLength": 1, "maxLength": 8192}},
}

openapi.add(
    "/v1/tokens/introspect",
    "post",
    {
        "summary": "Is a benefit token active? Only its audience learns (RFC 7662)",
        "security": BEARER,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _INTROSPECT_BODY},
                "application/x-www-form-urlencoded": {"schema": _INTROSPECT_BODY},
            },
        },
        "responses": {
            "200": json_content(
                {
                    "type": "object",
                    "required": ["active"],
                    "properties": {"active": {"type": "boolean"}},
                }
            ),
            **AUTH_ERRORS,
            **WRITE_ERRORS,
        },
    },
)
