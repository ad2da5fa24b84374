"""Panel: the credit source — answering now, its circuit, its calls (this replica)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from adapters.credit.base import CreditSourceError
from gateway.api.keys import GATEWAY
from gateway.ui.panels import Panel, samples

__all__ = ["PANEL"]

_CHECK_S = 2.0


async def _load(request: web.Request) -> dict[str, Any]:
    gw = request.app[GATEWAY]
    registry = gw.metrics.registry
    error: str | None = None
    try:
        await asyncio.wait_for(gw.credit.check(), _CHECK_S)
    except CreditSourceError as exc:
        error = str(exc)
    except TimeoutError:
        error = f"no answer within {_CHECK_S:g} s"
    circuits = {
        labels["adapter"]: int(value)
        for labels, value in samples(registry, "xinyi_credit_circuit_state")
    }
    calls: dict[str, dict[str, int]] = {}
    for labels, value in samples(registry, "xinyi_upstream_calls_total"):
        calls.setdefault(labels["adapter"], {"ok": 0, "error": 0})[labels["result"]] = int(value)
    return {
        "adapter": gw.settings.credit_source.adapter,
        "error": error,
        "circuits": sorted(circuits.items()),
        "calls": sorted(calls.items()),
    }


PANEL = Panel("upstream", "dashboard.upstream", "panels/upstream.html", _load)
