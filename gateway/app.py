"""The aiohttp application: wiring only."""

from __future__ import annotations

from aiohttp import web

from adapters.credit.base import CreditSource
from gateway.api.http import MAX_BODY_BYTES
from gateway.api.keys import GATEWAY
from gateway.api.middleware import error_middleware
from gateway.api.registry import MODULES
from gateway.runtime import Gateway
from gateway.settings import Settings
from gateway.ui.app import install_ui

__all__ = ["create_app"]


async def create_app(settings: Settings, *, credit: CreditSource | None = None) -> web.Application:
    """Open every component from ``settings`` and return the application serving them."""
    gateway = await Gateway.open(settings, credit=credit)
    # Bodies over the limit surface as 413 from request.read(), answered by the handlers.
    app = web.Application(
        middlewares=[error_middleware(gateway.metrics)], client_max_size=MAX_BODY_BYTES
    )
    app[GATEWAY] = gateway
    for module in MODULES:
        app.add_routes(module.routes)
    install_ui(app, gateway)

    async def _start(app: web.Application) -> None:
        await app[GATEWAY].sync.start()

    app.on_startup.append(_start)

    async def _close(app: web.Application) -> None:
        await app[GATEWAY].close()

    app.on_cleanup.append(_close)
    return app
