"""A bounded soak: steady decisions for a fixed time, watching the gateway's RSS and fds.

    .venv/bin/python bench/soak.py --duration 600 --rate 700 [--interval 5] [--json FILE]

Starts ``serve --demo`` (one worker, no access log) on a free loopback port in
a temporary directory, then sends the bench/run.py decision mix at a fixed
rate (open loop: requests leave on schedule whether or not earlier ones have
answered, at most ``--max-in-flight`` at once) for ``--duration`` seconds and
stops the gateway. Every ``--interval`` seconds it samples, for the gateway
process, VmRSS (/proc/<pid>/status) and the number of open file descriptors
(/proc/<pid>/fd: sockets apart from everything else, since the gateway
holds one socket per keep-alive connection the client opens), and the size of
the state directory.

Reported: the samples; RSS and non-socket fd drift over the run (the first sample after
a warm-up of ``--warmup`` seconds is the reference, goal: within ±5%); every
non-2xx answer and transport error (goal: none); and the state directory's
growth per decision (bytes of SQLite files, audit log and tree that each
decision leaves behind).

Issue 17's soak is ``--duration 600 --peak-fraction 0.7``: the gateway is
pinned to CPU 0 and this client to CPU 1 (as bench/run.py pins them), wrk first
measures the gateway's peak for ``--peak-seconds`` with bench/run.py's request
mix and connections, and the soak then runs at that fraction of the peak, on
the same process. ``--rate`` sets a fixed rate instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

import run as bench_run  # noqa: E402 - bench/run.py


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def open_fds(pid: int | str) -> tuple[int, int]:
    """Open descriptors of ``pid``: (sockets, everything else)."""
    sockets = other = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed while we looked
        if target.startswith("socket:"):
            sockets += 1
        else:
            other += 1
    return sockets, other


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


async def drive(
    server: bench_run.Server, requests: list[dict[str, Any]], args: argparse.Namespace
) -> dict[str, Any]:
    assert server.state is not None
    pid = server.proc.pid
    statuses: Counter[str] = Counter()
    samples: list[dict[str, float]] = []
    in_flight = 0
    skipped = 0
    sent = 0

    async def one(session: aiohttp.ClientSession, r: dict[str, Any]) -> None:
        nonlocal in_flight
        try:
            async with session.post(
                server.url + r["path"],
                data=r["body"].encode(),
                headers={"Authorization": f"Bearer {r['key']}", "Content-Type": "application/json"},
            ) as resp:
                await resp.read()
                statuses[str(resp.status)] += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            statuses[type(exc).__name__] += 1
        finally:
            in_flight -= 1

    def sample(t: float) -> None:
        sockets, other = open_fds(pid)
        samples.append(
            {
                "t": round(t, 1),
                "rss_kb": rss_kb(pid),
                "fds": other,  # files, pipes, eventfds: what a leak would grow
                "sockets": sockets,
                # our side of the keep-alive connections: the gateway holds as many
                "client_sockets": open_fds("self")[0],
                "state_bytes": tree_bytes(server.state),  # type: ignore[arg-type]
                "answered": sum(statuses.values()),
            }
        )

    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=args.max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        start = time.monotonic()
        next_sample = 0.0
        i = 0
        while (elapsed := time.monotonic() - start) < args.duration:
            if elapsed >= next_sample:
                sample(elapsed)
                next_sample += args.interval
            due = start + i / args.rate
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            if in_flight >= args.max_in_flight:
                skipped += 1  # the gateway is behind: the schedule is not kept
            else:
                in_flight += 1
                sent += 1
                task = asyncio.create_task(one(session, requests[i % len(requests)]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            i += 1
        await asyncio.gather(*tasks)
        sample(time.monotonic() - start)
    return {"samples": samples, "statuses": dict(statuses), "sent": sent, "skipped": skipped}


def drift(values: list[float]) -> tuple[float, float]:
    """Lowest and highest value relative to the first, as fractions."""
    return min(values) / values[0] - 1, max(values) / values[0] - 1


def main() -> int:
    parser = argparse.ArgumentParser(description="bounded soak of a served demo gateway")
    parser.add_argument("--duration", type=float, default=180, help="seconds of load")
    parser.add_argument("--rate", type=float, default=100, help="decisions per second")
    parser.add_argument("--interval", type=float, default=5, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=30, help="seconds before the reference")
    parser.add_argument("--max-in-flight", type=int, default=256)
    parser.add_argument("--json", metavar="FILE", help="also write the result here")
    parser.add_argument(
        "--peak-fraction",
        type=float,
        help="measure the peak with wrk first and soak at this fraction of it (overrides --rate)",
    )
    parser.add_argument("--peak-seconds", type=float, default=15)
    parser.add_argument("--connections", type=int, default=64, help="wrk's, for the peak")
    args = parser.parse_args()
    peak: dict[str, Any] | None = None
    pin = args.peak_fraction is not None and bench_run.cpu_count() >= 2
    with tempfile.TemporaryDirectory(prefix="xinyi-soak-") as tmp:
        workdir = Path(tmp)
        server = bench_run.start_gateway("soak", workdir, 0 if pin else None, access_log=False)
        try:
            bench_run.prepare(server)  # every request answers 200 with its expected outcome
            assert server.state is not None
            if args.peak_fraction is not None:
                if pin:
                    os.sched_setaffinity(0, {1})  # this client and wrk on the other CPU
                bench_run.wrk(server, args, 1 if pin else None, 3)  # warm-up
                peak = bench_run.wrk(server, args, 1 if pin else None, args.peak_seconds)
                args.rate = peak["rps"] * args.peak_fraction
                print(
                    f"peak {peak['rps']:.0f} req/s over"
                    f" {args.peak_seconds:g} s (p99 {peak['p99_us'] / 1000:.1f} ms);"
                    f" soaking at {args.rate:.0f}/s",
                    flush=True,
                )
            requests = bench_run.build_requests(
                json.loads((server.state / "demo.json").read_text(encoding="utf-8"))
            )
            state_before = tree_bytes(server.state)
            result = asyncio.run(drive(server, requests, args))
        finally:
            bench_run.stop(server)
        log = bench_run.tail(server.log, 5)
    samples = result["samples"]
    steady = [s for s in samples if s["t"] >= args.warmup] or samples
    rss_lo, rss_hi = drift([s["rss_kb"] for s in steady])
    fd_lo, fd_hi = drift([s["fds"] for s in steady])
    answered = sum(result["statuses"].values())
    not_ok = {k: v for k, v in result["statuses"].items() if not k.startswith("2")}
    grown = samples[-1]["state_bytes"] - state_before
    summary = {
        "duration_s": args.duration,
        "rate_per_s": args.rate,
        "peak_per_s": peak["rps"] if peak else None,
        "sent": result["sent"],
        "answered": answered,
        "skipped_behind_schedule": result["skipped"],
        "statuses": result["statuses"],
        "non_2xx_or_errors": sum(not_ok.values()),
        "rss_mb_first_last": [steady[0]["rss_kb"] / 1024, steady[-1]["rss_kb"] / 1024],
        "rss_drift": [rss_lo, rss_hi],
        "fds_first_last": [steady[0]["fds"], steady[-1]["fds"]],
        "fd_drift": [fd_lo, fd_hi],
        "gateway_sockets_max": max(s["sockets"] for s in samples),
        "client_sockets_max": max(s["client_sockets"] for s in samples),
        "state_bytes_per_decision": grown / max(answered, 1),
        "median_rss_mb": statistics.median(s["rss_kb"] for s in steady) / 1024,
    }
    for s in samples:
        print(
            f"t={s['t']:6.1f}s  RSS {s['rss_kb'] / 1024:7.1f} MB  fds {s['fds']:4d}"
            f" + sockets {s['sockets']:4d} (client {s['client_sockets']:4d})"
            f"  state {s['state_bytes'] / 2**20:7.2f} MB  answered {s['answered']}"
        )
    print(json.dumps(summary, indent=2))
    flat = max(abs(rss_lo), rss_hi, abs(fd_lo), fd_hi) <= 0.05
    print(
        f"RSS and fds within ±5% after warm-up: {'yes' if flat else 'NO'};"
        f" non-2xx or errors: {summary['non_2xx_or_errors']}"
    )
    if summary["non_2xx_or_errors"]:
        print(f"gateway log tail:\n{log}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary | {"samples": samples}, indent=2) + "\n")
    return 0 if flat and not summary["non_2xx_or_errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
