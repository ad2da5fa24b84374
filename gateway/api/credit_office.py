"""The credit office's view of restorations (错误惩戒 → 恢复信誉).

``GET /v1/credit-office/restorations?after=&limit=`` — partners of kind
``operator`` or ``auditor`` only: every constrained decision whose record was
repaired, delisted or found wrong after an objection, with the event and its
time, in the order they happened. ``after`` is the ``cursor`` of the last entry
read (opaque, per backend); ``next`` is the cursor to ask with next.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api.http import json_response
from gateway.api.keys import GATEWAY
from gateway.api.spec import (
    AUTH_ERRORS,
    BEARER,
    ApiPart,
    json_content,
    problem,
    query_param,
)
from gateway.errors import DependencyUnavailable, FieldError, InvalidRequest
from gateway.store.base import StoreUnavailable

__all__ = ["openapi", "routes"]

routes = web.RouteTableDef()

MAX_LIMIT = 1000


def _limit(raw: str | None) -> int:
    if raw is None:
        return 100
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidRequest(
            "limit must be a whole number from 1 to 1000",
            errors=[FieldError("/limit", f"a whole number from 1 to {MAX_LIMIT}")],
        )
    return int(raw)


@routes.get("/v1/credit-office/restorations")
async def list_restorations(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    caller = await gw.authenticate(request)
    gw.partners.require_kind(caller, "operator", "auditor")
    limit = _limit(request.query.get("limit"))
    after = request.query.get("after") or None
    try:
        entries = await gw.restorations.restorations(after, limit)
    except ValueError:
        raise InvalidRequest(
            "after is not a cursor this gateway handed out",
            errors=[FieldError("/after", "use the cursor of the last entry read")],
        ) from None
    except StoreUnavailable as exc:
        raise DependencyUnavailable("the restorations store is not answering") from exc
    items = [e.as_json() for e in entries]
    return json_response({"restorations": items, "next": items[-1]["cursor"] if items else after})


_ENTRY = {
    "type": "object",
    "properties": {
        "cursor": {"type": "string"},
        "decision_id": {"type": "string"},
        "partner": {"type": "string"},
        "scene": {"type": "string"},
        "measures": {"type": "array", "items": {"type": "string"}},
        "decided_at": {"type": "string", "format": "date-time"},
        "record_id": {"type": "string"},
        "event": {"type": "string", "enum": ["repaired", "delisted", "objection_upheld"]},
        "restored_at": {"type": "string", "format": "date-time"},
    },
}

openapi = ApiPart()
openapi.add(
    "/v1/credit-office/restorations",
    "get",
    {
        "summary": "Constrained decisions whose basis was repaired, delisted or "
        "found wrong (operators and auditors)",
        "security": BEARER,
        "parameters": [
            query_param("after", {"type": "string"}, "the cursor of the last entry read"),
            query_param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
        ],
        "responses": {
            "200": json_content(
                {
                    "type": "object",
                    "properties": {
                        "restorations": {"type": "array", "items": _ENTRY},
                        "next": {"type": ["string", "null"]},
                    },
                }
            ),
            **AUTH_ERRORS,
            "403": problem("operators and auditors only (forbidden_kind)"),
            "422": problem("after or limit is not valid"),
            "503": problem("the restorations store is not answering"),
        },
    },
)
