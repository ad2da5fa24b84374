"""Panel: the serving policy set, where it came from, and each scene's policy and guard."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.keys import GATEWAY
from gateway.ui.panels import Panel, samples

__all__ = ["PANEL"]


async def _load(request: web.Request) -> dict[str, Any]:
    gw = request.app[GATEWAY]
    policies = gw.policies
    settings = gw.settings
    # A bundle is only ever served after its signature verified (gateway.policy.bundle).
    if settings.policy_bundle is not None:
        source = ("dashboard.source.bundle", str(settings.policy_bundle.name))
    else:
        source = ("dashboard.source.directory", str(settings.policy_dir.name))
    dropped = {
        labels["scene"]: int(value)
        for labels, value in samples(gw.metrics.registry, "xinyi_guard_violations_total")
    }
    scenes = []
    for compiled in policies.active_all(gw.today()):
        policy = compiled.policy
        scenes.append(
            {
                "scene": policy.scene,
                "title": policy.title,
                "policy": f"{policy.id} {policy.version}",
                "hash": compiled.hash,
                "basic_public_service": policy.basic_public_service,
                "dropped": dropped.get(policy.scene, 0),
            }
        )
    return {"policy_set": policies.hash, "source": source, "scenes": scenes}


PANEL = Panel("policies", "dashboard.policies", "panels/policies.html", _load)
