"""The token endpoint and its metadata (API.md "Partner authentication").

Errors here use RFC 6749's shape (``error``, ``error_description``), as OAuth
clients expect, instead of problem+json.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from aiohttp import web

from gateway.api.http import MAX_BODY_BYTES, json_response
from gateway.api.keys import GATEWAY
from gateway.api.spec import ApiPart, json_content
from gateway.trust.client_keys import ALLOWED_ALGS
from gateway.trust.oauth import OAuthError, partner_scopes

__all__ = ["openapi", "routes"]

routes = web.RouteTableDef()
openapi = ApiPart()
log = logging.getLogger("xinyi.oauth")

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _oauth_error(exc: OAuthError) -> web.Response:
    headers = dict(_NO_STORE)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="xinyi-gateway"'
    if exc.retry_after_s:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    return json_response(
        {"error": exc.error, "error_description": exc.description}, exc.status, headers
    )


@routes.post("/oauth/token")
async def token(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    try:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise OAuthError("invalid_request", "the request body is too large")
        if request.content_type != "application/x-www-form-urlencoded":
            raise OAuthError(
                "invalid_request", "send the form as application/x-www-form-urlencoded"
            )
        try:
            form = await request.post()
        except (web.HTTPRequestEntityTooLarge, ValueError) as exc:
            raise OAuthError("invalid_request", "the form could not be read") from exc
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
        issued = await gw.oauth.exchange(fields)
    except OAuthError as exc:
        gw.metrics.oauth_tokens.labels(exc.error).inc()
        log.info("token request refused", extra={"error": exc.error})
        return _oauth_error(exc)
    gw.metrics.oauth_tokens.labels("issued").inc()
    return json_response(
        {
            "access_token": issued.token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": " ".join(issued.scopes),
        },
        headers=_NO_STORE,
    )


@routes.get("/.well-known/oauth-authorization-server")
async def metadata(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    issuer = gw.settings.issuer
    scopes = sorted({s for p in gw.partners.by_id.values() for s in partner_scopes(p)})
    return json_response(
        {
            "issuer": issuer,
            "token_endpoint": f"{issuer}/oauth/token",
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "introspection_endpoint": f"{issuer}/v1/tokens/introspect",
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": sorted(ALLOWED_ALGS),
            "introspection_endpoint_auth_methods_supported": ["bearer"],
            "scopes_supported": scopes,
        },
        headers={"Cache-Control": "public, max-age=300"},
    )


# RFC 6749 error responses: the token endpoint answers in OAuth's shape, not Problem.
_OAUTH_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "string",
            "enum": [
                "invalid_request",
                "invalid_client",
                "invalid_grant",
                "invalid_scope",
                "unsupported_grant_type",
            ],
        },
        "error_description": {"type": "string"},
    },
}
_ERROR_CONTENT = {"content": {"application/json": {"schema": _OAUTH_ERROR}}}
_TOKEN_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["grant_type", "client_assertion_type", "client_assertion"],
    "properties": {
        "grant_type": {"type": "string", "const": "client_credentials"},
        "client_assertion_type": {
            "type": "string",
            "const": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        },
        "client_assertion": {
            "type": "string",
            "minLength": 1,
            "description": "JWT signed by the partner",
        },
        "client_id": {"type": "string"},
        "scope": {"type": "string"},
    },
}
_TOKEN_ISSUED: dict[str, Any] = {
    "type": "object",
    "required": ["access_token", "token_type", "expires_in"],
    "properties": {
        "access_token": {"type": "string"},
        "token_type": {"type": "string", "const": "Bearer"},
        "expires_in": {"type": "integer"},
        "scope": {"type": "string"},
    },
}

openapi.add(
    "/oauth/token",
    "post",
    {
        "summary": "Trade a signed client assertion for an access token (RFC 7523)",
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": _TOKEN_FORM}},
        },
        "responses": {
            "200": json_content(_TOKEN_ISSUED),
            "400": {"description": "invalid request, grant or scope", **_ERROR_CONTENT},
            "401": {"description": "invalid client", **_ERROR_CONTENT},
            "429": {"description": "too many token requests; see Retry-After", **_ERROR_CONTENT},
        },
    },
)
openapi.add(
    "/.well-known/oauth-authorization-server",
    "get",
    {
        "summary": "RFC 8414 authorization server metadata",
        "responses": {"200": json_content({"type": "object", "required": ["issuer"]})},
    },
)
