"""Panel: decisions per scene and outcome over the last hour, drawn from the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web
from markupsafe import Markup

from gateway.api.keys import GATEWAY
from gateway.ui.charts import stacked_bars
from gateway.ui.panels import Panel
from gateway.ui.render import translator
from gateway.ui.state import UI
from gateway.ui.stats import OUTCOMES, StatsView

__all__ = ["PANEL", "stats_view"]

_KEY = web.RequestKey("xinyi.ui.stats", StatsView)


async def stats_view(request: web.Request) -> StatsView:
    """The window's figures, read once per request however many panels use them."""
    view = request.get(_KEY)
    if view is None:
        gw = request.app[GATEWAY]
        view = await request.app[UI].stats.view(gw.store, gw.now())
        request[_KEY] = view
    return view


async def _load(request: web.Request) -> dict[str, Any]:
    gw = request.app[GATEWAY]
    t = translator(request)
    view = await stats_view(request)
    labels = [
        dt.datetime.fromtimestamp(m * 60, dt.UTC).astimezone(gw.tz).strftime("%H:%M")
        for m in view.minutes
    ]
    charts: list[dict[str, Any]] = []
    for scene, series in view.per_scene.items():
        totals = {o: view.total(scene, o) for o in OUTCOMES}
        if not sum(totals.values()):
            continue
        name = t(f"scene.{scene}") if t.has(f"scene.{scene}") else scene
        label = t("dashboard.chart.label", scene=name, total=sum(totals.values()), **totals)
        svg: Markup = stacked_bars(series, labels, label, t)
        charts.append({"scene": scene, "name": name, "svg": svg, "totals": totals})
    return {"view": view, "charts": charts, "outcomes": OUTCOMES}


PANEL = Panel("decisions", "dashboard.decisions", "panels/decisions.html", _load)
