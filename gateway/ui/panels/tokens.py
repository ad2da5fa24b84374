"""Panel: benefit tokens issued (audit log, every replica) and revoked (this replica)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.keys import GATEWAY
from gateway.ui.panels import Panel, samples
from gateway.ui.panels.decisions import stats_view

__all__ = ["PANEL"]


async def _load(request: web.Request) -> dict[str, Any]:
    gw = request.app[GATEWAY]
    view = await stats_view(request)
    revoked = sorted(
        (labels["reason"], int(value))
        for labels, value in samples(gw.metrics.registry, "xinyi_tokens_revoked_total")
    )
    return {"issued": view.tokens_issued, "revoked": revoked}


PANEL = Panel("tokens", "dashboard.tokens", "panels/tokens.html", _load)
