"""Panel: the signing key ring with each key's dates (published, active, verifies until)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from gateway.api.keys import GATEWAY
from gateway.ui.panels import Panel

__all__ = ["PANEL"]


def _day(value: dt.datetime | None, tz: dt.tzinfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else "—"


async def _load(request: web.Request) -> dict[str, Any]:
    gw = request.app[GATEWAY]
    keys = [
        {
            "kid": key.kid,
            "alg": key.alg,
            "status": key.status,
            "created": _day(key.created, gw.tz),
            "active_since": _day(key.active_since, gw.tz),
            "verify_until": _day(key.verify_until, gw.tz),
        }
        for key in reversed(gw.keys.entries())
    ]
    return {"keys": keys}


PANEL = Panel("keys", "dashboard.keys", "panels/keys.html", _load)
