"""The aiohttp application: wiring only."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from adapters.credit.base import CreditSource
from gateway.api import protocol_errors
from gateway.api.http import MAX_BODY_BYTES
from gateway.api.keys import GATEWAY
from gateway.api.middleware import error_middleware
from gateway.api.registry import MODULES
from gateway.commitments.sweeper import run_sweeper
from gateway.loans.overdue import run_overdue_notifier
from gateway.loans.warmer import run_facts_warmer
from gateway.runtime import Gateway
from gateway.settings import Settings
from gateway.ui.app import install_ui

__all__ = ["create_app"]


async def create_app(settings: Settings, *, credit: CreditSource | None = None) -> web.Application:
    """Open every component from ``settings`` and return the application serving them."""
    gateway = await Gateway.open(settings, credit=credit)
    protocol_errors.install()
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

    async def _background(app: web.Application) -> AsyncIterator[None]:
        # Event delivery, the commitment sweeper and the overdue-loan scan run on every
        # replica for the app's lifetime; each is safe to run on many replicas at once.
        gw = app[GATEWAY]
        tasks = [
            asyncio.create_task(
                run_sweeper(
                    gw.commitments, gw.settings.commitments.sweep_seconds, gw.today, gw.now
                ),
                name="xinyi-sweeper",
            ),
            asyncio.create_task(
                run_overdue_notifier(
                    gw.loans.overdue,
                    gw.store.claim_once,
                    gw.events.emit,
                    gw.settings.commitments.sweep_seconds,
                    lambda: int(gw.now().timestamp()),
                ),
                name="xinyi-loan-overdue",
            ),
            asyncio.create_task(
                run_facts_warmer(
                    gw.loans,
                    lambda: gw.policies,
                    gw.today,
                    lambda: int(gw.now().timestamp()),
                    gw.settings.loan_facts_seconds,
                ),
                name="xinyi-loan-facts",
            ),
        ]
        if gw.settings.outbox.enabled:
            tasks.append(asyncio.create_task(gw.dispatcher.run(), name="xinyi-outbox"))
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.append(_background)

    async def _close(app: web.Application) -> None:
        await app[GATEWAY].close()

    app.on_cleanup.append(_close)
    return app
