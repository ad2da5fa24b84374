"""Load benchmark: gateway decisions/s and latency against a baseline, in one run.

    .venv/bin/python bench/run.py [--scenario embedded|oauth|redis]
                                  [--duration 15] [--connections 64] [--repeat 3]

Scenarios (each measures its targets in turn, round after round):

* ``embedded`` (default; issue 2) — one process each:
  ``bare`` (bench/bare.py, the fair baseline of DESIGN §11), ``gateway``
  (``serve --demo`` with its access log on, written to a file as a service's
  stderr would be) and ``gateway-nolog`` (the same with ``--no-access-log``).
  With ``--against REV`` it adds ``gateway@REV``: the same ``--no-access-log``
  gateway built from an earlier commit (checked out in a temporary git
  worktree), so a change is priced against its predecessor in the same run,
  whatever the machine's speed does meanwhile.
* ``oauth`` (issue 4) — one gateway process (``--no-access-log``), asked the
  same requests twice over: ``gateway-apikey`` authenticates with the demo
  partners' API keys, ``gateway-oauth`` with access tokens that each partner
  got from ``/oauth/token`` with a signed client assertion (fresh tokens
  before every measurement, as they live ten minutes).
* ``redis`` (issue 5) — ``bare-2w``: bench/bare.py with two worker processes;
  ``gateway-redis-2w``: ``serve --demo --workers 2 --no-access-log`` on a
  redis-server this script starts on a free port with AOF and
  ``appendfsync always`` (config/redis/single.conf). Nothing is pinned: the
  workers, redis-server and wrk share the machine's CPUs. The gateway's CPU
  figure includes redis-server's. With ``--against REV``, ``gateway-redis-2w@REV``
  runs REV's gateway on a redis-server of its own with REV's configuration.

The demo partners' rate limits are raised (``--demo-rate``) so nothing is
throttled. Every demo subject x scene pair becomes one prebuilt request
(bench/decisions.lua cycles through them); before measuring, each request is
sent once and its outcome checked against demo.json's ``expected``. Bare
endpoints get the same request bytes.

In the one-process scenarios, with two or more CPUs, servers are pinned to
CPU 0 and wrk (one thread) to CPU 1 with taskset. With ``--repeat`` > 1 the
table shows the median round per target. Any non-2xx response or socket error
fails the run. Results go to bench/results/.

Besides req/s it reports each server's CPU time per request (from /proc, the
whole process tree), which other jobs on a shared machine disturb far less
than throughput, and how many CPUs other processes kept busy meanwhile.
Before each measurement it waits (up to --quiet-wait seconds) for the machine
to go quiet.
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
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SCRIPT = BENCH / "decisions.lua"
RESULTS = BENCH / "results"
DEMO_RATE = 1_000_000
SCENARIOS: dict[str, tuple[str, ...]] = {
    "embedded": ("bare", "gateway", "gateway-nolog"),
    "oauth": ("gateway-apikey", "gateway-oauth"),
    "redis": ("bare-2w", "gateway-redis-2w"),
}
# What each scenario's issue asks of the ratio to its first target.
GOALS = {
    "embedded": "goal >= 20% of bare (issue 2), project goal >= 35%",
    "oauth": "goal: within 10% of API keys (issue 4)",
    "redis": "goal >= 30% of bare with 2 workers, p99 <= 15 ms at 64 connections (issue 5)",
}
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
    # A gateway's demo state directory (None for a bare endpoint).
    state: Path | None = None
    # "api_key" or "oauth": how this target's requests authenticate.
    auth: str = "api_key"
    # Processes whose CPU counts as this server's besides its own tree (redis-server).
    extra_pids: tuple[int, ...] = ()

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


def start(name: str, argv: list[str], workdir: Path, cpu: int | None, root: Path = ROOT) -> Server:
    port = free_port()
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            pinned(cpu, [*argv, "--port", str(port)]),
            cwd=root,  # ``python -m gateway`` imports the gateway found here first
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


def build_requests(
    demo: dict[str, Any], bearer: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """One request per demo subject x scene: the partner holding the scene asks.

    ``bearer`` maps partner ids to OAuth access tokens; without it the
    partners' API keys are used.
    """
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
                    "key": bearer[partner["id"]] if bearer else partner["api_key"],
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


def access_tokens(demo: dict[str, Any], url: str) -> dict[str, str]:
    """An access token per demo partner, from /oauth/token with a private_key_jwt assertion."""
    import jwt  # PyJWT, a dev dependency, as in README's walk-through

    tokens = {}
    for partner in demo["partners"]:
        jwk = json.loads(Path(partner["client_key"]).read_text(encoding="utf-8"))
        now = int(time.time())
        assertion = jwt.encode(
            {
                "iss": partner["id"],
                "sub": partner["id"],
                "aud": demo["base_url"],
                "iat": now,
                "exp": now + 60,
                "jti": uuid.uuid4().hex,
            },
            jwt.PyJWK(jwk).key,
            algorithm=jwk.get("alg", "EdDSA"),
            headers={"kid": jwk["kid"]},
        )
        form = urllib.parse.urlencode(
            {
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            }
        ).encode()
        with urllib.request.urlopen(url + "/oauth/token", form, timeout=10) as resp:  # noqa: S310 - loopback
            tokens[partner["id"]] = json.loads(resp.read())["access_token"]
    return tokens


def prepare(server: Server) -> dict[str, int]:
    """Write the server's request list (fresh access tokens for OAuth); check outcomes."""
    assert server.state is not None
    demo = json.loads((server.state / "demo.json").read_text(encoding="utf-8"))
    bearer = access_tokens(demo, server.url) if server.auth == "oauth" else None
    requests = build_requests(demo, bearer)
    server.requests_file = server.log.with_name(f"{server.name}-requests.lua")
    write_lua(requests, server.requests_file)
    return check_outcomes(server, requests)


def start_gateway(
    name: str,
    workdir: Path,
    cpu: int | None,
    access_log: bool,
    extra: tuple[str, ...] = (),
    root: Path = ROOT,
) -> Server:
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
    server = start(name, [*argv, *extra], workdir, cpu, root)
    demo_json = state / "demo.json"
    deadline = time.monotonic() + 30
    while not demo_json.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    server.state = state
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
    server_cpu = tree_cpu((server.proc.pid, *server.extra_pids)) / tick
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in cpu[:8]]  # user nice system idle iowait irq softirq steal
    busy = (sum(ticks) - ticks[3] - ticks[4]) / tick
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return server_cpu, busy, children.ru_utime + children.ru_stime


def tree_cpu(roots: tuple[int, ...]) -> int:
    """CPU ticks (user + system) of these processes and all their live descendants."""
    parent: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_file.read_text()
        except OSError:
            continue  # the process has gone
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(stat_file.parent.name)
        parent[pid] = int(fields[1])
        ticks[pid] = int(fields[11]) + int(fields[12])
    wanted = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, ppid in parent.items():
            if ppid in wanted and pid not in wanted:
                wanted.add(pid)
                grew = True
    return sum(ticks.get(pid, 0) for pid in wanted)


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
def servers(
    workdir: Path, cpu: int | None, scenario: str, against: str | None = None
) -> Iterator[dict[str, Server]]:
    started: dict[str, Server] = {}
    redises: list[subprocess.Popen[bytes]] = []
    bare = [sys.executable, str(BENCH / "bare.py")]
    try:
        if scenario == "embedded":
            started["bare"] = start("bare", bare, workdir, cpu)
            started["gateway"] = start_gateway("gateway", workdir, cpu, access_log=True)
            started["gateway-nolog"] = start_gateway(
                "gateway-nolog", workdir, cpu, access_log=False
            )
            if against is not None:
                worktree = checkout(workdir, against)
                name = f"gateway@{against}"
                started[name] = start_gateway(name, workdir, cpu, access_log=False, root=worktree)
        elif scenario == "oauth":
            gateway = start_gateway("gateway", workdir, cpu, access_log=False)
            # One process, two ways in: the same requests, by API key and by access token.
            started["gateway-apikey"] = replace(gateway, name="gateway-apikey", results=[])
            started["gateway-oauth"] = replace(
                gateway, name="gateway-oauth", auth="oauth", results=[]
            )
        else:
            started["bare-2w"] = start("bare-2w", [*bare, "--workers", "2"], workdir, cpu)
            # Each gateway has a redis-server of its own, so neither reads the
            # other's state and each one's CPU figure includes only its own Redis.
            gateways = [("gateway-redis-2w", ROOT)]
            if against is not None:
                gateways.append((f"gateway-redis-2w@{against}", checkout(workdir, against)))
            for name, root in gateways:
                redis, url = start_redis(workdir / f"redis-{len(redises)}", root=root)
                redises.append(redis)
                gateway = start_gateway(
                    name,
                    workdir,
                    cpu,
                    access_log=False,
                    extra=("--store", url, "--workers", "2"),
                    root=root,
                )
                gateway.extra_pids = (redis.pid,)
                started[gateway.name] = gateway
        yield started
    finally:
        for server in started.values():
            stop(server)
        for redis in redises:
            redis.terminate()  # by the pid we started
            redis.wait(timeout=15)
        worktree = workdir / "against"
        if worktree.exists():
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=False
            )


def checkout(workdir: Path, rev: str) -> Path:
    """A detached worktree of ``rev`` under ``workdir`` (removed when the run ends)."""
    worktree = workdir / "against"
    subprocess.run(
        ["git", "worktree", "add", "--detach", "--quiet", str(worktree), rev],
        cwd=ROOT,
        check=True,
    )
    return worktree


def start_redis(
    directory: Path, fresh: bool = True, root: Path = ROOT
) -> tuple[subprocess.Popen[bytes], str]:
    """redis-server on a free port with the durability of config/redis/single.conf
    (``fresh=False``: on a directory that already holds its AOF, answering once loaded)."""
    if not shutil.which("redis-server"):
        raise RuntimeError("redis-server is not installed: apt-get install -y redis-server")
    directory.mkdir(parents=True, exist_ok=not fresh)
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            str(root / "config" / "redis" / "single.conf"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--save",
            "",
            "--logfile",
            str(directory / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as c:
            c.sendall(b"PING\r\n")
            if c.recv(16).startswith(b"+PONG"):
                return proc, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"redis-server did not start: see {directory / 'redis.log'}")


def main() -> int:
    parser = argparse.ArgumentParser(description="gateway vs baseline load benchmark")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="embedded")
    parser.add_argument("--duration", type=float, default=15, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of load before measuring")
    parser.add_argument("--no-pin", action="store_true", help="do not pin CPUs with taskset")
    parser.add_argument("--keep", action="store_true", help="keep the temporary state directory")
    parser.add_argument(
        "--against",
        metavar="REV",
        help="embedded, redis: also measure the gateway of this git revision (log off)",
    )
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
    targets = SCENARIOS[args.scenario]
    if args.against:
        if args.scenario == "oauth":
            print("--against goes with the embedded and redis scenarios", file=sys.stderr)
            return 2
        gateway = "gateway" if args.scenario == "embedded" else "gateway-redis-2w"
        targets = (*targets, f"{gateway}@{args.against}")
    pin = (
        not args.no_pin
        and args.scenario != "redis"
        and cpu_count() >= 2
        and shutil.which("taskset") is not None
    )
    server_cpu, client_cpu = (0, 1) if pin else (None, None)

    info = machine()
    print(f"machine: {info}")
    print(f"scenario: {args.scenario} ({', '.join(targets)})")
    print(f"pinning: {'servers on CPU 0, wrk on CPU 1' if pin else 'none'}")
    # A SIGTERM (a timeout, a CI cancel) unwinds like Ctrl-C: servers stopped, temp dir removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="xinyi-bench-"))
    try:
        with servers(workdir, server_cpu, args.scenario, args.against) as running:
            mix: dict[str, int] = {}
            requests_file: Path | None = None
            for server in running.values():
                if server.state is not None:
                    mix = prepare(server)
                    requests_file = requests_file or server.requests_file
            for server in running.values():
                if server.state is None:  # a bare endpoint gets the same bytes
                    server.requests_file = requests_file
            print(f"request mix: {sum(mix.values())} requests per cycle, outcomes {mix}")
            for server in running.values():
                print(f"warm-up {server.name} ({args.warmup:g}s)", flush=True)
                wrk(server, args, client_cpu, args.warmup)
            for round_ in range(1, args.repeat + 1):
                for name in targets:
                    server = running[name]
                    if server.auth == "oauth":
                        prepare(server)  # access tokens live ten minutes
                    wait_for_quiet(args.quiet_wait)
                    result = wrk(server, args, client_cpu, args.duration)
                    server.results.append(result)
                    print(
                        f"round {round_} {name:16} {result['rps']:9.0f} req/s  "
                        f"p50 {ms(result['p50_us'])} ms  p99 {ms(result['p99_us'])} ms  "
                        f"server {result['server_cpu_us']:5.0f} µs CPU/req "
                        f"({result['server_cpus']:.2f} CPU)  others {result['other_cpus']:.2f} CPU",
                        flush=True,
                    )
            for server in running.values():
                if server.proc.poll() is not None:
                    raise RuntimeError(f"{server.name} died during the run:\n{tail(server.log)}")
            summary = {name: median_result(running[name].results) for name in targets}
            busiest = max(r["other_cpus"] for name in targets for r in running[name].results)
            rounds = {name: running[name].results for name in targets}
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    base = summary[targets[0]]
    print()
    print(
        f"{'target':18}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'vs ' + targets[0]:>18}"
        f"{'CPU µs/req':>12}{'vs (CPU)':>10}"
    )
    for name in targets:
        r = summary[name]
        print(
            f"{name:18}{r['rps']:10.0f}{ms(r['p50_us']):>9}{ms(r['p99_us']):>9}"
            f"{r['rps'] / base['rps']:18.1%}"
            f"{r['server_cpu_us']:12.0f}{base['server_cpu_us'] / r['server_cpu_us']:10.1%}"
        )
    ratios = {name: summary[name]["rps"] / base["rps"] for name in targets[1:]}
    # The machine's speed drifts over minutes; a round's targets run back to back,
    # so the ratio within each round is steadier than the ratio of the medians.
    round_ratios = {
        name: sorted(
            r["rps"] / b["rps"] for r, b in zip(rounds[name], rounds[targets[0]], strict=True)
        )
        for name in targets[1:]
    }
    print(
        "\nratio to "
        + targets[0]
        + ": "
        + ", ".join(f"{name} {ratio:.1%}" for name, ratio in ratios.items())
        + f"; {GOALS[args.scenario]}"
    )
    for name, values in round_ratios.items():
        print(
            f"{name} per round: median {values[(len(values) - 1) // 2]:.1%} "
            f"(range {values[0]:.1%}-{values[-1]:.1%})"
        )
    if busiest > OTHER_LOAD_WARNING:
        print(
            f"warning: other processes used up to {busiest:.2f} CPU during a measurement; "
            "numbers are low and noisy - rerun on a quiet machine"
        )

    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"run-{args.scenario}-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "when": stamp,
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "scenario": args.scenario,
                "settings": {**vars(args), "pinned": pin, "demo_rate": DEMO_RATE},
                "machine": info,
                "request_mix": mix,
                "median": {
                    name: {k: v for k, v in r.items() if k != "wrk_output"}
                    for name, r in summary.items()
                },
                "ratio": ratios,
                "round_ratios": round_ratios,
                "cpu_ratio": {
                    name: base["server_cpu_us"] / summary[name]["server_cpu_us"]
                    for name in targets[1:]
                },
                "max_other_cpus": busiest,
                "rounds": rounds,
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
