"""The credit office's dashboard (/ui/dashboard): operators and auditors."""

from __future__ import annotations

from aiohttp import web

from gateway.ui.auth import require
from gateway.ui.panels import (
    Panel,
    audit,
    checkpoint,
    decisions,
    keys,
    loan_stats,
    outbox,
    policies,
    tokens,
    upstream,
)
from gateway.ui.render import page, render

__all__ = ["PANELS", "routes"]

routes = web.RouteTableDef()

PANELS: tuple[Panel, ...] = (
    policies.PANEL,
    decisions.PANEL,
    tokens.PANEL,
    audit.PANEL,
    checkpoint.PANEL,
    outbox.PANEL,
    loan_stats.PANEL,
    upstream.PANEL,
    keys.PANEL,
)


@routes.get("/ui/dashboard")
@page
async def dashboard(request: web.Request) -> web.StreamResponse:
    signed = await require(request, "dashboard")
    shown = [(panel, await panel.load(request)) for panel in PANELS]
    return render(request, "dashboard.html", {"signed": signed, "panels": shown})
