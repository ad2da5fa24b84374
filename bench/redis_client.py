"""Client CPU per Redis command: redis-py's pipeline path against the lean connection.

    .venv/bin/python bench/redis_client.py [--tasks 64] [--commands 40000] [--rounds 3]
                                           [--old-rev ac86ff0]

Starts its own redis-server (free port, temporary directory, stopped by pid;
no persistence, so the server's disk does not set the pace), loads the store's
function libraries, then in one process and one uvloop loop runs ``--tasks``
concurrent tasks that each issue commands in a loop until ``--commands`` are
done, for two workloads:

* ``GET``: a consent read (``GET P:c:{id}``),
* ``FCALL``: the rate-limit function (``FCALL xinyi_rate 1 P:rl:{partner} …``),

through two command paths:

* ``redis-py``: the ``AutoPipeline`` of ``--old-rev`` (the last commit before
  the lean path; its source is read from git), i.e. one redis-py asyncio
  pipeline per loop pass on the client ``RedisStore`` builds;
* ``lean``: today's ``AutoPipeline`` (gateway/store/redis/lean/autopipe.py).

It reports process CPU time (``time.process_time``: this process only, so the
server's work is not in it) per command, the median of ``--rounds``
interleaved rounds. Wall time on this shared machine is not reported.

``--instructions`` counts instead, with valgrind's callgrind, the client's
instructions per command for each workload and path (one valgrind run each,
counting only the measured stretch): a figure the machine's load cannot move.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from gateway.store.redis.core import _client, _functions_sources  # noqa: E402
from gateway.store.redis.lean import AutoPipeline  # noqa: E402

Execute = Callable[..., Awaitable[Any]]
_COUNTING = "XINYI_REDIS_CLIENT_COUNT"  # set in the process valgrind runs: "workload:path"


def _instrument(state: str) -> None:
    # Blocking on purpose: nothing else may run on the loop while counting starts.
    subprocess.run(
        ["callgrind_control", f"--instr={state}", str(os.getpid())], check=True, capture_output=True
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            *("redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)),
            *("--save", "", "--appendonly", "no", "--logfile", str(directory / "redis.log")),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    raise SystemExit("redis-server did not start")


def _old_autopipe(rev: str) -> type[Any]:
    """The redis-py ``AutoPipeline`` class as it was at ``rev``."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:gateway/store/autopipe.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = types.ModuleType("old_autopipe")
    exec(compile(source, f"{rev}:gateway/store/autopipe.py", "exec"), module.__dict__)  # noqa: S102
    return module.AutoPipeline  # type: ignore[no-any-return]


async def _drive(
    execute: Execute, command: tuple[Any, ...], tasks: int, commands: int, counted: bool = False
) -> float:
    """CPU µs per command for ``commands`` commands issued by ``tasks`` concurrent loops."""
    per_task = commands // tasks

    async def worker() -> None:
        for _ in range(per_task):
            await execute(*command)

    gc.collect()
    if counted:
        _instrument("on")
    start = time.process_time()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    spent = time.process_time() - start
    if counted:
        _instrument("off")
    return spent / (per_task * tasks) * 1e6


async def main(args: argparse.Namespace) -> None:
    directory = Path(tempfile.mkdtemp(prefix="bench-redis-client-"))
    proc, url = _start_redis(directory)
    try:
        admin = _client(url)
        for source in _functions_sources():
            await admin.execute_command("FUNCTION", "LOAD", "REPLACE", source)  # type: ignore[no-untyped-call]
        await admin.set("bench:c:{consent-1}", b"x" * 300)
        paths: dict[str, tuple[Execute, Callable[[], Awaitable[None]]]] = {}
        old = _old_autopipe(args.old_rev)(_client(url))
        paths["redis-py"] = (old.execute, old.close)
        lean = AutoPipeline(url, _client(url))
        paths["lean"] = (lean.execute, lean.close)
        workloads = {
            "GET": ("GET", "bench:c:{consent-1}"),
            "FCALL": ("FCALL", "xinyi_rate", 1, "bench:rl:{partner-1}", 10, 1_000_000_000),
        }
        results: dict[tuple[str, str], list[float]] = {}
        for execute, _ in paths.values():  # warm both: connections, caches
            for command in workloads.values():
                await _drive(execute, command, args.tasks, args.tasks * 50)
        if only := os.environ.get(_COUNTING):
            workload, name = only.split(":")
            execute = paths[name][0]
            await _drive(execute, workloads[workload], args.tasks, args.commands, counted=True)
            for _, close in paths.values():
                await close()
            await admin.aclose()
            return
        for _ in range(args.rounds):
            for workload, command in workloads.items():
                for name, (execute, _) in paths.items():
                    cost = await _drive(execute, command, args.tasks, args.commands)
                    results.setdefault((workload, name), []).append(cost)
        print(f"{args.tasks} tasks, {args.commands} commands per round, {args.rounds} rounds")
        print(f"{'workload':<8} {'path':<9} {'CPU µs/command (median)':>24}   rounds")
        for (workload, name), costs in results.items():
            rounds = " ".join(f"{c:.1f}" for c in costs)
            print(f"{workload:<8} {name:<9} {statistics.median(costs):>24.1f}   {rounds}")
        for workload in workloads:
            before = statistics.median(results[(workload, "redis-py")])
            after = statistics.median(results[(workload, "lean")])
            print(f"{workload}: lean costs {after / before:.0%} of redis-py's CPU per command")
        for _, close in paths.values():
            await close()
        await admin.aclose()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def count_instructions(args: argparse.Namespace) -> None:
    print(f"{args.tasks} tasks, {args.commands} commands counted per run (callgrind)")
    for only in ("GET:redis-py", "GET:lean", "FCALL:redis-py", "FCALL:lean"):
        with tempfile.TemporaryDirectory(prefix="xinyi-callgrind-") as out:
            proc = subprocess.run(
                [
                    *("valgrind", "--tool=callgrind", "--instr-atstart=no"),
                    f"--callgrind-out-file={out}/callgrind.out",
                    *(sys.executable, str(Path(__file__).resolve())),
                    *("--tasks", str(args.tasks), "--commands", str(args.commands)),
                    *("--old-rev", args.old_rev),
                ],
                env={**os.environ, _COUNTING: only, "PYTHONHASHSEED": "0"},
                capture_output=True,
                text=True,
                check=False,
            )
        match = re.search(r"Collected : (\d+)", proc.stderr)
        if proc.returncode != 0 or not match:
            raise SystemExit(f"the count failed:\n{proc.stdout}\n{proc.stderr[-3000:]}")
        per = int(match.group(1)) / (args.commands // args.tasks * args.tasks)
        print(f"{only:<16} {per / 1000:8.1f} k instructions per command")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--commands", type=int, default=40_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--old-rev", default="ac86ff0", help="commit with redis-py's AutoPipeline")
    parser.add_argument("--instructions", action="store_true", help="count with callgrind")
    arguments = parser.parse_args()
    if arguments.instructions and not os.environ.get(_COUNTING):
        count_instructions(arguments)
    else:
        uvloop.run(main(arguments))
