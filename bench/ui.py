"""What the pages cost: the dashboard's audit fold, and a staff sign-in's password check.

    .venv/bin/python bench/ui.py [--records 20000]

1. ``DecisionStats.view`` on an embedded store holding ``--records`` decisions:
   the first look (finds the head by probing, reads and checks up to 20,000
   records) and a later look after 100 more decisions (reads only those);
2. one Argon2id verification with argon2-cffi's defaults (what a sign-in costs
   off the event loop) and with the demo accounts' cheap parameters.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path

import orjson
from argon2 import PasswordHasher

from gateway.store.base import AuditEntry, DecisionWrite
from gateway.store.embedded import EmbeddedStore
from gateway.ui.stats import DecisionStats
from gateway.ui.users import hash_password


def _write(n: int, now: dt.datetime) -> DecisionWrite:
    decision_id = f"dec_{n:08d}"
    entry = AuditEntry(
        time=now.isoformat(),
        partner="demo-library",
        staff_id=None,
        scene=("library", "transit", "loan", "approval")[n % 4],
        purpose="deposit_waiver",
        subject=f"pseudonym-{n}",
        outcome=("granted", "standard")[n % 2],
        policy="library.deposit_waiver@2025.1",
        policy_hash="sha256:" + "0" * 64,
        policy_set="sha256:" + "1" * 64,
        consent_id=None,
        contract="c",
        decision_id=decision_id,
        token_jti=None,
    )
    body = orjson.dumps({"decision_id": decision_id})
    return DecisionWrite(decision_id, "demo-library", body, entry, None)


async def fold(records: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(Path(tmp) / "state.sqlite3")
        await store.open()
        try:
            now = dt.datetime.now(dt.UTC)
            for start in range(0, records, 1000):
                batch = range(start, min(start + 1000, records))
                await asyncio.gather(*(store.record_decision(_write(n, now)) for n in batch))
            stats = DecisionStats()
            t0 = time.perf_counter()
            view = await stats.view(store, now)
            first = time.perf_counter() - t0
            await asyncio.gather(
                *(store.record_decision(_write(records + n, now)) for n in range(100))
            )
            t0 = time.perf_counter()
            later = await stats.view(store, now)
            again = time.perf_counter() - t0
        finally:
            await store.close()
    assert view.chain_problem is None
    assert later.chain_problem is None
    print(
        f"audit fold, {records} records: first look {first * 1000:.0f} ms "
        f"({view.read} read, {view.read / first:,.0f} records/s); "
        f"after 100 more {again * 1000:.1f} ms"
    )


def passwords(rounds: int = 5) -> None:
    for label, digest in (
        ("argon2-cffi defaults", PasswordHasher().hash("a-long-enough-password")),
        ("demo (cheap)", hash_password("a-long-enough-password", cheap=True)),
    ):
        hasher = PasswordHasher()
        t0 = time.perf_counter()
        for _ in range(rounds):
            hasher.verify(digest, "a-long-enough-password")
        print(f"password check, {label}: {(time.perf_counter() - t0) / rounds * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    asyncio.run(fold(args.records))
    passwords()


if __name__ == "__main__":
    main()
