"""SIGHUP on the real server: ``python -m gateway serve --demo`` re-reads its policies.

The server runs on a private copy of the policies (``XINYI_POLICY_DIR``); the
test edits the copy, signals the process and watches what it serves.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.policy.loader import load_policy_dir
from tests.policy_ops._kit import LIBRARY_RULE_600, copy_policies, file_hash, replace_once, sample

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    log: Path
    policy_dir: Path
    demo: dict[str, Any]

    def get(self, path: str, partner: str | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.base + path)  # noqa: S310
        if partner is not None:
            key = next(p["api_key"] for p in self.demo["partners"] if p["id"] == partner)
            request.add_header("Authorization", f"Bearer {key}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read()

    def policy_set(self) -> str:
        status, body = self.get("/readyz")
        assert status == 200, body
        value: str = orjson.loads(body)["policy_set"]
        return value

    def library_policy(self) -> dict[str, str]:
        status, body = self.get("/v1/scenes", "demo-library")
        assert status == 200, body
        return next(s["policy"] for s in orjson.loads(body)["scenes"] if s["scene"] == "library")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log.read_bytes().splitlines():
            try:
                lines.append(orjson.loads(raw))
            except orjson.JSONDecodeError:
                continue
        return lines


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(condition: Callable[[], bool], what: str, server: Server) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"the server exited ({server.process.returncode}):\n{server.log_text()}")
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}:\n{server.log_text()}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    policy_dir = copy_policies(tmp_path / "policies")
    state_dir = tmp_path / "state"
    log = tmp_path / "server.log"
    port = free_port()
    env = {**os.environ, "XINYI_POLICY_DIR": str(policy_dir)}
    command = [sys.executable, "-m", "gateway", "serve", "--demo", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--state-dir", str(state_dir), "--no-access-log"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log, policy_dir, {})
    try:
        wait_for(lambda: server.get("/readyz")[0] == 200, "the server to be ready", server)
        server.demo = orjson.loads((state_dir / "demo.json").read_bytes())
        yield server
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()


def test_sighup_swaps_a_lawful_set_and_keeps_the_old_one_on_a_refusal(server: Server) -> None:
    library = server.policy_dir / "library.yaml"
    first = load_policy_dir(server.policy_dir).hash
    assert server.policy_set() == first
    assert server.library_policy()["hash"] == file_hash(library)

    # a lawful edit: the next read after SIGHUP shows the new set
    replace_once(library, 'version: "2025.1"', 'version: "2025.2"')
    replace_once(library, LIBRARY_RULE_600, LIBRARY_RULE_600.replace("600", "620"))
    second = load_policy_dir(server.policy_dir).hash
    assert second != first
    os.kill(server.process.pid, signal.SIGHUP)
    wait_for(lambda: server.policy_set() == second, "the reloaded policy set", server)
    assert server.library_policy() == {
        "id": "library.deposit_waiver",
        "version": "2025.2",
        "hash": file_hash(library),
    }

    # an unlawful edit: refused, logged, counted; the second set keeps serving
    replace_once(
        library,
        "tests:",
        "  - id: punish-court-listed\n"
        '    when: {fact: person.dishonest_executed, op: "==", value: true}\n'
        "    constrain: {measure: loan.restrict_credit}\n"
        "tests:",
    )
    os.kill(server.process.pid, signal.SIGHUP)

    def refused() -> list[dict[str, Any]]:
        return [
            line
            for line in server.log_lines()
            if line.get("message", "").startswith("policy reload refused")
        ]

    wait_for(lambda: bool(refused()), "the refusal in the log", server)
    (line,) = refused()
    assert line["level"] == "error"
    assert line["policy_set"] == second
    assert any(
        r.startswith("library.yaml:punish-court-listed: constraint_in_basic_public_service")
        for r in line["reasons"]
    ), line
    assert server.policy_set() == second
    assert server.library_policy()["version"] == "2025.2"
    status, metrics = server.get("/metrics")
    assert status == 200
    text = metrics.decode()
    assert sample(text, "xinyi_policy_reloads_total", result="loaded") == 1.0
    assert sample(text, "xinyi_policy_reloads_total", result="refused") == 1.0

    os.kill(server.process.pid, signal.SIGTERM)
    assert server.process.wait(timeout=10) == 0
