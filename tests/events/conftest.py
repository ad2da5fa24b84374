"""A demo gateway in-process whose hall and platform deliver events to a real receiver."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.api.keys import GATEWAY
from gateway.app import create_app
from gateway.demo import prepare_demo, seed_consents, write_demo_json
from gateway.policy.loader import PolicySet
from gateway.settings import load_settings
from tests.conftest import Demo
from tests.events.receiver import Receiver, configure_deliveries, running_receiver

HALL = "demo-service-hall"
PLATFORM = "demo-platform"

# Fast enough for a test: retries after 50 ms, 100 ms …; sweeps every 100 ms.
FAST = {
    "outbox": {"poll_seconds": 0.05, "backoff_seconds": 0.05, "lease_seconds": 5},
    "commitments": {"sweep_seconds": 0.1},
}


@dataclass
class EventDemo:
    demo: Demo
    receiver: Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver(["/hall", "/platform/events", "/library"]) as r:
        yield r


@pytest.fixture
async def events_demo(
    tmp_path: Path,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    shipped_policies: PolicySet,
    receiver: Receiver,
) -> EventDemo:
    monkeypatch.setattr("gateway.runtime.load_configured_policies", lambda _: shipped_policies)
    setup = prepare_demo(tmp_path / "demo", dt.datetime.now(dt.UTC).date())
    configure_deliveries(setup.partners_file, receiver, HALL, PLATFORM)
    settings = load_settings(None, setup.settings_overrides() | FAST)
    app = await create_app(settings)
    gateway = app[GATEWAY]
    await seed_consents(setup, gateway.consents.create, gateway.now())
    data = orjson.loads(write_demo_json(setup, settings.issuer).read_bytes())
    client = await aiohttp_client(app)
    return EventDemo(Demo(client, gateway, data), receiver)
