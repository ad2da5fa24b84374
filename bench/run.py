"""Load benchmark: gateway decisions/s and latency against a bare aiohttp endpoint.

    .venv/bin/python bench/run.py [--duration 15] [--connections 64] [--repeat 3]

In one run it starts three servers on free loopback ports, each one process:

* ``bare``           — bench/bare.py, the fair baseline of DESIGN §11;
* ``gateway``        — ``python -m gateway serve --demo`` with its access log on
                       (written to a file, as a service's stderr would be);
* ``gateway-nolog``  — the same with ``--no-access-log``.

The demo partners' rate limits are raised (``--demo-rate``) so nothing is
throttled. Every demo subject x scene pair becomes one prebuilt request
(bench/decisions.lua cycles through them); before measuring, each request is
sent once and its outcome checked against demo.json's ``expected``. The same
request list is sent to the bare endpoint.

With two or more CPUs, servers are pinned to CPU 0 and wrk (one thread) to
CPU 1 with taskset. Each round measures the three targets in turn; with
``--repeat`` > 1 the table shows the median round per target. Any non-2xx
response or socket error fails the run. Results go to bench/results/.

Besides req/s it reports each server's CPU time per request (from /proc),
which other jobs on a shared machine disturb far less than throughput, and
how many CPUs other processes kept busy meanwhile. Before each measurement
it waits (up to --quiet-wait seconds) for the machine to go quiet.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SCRIPT = BENCH / "decisions.lua"
RESULTS = BENCH / "results"
DEMO_RATE = 1_000_000
TARGETS = ("bare", "gateway", "gateway-nolog")
# Busy CPUs outside the benchmark above which a run is flagged as disturbed.
OTHER_LOAD_WARNING = 0.15


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    requests_file: Path | None = None
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited: see {server.log}\n{tail(server.log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", server.port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not listen on {server.port} within {timeout}s")


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def pinned(cpu: int | None, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *argv] if cpu is not None else argv


def start(name: str, argv: list[str], workdir: Path, cpu: int | None) -> Server:
    port = free_port()
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            pinned(cpu, [*argv, "--port", str(port)]),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, port, proc, log)
    wait_for_port(server)
    return server


def stop(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()  # SIGTERM to the pid we started (taskset execs the server)
        try:
            server.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def lua_string(text: str) -> str:
    out = ['"']
    for byte in text.encode():
        ch = chr(byte)
        if ch in '"\\' or byte < 32 or byte > 126:
            out.append(f"\\{byte:03d}")  # three digits: a digit may follow
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def build_requests(demo: dict[str, Any]) -> list[dict[str, Any]]:
    """One request per demo subject x scene: the partner holding the scene asks."""
    by_scene = {scene: p for p in demo["partners"] for scene in p["scenes"]}
    requests = []
    for subject in demo["subjects"]:
        for scene, context in subject["context"].items():
            partner = by_scene[scene]
            body: dict[str, Any] = {
                "subject": {"kind": subject["kind"], "id": subject["id"]},
                "purpose": partner["purposes"][0],
                "context": context,
            }
            consent = subject["consents"].get(partner["id"])
            if consent:
                body["consent_id"] = consent["consent_id"]
            requests.append(
                {
                    "path": f"/v1/scenes/{scene}/decisions",
                    "key": partner["api_key"],
                    "body": json.dumps(body, ensure_ascii=False, separators=(",", ":")),
                    "expected": subject["expected"][scene],
                }
            )
    return requests


def write_lua(requests: list[dict[str, Any]], path: Path) -> None:
    lines = ["return {"]
    for r in requests:
        fields = ", ".join(f"{k} = {lua_string(r[k])}" for k in ("path", "key", "body"))
        lines.append(f"  {{{fields}}},")
    lines.append("}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def check_outcomes(server: Server, requests: list[dict[str, Any]]) -> dict[str, int]:
    """Send every request once; each must answer 200 with the expected outcome."""
    mix: dict[str, int] = {}
    for r in requests:
        req = urllib.request.Request(  # noqa: S310 - our own http:// loopback URL
            server.url + r["path"],
            data=r["body"].encode(),
            headers={"Authorization": f"Bearer {r['key']}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            answer = json.loads(resp.read())
        if answer.get("outcome") != r["expected"]:
            raise RuntimeError(
                f"{server.name} {r['path']}: {answer.get('outcome')!r}, expected {r['expected']!r}"
            )
        if (answer["outcome"] == "granted") != bool(answer.get("token")):
            raise RuntimeError(f"{server.name} {r['path']}: token missing or unexpected")
        mix[answer["outcome"]] = mix.get(answer["outcome"], 0) + 1
    return mix


def start_gateway(name: str, workdir: Path, cpu: int | None, access_log: bool) -> Server:
    state = workdir / name
    argv = [
        sys.executable,
        "-m",
        "gateway",
        "serve",
        "--demo",
        "--state-dir",
        str(state),
        "--demo-rate",
        str(DEMO_RATE),
    ]
    if not access_log:
        argv.append("--no-access-log")
    server = start(name, argv, workdir, cpu)
    demo_json = state / "demo.json"
    deadline = time.monotonic() + 30
    while not demo_json.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    server.requests_file = workdir / f"{name}-requests.lua"
    return server


def wrk(
    server: Server, args: argparse.Namespace, cpu: int | None, duration: float
) -> dict[str, Any]:
    assert server.requests_file is not None
    argv = pinned(
        cpu,
        [
            "wrk",
            "-t1",
            f"-c{args.connections}",
            f"-d{duration:g}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(SCRIPT),
            server.url,
            "--",
            str(server.requests_file),
        ],
    )
    before = cpu_snapshot(server)
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    after = cpu_snapshot(server)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed on {server.name}:\n{out.stdout}\n{out.stderr}")
    match = re.search(r"^BENCH_RESULT (\{.*\})$", out.stdout, re.MULTILINE)
    if not match:
        raise RuntimeError(f"no result line from wrk:\n{out.stdout}\n{out.stderr}")
    result: dict[str, Any] = json.loads(match.group(1))
    result["wrk_output"] = out.stdout
    # wrk's own summary line must agree with the script's count.
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    result["non_2xx"] = max(result["non_2xx"], int(non2xx.group(1)) if non2xx else 0)
    errors = sum(
        result[k] for k in ("non_2xx", "connect_errors", "read_errors", "write_errors", "timeouts")
    )
    if errors:
        raise RuntimeError(f"{server.name}: {errors} failed requests\n{out.stdout}")
    server_cpu, busy, wrk_cpu = (b - a for a, b in zip(before, after, strict=True))
    seconds = result["seconds"]
    # CPU the server spent per request (all its threads): steadier than req/s when
    # something else shares the machine.
    result["server_cpu_us"] = 1e6 * server_cpu / max(result["requests"], 1)
    result["server_cpus"] = server_cpu / seconds
    result["wrk_cpus"] = wrk_cpu / seconds
    # Busy time of everything else on the machine, in CPUs: other people's work.
    result["other_cpus"] = max(0.0, (busy - server_cpu - wrk_cpu) / seconds)
    return result


def cpu_snapshot(server: Server) -> tuple[float, float, float]:
    """(server process CPU s, machine busy CPU s, CPU s of finished children, i.e. wrk)."""
    tick = os.sysconf("SC_CLK_TCK")
    stat = Path(f"/proc/{server.proc.pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    server_cpu = (int(fields[11]) + int(fields[12])) / tick
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in cpu[:8]]  # user nice system idle iowait irq softirq steal
    busy = (sum(ticks) - ticks[3] - ticks[4]) / tick
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return server_cpu, busy, children.ru_utime + children.ru_stime


def machine_busy(seconds: float) -> float:
    """CPUs' worth of busy time on the whole machine over the next ``seconds``."""
    tick = os.sysconf("SC_CLK_TCK")

    def busy() -> float:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return (sum(ticks) - ticks[3] - ticks[4]) / tick

    start = busy()
    time.sleep(seconds)
    return (busy() - start) / seconds


def wait_for_quiet(limit: float) -> None:
    """Sleep while other processes keep the machine busy, at most ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while (load := machine_busy(1.0)) > OTHER_LOAD_WARNING and time.monotonic() < deadline:
        print(f"  waiting: other processes busy ({load:.2f} CPU)", flush=True)
        time.sleep(4)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        found = re.search(r"^Model name:\s*(.+)$", lscpu, re.MULTILINE)
        model = found.group(1).strip() if found else ""
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return {
        "nproc": cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "wrk": (wrk_version.stdout or wrk_version.stderr).splitlines()[0].strip(),
    }


def median_result(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median throughput (its latencies come from that same round)."""
    ordered = sorted(results, key=lambda r: r["rps"])
    return ordered[(len(ordered) - 1) // 2]


def ms(us: float) -> str:
    return f"{us / 1000:.2f}"


@contextlib.contextmanager
def servers(workdir: Path, cpu: int | None) -> Iterator[dict[str, Server]]:
    started: dict[str, Server] = {}
    try:
        started["bare"] = start("bare", [sys.executable, str(BENCH / "bare.py")], workdir, cpu)
        started["gateway"] = start_gateway("gateway", workdir, cpu, access_log=True)
        started["gateway-nolog"] = start_gateway("gateway-nolog", workdir, cpu, access_log=False)
        yield started
    finally:
        for server in started.values():
            stop(server)


def main() -> int:
    parser = argparse.ArgumentParser(description="gateway vs bare aiohttp load benchmark")
    parser.add_argument("--duration", type=float, default=15, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of load before measuring")
    parser.add_argument("--no-pin", action="store_true", help="do not pin CPUs with taskset")
    parser.add_argument("--keep", action="store_true", help="keep the temporary state directory")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120,
        help="before each measurement, wait up to this many seconds for other load to go",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    pin = not args.no_pin and cpu_count() >= 2 and shutil.which("taskset") is not None
    server_cpu, client_cpu = (0, 1) if pin else (None, None)

    info = machine()
    print(f"machine: {info}")
    print(f"pinning: {'servers on CPU 0, wrk on CPU 1' if pin else 'none'}")
    # A SIGTERM (a timeout, a CI cancel) unwinds like Ctrl-C: servers stopped, temp dir removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="xinyi-bench-"))
    try:
        with servers(workdir, server_cpu) as running:
            mix: dict[str, int] = {}
            for name in ("gateway", "gateway-nolog"):
                server = running[name]
                demo = json.loads((workdir / name / "demo.json").read_text(encoding="utf-8"))
                requests = build_requests(demo)
                assert server.requests_file is not None
                write_lua(requests, server.requests_file)
                mix = check_outcomes(server, requests)
                if name == "gateway":
                    running["bare"].requests_file = server.requests_file
            print(f"request mix: {len(requests)} requests per cycle, outcomes {mix}")
            for server in running.values():
                print(f"warm-up {server.name} ({args.warmup:g}s)", flush=True)
                wrk(server, args, client_cpu, args.warmup)
            for round_ in range(1, args.repeat + 1):
                for name in TARGETS:
                    server = running[name]
                    wait_for_quiet(args.quiet_wait)
                    result = wrk(server, args, client_cpu, args.duration)
                    server.results.append(result)
                    print(
                        f"round {round_} {name:14} {result['rps']:9.0f} req/s  "
                        f"p50 {ms(result['p50_us'])} ms  p99 {ms(result['p99_us'])} ms  "
                        f"server {result['server_cpu_us']:5.0f} µs CPU/req "
                        f"({result['server_cpus']:.2f} CPU)  others {result['other_cpus']:.2f} CPU",
                        flush=True,
                    )
            for server in running.values():
                if server.proc.poll() is not None:
                    raise RuntimeError(f"{server.name} died during the run:\n{tail(server.log)}")
            summary = {name: median_result(running[name].results) for name in TARGETS}
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    bare = summary["bare"]
    print()
    print(
        f"{'target':16}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'vs bare':>9}"
        f"{'CPU µs/req':>12}{'vs bare':>9}"
    )
    for name in TARGETS:
        r = summary[name]
        print(
            f"{name:16}{r['rps']:10.0f}{ms(r['p50_us']):>9}{ms(r['p99_us']):>9}"
            f"{r['rps'] / bare['rps']:9.1%}"
            f"{r['server_cpu_us']:12.0f}{bare['server_cpu_us'] / r['server_cpu_us']:9.1%}"
        )
    ratio = summary["gateway"]["rps"] / bare["rps"]
    ratio_nolog = summary["gateway-nolog"]["rps"] / bare["rps"]
    print(
        f"\nratio gateway/bare: {ratio:.1%} (access log on), {ratio_nolog:.1%} (off); "
        f"goal >= 20%, project goal >= 35%"
    )
    busiest = max(r["other_cpus"] for name in TARGETS for r in running[name].results)
    if busiest > OTHER_LOAD_WARNING:
        print(
            f"warning: other processes used up to {busiest:.2f} CPU during a measurement; "
            "numbers are low and noisy - rerun on a quiet machine"
        )

    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"run-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "when": stamp,
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "settings": {**vars(args), "pinned": pin, "demo_rate": DEMO_RATE},
                "machine": info,
                "request_mix": mix,
                "median": {
                    name: {k: v for k, v in r.items() if k != "wrk_output"}
                    for name, r in summary.items()
                },
                "ratio": {"gateway": ratio, "gateway-nolog": ratio_nolog},
                "cpu_ratio": {
                    name: bare["server_cpu_us"] / summary[name]["server_cpu_us"]
                    for name in ("gateway", "gateway-nolog")
                },
                "max_other_cpus": busiest,
                "rounds": {name: running[name].results for name in TARGETS},
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"results: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
