"""Gateway replicas as real processes on real Redis servers.

Replica A is ``python -m gateway serve --demo``: it prepares the state
directory (partners file, credit data set, signing keys, pseudonym secret) and
writes demo.json. Replica B is ``serve --config`` on a YAML file that points at
the same directory, so both share keys, partners and the credit source, and
both get the same issuer through ``XINYI_BASE_URL``. Each process is stopped by
its own pid; every Redis server is started here, never the machine's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml

from gateway.store.base import AuditRecord
from gateway.store.redis import RedisStore
from tests.redis_servers import RedisServer, redis_available, redis_cluster, redis_server

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 40.0
STOP_TIMEOUT_S = 15.0

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
PLATFORM = "demo-platform"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def gateway_env(base_url: str) -> dict[str, str]:
    """This process's environment without stray XINYI_* settings, plus the shared issuer."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINYI_")}
    env["XINYI_BASE_URL"] = base_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


# -- gateway processes ---------------------------------------------------------------------
@dataclass
class Replica:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                pytest.fail(
                    f"replica {self.name} exited ({self.process.returncode}):\n{self.log_tail()}"
                )
            try:
                url = self.base + "/readyz"
                with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - local URL
                    if answer.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        pytest.fail(f"replica {self.name} was not ready in {timeout_s} s:\n{self.log_tail()}")

    def stop(self) -> int | None:
        """SIGTERM by pid, then SIGKILL if it does not stop in time; the exit code."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                return self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT_S)
        return self.process.returncode


def _spawn(name: str, port: int, args: list[str], env: dict[str, str], log: Path) -> Replica:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--port", str(port), *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Replica(name, port, process, log)


@contextmanager
def demo_replica(
    state_dir: Path,
    store_url: str,
    *,
    rate: float,
    port: int | None = None,
    base_url: str | None = None,
    name: str = "A",
    extra: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Iterator[Replica]:
    """``serve --demo`` on ``state_dir`` and ``store_url``; ready when yielded."""
    port = port or free_port()
    state_dir.mkdir(parents=True, exist_ok=True)
    replica = _spawn(
        name,
        port,
        [
            "--demo",
            "--state-dir",
            str(state_dir),
            "--store",
            store_url,
            "--demo-rate",
            str(rate),
            *extra,
        ],
        {**gateway_env(base_url or f"http://127.0.0.1:{port}"), **(env or {})},
        state_dir.parent / f"{state_dir.name}-{name}.log",
    )
    try:
        replica.wait_ready()
        yield replica
    finally:
        replica.stop()


@contextmanager
def config_replica(
    state_dir: Path,
    store_url: str,
    base_url: str,
    *,
    name: str = "B",
    env: dict[str, str] | None = None,
) -> Iterator[Replica]:
    """A second replica on the demo's state directory, from a config file of its own."""
    config = state_dir.parent / f"{state_dir.name}-{name}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(state_dir.resolve()),
                "partners_file": str((state_dir / "partners.yaml").resolve()),
                "ui_users_file": str((state_dir / "ui-users.yaml").resolve()),
                "credit_source": {
                    "adapter": "sqlite",
                    "options": {"path": str((state_dir / "credit.sqlite3").resolve())},
                },
                "base_url": base_url,
            }
        ),
        encoding="utf-8",
    )
    port = free_port()
    replica = _spawn(
        name,
        port,
        ["--config", str(config), "--store", store_url],
        {**gateway_env(base_url), **(env or {})},
        state_dir.parent / f"{state_dir.name}-{name}.log",
    )
    try:
        replica.wait_ready()
        yield replica
    finally:
        replica.stop()


# -- demo.json -------------------------------------------------------------------------------
@dataclass
class DemoData:
    raw: dict[str, Any]
    # decision ids answered 200, by the replica that answered them
    decided: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, state_dir: Path) -> DemoData:
        return cls(orjson.loads((state_dir / "demo.json").read_bytes()))

    @property
    def base_url(self) -> str:
        return str(self.raw["base_url"])

    def partner(self, partner_id: str) -> dict[str, Any]:
        return next(p for p in self.raw["partners"] if p["id"] == partner_id)

    def auth(self, partner_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.partner(partner_id)['api_key']}"}

    def private_jwk(self, partner_id: str) -> dict[str, Any]:
        jwk: dict[str, Any] = orjson.loads(
            Path(self.partner(partner_id)["client_key"]).read_bytes()
        )
        return jwk

    def subject(self, label_prefix: str) -> dict[str, Any]:
        return next(s for s in self.raw["subjects"] if s["label"].startswith(label_prefix))

    def combos(self) -> list[tuple[dict[str, Any], str]]:
        """Every (subject, scene) pair the demo expects an answer for."""
        return [(s, scene) for s in self.raw["subjects"] for scene in s["expected"]]

    def body(self, subject: dict[str, Any], scene: str) -> dict[str, Any]:
        partner = self.partner(SCENE_PARTNER[scene])
        body: dict[str, Any] = {
            "subject": {"kind": subject["kind"], "id": subject["id"]},
            "purpose": partner["purposes"][0],
            "staff_id": "staff-0001",
            "context": subject["context"].get(scene, {}),
        }
        consent = subject["consents"].get(partner["id"])
        if consent is not None:
            body["consent_id"] = consent["consent_id"]
        return body


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


async def request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    json: Any = None,
    data: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    kwargs: dict[str, Any] = {"headers": headers or {}}
    if json is not None:
        kwargs["data"] = orjson.dumps(json)
        kwargs["headers"] = {**kwargs["headers"], "Content-Type": "application/json"}
    elif data is not None:
        kwargs["data"] = data
    async with session.request(method, url, **kwargs) as response:
        return Answer(response.status, dict(response.headers), await response.read())


# -- the audit trail ---------------------------------------------------------------------------
async def read_audit(store_url: str, limit: int = 100_000) -> list[AuditRecord]:
    store = RedisStore(store_url, connect_timeout_s=10)
    await store.open()
    try:
        return await store.audit_records(0, limit)
    finally:
        await store.close()


async def audit_verify(store_url: str) -> tuple[int, str]:
    """``xinyi-gateway audit verify --store URL``: exit code and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "audit",
        "verify",
        "--store",
        store_url,
        cwd=REPO,
        env=gateway_env("http://127.0.0.1:1"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode("utf-8", "replace")


# -- Redis servers -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def replica_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if not redis_available():
        pytest.skip("redis-server is not installed")
    with redis_server(tmp_path_factory.mktemp("replica-redis")) as server:
        yield server


@pytest.fixture(scope="module")
def replica_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    if not redis_available():
        pytest.skip("redis-server is not installed")
    with redis_cluster(tmp_path_factory.mktemp("replica-cluster")) as servers:
        yield servers
