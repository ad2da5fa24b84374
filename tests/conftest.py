"""Shared fixtures: a demo gateway built in-process, as ``serve --demo`` builds it.

``demo`` gives a :class:`Demo`: the aiohttp test client, the running Gateway and
the content of the demo.json the app wrote (partners with API keys, subjects with
their consents, contexts and expected outcomes). ``make_demo`` builds another
one with different settings (e.g. a very low rate limit).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from gateway.api.keys import GATEWAY
from gateway.app import create_app
from gateway.demo import prepare_demo, seed_consents, write_demo_json
from gateway.policy.loader import PolicySet, load_policy_dir
from gateway.resources import shipped
from gateway.runtime import Gateway
from gateway.settings import load_settings

# Which demo partner asks in each scene.
SCENE_PARTNER = {
    "loan": "demo-bank",
    "approval": "demo-service-hall",
    "library": "demo-library",
    "transit": "demo-transit",
    "rental": "demo-rental",
    "medical": "demo-hospital",
    "tax": "demo-tax-hall",
    "parking": "demo-parking",
}


@dataclass
class Demo:
    client: TestClient[web.Request, web.Application]
    gateway: Gateway
    data: dict[str, Any]  # demo.json

    @property
    def subjects(self) -> list[dict[str, Any]]:
        return list(self.data["subjects"])

    @staticmethod
    def asker(scene: str) -> str:
        """The demo partner whose contract covers ``scene``."""
        return SCENE_PARTNER[scene]

    def partner(self, partner_id: str) -> dict[str, Any]:
        return next(p for p in self.data["partners"] if p["id"] == partner_id)

    def auth(self, partner_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.partner(partner_id)['api_key']}"}

    def subject(self, kind: str, expected: dict[str, str] | None = None) -> dict[str, Any]:
        """The first demo subject of ``kind`` (whose outcomes match ``expected`` if given)."""
        return next(
            s
            for s in self.data["subjects"]
            if s["kind"] == kind
            and all(s["expected"].get(k) == v for k, v in (expected or {}).items())
        )

    def body(
        self, subject: dict[str, Any], scene: str, partner_id: str | None = None
    ) -> dict[str, Any]:
        """The body asking about ``subject`` in ``scene``, with the sender's consent if any."""
        partner_id = partner_id or SCENE_PARTNER[scene]
        body: dict[str, Any] = {
            "subject": {"kind": subject["kind"], "id": subject["id"]},
            "purpose": self.partner(SCENE_PARTNER[scene])["purposes"][0],
            "staff_id": "staff-0001",
            "context": subject["context"].get(scene, {}),
        }
        consent = subject["consents"].get(partner_id)
        if consent is not None:
            body["consent_id"] = consent["consent_id"]
        return body

    async def decide(
        self,
        subject: dict[str, Any],
        scene: str,
        /,
        *,
        partner_id: str | None = None,
        **changes: Any,
    ) -> ClientResponse:
        """POST a decision for (subject, scene); ``changes`` replace top-level body fields."""
        partner_id = partner_id or SCENE_PARTNER[scene]
        body = self.body(subject, scene, partner_id) | changes
        return await self.client.post(
            f"/v1/scenes/{scene}/decisions", json=body, headers=self.auth(partner_id)
        )


MakeDemo = Callable[..., Awaitable[Demo]]


@pytest.fixture(scope="session")
def shipped_policies() -> PolicySet:
    return load_policy_dir(shipped("policies"))


@pytest.fixture
async def make_demo(
    tmp_path: Path,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    shipped_policies: PolicySet,
) -> MakeDemo:
    # Parsing the shipped policy files is most of an app's start-up (~0.1 s); they
    # do not change during a run, so every in-process app shares one loaded set.
    # The real loading path is exercised by tests/e2e, which starts the server.
    monkeypatch.setattr("gateway.runtime.load_configured_policies", lambda _: shipped_policies)
    made = 0

    async def make(rate_per_second: float = 200.0) -> Demo:
        nonlocal made
        made += 1
        state_dir = tmp_path / f"demo-{made}"
        setup = prepare_demo(state_dir, dt.datetime.now(dt.UTC).date(), rate_per_second)
        settings = load_settings(None, setup.settings_overrides())
        app = await create_app(settings)
        gateway = app[GATEWAY]
        await seed_consents(setup, gateway.consents.create, gateway.now())
        demo_json = write_demo_json(setup, settings.issuer)
        client = await aiohttp_client(app)
        return Demo(client, gateway, orjson.loads(demo_json.read_bytes()))

    return make


@pytest.fixture
async def demo(make_demo: MakeDemo) -> Demo:
    return await make_demo()
