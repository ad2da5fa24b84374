"""Administration (API.md): policy reload and the signing key ring, for operator partners."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.components import link
from gateway.api.http import json_response, read_json, require_object
from gateway.api.keys import GATEWAY
from gateway.api.spec import AUTH_ERRORS, BEARER, ApiPart, json_content, path_param, problem
from gateway.errors import (
    Conflict,
    FieldError,
    InvalidRequest,
    NotFound,
    PolicyRefused,
    ProblemError,
)
from gateway.store.changes import Topic
from gateway.tokens.keys import KeyRingError, SigningKey
from gateway.tokens.status_list import INVALID

__all__ = ["openapi", "routes"]

routes = web.RouteTableDef()
openapi = ApiPart()


@routes.post("/v1/admin/policies/reload")
async def reload_policies(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    caller = await gw.authenticate(request)
    gw.partners.require_kind(caller, "operator")
    ok, reasons = gw.reload_policies()
    await gw.record(
        "policy_reloaded" if ok else "policy_reload_refused",
        caller.id,
        outcome="loaded" if ok else "refused",
        policy_set=gw.policies.hash,
        reasons=len(reasons),
    )
    if not ok:
        # The reasons name files, rules and codes: what an operator needs to fix the set.
        raise PolicyRefused(
            "the new policy set was refused; the previous one keeps serving",
            extra={"reasons": reasons, "policy_set": gw.policies.hash},
        )
    await gw.announce(Topic.POLICIES)
    return json_response({"policy_set": gw.policies.hash, "scenes": sorted(gw.policies.by_scene)})


def _key_view(key: SigningKey) -> dict[str, Any]:
    return {
        "kid": key.kid,
        "alg": key.alg,
        "status": key.status,
        "created": key.created.isoformat(timespec="seconds"),
        "active_since": key.active_since.isoformat(timespec="seconds")
        if key.active_since
        else None,
        "verify_until": key.verify_until.isoformat(timespec="seconds")
        if key.verify_until
        else None,
    }


async def _operator_body(request: web.Request, *fields: str) -> tuple[str, dict[str, Any]]:
    """The operator's id and the key operation's optional body, with only ``fields`` allowed."""
    gw = request.app[GATEWAY]
    caller = await gw.authenticate(request)
    gw.partners.require_kind(caller, "operator")
    if not request.can_read_body:
        return caller.id, {}
    data = require_object(await read_json(request))
    # A field this operation ignores (alg on activate) is refused, not silently dropped.
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InvalidRequest(
            "unknown fields",
            errors=[FieldError(f"/{name}", "not a known field") for name in unknown],
        )
    if "force" in data and not isinstance(data["force"], bool):
        raise InvalidRequest(
            "force is a boolean", errors=[FieldError("/force", "must be a boolean")]
        )
    return caller.id, data


@routes.get("/v1/admin/keys")
async def list_keys(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    caller = await gw.authenticate(request)
    gw.partners.require_kind(caller, "operator", "auditor")
    return json_response({"keys": [_key_view(k) for k in gw.keys.entries()]})


@routes.post("/v1/admin/keys")
async def add_key(request: web.Request) -> web.Response:
    operator, data = await _operator_body(request, "alg")
    alg = data.get("alg", "EdDSA")
    if alg not in ("EdDSA", "ES256"):
        raise InvalidRequest("unsupported alg", errors=[FieldError("/alg", "EdDSA or ES256")])
    gw = request.app[GATEWAY]
    key = gw.keys.add(alg)
    await gw.announce(Topic.KEYS)
    await gw.record("key_added", operator, kid=key.kid, alg=key.alg)
    return json_response(_key_view(key), status=201)


def _ring_error(exc: KeyRingError) -> ProblemError:
    return Conflict(str(exc), code="key_state_conflict")


@routes.post("/v1/admin/keys/{kid}/activate")
async def activate_key(request: web.Request) -> web.Response:
    operator, data = await _operator_body(request, "force")
    gw = request.app[GATEWAY]
    kid = request.match_info["kid"]
    if gw.keys.get(kid) is None:
        raise NotFound("no such key")
    try:
        key = gw.keys.activate(kid, force=bool(data.get("force", False)))
    except KeyRingError as exc:
        raise _ring_error(exc) from None
    await gw.announce(Topic.KEYS)
    await gw.record("key_activated", operator, kid=key.kid, alg=key.alg)
    return json_response(_key_view(key))


@routes.post("/v1/admin/keys/{kid}/retire")
async def retire_key(request: web.Request) -> web.Response:
    operator, data = await _operator_body(request, "force")
    gw = request.app[GATEWAY]
    kid = request.match_info["kid"]
    if gw.keys.get(kid) is None:
        raise NotFound("no such key")
    force = bool(data.get("force", False))
    try:
        key = gw.keys.retire(kid, force=force)
    except KeyRingError as exc:
        raise _ring_error(exc) from None
    gw.status_cache.clear()
    revoked = 0
    if force:
        # Emergency rotation: whatever the key signed must stop being honoured now.
        for token in await gw.store.tokens_signed_by(kid, int(gw.now().timestamp())):
            await gw.store.set_status(token.status, INVALID)
            revoked += 1
        gw.metrics.tokens_revoked.labels("key_retired").inc(revoked)
    # The others re-read the ring, which also drops their signed status lists.
    await gw.announce(Topic.KEYS)
    await gw.record("key_retired", operator, kid=key.kid, force=force, tokens_revoked=revoked)
    return json_response({**_key_view(key), "tokens_revoked": revoked})


_OPERATOR_ONLY = {"403": problem("operator partners only (forbidden_kind)")}
_KEY_VIEW: dict[str, Any] = {
    "type": "object",
    "required": ["kid", "alg", "status"],
    "properties": {
        "kid": {"type": "string"},
        "alg": {"type": "string", "enum": ["EdDSA", "ES256"]},
        "status": {"type": "string"},
    },
}
_KEY_LINKS = {
    name: link(
        f"/v1/admin/keys/{{kid}}/{action}",
        "post",
        {"kid": "$response.body#/kid"},
        f"{action} the published key",
    )
    for name, action in (("ActivateKey", "activate"), ("RetireKey", "retire"))
}


def _key_post(summary: str, *, publishes: bool = False) -> dict[str, Any]:
    """A key-ring change: publishing takes an alg, activate/retire a kid (and force)."""
    done = (
        {"201": json_content(_KEY_VIEW, "key published") | {"links": _KEY_LINKS}}
        if publishes
        else {"200": json_content(_KEY_VIEW)}
    )
    body_fields: dict[str, Any] = (
        {"alg": {"type": "string", "enum": ["EdDSA", "ES256"]}}
        if publishes
        else {"force": {"type": "boolean"}}
    )
    body = {"type": "object", "additionalProperties": False, "properties": body_fields}
    return {
        "summary": summary,
        "security": BEARER,
        "parameters": [] if publishes else [path_param("kid")],
        "requestBody": {"required": False, "content": {"application/json": {"schema": body}}},
        "responses": {
            **done,
            **AUTH_ERRORS,
            "400": problem("the body is not JSON"),
            **_OPERATOR_ONLY,
            "404": problem("no such key"),
            "409": problem("the key's state does not allow this (key_state_conflict)"),
            "413": problem("the body is larger than 1 MiB"),
            "415": problem("the body is not application/json"),
            "422": problem("invalid fields"),
        },
    }


openapi.add(
    "/v1/admin/policies/reload",
    "post",
    {
        "summary": "Reload the policy set atomically (operator partners)",
        "security": BEARER,
        "responses": {
            "200": json_content({"type": "object", "required": ["policy_set"]}),
            **AUTH_ERRORS,
            **_OPERATOR_ONLY,
            "409": problem("the new set was refused (policy_refused, with reasons[])"),
        },
    },
)
openapi.add(
    "/v1/admin/keys",
    "get",
    {
        "summary": "The signing key ring (operator and auditor partners)",
        "security": BEARER,
        "responses": {
            "200": json_content({"type": "object", "required": ["keys"]}),
            **AUTH_ERRORS,
            "403": problem("operator or auditor partners only (forbidden_kind)"),
        },
    },
)
openapi.add(
    "/v1/admin/keys",
    "post",
    _key_post("Publish a new signing key (not signing yet)", publishes=True),
)
openapi.add(
    "/v1/admin/keys/{kid}/activate", "post", _key_post("Sign with a published key from now on")
)
openapi.add(
    "/v1/admin/keys/{kid}/retire",
    "post",
    _key_post("Drop a key from the JWKS; with force, revoke every token it signed"),
)
