"""Scenes, decisions, decision lookup and feedback (API.md "Decisions")."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from gateway.api.components import idempotent, link
from gateway.api.http import json_response, raw_json_response, read_json, require_object
from gateway.api.idempotency import (
    Idempotency,
    abandon,
    claim,
    replayed,
    requested,
    run_idempotent,
    settle,
)
from gateway.api.keys import GATEWAY
from gateway.api.schemas import DecisionBody, decision_validator, field_errors
from gateway.api.spec import (
    AUTH_ERRORS,
    BEARER,
    REF_TEMPLATE,
    WRITE_ERRORS,
    ApiPart,
    json_content,
    model_ref,
    path_param,
    problem,
)
from gateway.audit.events import audit_event
from gateway.commitments.models import BREACH_RECORD_TYPE
from gateway.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidRequest,
    NotFound,
    ProblemError,
)
from gateway.feedback import (
    FEEDBACK_MAX_BYTES,
    FEEDBACK_PER_DECISION,
    FeedbackBody,
    scene_problems,
)
from gateway.identifiers import InvalidIdentifier, validate_subject_id
from gateway.pipeline import DecisionQuery
from gateway.policy.loader import CompiledPolicy, PolicySet
from gateway.policy.notice import CONSTRAINT_SCHEMA, NOTICE_SCHEMA
from gateway.runtime import Gateway, rate_key
from gateway.settings import Partner
from gateway.trust.consents import consent_needed

__all__ = ["openapi", "routes"]

routes = web.RouteTableDef()
openapi = ApiPart()


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
    partner, _ = await gw.credentials(request)
    contract = _contract(partner)
    policies = gw.policies
    today = gw.today()
    try:
        compiled, data, idem = await _admissible(request, policies, contract, today)
    except ProblemError:
        # API.md's order: a rate-limited request gets 429 whatever else is wrong.
        await gw.rate_limit(partner)
        raise
    query: DecisionQuery | None = None
    invalid: ProblemError | None = None
    try:
        query = _query(data, compiled, partner, today)
    except ProblemError as exc:
        invalid = exc  # answered after the rate limit and the key's state
    consent_id = None
    breaches = None
    if query is not None:
        if consent_needed(query.kind, compiled.consent_required_for):
            consent_id = query.consent_id
        if compiled.plan.reads_type(BREACH_RECORD_TYPE):
            query.subject_key = gw.pseudonyms.internal(query.kind, query.subject_id)
            breaches = gw.commitments.breach_read(query.subject_key, today)
    # One round trip: rate limit, consent, Idempotency-Key and the subject's
    # commitment breaches where the policy reads them (gateway/store/admission.py).
    admitted = await gw.store.admit(
        contract.rate_key,
        contract.per_second,
        contract.burst,
        consent_id=consent_id,
        idempotency=claim(idem) if idem is not None else None,
        breaches=breaches,
    )
    gw.refuse_if_limited(partner, admitted.wait_s)
    if idem is not None:
        settle(idem, admitted.idempotency, admitted.claimed)
        if idem.record is not None:
            first = await gw.replay(partner, idem.record)
            if first is not None:
                return replayed(json_response(first))
    try:
        if invalid is not None:
            raise invalid
        assert query is not None
        result = await gw.pipeline.decide(
            partner,
            policies,
            compiled,
            query,
            gw.now(),
            today,
            idem.pair if idem is not None else None,
            admitted,
        )
    except BaseException:
        await abandon(gw, idem)
        raise
    return raw_json_response(result)


@dataclass(frozen=True, slots=True)
class _Contract:
    """What the decision endpoint reads of a partner, copied out of the pydantic
    model once: each of a model's attributes costs ~300 instructions (pydantic's
    ``__getattr__`` keeps CPython off its fast path)."""

    partner: Partner  # the model copied: a reloaded or scoped partner is a new object
    scenes: frozenset[str]
    purposes: frozenset[str]
    rate_key: str
    per_second: float
    burst: int


_contracts: dict[int, _Contract] = {}


def _contract(partner: Partner) -> _Contract:
    contract = _contracts.get(id(partner))
    if contract is None or contract.partner is not partner:
        if len(_contracts) > 256:  # reloads leave old partners behind
            _contracts.clear()
        limit = partner.rate_limit
        contract = _Contract(
            partner,
            frozenset(partner.scenes),
            frozenset(partner.purposes),
            rate_key(partner),
            limit.per_second,
            limit.burst,
        )
        _contracts[id(partner)] = contract
    return contract


async def _admissible(
    request: web.Request, policies: PolicySet, contract: _Contract, today: dt.date
) -> tuple[CompiledPolicy, dict[str, Any], Idempotency | None]:
    """The checks API.md puts before the Idempotency-Key's state: scene (404),
    contract scene (403), body (413/415/400), the key's form (400)."""
    scene = request.match_info["scene"]
    compiled = policies.active(scene, today)
    if compiled is None:
        raise NotFound(f"no scene {scene!r} is served")
    if scene not in contract.scenes:
        raise Forbidden(f"your contract does not cover the scene {scene!r}", code="forbidden_scene")
    data = require_object(await read_json(request))
    return compiled, data, await requested(request, contract.partner)


def _query(
    data: dict[str, Any], compiled: CompiledPolicy, partner: Partner, today: dt.date
) -> DecisionQuery:
    """Schema, subject id and context (422 with pointers), then the contract's purpose (403)."""
    context_errors: list[FieldError] = []
    try:
        # One validation of body and context, answering in plain dicts.
        valid = decision_validator(compiled.context_model).validate_python(data)
    except ValidationError:
        # The two models decide what is wrong, with their pointers and messages.
        try:
            body = DecisionBody.model_validate(data)
        except ValidationError as exc:
            raise InvalidRequest(
                "the request does not match the schema", errors=field_errors(exc)
            ) from None
        subject = body.subject
        kind, subject_id = subject.kind, subject.id
        purpose, consent_id, staff_id = body.purpose, body.consent_id, body.staff_id
        context: dict[str, Any] = {}
        try:
            context = compiled.context_model.model_validate(body.context).model_dump(
                exclude_none=True
            )
        except ValidationError as exc:
            context_errors = field_errors(exc, prefix="/context", body=body.context)
    else:
        fields = valid["subject"]
        kind, subject_id = fields["kind"], fields["id"]
        purpose, consent_id, staff_id = valid["purpose"], valid["consent_id"], valid["staff_id"]
        context = valid["context"]
        if None in context.values():  # unsent optional members: model_dump left them out
            context = {name: value for name, value in context.items() if value is not None}
    errors: list[FieldError] = []
    try:
        subject_id = validate_subject_id(kind, subject_id, today)
    except InvalidIdentifier as exc:
        errors.append(FieldError("/subject/id", str(exc)))
    if kind not in compiled.subjects:
        errors.append(
            FieldError(
                "/subject/kind",
                f"the {compiled.scene} scene serves {', '.join(compiled.policy.subjects)}",
            )
        )
    if context_errors:
        errors.extend(context_errors)
    if errors:
        raise InvalidRequest("the request has invalid fields", errors=errors)
    if purpose not in _contract(partner).purposes:
        raise Forbidden(
            f"your contract does not cover the purpose {purpose!r}", code="forbidden_purpose"
        )
    # Positional: a class called with keywords first gathers them into a dict.
    return DecisionQuery(kind, subject_id, purpose, consent_id, staff_id, context)


async def _own_decision(request: web.Request) -> tuple[Partner, dict[str, Any]]:
    gw = request.app[GATEWAY]
    partner = await gw.authenticate(request)
    decision_id = request.match_info["decision_id"]
    found = await gw.store.get_decision(decision_id)
    # Another partner's decision is indistinguishable from none at all.
    if found is None or found[0] != partner.id:
        raise NotFound("no such decision")
    return partner, found[1]


@routes.get("/v1/decisions/{decision_id}")
async def get_decision(request: web.Request) -> web.Response:
    _, body = await _own_decision(request)
    return json_response(body)


@routes.post("/v1/decisions/{decision_id}/feedback")
async def post_feedback(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    partner, decision = await _own_decision(request)
    data = require_object(await read_json(request, limit=FEEDBACK_MAX_BYTES))
    decision_id = request.match_info["decision_id"]

    async def record() -> web.Response:
        try:
            body = FeedbackBody.model_validate(data)
        except ValidationError as exc:
            raise InvalidRequest(
                "the feedback does not match the schema", errors=field_errors(exc, body=data)
            ) from None
        problems = scene_problems(body, decision)
        if problems:
            raise InvalidRequest("the feedback does not fit the decision", errors=problems)
        added = await gw.store.add_feedback(
            decision_id,
            partner.id,
            body.applied,
            body.stored(),
            gw.now().isoformat(timespec="seconds"),
            FEEDBACK_PER_DECISION,
        )
        if not added:
            raise Conflict(
                f"a decision takes at most {FEEDBACK_PER_DECISION} feedbacks",
                code="feedback_limit",
            )
        # On the record once taken (a refused one is not a use).
        await gw.store.append_audit(
            audit_event(
                "feedback_received",
                partner.id,
                gw.now(),
                outcome="applied" if body.applied else "not_applied",
                decision_id=decision_id,
            )
        )
        return json_response({"decision_id": decision_id, "status": "accepted"}, status=202)

    return await run_idempotent(gw, request, partner, record)


_POLICY_REF: dict[str, Any] = {
    "type": "object",
    "required": ["id", "version", "hash"],
    "properties": {
        "id": {"type": "string"},
        "version": {"type": "string"},
        "hash": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
    },
}

_DECISION: dict[str, Any] = {
    "type": "object",
    "required": [
        "decision_id",
        "scene",
        "outcome",
        "benefits",
        "constraints",
        "reasons",
        "policy",
        "expires_at",
    ],
    "properties": {
        "decision_id": {"type": "string"},
        "scene": {"type": "string"},
        "outcome": {"type": "string", "enum": ["granted", "standard", "constrained"]},
        "benefits": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["code", "params"],
                "properties": {"code": {"type": "string"}, "params": {"type": "object"}},
            },
        },
        "constraints": {"type": "array", "items": CONSTRAINT_SCHEMA},
        "notice": NOTICE_SCHEMA,
        "reasons": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["rule", "effect", "legal_basis", "facts"],
                "properties": {
                    "rule": {"type": "string"},
                    "effect": {"type": "string", "enum": ["grant", "constrain"]},
                    "legal_basis": {"type": "array", "items": {"type": "string"}},
                    "facts": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "fact names read by the rule; never their values",
                    },
                },
            },
        },
        "policy": model_ref("PolicyRef"),
        "policy_set": {"type": "string"},
        "issued_at": {"type": "string", "format": "date-time"},
        "expires_at": {"type": "string", "format": "date-time"},
        "benefit_until": {"type": "string", "format": "date"},
        "token": {
            "type": "string",
            "description": "compact JWS (typ benefit+jwt), present iff outcome is granted",
        },
    },
}

_DECISION_LINKS = {
    "GetDecision": link(
        "/v1/decisions/{decision_id}",
        "get",
        {"decision_id": "$response.body#/decision_id"},
        "read this decision back",
    ),
    "SendFeedback": link(
        "/v1/decisions/{decision_id}/feedback",
        "post",
        {"decision_id": "$response.body#/decision_id"},
        "report what was done with this decision",
    ),
}
_NO_DECISION = {"404": problem("no such decision for this partner")}

openapi.model(DecisionBody, FeedbackBody)
openapi.schemas.update(PolicyRef=_POLICY_REF, Decision=_DECISION)
openapi.add(
    "/v1/scenes",
    "get",
    {
        "summary": "Every scene the gateway serves",
        "security": BEARER,
        "responses": {
            "200": json_content({"type": "object", "required": ["scenes"]}),
            **AUTH_ERRORS,
        },
    },
)


def _decision_paths(gw: Gateway) -> dict[str, dict[str, Any]]:
    # The scene parameter lists the scenes in effect today (the policy set decides).
    scenes = [c.policy.scene for c in gw.policies.active_all(gw.today())]
    scene_schema: dict[str, Any] = (
        {"type": "string", "enum": scenes} if scenes else {"type": "string"}
    )
    operation = {
        "summary": "Ask for a decision on a subject in a scene",
        "description": (
            "Checks run in order: credentials (401), rate limit (429), scene (404), "
            "contract scene (403 forbidden_scene), body size (413), media type (415), "
            "JSON/schema/subject id/context (400/422), contract purpose "
            "(403 forbidden_purpose), consent (403 consent_required/consent_revoked)."
        ),
        "security": BEARER,
        "parameters": [path_param("scene", scene_schema)],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model_ref("DecisionBody")}},
        },
        "responses": {
            "200": {
                **json_content(model_ref("Decision"), "the decision"),
                "links": _DECISION_LINKS,
            },
            **AUTH_ERRORS,
            "403": problem("scene, purpose or consent not allowed"),
            "404": problem("no such scene"),
            **WRITE_ERRORS,
            "503": problem("a dependency is unavailable; see Retry-After"),
        },
    }
    return {"/v1/scenes/{scene}/decisions": {"post": idempotent(operation)}}


def _context_schemas(gw: Gateway) -> dict[str, Any]:
    # Each scene's context schema, from its policy's compiled context model.
    return {
        f"Context_{c.policy.scene}": c.context_model.model_json_schema(ref_template=REF_TEMPLATE)
        for c in gw.policies.active_all(gw.today())
    }


openapi.dynamic.append(_decision_paths)
openapi.dynamic_schemas.append(_context_schemas)
openapi.add(
    "/v1/decisions/{decision_id}",
    "get",
    {
        "summary": "A decision, to the partner that asked for it",
        "security": BEARER,
        "parameters": [path_param("decision_id")],
        "responses": {"200": json_content(model_ref("Decision")), **AUTH_ERRORS, **_NO_DECISION},
    },
)
openapi.add(
    "/v1/decisions/{decision_id}/feedback",
    "post",
    idempotent(
        {
            "summary": "Report what the partner did with a decision (发起—响应—反馈)",
            "security": BEARER,
            "parameters": [path_param("decision_id")],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": model_ref("FeedbackBody")}},
            },
            "responses": {
                "202": json_content({"type": "object"}, "accepted"),
                **AUTH_ERRORS,
                **_NO_DECISION,
                **WRITE_ERRORS,
            },
        },
        conflict="the decision already has its most feedbacks (feedback_limit)",
    ),
)
