"""Real processes on one state directory and one port (issue 14, items 1 and 2).

A second gateway on a running one's state directory refuses to start and names
the holder; a second demo on a busy port says so in one line; neither rewrites
what the running one serves. A restarted demo keeps its keys and consents.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.test_demo_server import REPO, call, free_port, wait_ready

pytestmark = pytest.mark.slow


def _command(state_dir: Path, port: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gateway",
        "serve",
        "--demo",
        "--no-access-log",
        "--state-dir",
        str(state_dir),
        "--port",
        str(port),
        *extra,
    ]


@contextmanager
def serving(state_dir: Path, port: int, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    log_path = state_dir.parent / f"{state_dir.name}-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _command(state_dir, port, *extra), cwd=REPO, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, log_path)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _refused(state_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(state_dir, port), cwd=REPO, capture_output=True, text=True, timeout=60
    )


def _decide(base: str, demo: dict[str, Any]) -> int:
    bank = next(p for p in demo["partners"] if p["id"] == "demo-bank")
    subject = next(s for s in demo["subjects"] if s["kind"] == "enterprise")
    body = {
        "subject": {"kind": "enterprise", "id": subject["id"]},
        "purpose": bank["purposes"][0],
        "context": subject["context"]["loan"],
        "consent_id": subject["consents"]["demo-bank"]["consent_id"],
    }
    answer = call(
        base,
        "POST",
        "/v1/scenes/loan/decisions",
        body=body,
        headers={"Authorization": f"Bearer {bank['api_key']}"},
    )
    return answer.status


def test_a_second_gateway_on_the_state_directory_refuses_and_the_first_keeps_serving(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    first_port, second_port = free_port(), free_port()
    base = f"http://127.0.0.1:{first_port}"
    with serving(state, first_port) as first:
        demo_json = (state / "demo.json").read_bytes()
        partners = (state / "partners.yaml").read_bytes()
        second = _refused(state, second_port)
        assert second.returncode == 1
        assert f"pid {first.pid}" in second.stderr
        assert str(state.resolve()) in second.stderr
        assert "Traceback" not in second.stderr
        # The first still decides, with the credentials it wrote, and is ready.
        assert (state / "demo.json").read_bytes() == demo_json
        assert (state / "partners.yaml").read_bytes() == partners
        for _ in range(3):
            assert _decide(base, orjson.loads(demo_json)) == 200
        assert call(base, "GET", "/readyz").status == 200


def test_a_second_demo_on_a_busy_port_says_so_in_one_line_and_writes_nothing(
    tmp_path: Path,
) -> None:
    port = free_port()
    with serving(tmp_path / "first", port):
        other = tmp_path / "second"
        second = _refused(other, port)
        assert second.returncode == 1
        assert second.stderr.strip().count("\n") == 0, second.stderr
        assert f"127.0.0.1:{port}" in second.stderr
        assert "in use" in second.stderr
        assert not (other / "demo.json").exists()
        assert not (other / "partners.yaml").exists()
        assert "demo ready" not in second.stdout + second.stderr


def test_a_restarted_demo_keeps_its_keys_and_consents_unless_reset(tmp_path: Path) -> None:
    state = tmp_path / "state"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serving(state, port):
        before = orjson.loads((state / "demo.json").read_bytes())
    with serving(state, port):
        after = orjson.loads((state / "demo.json").read_bytes())
        # The shell variables a user took from the first start still work.
        assert _decide(base, before) == 200
    assert after["partners"] == before["partners"]
    assert [s["consents"] for s in after["subjects"]] == [s["consents"] for s in before["subjects"]]
    with serving(state, port, "--reset"):
        fresh = orjson.loads((state / "demo.json").read_bytes())
        assert _decide(base, fresh) == 200
    old_keys = {p["api_key"] for p in before["partners"]}
    assert old_keys.isdisjoint(p["api_key"] for p in fresh["partners"])
    old_consents = [s["consents"] for s in before["subjects"]]
    assert all(
        fresh_c != old_c
        for fresh_c, old_c in zip(
            (s["consents"] for s in fresh["subjects"]), old_consents, strict=True
        )
        if old_c
    )


def test_the_state_directory_is_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    port = free_port()
    with serving(state, port):
        assert state.stat().st_mode & 0o777 == 0o700
        for name in ("state.sqlite3", "credit.sqlite3", "demo.json"):
            assert (state / name).stat().st_mode & 0o077 == 0, name


def test_the_lock_dies_with_its_holder_even_on_kill_9(tmp_path: Path) -> None:
    state = tmp_path / "state"
    port = free_port()
    log_path = tmp_path / "killed.log"
    with log_path.open("wb") as log:
        first = subprocess.Popen(
            _command(state, port), cwd=REPO, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_ready(f"http://127.0.0.1:{port}", first, log_path)
    finally:
        first.kill()
        first.wait(timeout=30)
    # A stale pid in the lock file means nothing: the kernel released the lock.
    with serving(state, free_port()) as second:
        assert int((state / "gateway.lock").read_text()) == second.pid
