"""Instructions per decision, counted by valgrind: a figure the machine's drift cannot move.

    .venv/bin/python bench/instructions.py [--decisions 1280] [--against REV]

This machine's speed wanders by up to 2x over minutes, so timing a small
change means many interleaved rounds. Counting instructions does not: the
script builds the demo gateway in process (as bench/stages.py does), warms
it, settles the garbage collector as ``serve`` does, and runs ``--decisions``
decisions of the bench/run.py request mix through the decision handler at
concurrency 64 with callgrind counting only that stretch (event loop and
SQLite writer thread; kernel time, such as fsync and socket writes, is not
counted). Two runs of the same code agree to ~0.3%.

With ``--against REV`` the same count is made for the gateway of an earlier
commit, checked out into a temporary git worktree.

Needs valgrind (Debian's package).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
_CHILD = "XINYI_INSTRUCTIONS_ROOT"  # set in the process valgrind runs: the tree to measure


def _instrument(state: str) -> None:
    # Blocking on purpose: nothing else may run on the loop while counting starts.
    subprocess.run(
        ["callgrind_control", f"--instr={state}", str(os.getpid())], check=True, capture_output=True
    )


async def _measure(root: Path, decisions: int) -> None:
    """Inside valgrind: build the demo gateway from ``root`` and count the decisions."""
    sys.path[:0] = [str(root), str(root / "bench")]
    import orjson
    import run as bench_run  # bench/run.py of the measured tree
    from stages import handler_cost, mocked  # bench/stages.py of the measured tree

    from gateway.api.decisions import create_decision
    from gateway.api.keys import GATEWAY
    from gateway.app import create_app
    from gateway.cli import _settle_gc
    from gateway.demo import prepare_demo, seed_consents, write_demo_json
    from gateway.settings import load_settings

    logging.disable(logging.CRITICAL)
    # The same set-up as bench/stages.py's main(), written out here because the
    # measured tree may be an older commit whose stages.py has no helper for it.
    tmp = Path(tempfile.mkdtemp(prefix="xinyi-instructions-"))
    setup = prepare_demo(tmp, dt.datetime.now(dt.UTC).date(), rate_per_second=1e9)
    settings = load_settings(None, setup.settings_overrides())
    app = await create_app(settings)
    gw = app[GATEWAY]
    try:
        await seed_consents(setup, gw.consents.create, gw.now())
        demo = orjson.loads(write_demo_json(setup, settings.issuer).read_bytes())
        pool = [mocked(app, r) for r in bench_run.build_requests(demo) for _ in range(3)]
        middleware = app.middlewares[0]
        for req in pool:  # every request once, checked, before counting
            response = await middleware(req, create_decision)
            if response.status != 200:
                raise RuntimeError(f"{req.path}: {response.status}")
        await handler_cost(middleware, pool, 640, 64)
        _settle_gc()
        _instrument("on")
        await handler_cost(middleware, pool, decisions, 64)
        _instrument("off")
    finally:
        await gw.close()
        shutil.rmtree(tmp, ignore_errors=True)


def count(root: Path, decisions: int) -> float:
    """Instructions per decision for the gateway in ``root``."""
    with tempfile.TemporaryDirectory(prefix="xinyi-callgrind-") as out:
        proc = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}/callgrind.out",
                sys.executable,
                str(HERE),
                "--decisions",
                str(decisions),
            ],
            cwd=root,
            env={**os.environ, _CHILD: str(root), "PYTHONHASHSEED": "0"},
            capture_output=True,
            text=True,
            check=False,
        )
    match = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or not match:
        raise RuntimeError(f"the measurement failed:\n{proc.stdout}\n{proc.stderr[-3000:]}")
    return int(match.group(1)) / decisions


def main() -> int:
    parser = argparse.ArgumentParser(description="instructions per decision, under callgrind")
    parser.add_argument("--decisions", type=int, default=1280)
    parser.add_argument("--against", metavar="REV", help="also count this git revision")
    args = parser.parse_args()
    if child_root := os.environ.get(_CHILD):
        import uvloop

        uvloop.run(_measure(Path(child_root), args.decisions))
        return 0
    if not shutil.which("valgrind"):
        print("valgrind is not installed: apt-get install -y valgrind", file=sys.stderr)
        return 2
    here = count(ROOT, args.decisions)
    print(f"working tree: {here / 1000:.0f} k instructions per decision")
    if args.against:
        with tempfile.TemporaryDirectory(prefix="xinyi-against-") as tmp:
            tree = Path(tmp) / "tree"
            subprocess.run(
                ["git", "worktree", "add", "--detach", "--quiet", str(tree), args.against],
                cwd=ROOT,
                check=True,
            )
            try:
                there = count(tree, args.decisions)
            finally:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False
                )
        print(f"{args.against}: {there / 1000:.0f} k instructions per decision")
        print(f"change: {here / there - 1:+.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
