"""The OpenAPI 3.1 document, assembled from the parts the API modules declare.

Each module in ``gateway.api.registry`` describes its own operations beside its
handlers (``openapi = ApiPart()``, see ``gateway.api.spec``); this module only
merges them. Scene names and context schemas come from the active policy set
(the decisions part's dynamic fragments), so a new scene needs no code change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway.api.components import SCHEMAS
from gateway.api.spec import REF_TEMPLATE, ApiPart

if TYPE_CHECKING:
    from gateway.runtime import Gateway

__all__ = ["build_document"]


def _parts() -> list[ApiPart]:
    # Imported here: the registry imports the handler modules, which import this one.
    from gateway.api.registry import MODULES

    return [m.openapi for m in MODULES if isinstance(getattr(m, "openapi", None), ApiPart)]


def build_document(gateway: Gateway) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = dict(SCHEMAS)
    models: list[type[BaseModel]] = []
    for part in _parts():
        for path, ops in part.paths_for(gateway).items():
            clash = set(ops) & set(paths.get(path, {}))
            if clash:
                raise ValueError(f"{sorted(clash)} {path} is described twice")
            paths.setdefault(path, {}).update(ops)
        models.extend(part.models)
        schemas.update(part.schemas_for(gateway))
    if models:
        # One pass over every request model, so shared nested models get one name.
        _, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF_TEMPLATE)
        schemas.update(defs.get("$defs", {}))
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
