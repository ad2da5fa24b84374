"""What one decision asks of a real Redis (issue 17): the admission call and the append.

A demo gateway runs in-process on a redis-server of its own; MONITOR shows
every command the server executes. For one decision, the commands that touch
the request's state must be one ``FCALL xinyi_admit`` (rate limit, consent,
Idempotency-Key and, where the policy reads them, the subject's commitment
breaches) and one ``FCALL xinyi_append`` (the audit record with the decision)
— no separate rate-limit call, consent GET, key claim or breach read.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from gateway.api.keys import GATEWAY
from gateway.app import create_app
from gateway.commitments.models import Commitment
from gateway.demo import prepare_demo, seed_consents, write_demo_json
from gateway.settings import load_settings
from tests.redis_servers import RedisServer, redis_available, redis_server

pytestmark = pytest.mark.skipif(not redis_available(), reason="redis-server is not installed")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path / "redis") as running:
        yield running


@pytest.fixture
async def gateway(tmp_path: Path, server: RedisServer, aiohttp_client: Any) -> Any:
    setup = prepare_demo(tmp_path / "demo", dt.datetime.now(dt.UTC).date(), 200.0)
    settings = load_settings(None, {**setup.settings_overrides(), "store": server.url})
    app = await create_app(settings)
    gw = app[GATEWAY]
    await seed_consents(setup, gw.consents.create, gw.now())
    data = orjson.loads(write_demo_json(setup, settings.issuer).read_bytes())
    return await aiohttp_client(app), data


class Monitor:
    """Every command clients send, from MONITOR on a connection of its own."""

    def __init__(self, url: str) -> None:
        self._client = Redis.from_url(url, decode_responses=True)
        self.commands: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def __aenter__(self) -> Monitor:
        self._task = asyncio.create_task(self._listen())
        await asyncio.wait_for(self._ready.wait(), 5)
        return self

    async def _listen(self) -> None:
        async with self._client.monitor() as monitor:
            self._ready.set()
            async for info in monitor.listen():
                # What a function calls is shown too, as the "lua" client's: those
                # are not round trips.
                if info.get("client_type") != "lua":
                    self.commands.append(info["command"])

    async def settle(self, marker: str) -> None:
        """Wait until the server has shown a command sent after everything before it."""
        await self._client.execute_command("ECHO", marker)  # type: ignore[no-untyped-call]
        for _ in range(200):
            if any(marker in c for c in self.commands):
                return
            await asyncio.sleep(0.01)
        raise AssertionError("MONITOR never showed the marker")

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._client.aclose()


def _asking(commands: list[str], *needles: str) -> list[str]:
    return [c for c in commands if any(n in c for n in needles)]


@pytest.mark.parametrize("idempotent", [False, True])
async def test_a_persons_decision_is_one_admission_call_and_one_append(
    gateway: Any, server: RedisServer, idempotent: bool
) -> None:
    client, data = gateway
    subject = next(s for s in data["subjects"] if s["kind"] == "person" and s["consents"])
    partner_id = next(iter(subject["consents"]))
    partner = next(p for p in data["partners"] if p["id"] == partner_id)
    scene = next(s for s in partner["scenes"] if s in subject["context"])
    consent_id = subject["consents"][partner_id]["consent_id"]
    body = {
        "subject": {"kind": "person", "id": subject["id"]},
        "purpose": partner["purposes"][0],
        "consent_id": consent_id,
        "context": subject["context"][scene],
    }
    headers = {"Authorization": f"Bearer {partner['api_key']}"}
    if idempotent:
        headers["Idempotency-Key"] = "round-trips-1"
    async with Monitor(server.url) as monitor:
        response = await client.post(f"/v1/scenes/{scene}/decisions", json=body, headers=headers)
        assert response.status == 200
        decision_id = (await response.json())["decision_id"]
        await monitor.settle("round-trip-marker")
    mine = _asking(monitor.commands, f"rl:{partner_id}", consent_id, decision_id, "round-trips-1")
    assert [c.split()[:2] for c in mine] == [
        ["FCALL", "xinyi_admit"],
        ["FCALL", "xinyi_append"],
    ], mine
    assert consent_id in mine[0]
    assert ("round-trips-1" in mine[0]) is idempotent
    # Nothing else a decision used to ask on its own.
    assert not [c for c in monitor.commands if c.split()[0] in ("GET", "SET") or "xinyi_rate" in c]


@pytest.mark.parametrize("scene", ["loan", "tax"])
async def test_an_enterprises_decision_is_one_admission_call_and_one_append(
    gateway: Any, server: RedisServer, scene: str
) -> None:
    """A loan needs the enterprise's 授权 (read in the admission call); the tax
    hall needs none (the admission call takes the rate limit alone)."""
    client, data = gateway
    asker = next(p for p in data["partners"] if scene in p["scenes"])
    subject = next(
        s
        for s in data["subjects"]
        if s["kind"] == "enterprise" and s["expected"].get(scene) == "granted"
    )
    body = {
        "subject": {"kind": "enterprise", "id": subject["id"]},
        "purpose": asker["purposes"][0],
        "context": subject["context"][scene],
    }
    consent = subject["consents"].get(asker["id"])
    assert (consent is not None) is (scene == "loan")
    if consent is not None:
        body["consent_id"] = consent["consent_id"]
    async with Monitor(server.url) as monitor:
        response = await client.post(
            f"/v1/scenes/{scene}/decisions",
            json=body,
            headers={"Authorization": f"Bearer {asker['api_key']}"},
        )
        assert response.status == 200, await response.text()
        decision_id = (await response.json())["decision_id"]
        await monitor.settle("round-trip-marker")
    mine = _asking(monitor.commands, f"rl:{asker['id']}", decision_id)
    assert [c.split()[:2] for c in mine] == [
        ["FCALL", "xinyi_admit"],
        ["FCALL", "xinyi_append"],
    ], mine
    if consent is not None:
        assert consent["consent_id"] in mine[0]
    assert not [c for c in monitor.commands if c.split()[0] in ("GET", "SET") or "xinyi_rate" in c]


@pytest.mark.parametrize("breached", [False, True])
async def test_an_approval_reads_the_subjects_breaches_in_the_admission_call(
    gateway: Any, server: RedisServer, breached: bool
) -> None:
    """The approval policy reads commitment breaches: they come with the admission
    call (gateway/store/redis/breaches.py), not in a round trip of their own."""
    client, data = gateway
    gw = client.app[GATEWAY]
    asker = next(p for p in data["partners"] if "approval" in p["scenes"])
    subject = next(
        s
        for s in data["subjects"]
        if s["kind"] == "enterprise" and s["expected"].get("approval") == "granted"
    )
    today = gw.today()
    if breached:
        subject_key = gw.pseudonyms.internal("enterprise", subject["id"])
        commitment = Commitment(
            commitment_id="cmt_round_trips",
            partner=asker["id"],
            decision_id="dec_earlier",
            kind="tolerant_acceptance",
            subject_kind="enterprise",
            subject_key=subject_key,
            subject="pseudonym",
            missing_materials=("营业执照副本",),
            due=today - dt.timedelta(days=1),
            created_at=(gw.now() - dt.timedelta(days=30)).isoformat(timespec="seconds"),
            withhold_days=365,
        )
        assert await gw.commitments.store.register(commitment)
        closing = commitment.closed(
            status="breached",
            breach="overdue",
            closed_at=gw.now().isoformat(timespec="seconds"),
            withhold_until=today + dt.timedelta(days=365),
        )
        assert await gw.commitments.store.close(closing, [])
    body = {
        "subject": {"kind": "enterprise", "id": subject["id"]},
        "purpose": asker["purposes"][0],
        "context": subject["context"]["approval"],
    }
    async with Monitor(server.url) as monitor:
        response = await client.post(
            "/v1/scenes/approval/decisions",
            json=body,
            headers={"Authorization": f"Bearer {asker['api_key']}"},
        )
        assert response.status == 200, await response.text()
        decision = await response.json()
        await monitor.settle("round-trip-marker")
    mine = _asking(monitor.commands, f"rl:{asker['id']}", decision["decision_id"], ":cb:")
    assert [c.split()[:2] for c in mine] == [
        ["FCALL", "xinyi_admit"],
        ["FCALL", "xinyi_append"],
    ], mine
    assert ":cb:" in mine[0]
    assert not [
        c
        for c in monitor.commands
        if c.split()[0] in ("GET", "SET", "MGET", "ZRANGEBYSCORE") or "xinyi_rate" in c
    ]
    # The breach was read: it withholds 容缺 (tolerant acceptance), not the grant.
    assert decision["outcome"] == "granted"
    benefits = [b["code"] for b in decision["benefits"]]
    assert ("tolerant_acceptance" in benefits) is not breached
