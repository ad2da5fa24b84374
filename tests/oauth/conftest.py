"""Fixtures for the OAuth, token and status-list security tests.

``oauth_demo`` is a demo gateway (as ``serve --demo`` builds it) plus the
helpers these tests need: client assertions signed with the demo partners'
private JWKs, the token endpoint, introspection, the served JWKS and an
independent status-list decoder. ``make_oauth_demo`` builds one whose partners
file was edited first (an ES256 partner, a second platform partner);
``shared_oauth_demo`` is one gateway for a module's matrix of read-only cases.

Nothing here uses gateway code to *check* the gateway: assertions are built
with PyJWT or by hand, tokens are verified with PyJWT and joserfc through the
served JWKS, and status lists are read with ``jose_kit.status_decoder``.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import orjson
import pytest
import pytest_asyncio
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.api.keys import GATEWAY
from gateway.app import create_app
from gateway.demo import DemoSetup, prepare_demo, seed_consents, write_demo_json
from gateway.runtime import Gateway
from gateway.settings import load_settings
from tests.oauth.jose_kit import ASSERTION_TYPE, pyjwt_decode, split_jws, status_decoder

PartnersEdit = Callable[[list[dict[str, Any]]], None]


# -- the demo gateway with OAuth helpers ----------------------------------------------------
@dataclass
class OAuthDemo:
    client: TestClient  # type: ignore[type-arg]
    gateway: Gateway
    data: dict[str, Any]  # demo.json
    partners: list[dict[str, Any]]  # the partners file as written
    api_keys: dict[str, str]  # every partner's development API key, extras included

    @property
    def issuer(self) -> str:
        return self.gateway.settings.issuer

    # partners and their keys
    def partner(self, partner_id: str) -> dict[str, Any]:
        return next(p for p in self.partners if p["id"] == partner_id)

    def api_auth(self, partner_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_keys[partner_id]}"}

    def private_jwk(self, partner_id: str) -> dict[str, Any]:
        entry = next(p for p in self.data["partners"] if p["id"] == partner_id)
        jwk: dict[str, Any] = orjson.loads(Path(entry["client_key"]).read_bytes())
        return jwk

    def signing_key(self, partner_id: str) -> Any:
        return jwt.PyJWK(self.private_jwk(partner_id)).key

    def kid(self, partner_id: str) -> str:
        return str(self.private_jwk(partner_id)["kid"])

    # client assertions and the token endpoint
    def claims(self, partner_id: str, **changes: Any) -> dict[str, Any]:
        """Valid assertion claims for ``partner_id``; a change to ``None`` drops the claim."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": partner_id,
            "sub": partner_id,
            "aud": self.issuer,
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_urlsafe(16),
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def assertion(
        self,
        partner_id: str,
        *,
        key: Any = None,
        headers: dict[str, Any] | None = None,
        kid: str | None = "",
        **changes: Any,
    ) -> str:
        """An EdDSA assertion signed with the partner's key (or ``key``).

        ``kid=""`` names the partner's registered kid, ``kid=None`` leaves it out.
        """
        header: dict[str, Any] = dict(headers or {})
        if kid == "":
            kid = self.kid(partner_id)
        if kid is not None:
            header["kid"] = kid
        return jwt.encode(
            self.claims(partner_id, **changes),
            key if key is not None else self.signing_key(partner_id),
            algorithm="EdDSA",
            headers=header,
        )

    def form(self, assertion: str, **fields: str | None) -> dict[str, str]:
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        }
        form.update(fields)  # type: ignore[arg-type]
        return {k: v for k, v in form.items() if v is not None}

    async def exchange(self, assertion: str, **fields: str | None) -> Any:
        return await self.client.post("/oauth/token", data=self.form(assertion, **fields))

    async def access_token(self, partner_id: str, scope: str | None = None) -> str:
        response = await self.exchange(self.assertion(partner_id), scope=scope)
        assert response.status == 200, await response.text()
        token: str = (await response.json())["access_token"]
        return token

    async def bearer(self, partner_id: str, scope: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.access_token(partner_id, scope)}"}

    # subjects and decisions
    def subject(self, label_prefix: str) -> dict[str, Any]:
        return next(s for s in self.data["subjects"] if s["label"].startswith(label_prefix))

    def decision_body(self, subject: dict[str, Any], scene: str, partner_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "subject": {"kind": subject["kind"], "id": subject["id"]},
            "purpose": self.partner(partner_id)["purposes"][0],
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
        partner_id: str,
        headers: dict[str, str] | None = None,
        **changes: Any,
    ) -> Any:
        body = self.decision_body(subject, scene, partner_id) | changes
        return await self.client.post(
            f"/v1/scenes/{scene}/decisions",
            json=body,
            headers=headers or self.api_auth(partner_id),
        )

    async def granted_token(self, subject: dict[str, Any], scene: str, partner_id: str) -> str:
        response = await self.decide(subject, scene, partner_id)
        assert response.status == 200, await response.text()
        body = await response.json()
        assert body["outcome"] == "granted", body
        token: str = body["token"]
        return token

    # what a verifier sees
    async def jwks(self) -> dict[str, Any]:
        response = await self.client.get("/.well-known/jwks.json")
        assert response.status == 200
        jwks: dict[str, Any] = await response.json()
        return jwks

    async def introspect(self, token: str, partner_id: str) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/tokens/introspect", json={"token": token}, headers=self.api_auth(partner_id)
        )
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    async def status_list(self, benefit_token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The status list a token names, fetched by its URI's path and verified with PyJWT.

        Returns (JOSE header, claims).
        """
        _, claims = split_jws(benefit_token)
        uri = claims["status"]["status_list"]["uri"]
        response = await self.client.get(urlsplit(uri).path)
        assert response.status == 200, await response.text()
        assert response.content_type == "application/statuslist+jwt"
        text = await response.text()
        listed = pyjwt_decode(
            text,
            await self.jwks(),
            issuer=self.issuer,
            options={"require": ["iss", "sub", "iat", "exp", "ttl"]},
        )
        assert listed["sub"] == uri
        return jwt.get_unverified_header(text), listed

    async def status_bit(self, benefit_token: str) -> int:
        _, claims = split_jws(benefit_token)
        _, listed = await self.status_list(benefit_token)
        lst = listed["status_list"]
        return status_decoder(lst["lst"], lst["bits"])(claims["status"]["status_list"]["idx"])


MakeOAuthDemo = Callable[..., Awaitable[OAuthDemo]]


async def _open_app(
    state_dir: Path, edit: PartnersEdit | None
) -> tuple[web.Application, DemoSetup, list[dict[str, Any]], dict[str, Any]]:
    """The demo app as ``serve --demo`` builds it, its partners file edited first."""
    setup = prepare_demo(state_dir, dt.datetime.now(dt.UTC).date())
    partners: list[dict[str, Any]] = yaml.safe_load(setup.partners_file.read_text())["partners"]
    if edit is not None:
        edit(partners)
        setup.partners_file.write_text(yaml.safe_dump({"partners": partners}))
    settings = load_settings(None, setup.settings_overrides())
    app = await create_app(settings)
    gateway = app[GATEWAY]
    await seed_consents(setup, gateway.consents.create, gateway.now())
    data = orjson.loads(write_demo_json(setup, settings.issuer).read_bytes())
    return app, setup, partners, data


def _tmpfs_dir() -> Path | None:
    """A fresh directory on tmpfs, if there is one.

    The embedded store fsyncs every write (synchronous=FULL) and seeding the
    demo consents is dozens of writes: on a busy disk that, not the gateway,
    dominated these tests' time.
    """
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK):
        return None
    return Path(tempfile.mkdtemp(prefix="xinyi-oauth-", dir=shm))


@pytest.fixture
def state_root(tmp_path: Path) -> Iterator[Path]:
    """Where demo state goes: tmpfs when there is one, else pytest's tmp_path."""
    root = _tmpfs_dir()
    if root is None:
        yield tmp_path
        return
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def make_oauth_demo(state_root: Path, aiohttp_client: Any) -> MakeOAuthDemo:
    made = 0

    async def make(
        edit: PartnersEdit | None = None, extra_api_keys: dict[str, str] | None = None
    ) -> OAuthDemo:
        nonlocal made
        made += 1
        app, setup, partners, data = await _open_app(state_root / f"oauth-demo-{made}", edit)
        client = await aiohttp_client(app)
        api_keys = {**setup.api_keys, **(extra_api_keys or {})}
        return OAuthDemo(client, app[GATEWAY], data, partners, api_keys)

    return make


@pytest.fixture
async def oauth_demo(make_oauth_demo: MakeOAuthDemo) -> OAuthDemo:
    return await make_oauth_demo()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_oauth_demo(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[OAuthDemo]:
    """One demo gateway for a module's read-mostly matrix of cases (building one costs ~0.2 s).

    Only for tests that change nothing another case could see: every assertion
    carries a fresh jti, so the replay cache does not couple them. Tests using
    it run on the module's event loop: mark them ``asyncio(loop_scope="module")``.
    """
    tmpfs = _tmpfs_dir()
    root = tmpfs or tmp_path_factory.mktemp("shared-oauth")
    app, setup, partners, data = await _open_app(root / "demo", None)
    client: TestClient = TestClient(TestServer(app))  # type: ignore[type-arg]
    await client.start_server()
    try:
        yield OAuthDemo(client, app[GATEWAY], data, partners, dict(setup.api_keys))
    finally:
        await client.close()
        if tmpfs is not None:
            shutil.rmtree(tmpfs, ignore_errors=True)
