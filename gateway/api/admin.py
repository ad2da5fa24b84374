"""Administration (API.md): reload the policy set, for operator partners."""

from __future__ import annotations

from aiohttp import web

from gateway.api.http import json_response
from gateway.api.keys import GATEWAY
from gateway.errors import PolicyRefused

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.post("/v1/admin/policies/reload")
async def reload_policies(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    caller = await gw.authenticate(request)
    gw.partners.require_kind(caller, "operator")
    ok, reasons = gw.reload_policies()
    if not ok:
        # The reasons name files, rules and codes: what an operator needs to fix the set.
        raise PolicyRefused(
            "the new policy set was refused; the previous one keeps serving",
            extra={"reasons": reasons, "policy_set": gw.policies.hash},
        )
    return json_response({"policy_set": gw.policies.hash, "scenes": sorted(gw.policies.by_scene)})
