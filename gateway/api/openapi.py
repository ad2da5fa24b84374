"""The OpenAPI 3.1 document, built from the same pydantic models the handlers use.

Scene names and each scene's context schema come from the active policy set,
so a new scene (a policy file) shows up here with no code change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway.api.schemas import ConsentBody, CreditEventBody, DecisionBody, FeedbackBody
from gateway.api.spec import (
    AUTH_ERRORS,
    REF_TEMPLATE,
    ApiPart,
    json_content,
    model_ref,
    problem,
)
from gateway.policy.notice import CONSTRAINT_SCHEMA, NOTICE_SCHEMA

if TYPE_CHECKING:
    from gateway.runtime import Gateway

__all__ = ["build_document"]


def _parts() -> list[ApiPart]:
    # Imported here: the registry imports the handler modules, which import this one.
    from gateway.api.registry import MODULES

    return [m.openapi for m in MODULES if isinstance(getattr(m, "openapi", None), ApiPart)]


# The helpers every part uses (gateway.api.spec), under this module's old names.
_REF = REF_TEMPLATE
_ref = model_ref
_problem = problem
_json = json_content


_PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "stable snake_case code"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["pointer", "message"],
                "properties": {
                    "pointer": {"type": "string", "description": "JSON pointer into the body"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}

_POLICY_REF = {
    "type": "object",
    "required": ["id", "version", "hash"],
    "properties": {
        "id": {"type": "string"},
        "version": {"type": "string"},
        "hash": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
    },
}

_DECISION = {
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
        "policy": _ref("PolicyRef"),
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

_AUTH_ERRORS = AUTH_ERRORS


_OAUTH_ERROR = {
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


_INTROSPECT_BODY = {
    "type": "object",
    "required": ["token"],
    "properties": {"token": {"type": "string", "minLength": 1, "maxLength": 8192}},
}


def _link(path: str, method: str, parameters: dict[str, str], description: str) -> dict[str, Any]:
    """An OpenAPI link: how a response feeds a later call (fuzzers follow these)."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return {
        "operationRef": f"#/paths/{pointer}/{method}",
        "parameters": parameters,
        "description": description,
    }


_DECISION_LINKS = {
    "GetDecision": _link(
        "/v1/decisions/{decision_id}",
        "get",
        {"decision_id": "$response.body#/decision_id"},
        "read this decision back",
    ),
    "SendFeedback": _link(
        "/v1/decisions/{decision_id}/feedback",
        "post",
        {"decision_id": "$response.body#/decision_id"},
        "report what was done with this decision",
    ),
}

_IDEMPOTENT = (
    "/v1/scenes/{scene}/decisions",
    "/v1/decisions/{decision_id}/feedback",
    "/v1/consents",
    "/v1/events/credit",
)

_IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Retry safely: a repeated request with the same key and body gets the first "
        "response (marked Idempotent-Replayed: true), never a second decision or audit "
        "record. The same key with another body is refused (422 idempotency_key_reused). "
        "Keys are kept 24 hours, per partner."
    ),
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
}


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_KEY_VIEW = {
    "type": "object",
    "required": ["kid", "alg", "status"],
    "properties": {
        "kid": {"type": "string"},
        "alg": {"type": "string", "enum": ["EdDSA", "ES256"]},
        "status": {"type": "string"},
    },
}

_KEY_LINKS = {
    name: _link(
        f"/v1/admin/keys/{{kid}}/{action}",
        "post",
        {"kid": "$response.body#/kid"},
        f"{action} the published key",
    )
    for name, action in (("ActivateKey", "activate"), ("RetireKey", "retire"))
}


def _operator_post(
    summary: str, params: list[dict[str, Any]], bearer: Any, *, publishes: bool = False
) -> dict[str, Any]:
    done = (
        {"201": _json(_KEY_VIEW, "key published") | {"links": _KEY_LINKS}}
        if publishes
        else {"200": _json(_KEY_VIEW)}
    )
    body_fields: dict[str, Any] = (
        {"alg": {"type": "string", "enum": ["EdDSA", "ES256"]}}
        if publishes
        else {"force": {"type": "boolean"}}
    )
    return {
        "post": {
            "summary": summary,
            "security": bearer,
            "parameters": params,
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": body_fields,
                        }
                    }
                },
            },
            "responses": {
                **done,
                **_AUTH_ERRORS,
                "400": _problem("the body is not JSON"),
                "403": _problem("operator partners only (forbidden_kind)"),
                "404": _problem("no such key"),
                "409": _problem("the key's state does not allow this (key_state_conflict)"),
                "413": _problem("the body is larger than 1 MiB"),
                "415": _problem("the body is not application/json"),
                "422": _problem("invalid fields"),
            },
        }
    }


def _trust_paths(bearer: Any, write_errors: dict[str, Any]) -> dict[str, Any]:
    form = {
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
    oauth_error = {"content": {"application/json": {"schema": _OAUTH_ERROR}}}
    return {
        "/oauth/token": {
            "post": {
                "summary": "Trade a signed client assertion for an access token (RFC 7523)",
                "requestBody": {
                    "required": True,
                    "content": {"application/x-www-form-urlencoded": {"schema": form}},
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["access_token", "token_type", "expires_in"],
                            "properties": {
                                "access_token": {"type": "string"},
                                "token_type": {"type": "string", "const": "Bearer"},
                                "expires_in": {"type": "integer"},
                                "scope": {"type": "string"},
                            },
                        }
                    ),
                    "400": {"description": "invalid request, grant or scope", **oauth_error},
                    "401": {"description": "invalid client", **oauth_error},
                    "429": {
                        "description": "too many token requests; see Retry-After",
                        **oauth_error,
                    },
                },
            }
        },
        "/.well-known/oauth-authorization-server": {
            "get": {
                "summary": "RFC 8414 authorization server metadata",
                "responses": {"200": _json({"type": "object", "required": ["issuer"]})},
            }
        },
        "/v1/tokens/introspect": {
            "post": {
                "summary": "Is a benefit token active? Only its audience learns (RFC 7662)",
                "security": bearer,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _INTROSPECT_BODY},
                        "application/x-www-form-urlencoded": {"schema": _INTROSPECT_BODY},
                    },
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["active"],
                            "properties": {"active": {"type": "boolean"}},
                        }
                    ),
                    **_AUTH_ERRORS,
                    **write_errors,
                },
            }
        },
        "/v1/events/credit": {
            "post": {
                "summary": "A credit status change from the upstream platform (platform partners)",
                "security": bearer,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("CreditEventBody")}},
                },
                "responses": {
                    "202": _json({"type": "object"}, "applied; live tokens re-checked"),
                    **_AUTH_ERRORS,
                    "403": _problem(
                        "platform partners only (forbidden_kind), with the events scope "
                        "(insufficient_scope)"
                    ),
                    **write_errors,
                    "503": _problem("the credit source did not take the event"),
                },
            }
        },
        "/v1/admin/policies/reload": {
            "post": {
                "summary": "Reload the policy set atomically (operator partners)",
                "security": bearer,
                "responses": {
                    "200": _json({"type": "object", "required": ["policy_set"]}),
                    **_AUTH_ERRORS,
                    "403": _problem("operator partners only (forbidden_kind)"),
                    "409": _problem("the new set was refused (policy_refused, with reasons[])"),
                },
            }
        },
        "/v1/admin/keys": {
            "get": {
                "summary": "The signing key ring (operator and auditor partners)",
                "security": bearer,
                "responses": {
                    "200": _json({"type": "object", "required": ["keys"]}),
                    **_AUTH_ERRORS,
                    "403": _problem("operator or auditor partners only (forbidden_kind)"),
                },
            },
            **_operator_post(
                "Publish a new signing key (not signing yet)", [], bearer, publishes=True
            ),
        },
        "/v1/admin/keys/{kid}/activate": _operator_post(
            "Sign with a published key from now on", [_path_param("kid")], bearer
        ),
        "/v1/admin/keys/{kid}/retire": _operator_post(
            "Drop a key from the JWKS; with force, revoke every token it signed",
            [_path_param("kid")],
            bearer,
        ),
    }


def build_document(gateway: Gateway) -> dict[str, Any]:
    _, defs = models_json_schema(
        [(m, "validation") for m in (DecisionBody, FeedbackBody, ConsentBody, CreditEventBody)],
        ref_template=_REF,
    )
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    schemas.update(Problem=_PROBLEM, PolicyRef=_POLICY_REF, Decision=_DECISION)
    active = gateway.policies.active_all(gateway.today())
    scene_names = [c.policy.scene for c in active]
    for compiled in active:
        schemas[f"Context_{compiled.policy.scene}"] = compiled.context_model.model_json_schema(
            ref_template=_REF
        )
    write_errors = {
        "400": _problem("the body is not JSON"),
        "413": _problem("the body is larger than 1 MiB"),
        "415": _problem("the body is not application/json"),
        "422": _problem("a field fails validation; errors[] points at it"),
    }
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
    paths: dict[str, Any] = {
        "/healthz": {
            "get": {"summary": "Liveness", "responses": {"200": _json({"type": "object"})}}
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: store, keys, policies and credit source",
                "responses": {
                    "200": _json({"type": "object"}),
                    "503": _json({"type": "object"}, "a component is failing"),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {"description": "text exposition", "content": {"text/plain": {}}}
                },
            }
        },
        "/openapi.json": {
            "get": {"summary": "This document", "responses": {"200": _json({"type": "object"})}}
        },
        "/.well-known/jwks.json": {
            "get": {
                "summary": "Public signing keys",
                "responses": {"200": _json({"type": "object", "required": ["keys"]})},
            }
        },
        "/v1/scenes": {
            "get": {
                "summary": "Every scene the gateway serves",
                "security": bearer,
                "responses": {
                    "200": _json({"type": "object", "required": ["scenes"]}),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/v1/scenes/{scene}/decisions": {
            "post": {
                "summary": "Ask for a decision on a subject in a scene",
                "description": (
                    "Checks run in order: credentials (401), rate limit (429), scene (404), "
                    "contract scene (403 forbidden_scene), body size (413), media type (415), "
                    "JSON/schema/subject id/context (400/422), contract purpose "
                    "(403 forbidden_purpose), consent (403 consent_required/consent_revoked)."
                ),
                "security": bearer,
                "parameters": [
                    {
                        "name": "scene",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": scene_names}
                        if scene_names
                        else {"type": "string"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("DecisionBody")}},
                },
                "responses": {
                    "200": {**_json(_ref("Decision"), "the decision"), "links": _DECISION_LINKS},
                    **_AUTH_ERRORS,
                    "403": _problem("scene, purpose or consent not allowed"),
                    "404": _problem("no such scene"),
                    **write_errors,
                    "503": _problem("a dependency is unavailable; see Retry-After"),
                },
            }
        },
        "/v1/decisions/{decision_id}": {
            "get": {
                "summary": "A decision, to the partner that asked for it",
                "security": bearer,
                "parameters": [
                    {
                        "name": "decision_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": _json(_ref("Decision")),
                    **_AUTH_ERRORS,
                    "404": _problem("no such decision for this partner"),
                },
            }
        },
        "/v1/decisions/{decision_id}/feedback": {
            "post": {
                "summary": "Report what the partner did with a decision (发起—响应—反馈)",
                "security": bearer,
                "parameters": [
                    {
                        "name": "decision_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("FeedbackBody")}},
                },
                "responses": {
                    "202": _json({"type": "object"}, "accepted"),
                    **_AUTH_ERRORS,
                    "404": _problem("no such decision for this partner"),
                    "409": _problem("the decision already has its most feedbacks (feedback_limit)"),
                    **write_errors,
                },
            }
        },
        "/v1/consents": {
            "post": {
                "summary": "Record a subject's consent (platform partners)",
                "security": bearer,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("ConsentBody")}},
                },
                "responses": {
                    "201": _json(
                        {
                            "type": "object",
                            "required": ["consent_id"],
                            "properties": {"consent_id": {"type": "string"}},
                        },
                        "created",
                    )
                    | {
                        "links": {
                            "RevokeConsent": _link(
                                "/v1/consents/{consent_id}",
                                "delete",
                                {"consent_id": "$response.body#/consent_id"},
                                "revoke this consent",
                            )
                        }
                    },
                    **_AUTH_ERRORS,
                    "403": _problem(
                        "platform partners only (forbidden_kind), with the consents scope "
                        "(insufficient_scope)"
                    ),
                    **write_errors,
                },
            }
        },
        "/v1/consents/{consent_id}": {
            "delete": {
                "summary": "Revoke a consent (the platform that recorded it; any platform for "
                "consent given at a partner's counter)",
                "security": bearer,
                "parameters": [
                    {
                        "name": "consent_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "204": {"description": "revoked"},
                    **_AUTH_ERRORS,
                    "403": _problem(
                        "platform partners only (forbidden_kind), with the consents scope "
                        "(insufficient_scope)"
                    ),
                    "404": _problem("no such consent"),
                },
            }
        },
        "/v1/status-lists/{list_id}": {
            "get": {
                "summary": "A token status list (IETF OAuth Token Status List), public",
                "parameters": [
                    {
                        "name": "list_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "signed status list JWT (typ statuslist+jwt)",
                        "content": {"application/statuslist+jwt": {"schema": {"type": "string"}}},
                    },
                    "404": _problem("no such list"),
                },
            }
        },
    }
    paths.update(_trust_paths(bearer, write_errors))
    # Operations described beside their handlers (gateway.api.spec.ApiPart).
    part_models: list[type[BaseModel]] = []
    for part in _parts():
        for path, ops in part.paths_for(gateway).items():
            clash = set(ops) & set(paths.get(path, {}))
            if clash:
                raise ValueError(f"{sorted(clash)} {path} is described twice")
            paths.setdefault(path, {}).update(ops)
        part_models.extend(part.models)
        schemas.update(part.schemas)
    if part_models:
        _, part_defs = models_json_schema(
            [(m, "validation") for m in part_models], ref_template=_REF
        )
        schemas.update(part_defs.get("$defs", {}))
    for path in _IDEMPOTENT:
        operation = paths[path]["post"]
        operation.setdefault("parameters", []).append(_IDEMPOTENCY_HEADER)
        operation["responses"]["409"] = _problem(
            "a request with this Idempotency-Key is still in progress (idempotency_in_progress)"
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "xinyi-gateway",
            "version": "1",
            "description": "信易+ incentive gateway: decisions, benefit tokens and consent.",
        },
        "servers": [{"url": gateway.settings.issuer}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an access token from /oauth/token, or a development API key",
                }
            },
        },
    }
