"""OpenAPI fragments declared beside the handlers they describe.

Each API module that adds operations keeps an ``ApiPart`` next to its routes
(``openapi = ApiPart()``; ``openapi.add("/v1/things", "post", {...})``), so a new
endpoint is described where it is written. ``gateway.api.openapi`` assembles
the document from every module listed in ``gateway.api.registry``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from gateway.runtime import Gateway

__all__ = [
    "AUTH_ERRORS",
    "BEARER",
    "WRITE_ERRORS",
    "ApiPart",
    "json_content",
    "model_ref",
    "path_param",
    "problem",
    "query_param",
]

REF_TEMPLATE = "#/components/schemas/{model}"

# Every /v1/ operation's security requirement.
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def model_ref(name: str) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(model=name)}


def problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": model_ref("Problem")}},
    }


def json_content(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def path_param(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


def query_param(
    name: str, schema: dict[str, Any], description: str = "", *, required: bool = False
) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query", "required": required, "schema": schema}
    if description:
        param["description"] = description
    return param


AUTH_ERRORS: dict[str, Any] = {
    "401": problem("missing or invalid credentials (unauthenticated)"),
    "429": problem("rate limited; see Retry-After"),
}

WRITE_ERRORS: dict[str, Any] = {
    "400": problem("the body is not JSON"),
    "413": problem("the body is larger than 1 MiB"),
    "415": problem("the body is not application/json"),
    "422": problem("a field fails validation; errors[] points at it"),
}


@dataclass
class ApiPart:
    """The paths and component schemas one API module contributes to the document."""

    paths: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Request/response models, exported with pydantic's JSON Schema (validation mode).
    models: list[type[BaseModel]] = field(default_factory=list)
    schemas: dict[str, Any] = field(default_factory=dict)
    # Fragments that depend on the running gateway (e.g. the active scenes).
    dynamic: list[Callable[[Gateway], dict[str, dict[str, Any]]]] = field(default_factory=list)
    # Component schemas that depend on it (e.g. each active scene's context).
    dynamic_schemas: list[Callable[[Gateway], dict[str, Any]]] = field(default_factory=list)

    def add(self, path: str, method: str, operation: dict[str, Any]) -> None:
        methods = self.paths.setdefault(path, {})
        if method in methods:
            raise ValueError(f"{method.upper()} {path} is described twice")
        methods[method] = operation

    def model(self, *models: type[BaseModel]) -> None:
        self.models.extend(models)

    def paths_for(self, gateway: Gateway) -> dict[str, dict[str, Any]]:
        merged = {path: dict(ops) for path, ops in self.paths.items()}
        for build in self.dynamic:
            for path, ops in build(gateway).items():
                merged.setdefault(path, {}).update(ops)
        return merged

    def schemas_for(self, gateway: Gateway) -> dict[str, Any]:
        merged = dict(self.schemas)
        for build in self.dynamic_schemas:
            merged.update(build(gateway))
        return merged
