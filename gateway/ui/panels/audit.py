"""Panel: the audit chain — its length, its head, and whether the tail read links up."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.ui.panels import Panel
from gateway.ui.panels.decisions import stats_view

__all__ = ["PANEL"]


async def _load(request: web.Request) -> dict[str, Any]:
    view = await stats_view(request)
    return {
        "records": view.last_seq,
        "head": view.head_hash,
        "checked_from": view.first_seq,
        "problem": view.chain_problem,
    }


PANEL = Panel("audit", "dashboard.audit", "panels/audit.html", _load)
