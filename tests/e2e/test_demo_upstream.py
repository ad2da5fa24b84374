"""``xinyi-gateway serve --demo --upstream``: the demo read through the platform
adapter from the fake credit platform, which the same process serves on loopback."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.e2e.test_demo_server import REPO, Run, call, exercise, free_port, wait_ready

pytestmark = pytest.mark.slow


def test_the_demo_runs_over_the_upstream_platform(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    log_path = tmp_path / "server.log"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "gateway", "serve", "--demo", "--upstream"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port), "--state-dir", str(state_dir)],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(base, process, log_path)
        run = Run(demo=orjson.loads((state_dir / "demo.json").read_bytes()))
        exercise(run, base)
        metrics = call(base, "GET", "/metrics").body.decode()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            exit_code = process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    log_text = log_path.read_text(encoding="utf-8")
    assert exit_code == 0, log_text
    assert run.decisions
    for subject, scene, answer in run.decisions:
        assert answer.status == 200, (subject["label"], scene, answer.body)
        assert answer.json()["outcome"] == subject["expected"][scene], (subject["label"], scene)
    assert 'xinyi_credit_upstream_seconds_count{adapter="platform",outcome="ok"}' in metrics
    assert 'xinyi_credit_circuit_state{adapter="platform"} 0.0' in metrics
    assert "fake credit platform serving" in log_text
    assert "Traceback" not in log_text


def test_upstream_needs_the_demo() -> None:
    from gateway.cli import main

    assert main(["serve", "--upstream"]) == 2
