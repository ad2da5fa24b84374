"""OpenAPI fragments more than one API module shares.

``SCHEMAS`` are the component schemas every part may point at (the assembler in
``gateway.api.openapi`` serves them); ``link`` and ``idempotent`` shape
operations the same way wherever they are declared.
"""

from __future__ import annotations

from typing import Any

from gateway.api.spec import problem

__all__ = ["IDEMPOTENCY_HEADER", "PROBLEM", "SCHEMAS", "idempotent", "link"]

PROBLEM: dict[str, Any] = {
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

# Every error response of every part points at Problem (spec.problem).
SCHEMAS: dict[str, Any] = {"Problem": PROBLEM}


def link(path: str, method: str, parameters: dict[str, str], description: str) -> dict[str, Any]:
    """An OpenAPI link: how a response feeds a later call (fuzzers follow these)."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return {
        "operationRef": f"#/paths/{pointer}/{method}",
        "parameters": parameters,
        "description": description,
    }


IDEMPOTENCY_HEADER: dict[str, Any] = {
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

IN_PROGRESS = "a request with this Idempotency-Key is still in progress (idempotency_in_progress)"


def idempotent(operation: dict[str, Any], conflict: str | None = None) -> dict[str, Any]:
    """``operation`` (a POST run through gateway.api.idempotency) taking Idempotency-Key.

    Its 409 says the key is in use; ``conflict`` is the operation's own 409, if it
    has one, described alongside.
    """
    described = conflict + "; or " + IN_PROGRESS if conflict else IN_PROGRESS
    return operation | {
        "parameters": [*operation.get("parameters", []), IDEMPOTENCY_HEADER],
        "responses": operation["responses"] | {"409": problem(described)},
    }
