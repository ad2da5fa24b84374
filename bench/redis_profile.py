"""What Redis does per decision: commands, their server time, redis-server CPU, AOF bytes.

    .venv/bin/python bench/redis_profile.py [--decisions 4000] [--concurrency 32]
        [--idempotency] [--root DIR] [--json FILE]

Starts a fresh redis-server with config/redis/single.conf (AOF, ``appendfsync
always``) on a free port, then ``python -m gateway serve --demo --store
redis://… --workers 2 --no-access-log`` (from ``--root``, default this
checkout: point it at another worktree to measure another revision). After
bench/run.py's check that every request of the mix answers its expected
outcome, it resets Redis's statistics and sends ``--decisions`` decisions of
the bench/run.py mix (every demo subject x scene, cycled) from
``--concurrency`` connections; ``--idempotency`` gives each request a fresh
Idempotency-Key.

Printed per decision: for every command ``INFO commandstats`` saw, its calls
and its server-side µs; redis-server's CPU (user + system, /proc/<pid>/stat)
and the gateway workers' CPU; the AOF bytes written (``aof_current_size``).
Then, over ``--watched`` more decisions, MONITOR counts the commands the
gateway sent (its round trips; what functions call inside is left out).
Where perf can count syscall tracepoints, redis-server's ``fdatasync`` (one per
AOF flush under ``appendfsync always``) and ``write`` calls per decision too.
CPU time, not wall-clock time, but a busy shared machine still inflates it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import redis

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

import run as bench_run  # noqa: E402 - bench/run.py


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def commandstats(client: redis.Redis) -> dict[str, tuple[int, int]]:
    """(calls, usec) per command since the last CONFIG RESETSTAT."""
    out = {}
    for name, stats in client.info("commandstats").items():
        out[name.removeprefix("cmdstat_")] = (int(stats["calls"]), int(stats["usec"]))
    return out


class Monitor:
    """The commands clients send (not those functions call), by name, from MONITOR.

    MONITOR slows the server down, so it watches a separate, short phase.
    """

    MARKER = "redis-profile-done"

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url, decode_responses=True)
        self.sent: Counter[str] = Counter()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)

    def __enter__(self) -> Monitor:
        self._thread.start()
        self._ready.wait(10)
        return self

    def _listen(self) -> None:
        with self._client.monitor() as monitor:
            self._ready.set()
            for info in monitor.listen():
                command = info["command"]
                if self.MARKER in command:
                    return
                if info.get("client_type") == "lua":
                    continue
                words = command.split()
                name = words[0].upper()
                if name in ("FCALL", "FCALL_RO") and len(words) > 1:
                    name = f"{name} {words[1]}"
                self.sent[name] += 1

    def __exit__(self, *exc: object) -> None:
        # Sent on another connection after everything watched: the listener stops at it.
        with redis.Redis(connection_pool=self._client.connection_pool) as other:
            other.echo(self.MARKER)
        self._thread.join(30)
        self._client.close()


SYSCALLS = ("fdatasync", "write")


@contextlib.contextmanager
def syscalls(pid: int, out: Path) -> Any:
    """redis-server's fdatasync and write calls while the block runs (perf's syscall
    tracepoints; ``{}`` where perf cannot count them)."""
    counts: dict[str, int] = {}
    perf = shutil.which("perf")
    proc = None
    if perf:
        events = ",".join(f"syscalls:sys_enter_{name}" for name in SYSCALLS)
        argv = [perf, "stat", "-x", ",", "-e", events, "-p", str(pid), "-o", str(out)]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # perf attaches
    try:
        yield counts
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)  # the perf we started: it prints and exits
            proc.wait(timeout=15)
            for line in out.read_text().splitlines() if out.exists() else []:
                fields = line.split(",")
                if len(fields) > 2 and fields[0].isdigit():
                    counts[fields[2].removeprefix("syscalls:sys_enter_")] = int(fields[0])


async def drive(
    url: str, requests: list[dict[str, Any]], total: int, concurrency: int, idempotency: bool
) -> Counter[str]:
    statuses: Counter[str] = Counter()
    counter = iter(range(total))

    async def worker(session: aiohttp.ClientSession) -> None:
        for n in counter:
            r = requests[n % len(requests)]
            headers = {"Authorization": f"Bearer {r['key']}", "Content-Type": "application/json"}
            if idempotency:
                headers["Idempotency-Key"] = f"profile-{n}-{time.time_ns()}"
            async with session.post(url + r["path"], data=r["body"], headers=headers) as resp:
                await resp.read()
                statuses[str(resp.status)] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return statuses


def profile(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    proc, url = bench_run.start_redis(workdir / "redis")
    gateway = None
    try:
        client = redis.Redis.from_url(url)
        gateway = bench_run.start_gateway(
            "gateway-redis-2w",
            workdir,
            None,
            access_log=False,
            extra=("--store", url, "--workers", "2"),
            root=args.root,
        )
        mix = bench_run.prepare(gateway)
        assert gateway.requests_file is not None
        demo = json.loads((gateway.state / "demo.json").read_text(encoding="utf-8"))  # type: ignore[operator]
        requests = bench_run.build_requests(demo)
        client.config_resetstat()
        aof_before = int(client.info("persistence")["aof_current_size"])
        redis_before = process_cpu_s(proc.pid)
        tick = os.sysconf("SC_CLK_TCK")
        gateway_before = bench_run.tree_cpu((gateway.proc.pid,)) / tick
        with syscalls(proc.pid, workdir / "perf.csv") as calls:
            started = time.monotonic()
            statuses = asyncio.run(
                drive(gateway.url, requests, args.decisions, args.concurrency, args.idempotency)
            )
            seconds = time.monotonic() - started
        redis_cpu = process_cpu_s(proc.pid) - redis_before
        gateway_cpu = bench_run.tree_cpu((gateway.proc.pid,)) / tick - gateway_before
        persistence = client.info("persistence")
        stats = commandstats(client)
        with Monitor(url) as monitor:
            watched = asyncio.run(
                drive(gateway.url, requests, args.watched, args.concurrency, args.idempotency)
            )
        client.close()
    finally:
        if gateway is not None:
            bench_run.stop(gateway)
        proc.terminate()  # the redis-server we started, by its pid
        proc.wait(timeout=15)
    n = args.decisions
    commands = {
        name: {
            "calls_per_decision": round(calls / n, 3),
            "usec_per_decision": round(usec / n, 2),
            "usec_per_call": round(usec / calls, 2) if calls else 0.0,
        }
        for name, (calls, usec) in sorted(stats.items())
        if name not in ("config|resetstat", "info")
    }
    return {
        "decisions": n,
        "statuses": dict(statuses),
        "mix": mix,
        "seconds": round(seconds, 2),
        "idempotency": args.idempotency,
        "commands": commands,
        "commands_usec_per_decision": round(
            sum(c["usec_per_decision"] for c in commands.values()), 2
        ),
        "redis_cpu_us_per_decision": round(redis_cpu / n * 1e6, 1),
        "gateway_cpu_us_per_decision": round(gateway_cpu / n * 1e6, 1),
        "aof_bytes_per_decision": round((int(persistence["aof_current_size"]) - aof_before) / n, 1),
        "aof_delayed_fsync": int(persistence.get("aof_delayed_fsync", 0)),
        # redis-server's system calls (perf), counted over a little more than the run.
        "syscalls_per_decision": {name: round(c / n, 3) for name, c in calls.items()},
        # Commands the gateway sent per decision (MONITOR, over --watched decisions).
        "sent_per_decision": {
            name: round(count / args.watched, 3) for name, count in monitor.sent.most_common()
        },
        # The same, unrounded: background commands (the audit tree builder's) are rarer
        # than one per thousand decisions.
        "sent": dict(monitor.sent.most_common()),
        "watched": args.watched,
        "watched_statuses": dict(watched),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--watched", type=int, default=400, help="decisions seen by MONITOR")
    parser.add_argument("--idempotency", action="store_true")
    parser.add_argument("--root", type=Path, default=bench_run.ROOT)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="redis-profile-") as tmp:
        result = profile(args, Path(tmp))
    print(f"{result['decisions']} decisions in {result['seconds']} s: {result['statuses']}")
    print(f"{'command':<22}{'calls/dec':>10}{'µs/dec':>10}{'µs/call':>10}")
    for name, c in result["commands"].items():
        print(
            f"{name:<22}{c['calls_per_decision']:>10}{c['usec_per_decision']:>10}"
            f"{c['usec_per_call']:>10}"
        )
    print("(what functions call is counted again under its own name; fcall's time includes it)")
    print("sent per decision (MONITOR):")
    for name, per in result["sent_per_decision"].items():
        print(f"  {name:<28}{per:>8}")
    print(f"redis-server CPU µs per decision: {result['redis_cpu_us_per_decision']}")
    print(f"gateway CPU µs per decision (2 workers): {result['gateway_cpu_us_per_decision']}")
    print(f"AOF bytes per decision: {result['aof_bytes_per_decision']}")
    for name, per in result["syscalls_per_decision"].items():
        print(f"redis-server {name} calls per decision: {per}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    answered = set(result["statuses"]) | set(result["watched_statuses"])
    return 0 if answered == {"200"} else 1


if __name__ == "__main__":
    sys.exit(main())
