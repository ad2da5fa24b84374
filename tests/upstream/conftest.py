"""A demo gateway whose credit source is the platform adapter, against the fake
platform served on a loopback port (a real aiohttp server, real HTTP)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from adapters.credit.fake_platform import FakePlatform, running_fake_platform
from gateway.api.keys import GATEWAY
from gateway.app import create_app
from gateway.demo import prepare_demo, seed_consents, write_demo_json
from gateway.policy.loader import PolicySet
from gateway.settings import load_settings
from tests.conftest import Demo

PLATFORM_TOKEN = "fake-platform-token-0001"
# Timeouts roomy enough for a loaded machine; short backoff so retries are quick.
# Tests that need a lookup to time out pass TIGHT. The breaker's clock is the
# `clock` fixture's, so no test waits for a circuit to half-open.
FAST: dict[str, Any] = {
    "timeout_seconds": 2.0,
    "deadline_seconds": 4.0,
    "attempts": 3,
    "backoff_seconds": 0.01,
    "backoff_max_seconds": 0.05,
    "breaker_threshold": 3,
    "breaker_reset_seconds": 30,
}
TIGHT: dict[str, Any] = {"timeout_seconds": 0.3, "deadline_seconds": 0.8}


class Clock:
    """Wall-clock time as purgatory reads it, moved forward on demand."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    # purgatory's states read time.time() to open and half-open; the adapter's
    # Retry-After reads it too.
    monkeypatch.setattr("purgatory.domain.model.time", fake)
    monkeypatch.setattr(
        "adapters.credit.platform.time",
        SimpleNamespace(time=fake.time, perf_counter=time.perf_counter),
    )
    return fake


@dataclass
class Upstream:
    demo: Demo
    platform: FakePlatform
    url: str

    async def metrics(self) -> str:
        return await (await self.demo.client.get("/metrics")).text()

    def sample(self, name: str, **labels: str) -> float:
        value = self.demo.gateway.metrics.registry.get_sample_value(name, labels)
        return value or 0.0

    def decisions_made(self) -> float:
        registry = self.demo.gateway.metrics.registry
        return sum(
            s.value
            for metric in registry.collect()
            if metric.name == "xinyi_decisions"
            for s in metric.samples
            if s.name == "xinyi_decisions_total"
        )


MakeUpstream = Callable[..., Awaitable[Upstream]]


@pytest.fixture
async def make_upstream(
    tmp_path: Path,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    shipped_policies: PolicySet,
) -> AsyncIterator[MakeUpstream]:
    monkeypatch.setattr("gateway.runtime.load_configured_policies", lambda _: shipped_policies)
    servers: list[Any] = []

    async def make(cache_seconds: float = 0.0, **options: Any) -> Upstream:
        setup = prepare_demo(tmp_path / "demo", dt.datetime.now(dt.UTC).date())
        platform = FakePlatform.with_rows(
            ((s.kind, s.id, r) for s in setup.subjects for r in s.records), token=PLATFORM_TOKEN
        )
        server = running_fake_platform(platform)
        url = await server.__aenter__()
        servers.append(server)
        overrides = setup.settings_overrides() | {
            "credit_source": {
                "adapter": "platform",
                "options": {"base_url": url, "bearer_token": PLATFORM_TOKEN} | FAST | options,
            },
            "records_cache_seconds": cache_seconds,
        }
        settings = load_settings(None, overrides)
        app = await create_app(settings)
        gateway = app[GATEWAY]
        await seed_consents(setup, gateway.consents.create, gateway.now())
        demo_json = write_demo_json(setup, settings.issuer)
        client = await aiohttp_client(app)
        demo = Demo(client, gateway, orjson.loads(demo_json.read_bytes()))
        return Upstream(demo, platform, url)

    yield make
    for server in reversed(servers):
        await server.__aexit__(None, None, None)
