"""Panel: how banks answered loan demands over the last 90 days (the loans service's stats)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from gateway.api.keys import GATEWAY
from gateway.ui.panels import Panel

__all__ = ["DAYS", "PANEL", "bank_rows"]

DAYS = 90  # the same window GET /v1/loans/stats uses by default


async def bank_rows(request: web.Request, banks: list[str]) -> list[dict[str, Any]]:
    gw = request.app[GATEWAY]
    now = gw.now()
    since = int((now - dt.timedelta(days=DAYS)).timestamp())
    until = int(now.timestamp()) + 1
    if not banks:
        return []
    rows: list[dict[str, Any]] = await gw.loans.stats(banks, since, until, int(now.timestamp()))
    for row in rows:
        row["refused"] = sum(row["refused_by_reason"].values())
    return rows


async def _load(request: web.Request) -> dict[str, Any]:
    gw = request.app[GATEWAY]
    banks = sorted(p.id for p in gw.partners.by_id.values() if p.kind == "bank")
    return {"rows": await bank_rows(request, banks), "days": DAYS}


PANEL = Panel("loan-stats", "dashboard.loans", "panels/loan_stats.html", _load)
