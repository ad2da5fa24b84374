"""One truth across replicas (issue 14.5): a change made through one replica is in
force on the other within one second — cached credit records, the policy set and
the key ring.

Each backend gets its own pair of real processes on a policy directory of its
own (a copy of the shipped one), so the reload test can change a policy file.
On a single Redis the change arrives by pub/sub; Redis Cluster's asyncio client
has no pub/sub, so there the periodic re-check of the generation counters
carries it — both within the bound.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from gateway.resources import shipped
from tests.redis_servers import cluster_url
from tests.replicas.conftest import (
    PLATFORM,
    SCENE_PARTNER,
    Answer,
    DemoData,
    Replica,
    config_replica,
    demo_replica,
    free_port,
    request,
)

pytestmark = pytest.mark.slow

# The bound: in force on the other replica within one second.
WITHIN_S = 1.0
OPERATOR = "demo-operator"


@dataclass
class SyncPair:
    a: Replica
    b: Replica
    demo: DemoData
    policy_dir: Path

    def base(self, via: str) -> str:
        return (self.a if via == "A" else self.b).base


@pytest.fixture(scope="module", params=["redis", "redis_cluster"])
def sync_pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SyncPair]:
    if request.param == "redis":
        store_url = request.getfixturevalue("replica_redis").url
    else:
        store_url = cluster_url(request.getfixturevalue("replica_cluster"))
    root = tmp_path_factory.mktemp(f"sync-{request.param}")
    policy_dir = root / "policies"
    shutil.copytree(shipped("policies"), policy_dir)
    env = {"XINYI_POLICY_DIR": str(policy_dir)}
    state_dir = root / "state"
    port_a = free_port()
    base_url = f"http://127.0.0.1:{port_a}"
    with (
        demo_replica(state_dir, store_url, rate=50, port=port_a, base_url=base_url, env=env) as a,
        config_replica(state_dir, store_url, base_url, env=env) as b,
    ):
        yield SyncPair(a, b, DemoData.load(state_dir), policy_dir)
        assert a.alive(), a.log_tail()
        assert b.alive(), b.log_tail()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as client:
        yield client


async def _within(check: Callable[[], Awaitable[bool]], bound_s: float = WITHIN_S) -> float:
    """Seconds until ``check`` holds; fails if it does not hold within ``bound_s``."""
    started = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - started
        if time.monotonic() - started > bound_s:
            pytest.fail(f"not in force on the other replica within {bound_s} s")
        await asyncio.sleep(0.02)


async def _decide(
    pair: SyncPair, session: aiohttp.ClientSession, via: str, subject: dict[str, Any], scene: str
) -> Answer:
    return await request(
        session,
        "POST",
        f"{pair.base(via)}/v1/scenes/{scene}/decisions",
        json=pair.demo.body(subject, scene),
        headers=pair.demo.auth(SCENE_PARTNER[scene]),
    )


async def test_a_credit_event_at_one_replica_evicts_the_others_cached_records(
    sync_pair: SyncPair, session: aiohttp.ClientSession
) -> None:
    reader = sync_pair.demo.subject("person, credit score 650")
    # B decides first, so B holds the reader's records in its cache (30 s TTL).
    before = await _decide(sync_pair, session, "B", reader, "library")
    assert before.status == 200, before.body
    assert before.json()["outcome"] == "granted", before.body

    event = await request(
        session,
        "POST",
        sync_pair.base("A") + "/v1/events/credit",
        json={
            "subject": {"kind": "person", "id": reader["id"]},
            "event": "listed",
            "record": {
                "record_id": "sync-ev-1",
                "type": "dishonest_executed",
                "domain": "court_enforcement",
                "effective_document": True,
                "adverse": True,
                "decided_on": (dt.date.today() - dt.timedelta(days=2)).isoformat(),
            },
        },
        headers=sync_pair.demo.auth(PLATFORM),
    )
    assert event.status == 202, event.body

    async def b_sees_the_listing() -> bool:
        answer = await _decide(sync_pair, session, "B", reader, "library")
        assert answer.status == 200, answer.body
        return bool(answer.json()["outcome"] == "standard")

    await _within(b_sees_the_listing)


async def _scene_policy(
    pair: SyncPair, session: aiohttp.ClientSession, via: str, scene: str
) -> dict[str, Any]:
    answer = await request(
        session, "GET", pair.base(via) + "/v1/scenes", headers=pair.demo.auth(SCENE_PARTNER[scene])
    )
    assert answer.status == 200, answer.body
    found: dict[str, Any] = next(s for s in answer.json()["scenes"] if s["scene"] == scene)
    return found


async def test_a_policy_reload_through_one_replica_is_in_force_on_the_other(
    sync_pair: SyncPair, session: aiohttp.ClientSession
) -> None:
    old = await _scene_policy(sync_pair, session, "B", "library")
    policy_file = sync_pair.policy_dir / "library.yaml"
    text = policy_file.read_text(encoding="utf-8")
    title = next(line for line in text.splitlines() if line.startswith("title:"))
    policy_file.write_text(text.replace(title, title + "（修订）", 1), encoding="utf-8")

    reloaded = await request(
        session,
        "POST",
        sync_pair.base("A") + "/v1/admin/policies/reload",
        headers=sync_pair.demo.auth(OPERATOR),
    )
    assert reloaded.status == 200, reloaded.body
    at_a = await _scene_policy(sync_pair, session, "A", "library")
    assert at_a["policy"]["hash"] != old["policy"]["hash"]

    async def b_serves_the_new_set() -> bool:
        at_b = await _scene_policy(sync_pair, session, "B", "library")
        return bool(at_b["policy"]["hash"] == at_a["policy"]["hash"])

    await _within(b_serves_the_new_set)


def _kid(token: str) -> str:
    header = token.split(".")[0]
    kid: str = orjson.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    return kid


async def test_a_key_rotation_through_one_replica_is_in_force_on_the_other(
    sync_pair: SyncPair, session: aiohttp.ClientSession
) -> None:
    operator = sync_pair.demo.auth(OPERATOR)
    added = await request(
        session,
        "POST",
        sync_pair.base("A") + "/v1/admin/keys",
        json={"alg": "EdDSA"},
        headers=operator,
    )
    assert added.status == 201, added.body
    kid = added.json()["kid"]

    async def b_publishes_it() -> bool:
        jwks = await request(session, "GET", sync_pair.base("B") + "/.well-known/jwks.json")
        return kid in {k["kid"] for k in jwks.json()["keys"]}

    await _within(b_publishes_it)

    activated = await request(
        session,
        "POST",
        f"{sync_pair.base('A')}/v1/admin/keys/{kid}/activate",
        json={"force": True},
        headers=operator,
    )
    assert activated.status == 200, activated.body
    enterprise = sync_pair.demo.subject("tax grade A, clean for 3+ years")

    async def b_signs_with_it() -> bool:
        answer = await _decide(sync_pair, session, "B", enterprise, "approval")
        assert answer.status == 200, answer.body
        token = answer.json().get("token")
        return token is not None and _kid(token) == kid

    await _within(b_signs_with_it)
