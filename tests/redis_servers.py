"""Real redis-server processes for tests: single nodes and a 3-master cluster.

Each server runs on a free port in a temporary directory and is stopped by its
pid. Nothing here fakes Redis; a machine without redis-server skips these tests
(CI installs it).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RedisServer", "redis_available", "redis_cluster", "redis_server"]


def redis_available() -> bool:
    """Whether redis-server can be started; in CI its absence is an error, not a skip."""
    found = shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None
    if not found and os.environ.get("CI"):
        raise RuntimeError("CI must install redis-server (see .ci/run)")
    return found


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port(cluster: bool = False) -> int:
    if not cluster:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    # A cluster node also listens on port + 10000 (the bus), so stay low enough.
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20_000, 50_000)
        if _port_free(port) and _port_free(port + 10_000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


@dataclass
class RedisServer:
    port: int
    directory: Path
    extra: tuple[str, ...]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(self.directory / "redis.log"),
            *self.extra,
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)  # stopped by its pid, as the project's rules ask
            self.proc.wait(timeout=10)
            self.proc = None


@contextmanager
def redis_server(directory: Path, *extra: str) -> Iterator[RedisServer]:
    directory.mkdir(parents=True, exist_ok=True)
    server = RedisServer(_free_port(), directory, extra)
    server.start()
    try:
        yield server
    finally:
        server.kill(signal.SIGTERM)


@contextmanager
def redis_cluster(directory: Path, masters: int = 3) -> Iterator[list[RedisServer]]:
    servers: list[RedisServer] = []
    try:
        for i in range(masters):
            node_dir = directory / f"node{i}"
            node_dir.mkdir(parents=True, exist_ok=True)
            server = RedisServer(
                _free_port(cluster=True),
                node_dir,
                (
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(node_dir / "nodes.conf"),
                    "--appendonly",
                    "no",
                ),
            )
            server.start()
            servers.append(server)
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *[f"127.0.0.1:{s.port}" for s in servers],
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            # Every node, not only the first: a node that has not yet taken in the
            # slot map answers CLUSTERDOWN to the first commands routed to it.
            states = [
                subprocess.run(
                    ["redis-cli", "-p", str(s.port), "cluster", "info"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                ).stdout
                for s in servers
            ]
            if all("cluster_state:ok" in out for out in states):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("the test cluster did not become ready")
        yield servers
    finally:
        for server in servers:
            server.kill(signal.SIGTERM)


def cluster_url(servers: list[RedisServer]) -> str:
    return "redis+cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in servers)
