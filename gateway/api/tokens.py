"""Token introspection (RFC 7662 shape), for the token's audience only."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.http import json_response, read_json, require_object
from gateway.api.keys import GATEWAY
from gateway.errors import FieldError, InvalidRequest
from gateway.store.base import StatusRef
from gateway.tokens.status_list import VALID
from gateway.tokens.verify import verify_benefit_token

__all__ = ["routes"]

routes = web.RouteTableDef()

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
        return json_response(_INACTIVE)
    ref = _status_ref(claims, gw.settings.issuer)
    if ref is None or await gw.store.token_status(ref) != VALID:
        return json_response(_INACTIVE)
    return json_response({"active": True, "token_type": "benefit+jwt", **claims})
