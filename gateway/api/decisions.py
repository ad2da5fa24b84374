"""Scenes, decisions, decision lookup and feedback (API.md "Decisions")."""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from gateway.api.http import json_response, read_json, require_object
from gateway.api.keys import GATEWAY
from gateway.api.schemas import DecisionBody, FeedbackBody, field_errors
from gateway.errors import FieldError, Forbidden, InvalidRequest, NotFound
from gateway.identifiers import InvalidIdentifier, validate_subject_id
from gateway.pipeline import DecisionQuery

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.get("/v1/scenes")
async def list_scenes(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    await gw.authenticate(request)
    policies = gw.policies
    scenes = []
    for compiled in policies.active_all(gw.today()):
        policy = compiled.policy
        benefit_codes = dict.fromkeys(r.benefit for r in compiled.rules if r.benefit)
        scenes.append(
            {
                "scene": policy.scene,
                "title": policy.title,
                "policy": compiled.ref,
                "basic_public_service": policy.basic_public_service,
                "subjects": policy.subjects,
                "consent_required_for": sorted(set(policy.consent_required_for) | {"person"}),
                "context": compiled.context_model.model_json_schema(),
                "benefits": [
                    {"code": code, "title": policies.benefits.benefits[code].title}
                    for code in benefit_codes
                    if code
                ],
            }
        )
    return json_response({"scenes": scenes})


@routes.post("/v1/scenes/{scene}/decisions")
async def create_decision(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    partner = await gw.authenticate(request)
    scene = request.match_info["scene"]
    policies = gw.policies
    today = gw.today()
    compiled = policies.active(scene, today)
    if compiled is None:
        raise NotFound(f"no scene {scene!r} is served")
    if scene not in partner.scenes:
        raise Forbidden(f"your contract does not cover the scene {scene!r}", code="forbidden_scene")
    data = require_object(await read_json(request))
    try:
        body = DecisionBody.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(
            "the request does not match the schema", errors=field_errors(exc)
        ) from None

    errors: list[FieldError] = []
    subject_id = body.subject.id
    try:
        subject_id = validate_subject_id(body.subject.kind, body.subject.id)
    except InvalidIdentifier as exc:
        errors.append(FieldError("/subject/id", str(exc)))
    policy = compiled.policy
    if body.subject.kind not in policy.subjects:
        errors.append(
            FieldError("/subject/kind", f"the {scene} scene serves {', '.join(policy.subjects)}")
        )
    context = {}
    try:
        context = compiled.context_model.model_validate(body.context).model_dump(exclude_none=True)
    except ValidationError as exc:
        errors.extend(field_errors(exc, prefix="/context", body=body.context))
    if errors:
        raise InvalidRequest("the request has invalid fields", errors=errors)
    if body.purpose not in partner.purposes:
        raise Forbidden(
            f"your contract does not cover the purpose {body.purpose!r}", code="forbidden_purpose"
        )
    result = await gw.pipeline.decide(
        partner,
        policies,
        compiled,
        DecisionQuery(
            kind=body.subject.kind,
            subject_id=subject_id,
            purpose=body.purpose,
            consent_id=body.consent_id,
            staff_id=body.staff_id,
            context=context,
        ),
        gw.now(),
        today,
    )
    return json_response(result)


async def _own_decision(request: web.Request) -> tuple[str, dict]:  # type: ignore[type-arg]
    gw = request.app[GATEWAY]
    partner = await gw.authenticate(request)
    decision_id = request.match_info["decision_id"]
    found = await gw.store.get_decision(decision_id)
    # Another partner's decision is indistinguishable from none at all.
    if found is None or found[0] != partner.id:
        raise NotFound("no such decision")
    return partner.id, found[1]


@routes.get("/v1/decisions/{decision_id}")
async def get_decision(request: web.Request) -> web.Response:
    _, body = await _own_decision(request)
    return json_response(body)


@routes.post("/v1/decisions/{decision_id}/feedback")
async def post_feedback(request: web.Request) -> web.Response:
    partner_id, _ = await _own_decision(request)
    data = require_object(await read_json(request))
    try:
        body = FeedbackBody.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(
            "the feedback does not match the schema", errors=field_errors(exc)
        ) from None
    gw = request.app[GATEWAY]
    await gw.store.add_feedback(
        request.match_info["decision_id"],
        partner_id,
        body.applied,
        body.detail,
        gw.now().isoformat(timespec="seconds"),
    )
    return json_response(
        {"decision_id": request.match_info["decision_id"], "status": "accepted"}, status=202
    )
