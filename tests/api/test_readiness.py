"""Readiness follows the audit log's writability (issue 14, item 1).

A decision is answered only once its audit record is durable, so a gateway
whose audit log cannot take appends is not ready, and says why once in its log.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from gateway.store.embedded.lock import StateDirLocked, lock_state_dir
from tests.conftest import Demo


def _foreign_append(state: Path) -> None:
    """What a second writer on the same file did: append to the chain behind our back."""
    conn = sqlite3.connect(state / "state.sqlite3")
    with conn:
        (head,) = conn.execute("SELECT coalesce(max(seq), 0) FROM audit").fetchone()
        conn.execute("INSERT INTO audit VALUES (?, '{}', 'x', 'y')", (head + 1,))
    conn.close()


async def test_readyz_is_false_while_the_audit_log_cannot_be_written(
    demo: Demo, caplog: pytest.LogCaptureFixture
) -> None:
    subject = demo.subject("person")
    assert (await demo.decide(subject, "library")).status == 200
    assert (await demo.client.get("/readyz")).status == 200

    _foreign_append(demo.gateway.settings.state_dir)
    with caplog.at_level(logging.ERROR, logger="xinyi.store"):
        ready = await demo.client.get("/readyz")
        assert ready.status == 503
        body = await ready.json()
        assert "audit log cannot be written" in body["failing"]["store"]
        for _ in range(3):
            answer = await demo.decide(subject, "library")
            assert answer.status == 503
            assert (await answer.json())["code"] == "dependency_unavailable"
        assert (await demo.client.get("/readyz")).status == 503
    causes = [r for r in caplog.records if r.name == "xinyi.store"]
    assert len(causes) == 1
    assert "another process" in str(causes[0].__dict__.get("error"))


async def test_the_state_directory_is_held_while_the_store_is_open(demo: Demo) -> None:
    # In another process this lock attempt is what `serve` makes; in-process we
    # take a second, independent descriptor to see the kernel's answer.
    import fcntl
    import os

    lock_file = demo.gateway.settings.state_dir / "gateway.lock"
    fd = os.open(lock_file, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert int(lock_file.read_text()) == os.getpid()
    finally:
        os.close(fd)


def test_a_locked_directory_names_its_holder(tmp_path: Path) -> None:
    import fcntl
    import os

    tmp_path.joinpath("gateway.lock").write_text("4242\n")
    fd = os.open(tmp_path / "gateway.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(StateDirLocked, match=r"pid 4242"):
            lock_state_dir(tmp_path)
    finally:
        os.close(fd)
    lock = lock_state_dir(tmp_path)
    lock.release()
