"""Audit tree builders on several replicas: the work done, and the work thrown away (issue 17).

    .venv/bin/python bench/tree_builders.py [--records 20000] [--rate 1000]
        [--replicas 2] [--checkpoint-seconds 10] [--root DIR] [--json FILE]

Starts a redis-server with config/redis/single.conf (AOF, ``appendfsync
always``) on a free port and, in this process, ``--replicas`` ``RedisStore``s
on it under one key prefix, each with an ``AuditLog`` whose background task
runs as in a gateway worker. Decisions are appended at ``--rate`` a second,
spread over the replicas, until ``--records``; then the tree is let catch up.
``--root`` imports the gateway (and the contract tests' decision writer) from
another checkout: an export of the base commit gives the before figure.

Per appended record: records the builders read back from Redis
(``Store.audit_records``: the LRANGE and the JSON decoding of each), tree
steps tried and applied (``extend_tree``), and this process's CPU time. The
appends are the same whatever the builders do, so a difference in CPU is the
builders'; ``process_time`` is CPU, not wall time, but a busy machine still
inflates it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

import run as bench_run  # noqa: E402 - bench/run.py
from redis_profile import process_cpu_s  # noqa: E402 - bench/redis_profile.py


async def measure(
    url: str, redis_pid: int, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    # Imported here: --root decides which checkout they come from.
    import gateway
    from gateway.audit.log import AuditLog
    from gateway.audit.store import TreeExtension
    from gateway.store.base import AuditRecord
    from gateway.store.redis import RedisStore
    from gateway.store.redis.audit_tree import RedisAuditTree
    from gateway.tokens.keys import KeyRing
    from tests.contract.records import decision_write

    counts: Counter[str] = Counter()

    class CountedStore(RedisStore):
        async def audit_records(self, after_seq: int, limit: int) -> list[AuditRecord]:
            page = await super().audit_records(after_seq, limit)
            counts["pages"] += 1
            counts["read"] += len(page)
            return page

    class CountedTree(RedisAuditTree):
        async def extend_tree(self, step: TreeExtension) -> bool:
            counts["tried"] += 1
            done = await super().extend_tree(step)
            counts["applied"] += bool(done)
            return done

    ring = KeyRing.load(workdir / "keys", create=True)
    stores, logs = [], []
    for _ in range(args.replicas):
        store = CountedStore(url, prefix="bench", connect_timeout_s=10)
        await store.open()
        log = AuditLog(
            store,
            CountedTree(store),
            lambda: ring,
            origin="bench.example/audit",
            seconds=args.checkpoint_seconds,
        )
        await log.open()
        log.start()
        stores.append(store)
        logs.append(log)
    per_tick = max(1, args.rate // 100)  # every 10 ms
    started, cpu_before = time.monotonic(), time.process_time()
    redis_before = process_cpu_s(redis_pid)
    n = 0
    while n < args.records:
        batch = min(per_tick, args.records - n)
        await asyncio.gather(
            *(
                stores[(n + i) % len(stores)].record_decision(decision_write(n + i))
                for i in range(batch)
            )
        )
        n += batch
        await asyncio.sleep(max(0.0, started + n / args.rate - time.monotonic()))
    appended_s = time.monotonic() - started
    tree = logs[0].tree
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (await tree.tree_state()).size >= args.records:
            break
        await asyncio.sleep(0.05)
    cpu = time.process_time() - cpu_before
    redis_cpu = process_cpu_s(redis_pid) - redis_before
    size = (await tree.tree_state()).size
    for log, store in zip(logs, stores, strict=True):
        await log.close()
        await store.close()
    r = args.records
    return {
        "gateway": str(Path(gateway.__file__).parent),
        "replicas": args.replicas,
        "records": r,
        "rate": args.rate,
        "checkpoint_seconds": args.checkpoint_seconds,
        "appended_s": round(appended_s, 2),
        "tree_size": size,
        "counts": dict(counts),
        "read_per_record": round(counts["read"] / r, 3),
        "pages_per_1000_records": round(counts["pages"] / r * 1000, 2),
        "steps_tried_per_1000_records": round(counts["tried"] / r * 1000, 2),
        "steps_applied_per_1000_records": round(counts["applied"] / r * 1000, 2),
        "cpu_us_per_record": round(cpu / r * 1e6, 1),
        "redis_cpu_us_per_record": round(redis_cpu / r * 1e6, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rate", type=int, default=1_000, help="records appended a second")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--checkpoint-seconds", type=float, default=10.0)
    parser.add_argument("--root", type=Path, default=bench_run.ROOT)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(args.root.resolve()))
    with tempfile.TemporaryDirectory(prefix="tree-builders-") as tmp:
        proc, url = bench_run.start_redis(Path(tmp) / "redis")
        try:
            result = asyncio.run(measure(url, proc.pid, args, Path(tmp)))
        finally:
            proc.terminate()  # the redis-server we started, by its pid
            proc.wait(timeout=15)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if result["tree_size"] == args.records else 1


if __name__ == "__main__":
    sys.exit(main())
