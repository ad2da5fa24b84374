"""What Redis does per decision: commands, their server time, redis-server CPU, AOF bytes.

    .venv/bin/python bench/redis_profile.py [--decisions 4000] [--concurrency 32]
        [--idempotency] [--root DIR] [--json FILE]
        [--aof-rewrite-percentage P] [--aof-rewrite-min-size BYTES] [--reload]

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
and its server-side µs; redis-server's CPU (user + system, /proc/<pid>/stat),
that of its AOF-rewrite children (reaped, so in the parent's cutime + cstime)
with the number of forks, and the gateway workers' CPU; the AOF bytes written
(``aof_current_size``, which a rewrite shrinks). The two ``--aof-rewrite-*``
options override single.conf's automatic rewrite trigger (``CONFIG SET``), so
that a short run can show what rewrites cost per decision. ``--reload`` then
restarts redis-server on the run's AOF twice, as written (base + the run's
commands) and after a ``BGREWRITEAOF`` (all base), and reports how long each
load took and the files' sizes: what a larger AOF costs a restart.
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
import re
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


def process_cpu_s(pid: int, children: bool = False) -> float:
    """User + system CPU seconds of one process (of its reaped children with ``children``)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    at = 13 if children else 11  # cutime, cstime follow utime, stime
    return (int(fields[at]) + int(fields[at + 1])) / os.sysconf("SC_CLK_TCK")


def commandstats(client: redis.Redis) -> dict[str, tuple[int, int]]:
    """(calls, usec) per command since the last CONFIG RESETSTAT."""
    out = {}
    for name, stats in client.info("commandstats").items():
        out[name.removeprefix("cmdstat_")] = (int(stats["calls"]), int(stats["usec"]))
    return out


def text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def wait_for_rewrite(client: redis.Redis, timeout_s: float = 60) -> None:
    """Until no AOF rewrite runs or is scheduled."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = client.info("persistence")
        if not int(info["aof_rewrite_in_progress"]) and not int(info["aof_rewrite_scheduled"]):
            return
        time.sleep(0.1)


def aof_files(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted((directory / "appendonlydir").iterdir())}


def reload(directory: Path) -> tuple[subprocess.Popen[bytes], str, dict[str, Any]]:
    """Restart redis-server on ``directory``'s AOF: the files, and the seconds it took."""
    files = aof_files(directory)
    log = directory / "redis.log"
    seen = len(log.read_text().splitlines())
    started = time.monotonic()
    proc, url = bench_run.start_redis(directory, fresh=False)
    seconds = time.monotonic() - started
    loaded = {}
    for line in log.read_text().splitlines()[seen:]:
        match = re.search(r"DB loaded from (base|incr) file \S+: ([\d.]+) seconds", line)
        if match:
            loaded[match[1]] = loaded.get(match[1], 0.0) + float(match[2])
    return proc, url, {"files": files, "ready_s": round(seconds, 3), "loaded_s": loaded}


def reloads(directory: Path) -> dict[str, Any]:
    """Load times of the AOF as the run left it, then of the same data rewritten."""
    out = {}
    proc, url, out["as_written"] = reload(directory)
    try:
        with redis.Redis.from_url(url) as client:
            out["keys"] = client.dbsize()
            client.bgrewriteaof()
            time.sleep(0.2)
            wait_for_rewrite(client)
    finally:
        proc.terminate()  # the redis-server we started, by its pid
        proc.wait(timeout=30)
    proc, url, out["rewritten"] = reload(directory)
    proc.terminate()
    proc.wait(timeout=30)
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
        if args.aof_rewrite_percentage is not None:
            client.config_set("auto-aof-rewrite-percentage", args.aof_rewrite_percentage)
        if args.aof_rewrite_min_size is not None:
            client.config_set("auto-aof-rewrite-min-size", args.aof_rewrite_min_size)
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
        children_before = process_cpu_s(proc.pid, children=True)
        forks_before = int(client.info("stats")["total_forks"])
        tick = os.sysconf("SC_CLK_TCK")
        gateway_before = bench_run.tree_cpu((gateway.proc.pid,)) / tick
        with syscalls(proc.pid, workdir / "perf.csv") as calls:
            started = time.monotonic()
            statuses = asyncio.run(
                drive(gateway.url, requests, args.decisions, args.concurrency, args.idempotency)
            )
            seconds = time.monotonic() - started
        redis_cpu = process_cpu_s(proc.pid) - redis_before
        wait_for_rewrite(client)  # its child's CPU counts once Redis has reaped it
        children_cpu = process_cpu_s(proc.pid, children=True) - children_before
        forks = int(client.info("stats")["total_forks"]) - forks_before
        gateway_cpu = bench_run.tree_cpu((gateway.proc.pid,)) / tick - gateway_before
        persistence = client.info("persistence")
        trigger = {text(k): text(v) for k, v in client.config_get("auto-aof-rewrite-*").items()}
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
    restarts = reloads(workdir / "redis") if args.reload else None
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
        "rewrite_children_cpu_us_per_decision": round(children_cpu / n * 1e6, 1),
        "forks": forks,
        "aof_rewrite_trigger": trigger,
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
        "reload": restarts,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--watched", type=int, default=400, help="decisions seen by MONITOR")
    parser.add_argument("--idempotency", action="store_true")
    parser.add_argument("--root", type=Path, default=bench_run.ROOT)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--aof-rewrite-percentage", type=int)
    parser.add_argument("--aof-rewrite-min-size", type=int, help="bytes")
    parser.add_argument("--reload", action="store_true", help="time restarts on the AOF")
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
    print(
        f"AOF-rewrite children CPU µs per decision: "
        f"{result['rewrite_children_cpu_us_per_decision']} ({result['forks']} forks; "
        f"{result['aof_rewrite_trigger']})"
    )
    print(f"gateway CPU µs per decision (2 workers): {result['gateway_cpu_us_per_decision']}")
    print(f"AOF bytes per decision: {result['aof_bytes_per_decision']}")
    for name, per in result["syscalls_per_decision"].items():
        print(f"redis-server {name} calls per decision: {per}")
    if result["reload"]:
        print(f"restarts on the AOF: {json.dumps(result['reload'])}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    answered = set(result["statuses"]) | set(result["watched_statuses"])
    return 0 if answered == {"200"} else 1


if __name__ == "__main__":
    sys.exit(main())
