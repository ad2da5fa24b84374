"""Do two gateways give the same answers and store the same rows, byte for byte?

    .venv/bin/python bench/same_answers.py --against REV

A speed change must not change what the gateway says or records. This script
sends the bench/run.py request mix (every demo subject x scene) through the
decision handler of the working tree and of ``REV`` (checked out into a
temporary git worktree), each on its own copy of one prepared state
directory (same keys, pseudonym secret, consents), with clocks and random
bytes fixed: ``os.urandom`` from a seeded generator, ``time_ns`` counting
from a fixed instant, the gateway's ``now`` and ``today`` pinned. It then
compares the answers and the audit, decision, token and tree rows (with
their SQLite storage classes) and prints the first difference, if any.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent


def _child(mode: str, root: Path, state: Path) -> None:
    """In a fresh interpreter: prepare ``state``, or run the mix and print what it left."""
    import datetime as dt
    import logging
    import random
    import sqlite3

    rng = random.Random(17)

    def urandom(n: int) -> bytes:
        return bytes(rng.getrandbits(8) for _ in range(n))

    os.urandom = urandom
    random._urandom = urandom  # type: ignore[attr-defined]  # what secrets draws from
    sys.path[:0] = [str(root), str(root / "bench")]
    import orjson
    import run as bench_run
    import uvloop
    from stages import mocked

    import gateway.ids as ids
    from gateway.api.decisions import create_decision
    from gateway.api.keys import GATEWAY
    from gateway.app import create_app
    from gateway.demo import prepare_demo, seed_consents, write_demo_json
    from gateway.settings import load_settings

    day = dt.date(2026, 12, 4)
    now = dt.datetime(2026, 12, 4, 9, 30, 15, tzinfo=dt.UTC)

    class Clock:
        ticks = 0

        @staticmethod
        def time_ns() -> int:
            Clock.ticks += 1
            return int(now.timestamp()) * 1_000_000_000 + Clock.ticks * 1_000_000

    async def main() -> dict[str, list[object]]:
        logging.disable(logging.CRITICAL)
        setup = prepare_demo(state, day, rate_per_second=1e9)
        settings = load_settings(None, setup.settings_overrides())
        app = await create_app(settings)
        gw = app[GATEWAY]
        out: dict[str, list[object]] = {"answers": []}
        try:
            if mode == "prepare":
                await seed_consents(setup, gw.consents.create, now)
                write_demo_json(setup, settings.issuer)
                return out
            gw.now = lambda: now  # type: ignore[method-assign]
            gw.today = lambda: day  # type: ignore[method-assign]
            ids.time = Clock  # type: ignore[assignment]
            demo = orjson.loads((state / "demo.json").read_bytes())
            for r in bench_run.build_requests(demo):
                resp = await app.middlewares[0](mocked(app, r), create_decision)
                out["answers"].append([resp.status, resp.body.decode()])
        finally:
            await gw.close()
        db = sqlite3.connect(settings.store_url.removeprefix("sqlite://"))
        for name, sql in (
            ("audit", "SELECT seq, typeof(entry), entry, prev_hash, hash FROM audit ORDER BY seq"),
            ("decisions", "SELECT *, typeof(body) FROM decisions ORDER BY decision_id"),
            ("tokens", "SELECT *, typeof(body) FROM tokens ORDER BY jti"),
            ("tree", "SELECT size, hex(frontier) FROM audit_tree"),
            ("nodes", "SELECT level, idx, hex(hash) FROM audit_nodes ORDER BY level, idx"),
        ):
            out[name] = [list(row) for row in db.execute(sql)]
        db.close()
        return out

    result = uvloop.run(main())
    if mode == "run":
        print(json.dumps(result, ensure_ascii=False))


def _run(mode: str, root: Path, state: Path) -> dict[str, list[object]]:
    proc = subprocess.run(
        [sys.executable, str(HERE), "--child", mode, str(root), str(state)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} in {root} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout) if mode == "run" else {}


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description="same answers and rows as another commit?")
    parser.add_argument("--against", metavar="REV", required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xinyi-same-") as tmp:
        base = Path(tmp)
        _run("prepare", ROOT, base / "prepared")
        (base / "prepared" / "gateway.lock").unlink(missing_ok=True)
        tree = base / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(tree), args.against],
            cwd=ROOT,
            check=True,
        )
        try:
            results = {}
            for name, root in (("working tree", ROOT), (args.against, tree)):
                state = base / f"state-{len(results)}"
                shutil.copytree(base / "prepared", state)
                results[name] = _run("run", root, state)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False
            )
    here, there = results.values()
    for part in here:
        if here[part] != there.get(part):
            pairs = zip(here[part], there.get(part, []), strict=False)
            first = next((i for i, (a, b) in enumerate(pairs) if a != b), None)
            print(
                f"DIFFERENT: {part} (rows {len(here[part])} / {len(there.get(part, []))}),"
                f" first difference at row {first}"
            )
            return 1
    counts = ", ".join(f"{len(rows)} {part}" for part, rows in here.items())
    print(f"identical: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
