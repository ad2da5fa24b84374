"""A real webhook receiver on loopback: it fails each event's first attempts, verifies
Standard Webhooks signatures with the ``standardwebhooks`` library and
de-duplicates by ``webhook-id`` as a partner's system would."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass
class Attempt:
    path: str
    event_id: str
    status: int
    verified: bool
    body: dict[str, Any]


@dataclass
class Receiver:
    secrets: dict[str, str]  # path -> secret
    fail_first: int = 2
    up: bool = True  # False: every attempt answers 503
    attempts: list[Attempt] = field(default_factory=list)
    # path -> event id -> the payload processed (once, however often it arrived)
    processed: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        path = request.path
        event_id = request.headers.get("webhook-id", "")
        try:
            Webhook(self.secrets[path]).verify(body, dict(request.headers))
            verified = True
        except WebhookVerificationError:
            verified = False
        seen = sum(1 for a in self.attempts if a.path == path and a.event_id == event_id)
        status = 204
        if not verified:
            status = 401
        elif not self.up or seen < self.fail_first:
            status = 500
        self.attempts.append(Attempt(path, event_id, status, verified, orjson.loads(body)))
        if status == 204:
            self.processed[path].setdefault(event_id, orjson.loads(body))
        return web.Response(status=status)

    def events(self, path: str, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.processed[path].items() if v["type"] == type_}

    def attempts_for(self, path: str, event_id: str) -> list[Attempt]:
        return [a for a in self.attempts if a.path == path and a.event_id == event_id]


@contextlib.asynccontextmanager
async def running_receiver(paths: list[str], fail_first: int = 2) -> AsyncIterator[Receiver]:
    receiver = Receiver({p: new_secret() for p in paths}, fail_first)
    app = web.Application()
    for path in paths:
        app.router.add_post(path, receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.url = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        await runner.cleanup()


def configure_deliveries(partners_file: Path, receiver: Receiver, hall: str, platform: str) -> None:
    """Point the hall's webhook and the platform's event endpoint at ``receiver``;
    the secrets go to files beside the partners file."""
    directory = partners_file.parent
    (directory / "hall.whsec").write_text(receiver.secrets["/hall"], encoding="utf-8")
    (directory / "platform.whsec").write_text(
        receiver.secrets["/platform/events"], encoding="utf-8"
    )
    if "/library" in receiver.secrets:
        (directory / "library.whsec").write_text(receiver.secrets["/library"], encoding="utf-8")
    data = yaml.safe_load(partners_file.read_text(encoding="utf-8"))
    kinds = ["commitment_breached", "commitment_fulfilled", "token_revoked", "consent_revoked"]
    for partner in data["partners"]:
        if partner["id"] == hall:
            partner["deliveries"] = [
                {
                    "adapter": "webhook",
                    "events": kinds,
                    "options": {"url": receiver.url + "/hall", "secret_file": "hall.whsec"},
                }
            ]
        elif partner["id"] == "demo-library" and "/library" in receiver.secrets:
            partner["deliveries"] = [
                {
                    "adapter": "webhook",
                    "events": ["token_revoked", "consent_revoked"],
                    "options": {"url": receiver.url + "/library", "secret_file": "library.whsec"},
                }
            ]
        elif partner["id"] == platform:
            partner["deliveries"] = [
                {
                    "adapter": "platform",
                    "events": ["commitment_breached", "commitment_fulfilled"],
                    "options": {
                        "base_url": receiver.url + "/platform",
                        "secret_file": "platform.whsec",
                    },
                }
            ]
    partners_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


async def eventually(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Wait for a condition the system reaches on its own (delivery, sweep)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "the condition was not reached"
        await asyncio.sleep(0.05)
