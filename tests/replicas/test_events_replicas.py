"""Events across real gateway processes: the embedded store (one process) and Redis
(two replicas). A breach reaches the hall's webhook once; a SIGKILL with events
undelivered loses none of them."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import os
import signal
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from gateway.commitments.backend import commitment_store
from gateway.commitments.models import Commitment
from gateway.store.base import Store
from gateway.store.embedded import EmbeddedStore
from gateway.store.redis import RedisStore
from gateway.trust.pseudonyms import Pseudonyms
from tests.events.receiver import Receiver, configure_deliveries, running_receiver
from tests.redis_servers import RedisServer
from tests.replicas.conftest import (
    DemoData,
    Replica,
    _spawn,
    demo_replica,
    free_port,
    gateway_env,
    request,
)

pytestmark = pytest.mark.slow

HALL = "demo-service-hall"
PLATFORM = "demo-platform"
FAST = {
    "outbox": {
        "poll_seconds": 0.05,
        "backoff_seconds": 0.05,
        "backoff_max_seconds": 0.5,
        "lease_seconds": 3,
    },
    "commitments": {"sweep_seconds": 0.1},
}


_DATABASES = itertools.count(1)


class ThreadedReceiver:
    """The receiver on a loop of its own, so the test's blocking waits never stall it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stop = asyncio.Event()
        self.receiver: Receiver | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._run(),))

    async def _run(self) -> None:
        self.stop = asyncio.Event()
        async with running_receiver(["/hall", "/platform/events"]) as receiver:
            self.receiver = receiver
            self.ready.set()
            await self.stop.wait()

    def __enter__(self) -> Receiver:
        self.thread.start()
        assert self.ready.wait(10)
        assert self.receiver is not None
        return self.receiver

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)
        self.loop.close()


@contextlib.contextmanager
def replicas(state_dir: Path, store_url: str, base_url: str, count: int) -> Iterator[list[Replica]]:
    """``count`` replicas from one config file on the prepared demo state directory."""
    config = state_dir.parent / "events.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(state_dir.resolve()),
                "partners_file": str((state_dir / "partners.yaml").resolve()),
                "credit_source": {
                    "adapter": "sqlite",
                    "options": {"path": str((state_dir / "credit.sqlite3").resolve())},
                },
                "base_url": base_url,
                **FAST,
            }
        ),
        encoding="utf-8",
    )
    started: list[Replica] = []
    try:
        for n in range(count):
            name = f"R{n}"
            started.append(
                _spawn(
                    name,
                    free_port(),
                    ["--config", str(config), "--store", store_url],
                    gateway_env(base_url),
                    state_dir.parent / f"events-{name}.log",
                )
            )
        for replica in started:
            replica.wait_ready()
        yield started
    finally:
        for replica in started:
            replica.stop()


def kill(replica: Replica) -> None:
    os.kill(replica.process.pid, signal.SIGKILL)
    replica.process.wait(timeout=15)


@pytest.fixture(params=["embedded", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, int]:
    """(store URL, replica count): embedded in one process, Redis with two replicas."""
    if request.param == "embedded":
        return f"sqlite:///{(tmp_path / 'demo' / 'state.sqlite3').resolve()}", 1
    server: RedisServer = request.getfixturevalue("replica_redis")
    # A database of its own per test on the module's server.
    return server.url.removesuffix("/0") + f"/{next(_DATABASES)}", 2


def _open_store(url: str) -> Store:
    if url.startswith("sqlite:///"):
        return EmbeddedStore(Path(url.removeprefix("sqlite://")))
    return RedisStore(url, connect_timeout_s=10)


async def _seed_overdue(url: str, commitment: Commitment) -> None:
    """A commitment registered weeks ago, past its due date now (the past cannot be
    made through the API)."""
    if url.startswith("sqlite:///"):
        # The serving gateway holds the state directory's lock (one writer by
        # design), so the row goes in beside it with plain SQL, as an operator's would.
        with (
            contextlib.closing(sqlite3.connect(url.removeprefix("sqlite://"), timeout=10)) as conn,
            conn,
        ):
            conn.execute(
                "INSERT INTO commitments VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                (
                    commitment.commitment_id,
                    commitment.partner,
                    commitment.kind,
                    commitment.status,
                    commitment.member,
                    commitment.due.isoformat(),
                    commitment.subject_key,
                    commitment.to_json().decode(),
                ),
            )
        return
    store = _open_store(url)
    await store.open()
    try:
        commitments = commitment_store(store)
        await commitments.open()
        assert await commitments.register(commitment)
    finally:
        await store.close()


def _prepare(tmp_path: Path, store_url: str, receiver: Receiver) -> DemoData:
    state = tmp_path / "demo"
    with demo_replica(state, store_url, rate=500):
        pass
    configure_deliveries(state / "partners.yaml", receiver, HALL, PLATFORM)
    return DemoData.load(state)


async def _decide(
    session: aiohttp.ClientSession, base: str, data: DemoData, subject: dict[str, Any]
) -> dict[str, Any]:
    answer = await request(
        session,
        "POST",
        f"{base}/v1/scenes/approval/decisions",
        json=data.body(subject, "approval"),
        headers=data.auth(HALL),
    )
    assert answer.status == 200, answer.body
    body: dict[str, Any] = answer.json()
    return body


async def _register(
    session: aiohttp.ClientSession,
    base: str,
    data: DemoData,
    subject: dict[str, Any],
    decision_id: str,
) -> dict[str, Any]:
    due = dt.date.today() + dt.timedelta(days=10)
    answer = await request(
        session,
        "POST",
        f"{base}/v1/commitments",
        json={
            "decision_id": decision_id,
            "subject": {"kind": subject["kind"], "id": subject["id"]},
            "missing_materials": ["章程修正案"],
            "due": due.isoformat(),
        },
        headers=data.auth(HALL),
    )
    assert answer.status == 201, answer.body
    body: dict[str, Any] = answer.json()
    return body


async def _until(check: Any, timeout_s: float = 40.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not reached"
        await asyncio.sleep(0.1)


def _benefits(body: dict[str, Any]) -> list[str]:
    return [b["code"] for b in body["benefits"]]


async def test_breach_is_delivered_once_and_withholds(
    tmp_path: Path, backend: tuple[str, int]
) -> None:
    store_url, count = backend
    with ThreadedReceiver() as receiver:
        data = _prepare(tmp_path, store_url, receiver)
        subject = (
            data.subject("enterprise")
            if False
            else next(s for s in data.raw["subjects"] if s["expected"].get("approval") == "granted")
        )
        with replicas(tmp_path / "demo", store_url, data.base_url, count) as running:
            first, last = running[0], running[-1]
            async with aiohttp.ClientSession() as session:
                decided = await _decide(session, first.base, data, subject)
                assert "tolerant_acceptance" in _benefits(decided)
                registered = await _register(
                    session, last.base, data, subject, decided["decision_id"]
                )
                pseudonyms = Pseudonyms.load(tmp_path / "demo" / "pseudonym.key")
                overdue = Commitment(
                    commitment_id="cmt_overdue_" + registered["commitment_id"][-10:],
                    partner=HALL,
                    decision_id=decided["decision_id"],
                    kind="tolerant_acceptance",
                    subject_kind="enterprise",
                    subject_key=pseudonyms.internal("enterprise", subject["id"]),
                    subject=registered["subject"],
                    missing_materials=("审计报告",),
                    due=dt.date.today() - dt.timedelta(days=2),
                    created_at="2020-01-01T00:00:00+00:00",
                    withhold_days=365,
                )
                await _seed_overdue(store_url, overdue)
                await _until(lambda: bool(receiver.events("/hall", "commitment_breached")))
                ((event_id, payload),) = receiver.events("/hall", "commitment_breached").items()
                assert payload["data"]["commitment_id"] == overdue.commitment_id
                attempts = receiver.attempts_for("/hall", event_id)
                # Two replicas, one delivery: the lease kept the other away.
                assert [a.status for a in attempts] == [500, 500, 204]
                assert all(a.verified for a in attempts)
                await _until(
                    lambda: bool(receiver.events("/platform/events", "commitment_breached"))
                )
                later = await _decide(session, last.base, data, subject)
                assert _benefits(later) == ["green_channel"]
                shown = await request(
                    session,
                    "GET",
                    f"{first.base}/v1/commitments/{overdue.commitment_id}",
                    headers=data.auth(HALL),
                )
                assert shown.json()["status"] == "breached"


async def test_sigkill_with_undelivered_events_loses_none(
    tmp_path: Path, backend: tuple[str, int]
) -> None:
    store_url, count = backend
    with ThreadedReceiver() as receiver:
        receiver.fail_first = 0
        receiver.up = False  # every attempt refused until the gateways are killed
        data = _prepare(tmp_path, store_url, receiver)
        subject = next(
            s for s in data.raw["subjects"] if s["expected"].get("approval") == "granted"
        )
        fulfilled: list[str] = []
        with replicas(tmp_path / "demo", store_url, data.base_url, count) as running:
            async with aiohttp.ClientSession() as session:
                decided = await _decide(session, running[0].base, data, subject)
                for n in range(4):
                    replica = running[n % len(running)]
                    made = await _register(
                        session, replica.base, data, subject, decided["decision_id"]
                    )
                    answer = await request(
                        session,
                        "POST",
                        f"{replica.base}/v1/commitments/{made['commitment_id']}/fulfil",
                        headers=data.auth(HALL),
                    )
                    assert answer.json()["status"] == "fulfilled"
                    fulfilled.append(made["commitment_id"])
            # Each event was tried and refused at least once: it is in flight.
            await _until(
                lambda: (
                    {
                        a.body["data"]["commitment_id"]
                        for a in receiver.attempts
                        if a.path == "/hall"
                    }
                    >= set(fulfilled)
                )
            )
            for replica in running:
                kill(replica)
        assert not receiver.events("/hall", "commitment_fulfilled")
        receiver.up = True
        with replicas(tmp_path / "demo", store_url, data.base_url, count):

            def all_delivered() -> bool:
                hall = {
                    e["data"]["commitment_id"]
                    for e in receiver.events("/hall", "commitment_fulfilled").values()
                }
                up = {
                    e["data"]["commitment_id"]
                    for e in receiver.events("/platform/events", "commitment_fulfilled").values()
                }
                return hall == set(fulfilled) and up == set(fulfilled)

            await _until(all_delivered)
        # Once each, by event id, however often it was attempted.
        assert len(receiver.events("/hall", "commitment_fulfilled")) == len(fulfilled)
