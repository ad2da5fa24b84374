"""Fixtures for the policy-operations tests: in-process gateways on chosen policies.

``serve`` builds a gateway the way ``serve --demo`` does (demo partners, data
set and consents) but on settings the test chooses: a policy directory copy, a
signed bundle, production mode. ``office`` is a credit-office signing key pair.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
import yaml
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from gateway.api.keys import GATEWAY
from gateway.app import create_app
from gateway.demo import DemoSetup, DemoSubject, prepare_demo, seed_consents
from gateway.policy.bundle import new_office_key
from gateway.runtime import Gateway
from gateway.settings import load_settings
from gateway.trust.partners import hash_api_key

PURPOSES = {
    "library": "deposit_waiver",
    "transit": "deposit_waiver",
    "loan": "credit_loan_assessment",
    "approval": "administrative_approval",
}
ASKERS = {
    "library": "demo-library",
    "transit": "demo-transit",
    "loan": "demo-bank",
    "approval": "demo-service-hall",
}


@dataclass(frozen=True)
class Office:
    private_pem: Path
    jwks: Path
    kid: str


def make_office(directory: Path, name: str = "office") -> Office:
    directory.mkdir(parents=True, exist_ok=True)
    pem, jwks = directory / f"{name}.pem", directory / f"{name}.jwks.json"
    return Office(pem, jwks, new_office_key(pem, jwks))


@pytest.fixture
def office(tmp_path: Path) -> Office:
    return make_office(tmp_path / "office")


@dataclass
class Served:
    client: TestClient[web.Request, web.Application]
    gateway: Gateway
    setup: DemoSetup

    def auth(self, partner_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.setup.api_keys[partner_id]}"}

    def subject(self, label: str) -> DemoSubject:
        return next(s for s in self.setup.subjects if s.label == label)

    async def decide(
        self,
        scene: str,
        subject: DemoSubject,
        *,
        partner: str | None = None,
        purpose: str | None = None,
        consent_id: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> ClientResponse:
        partner = partner or ASKERS[scene]
        body: dict[str, Any] = {
            "subject": {"kind": subject.kind, "id": subject.id},
            "purpose": purpose or PURPOSES[scene],
            "context": context or {},
        }
        consent = consent_id or subject.consents.get(partner, {}).get("consent_id")
        if consent is not None:
            body["consent_id"] = consent
        return await self.client.post(
            f"/v1/scenes/{scene}/decisions", json=body, headers=self.auth(partner)
        )

    async def reload(self, partner: str = "demo-operator") -> ClientResponse:
        return await self.client.post("/v1/admin/policies/reload", headers=self.auth(partner))

    async def metrics(self) -> str:
        token = self.gateway.settings.metrics_token
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        response = await self.client.get("/metrics", headers=headers)
        assert response.status == 200
        return await response.text()

    async def scene_policies(self, partner: str = "demo-library") -> dict[str, dict[str, str]]:
        response = await self.client.get("/v1/scenes", headers=self.auth(partner))
        assert response.status == 200
        return {s["scene"]: s["policy"] for s in (await response.json())["scenes"]}

    async def token_claims(self, token: str, audience: str) -> dict[str, Any]:
        """A benefit token's claims, verified as a partner would (JWKS, pinned alg)."""
        response = await self.client.get("/.well-known/jwks.json")
        keys = jwt.PyJWKSet.from_dict(await response.json())
        kid = jwt.get_unverified_header(token)["kid"]
        claims: dict[str, Any] = jwt.decode(
            token,
            key=keys[kid],
            algorithms=["EdDSA"],
            audience=audience,
            issuer=self.gateway.settings.issuer,
        )
        return claims


Serve = Callable[..., Awaitable[Served]]

METRICS_TOKEN = "metrics-" + "t" * 24


async def access_token(
    client: TestClient[web.Request, web.Application], issuer: str, partner_id: str, key_file: Path
) -> str:
    """An access token from /oauth/token for a client assertion signed with the partner's key."""
    jwk = orjson.loads(key_file.read_bytes())  # noqa: ASYNC240 - a small local file
    now = int(time.time())
    claims = {
        "iss": partner_id,
        "sub": partner_id,
        "aud": issuer,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
    }
    assertion = jwt.encode(
        claims, jwt.PyJWK(jwk).key, algorithm="EdDSA", headers={"kid": jwk["kid"]}
    )
    response = await client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )
    assert response.status == 200, await response.text()
    token: str = (await response.json())["access_token"]
    return token


@pytest.fixture
async def serve(tmp_path: Path, aiohttp_client: Any) -> Serve:
    """Start an in-process gateway with demo partners; keyword arguments are settings.

    ``extra_partners`` maps an API key to a partner entry added to the demo
    partners file (its ``api_key_sha256`` is filled in).
    """
    made = 0

    async def start(
        *, extra_partners: dict[str, dict[str, Any]] | None = None, **overrides: Any
    ) -> Served:
        nonlocal made
        made += 1
        state_dir = tmp_path / f"state-{made}"
        setup = prepare_demo(state_dir, dt.datetime.now(dt.UTC).date())
        production = overrides.get("mode") == "production"
        if production:
            # Production takes no API keys: partners sign in with client assertions.
            overrides.setdefault("metrics_token", METRICS_TOKEN)
            data = yaml.safe_load(setup.partners_file.read_text(encoding="utf-8"))
            for entry in data["partners"]:
                entry.pop("allow_api_keys", None)
                entry.pop("api_key_sha256", None)
            setup.partners_file.write_text(
                yaml.safe_dump(data, allow_unicode=True), encoding="utf-8"
            )
        if extra_partners:
            data = yaml.safe_load(setup.partners_file.read_text(encoding="utf-8"))
            for key, entry in extra_partners.items():
                data["partners"].append(
                    {**entry, "allow_api_keys": True, "api_key_sha256": [hash_api_key(key)]}
                )
                setup.api_keys[entry["id"]] = key
            setup.partners_file.write_text(
                yaml.safe_dump(data, allow_unicode=True), encoding="utf-8"
            )
        settings = load_settings(None, {**setup.settings_overrides(), **overrides})
        app = await create_app(settings)
        gateway = app[GATEWAY]
        await seed_consents(setup, gateway.consents.create, gateway.now())
        client = await aiohttp_client(app)
        if production:
            # Served.auth then sends each partner's OAuth access token.
            for partner_id, key_file in setup.client_keys.items():
                setup.api_keys[partner_id] = await access_token(
                    client, settings.issuer, partner_id, key_file
                )
        return Served(client, gateway, setup)

    return start
