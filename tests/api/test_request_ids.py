"""Request ids: unique, safe to echo back, and distinct between forked workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.api.middleware import _SAFE_ID, _request_ids

ROOT = Path(__file__).resolve().parents[2]


def test_ids_are_unique_and_pass_our_own_filter() -> None:
    minted = [_request_ids.next() for _ in range(10_000)]
    assert len(set(minted)) == len(minted)
    assert all(_SAFE_ID.match(i) for i in minted)


def test_a_forked_worker_draws_its_own_prefix() -> None:
    # A fresh interpreter, so the fork happens in a process with one thread.
    script = """
import os
from gateway.api.middleware import _request_ids
parent = _request_ids.next()
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(write, _request_ids.next().encode())
    os._exit(0)
os.waitpid(pid, 0)
child = os.read(read, 64).decode()
print(parent[:10], child[:10], parent[10:], child[10:])
"""
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    parent_prefix, child_prefix, parent_count, child_count = out.stdout.split()
    assert parent_prefix != child_prefix
    assert parent_count == child_count == "000000"  # each counts from zero
