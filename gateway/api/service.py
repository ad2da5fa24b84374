"""Service endpoints (API.md "Service") and the public token status lists."""

from __future__ import annotations

import hmac
import time
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from adapters.credit.base import CreditSourceError
from gateway.api.http import json_response
from gateway.api.keys import GATEWAY
from gateway.api.openapi import build_document
from gateway.api.spec import ApiPart, json_content, path_param, problem
from gateway.errors import NotFound, Unauthenticated
from gateway.store.base import StoreUnavailable
from gateway.tokens.status_list import status_list_jwt

__all__ = ["openapi", "routes"]

routes = web.RouteTableDef()
openapi = ApiPart()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    failing: dict[str, str] = {}
    try:
        await gw.store.check()
    except StoreUnavailable as exc:
        failing["store"] = str(exc)
    if gw.keys.active("EdDSA") is None:
        failing["keys"] = "no active signing key"
    if not gw.policies.active_all(gw.today()):
        failing["policies"] = "no policy is in effect today"
    try:
        await gw.credit.check()
    except CreditSourceError as exc:
        failing["credit_source"] = str(exc)
    if failing:
        return json_response(
            {"status": "unavailable", "failing": failing}, status=503, headers={"Retry-After": "5"}
        )
    return json_response({"status": "ready", "policy_set": gw.policies.hash})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    token = gw.settings.metrics_token
    if token is not None:
        # Metrics name partners and their volumes: only the configured scraper reads them.
        presented = gw.partners.bearer(request.headers.get("Authorization"))
        if not hmac.compare_digest(presented.encode(), token.get_secret_value().encode()):
            raise Unauthenticated("the metrics token is not valid")
    body = generate_latest(gw.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/openapi.json")
async def openapi_document(request: web.Request) -> web.Response:
    return json_response(build_document(request.app[GATEWAY]))


@routes.get("/.well-known/jwks.json")
async def jwks(request: web.Request) -> web.Response:
    return json_response(
        request.app[GATEWAY].keys.jwks(), headers={"Cache-Control": "public, max-age=300"}
    )


@routes.get("/v1/status-lists/{list_id}")
async def status_list(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    list_id = request.match_info["list_id"]
    ttl = gw.settings.status_list_ttl_seconds
    now = time.monotonic()
    token = gw.status_cache.get(list_id, now)
    # Re-sign at most every few seconds: compressing 32 KiB is the costly part.
    if token is None:
        found = await gw.store.status_list(list_id)
        if found is None:
            raise NotFound("no such status list")
        uri = f"{gw.settings.issuer}/v1/status-lists/{list_id}"
        token = status_list_jwt(gw.signer, gw.settings.issuer, uri, found[0], ttl)
        gw.status_cache.put(list_id, token, now + 5.0)
    return web.Response(
        text=token,
        content_type="application/statuslist+jwt",
        headers={"Cache-Control": f"public, max-age={min(ttl, 60)}"},
    )


_OBJ: dict[str, Any] = {"type": "object"}
openapi.add("/healthz", "get", {"summary": "Liveness", "responses": {"200": json_content(_OBJ)}})
openapi.add(
    "/readyz",
    "get",
    {
        "summary": "Readiness: store, keys, policies and credit source",
        "responses": {
            "200": json_content(_OBJ),
            "503": json_content(_OBJ, "a component is failing"),
        },
    },
)
openapi.add(
    "/metrics",
    "get",
    {
        "summary": "Prometheus metrics",
        "responses": {"200": {"description": "text exposition", "content": {"text/plain": {}}}},
    },
)
openapi.add(
    "/openapi.json", "get", {"summary": "This document", "responses": {"200": json_content(_OBJ)}}
)
openapi.add(
    "/.well-known/jwks.json",
    "get",
    {
        "summary": "Public signing keys",
        "responses": {"200": json_content({"type": "object", "required": ["keys"]})},
    },
)
openapi.add(
    "/v1/status-lists/{list_id}",
    "get",
    {
        "summary": "A token status list (IETF OAuth Token Status List), public",
        "parameters": [path_param("list_id")],
        "responses": {
            "200": {
                "description": "signed status list JWT (typ statuslist+jwt)",
                "content": {"application/statuslist+jwt": {"schema": {"type": "string"}}},
            },
            "404": problem("no such list"),
        },
    },
)
