"""Decision load for the fault tests: bounded client loops that record every answer."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from gateway.runtime import open_store
from gateway.store.base import AuditRecord
from tests.replicas.conftest import SCENE_PARTNER, DemoData, request

__all__ = [
    "Sample",
    "audit_decision_ids",
    "audit_records",
    "decision_worker",
    "monotonic_clock",
    "percentile",
]

MAX_PER_WORKER = 20_000  # a bound on every loop, far above what any test's window allows


@dataclass(frozen=True, slots=True)
class Sample:
    started: float  # seconds since the load began
    ended: float
    status: int  # 0: no HTTP answer at all
    code: str | None = None  # problem+json code
    content_type: str = ""
    retry_after: str | None = None
    decision_id: str | None = None
    failure: str | None = None

    @property
    def latency(self) -> float:
        return self.ended - self.started


async def decision_worker(
    session: aiohttp.ClientSession,
    base: str,
    demo: DemoData,
    combos: list[tuple[dict[str, object], str]],
    samples: list[Sample],
    clock: Callable[[], float],
    *,
    until: Callable[[], bool],
    seed: int,
    pause_s: float = 0.0,
) -> None:
    """POST decisions (each asked by its scene's partner) until ``until()``; record each."""
    rng = random.Random(seed)
    for _ in range(MAX_PER_WORKER):
        if until():
            return
        subject, scene = rng.choice(combos)
        started = clock()
        try:
            answer = await request(
                session,
                "POST",
                f"{base}/v1/scenes/{scene}/decisions",
                json=demo.body(subject, scene),
                headers=demo.auth(SCENE_PARTNER[scene]),
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            samples.append(Sample(started, clock(), 0, failure=repr(exc)))
        else:
            content_type = answer.headers.get("Content-Type", "")
            body = answer.json() if content_type.startswith("application/") else None
            samples.append(
                Sample(
                    started,
                    clock(),
                    answer.status,
                    code=body.get("code") if isinstance(body, dict) else None,
                    content_type=content_type,
                    retry_after=answer.headers.get("Retry-After"),
                    decision_id=body.get("decision_id") if answer.status == 200 else None,
                )
            )
        if pause_s:
            await asyncio.sleep(pause_s)


def monotonic_clock() -> Callable[[], float]:
    origin = time.monotonic()
    return lambda: time.monotonic() - origin


async def audit_records(store_url: str) -> list[AuditRecord]:
    """Every audit record in the store (the gateway is stopped or still serving)."""
    store = open_store(store_url)
    await store.open()
    try:
        records: list[AuditRecord] = []
        while page := await store.audit_records(records[-1].seq if records else 0, 5_000):
            records.extend(page)
        return records
    finally:
        await store.close()


async def audit_decision_ids(store_url: str) -> tuple[list[AuditRecord], set[str]]:
    records = await audit_records(store_url)
    # Other workflows may audit other events; decisions are the records naming one.
    return records, {str(r.entry["decision_id"]) for r in records if r.entry.get("decision_id")}


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]
