"""Event delivery throughput: events queued, then drained by one dispatcher to a
Standard Webhooks receiver on loopback (same process, so the receiver's CPU
counts too). Embedded store, and Redis when ``--redis URL`` is given.

    .venv/bin/python bench/outbox.py --events 2000 [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import secrets
import tempfile
import time
from pathlib import Path

from aiohttp import web

from adapters.delivery.webhook import WebhookDelivery
from gateway.metrics import Metrics
from gateway.outbox.backend import outbox_store
from gateway.outbox.dispatcher import Dispatcher
from gateway.outbox.events import Events
from gateway.settings import OutboxSettings, Partner
from gateway.store.base import Store
from gateway.store.embedded import EmbeddedStore
from gateway.store.redis import RedisStore


async def run(store: Store, count: int, batch: int) -> tuple[float, float]:
    received = 0

    async def receive(request: web.Request) -> web.Response:
        nonlocal received
        await request.read()
        received += 1
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    partner = Partner.model_validate(
        {
            "id": "hall",
            "kind": "service_hall",
            "deliveries": [{"adapter": "webhook", "events": ["token_revoked"]}],
        }
    )
    await store.open()
    outbox = outbox_store(store)
    await outbox.open()
    adapter = WebhookDelivery(f"http://127.0.0.1:{port}/hook", secret, 10.0)
    dispatcher = Dispatcher(
        outbox, {("hall", "webhook"): adapter}, OutboxSettings(batch=batch), Metrics()
    )
    events = Events([partner], outbox)
    t0 = time.perf_counter()
    for n in range(count):
        await events.emit("token_revoked", {"jti": f"j{n}"}, audience=["hall"])
    t1 = time.perf_counter()
    while received < count:
        await dispatcher.run_once()
    t2 = time.perf_counter()
    await dispatcher.close()
    await store.close()
    await runner.cleanup()
    return count / (t1 - t0), count / (t2 - t1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--redis")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stores: list[tuple[str, Store]] = [("embedded", EmbeddedStore(Path(tmp) / "state.sqlite3"))]
        if args.redis:
            stores.append(("redis", RedisStore(args.redis, prefix="bench" + secrets.token_hex(3))))
        for name, store in stores:
            queued, delivered = asyncio.run(run(store, args.events, args.batch))
            print(
                f"{name}: queued {queued:,.0f} events/s (one durable write each), "
                f"delivered {delivered:,.0f} events/s (batch {args.batch})"
            )


if __name__ == "__main__":
    main()
