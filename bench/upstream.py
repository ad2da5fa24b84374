"""What the credit-platform path costs: adapter lookups, the breaker, bulk import.

    .venv/bin/python bench/upstream.py [--lookups 2000] [--rows 100000]

1. lookups through the platform adapter against the fake platform on loopback,
   one at a time and 16 at a time (the fake platform runs in the same process,
   so its CPU is in the numbers: they bound the adapter's cost from above);
2. the circuit breaker alone (purgatory ``get_breaker`` + ``async with``) per call;
3. ``data import`` of a generated export, JSON Lines and CSV, in rows/s.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import secrets
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from adapters.credit.base import AdapterContext, CreditRecord, RecordStatus, SubjectKind
from adapters.credit.fake_platform import (
    FakePlatform,
    export_bytes,
    running_fake_platform,
)
from adapters.credit.platform import PlatformCreditSource
from gateway.data_import import import_file
from gateway.identifiers import synthetic_uscc


def rows(count: int) -> list[tuple[SubjectKind, str, CreditRecord]]:
    rng = random.Random(1)
    subjects = [synthetic_uscc(rng) for _ in range(max(1, count // 4))]
    return [
        (
            "enterprise",
            subjects[n % len(subjects)],
            CreditRecord(
                record_id=f"r{n}",
                type="tax_credit_grade",
                domain="taxation",
                effective_document=False,
                adverse=False,
                decided_on=dt.date(2024, 1, 1),
                publication_until=None,
                status=RecordStatus.ACTIVE,
                value="A",
                title=None,
            ),
        )
        for n in range(count)
    ]


async def lookups(count: int) -> None:
    data = rows(400)
    subjects = sorted({s for _, s, _ in data})
    token = secrets.token_urlsafe(16)
    platform = FakePlatform.with_rows(data, token=token)
    async with running_fake_platform(platform) as url:
        source = PlatformCreditSource.from_options(
            {"base_url": url, "bearer_token": token},
            AdapterContext(Path("."), Path("."), CollectorRegistry()),
        )
        try:
            await source.records("enterprise", subjects[0])  # open the connection pool
            for concurrency in (1, 16):
                cpu, wall = time.process_time(), time.perf_counter()
                for start in range(0, count, concurrency):
                    await asyncio.gather(
                        *(
                            source.records("enterprise", subjects[(start + i) % len(subjects)])
                            for i in range(concurrency)
                        )
                    )
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                print(
                    f"lookups, concurrency {concurrency:2}: {count / wall:7.0f}/s, "
                    f"{cpu / count * 1e6:6.0f} µs CPU per lookup (adapter + fake platform)"
                )
            breakers = source._breakers
            n = 20_000
            started = time.perf_counter()
            for _ in range(n):
                async with await breakers.get_breaker("platform"):
                    pass
            per = (time.perf_counter() - started) / n * 1e6
            print(f"circuit breaker alone: {per:.1f} µs per call")
        finally:
            await source.close()


def imports(count: int) -> None:
    data = rows(count)
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("jsonl", "csv"):
            path = Path(tmp) / f"export.{fmt}"
            path.write_bytes(export_bytes(data, fmt))
            started = time.perf_counter()
            report = import_file(path, Path(tmp) / f"{fmt}.sqlite3")
            took = time.perf_counter() - started
            assert report.imported == count, report
            print(f"import {fmt:5}: {count} rows in {took:.2f} s, {count / took:8.0f} rows/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    asyncio.run(lookups(args.lookups))
    imports(args.rows)


if __name__ == "__main__":
    main()
