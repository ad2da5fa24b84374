"""The pages at /ui: wired into the application by ``install_ui`` (one line in app.py).

They are HTML for people, not the partner API: they are left out of the
OpenAPI document and answer their own refusals as pages (docs/ui.md).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from gateway.runtime import Gateway
from gateway.ui import counter, dashboard, loans, pages
from gateway.ui.i18n import Catalogs
from gateway.ui.render import template_environment
from gateway.ui.sessions import session_store
from gateway.ui.state import UI, UiState
from gateway.ui.stats import DecisionStats
from gateway.ui.users import load_staff

__all__ = ["install_ui"]

STATIC = Path(__file__).parent / "static"


def install_ui(app: web.Application, gateway: Gateway) -> None:
    settings = gateway.settings
    staff = load_staff(settings.ui_users_file, gateway.partners.by_id)
    templates = template_environment()
    templates.globals["page_order"] = pages.PAGE_ORDER
    templates.globals["field_labels"] = counter.FIELD_LABELS
    app[UI] = UiState(
        templates=templates,
        catalogs=Catalogs(),
        staff=staff,
        sessions=session_store(gateway.store),
        stats=DecisionStats(),
        idle_s=settings.ui_session_idle_minutes * 60.0,
        max_age_s=settings.ui_session_max_hours * 3600.0,
    )
    for module in (pages, counter, loans, dashboard):
        app.add_routes(module.routes)
    app.router.add_static("/ui/static", STATIC, append_version=False)
    # Last: any other /ui address is a page that does not exist, told as a page.
    app.router.add_get("/ui/{tail:.*}", pages.not_found)

    async def _open(app: web.Application) -> None:
        await app[UI].sessions.open()

    app.on_startup.append(_open)
