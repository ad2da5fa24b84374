"""Counter panel: the hall's open commitments, soonest due first, overdue ones marked."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.keys import GATEWAY
from gateway.ui.auth import require
from gateway.ui.panels import Panel

__all__ = ["PANEL", "SHOWN"]

SHOWN = 50  # the panel lists this many; the API pages through the rest


async def _load(request: web.Request) -> dict[str, Any]:
    signed = await require(request, "counter")
    gw = request.app[GATEWAY]
    today = gw.today()
    found = await gw.commitments.store.list_for(signed.partner.id, "open", None, None, SHOWN + 1)
    rows = [
        {
            "id": c.commitment_id,
            "decision_id": c.decision_id,
            "kind": c.kind,
            "materials": c.missing_materials,
            "due": c.due.isoformat(),
            "overdue": c.due < today,
            "fulfil": c.kind == "tolerant_acceptance",  # 告知承诺 is closed by its check
        }
        for c in found[:SHOWN]
    ]
    return {"rows": rows, "more": len(found) > SHOWN}


PANEL = Panel("commitments", "commitments.title", "panels/commitments.html", _load)
