"""Panel: outbox deliveries waiting and dead letters, by event type (the shared store)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web

from gateway.api.keys import GATEWAY
from gateway.ui.panels import Panel

__all__ = ["CAP", "PANEL"]

CAP = 1000  # counted up to this many per state; `xinyi-gateway outbox list` shows them all


async def _load(request: web.Request) -> dict[str, Any]:
    store = request.app[GATEWAY].dispatcher.store
    states: dict[str, Any] = {}
    for state in ("pending", "dead"):
        items = await store.items(state, CAP + 1)
        by_type = Counter(item.event.type for item in items[:CAP])
        states[state] = {
            "count": min(len(items), CAP),
            "more": len(items) > CAP,
            "by_type": sorted(by_type.items()),
        }
    return {"states": states}


PANEL = Panel("outbox", "dashboard.outbox", "panels/outbox.html", _load)
