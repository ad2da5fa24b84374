"""One partner floods the gateway; another partner's answers stay quick and complete.

``serve --demo`` runs with every partner limited to RATE decisions a second
(burst 2 x RATE). The bank floods loan decisions from FLOODERS concurrent
connections for FLOOD_S seconds; meanwhile the library asks one decision every
QUIET_PAUSE_S (well under its own limit) and records each latency.

What must hold:
- the flooder is rate limited: 429 problems (rate_limited, Retry-After), and no
  more 200s than its bucket allows (burst + RATE a second, with slack);
- the quiet partner is not: every one of its requests is answered 200;
- its p99 latency under the flood stays within QUIET_P99_BOUND_S. The bound is
  deliberately generous (a loaded 2-core CI machine runs the flooding client
  and the gateway on the same cores); on an idle machine it is a few ms to a few
  tens of ms. It catches a flood that starves the event loop or a limiter
  that makes partners queue behind each other, not a slow machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.fault.load import Sample, decision_worker, monotonic_clock, percentile
from tests.replicas.conftest import DemoData, Replica, demo_replica

pytestmark = pytest.mark.slow

RATE = 50.0  # per partner, per second (burst 2 x RATE)
FLOODERS = 24
FLOOD_S = 6.0
QUIET_PAUSE_S = 0.05
QUIET_P99_BOUND_S = 2.0
BASELINE_S = 1.5  # the quiet partner alone first, for the record (not asserted)


@pytest.fixture
def flooded(tmp_path: Path) -> Iterator[tuple[Replica, DemoData]]:
    state = tmp_path / "state"
    store = f"sqlite:///{(state / 'state.sqlite3').resolve()}"
    with demo_replica(state, store, rate=RATE, extra=("--no-access-log",)) as gateway:
        yield gateway, DemoData.load(state)


async def _flood(gateway: Replica, demo: DemoData) -> tuple[list[Sample], list[Sample]]:
    combos = demo.combos()
    loud = [(s, scene) for s, scene in combos if scene == "loan"]
    quiet = [(s, scene) for s, scene in combos if scene == "library"]
    assert loud
    assert quiet
    flood: list[Sample] = []
    calm: list[Sample] = []
    alone: list[Sample] = []
    clock = monotonic_clock()

    def over() -> bool:
        return clock() >= FLOOD_S

    connector = aiohttp.TCPConnector(limit=FLOODERS + 1)
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=15), connector=connector
    ) as session:
        await decision_worker(
            session,
            gateway.base,
            demo,
            quiet,
            alone,
            clock,
            until=lambda: clock() >= BASELINE_S,
            seed=-1,
            pause_s=QUIET_PAUSE_S,
        )
        clock = monotonic_clock()
        tasks = [
            decision_worker(session, gateway.base, demo, loud, flood, clock, until=over, seed=n)
            for n in range(FLOODERS)
        ]
        tasks.append(
            decision_worker(
                session,
                gateway.base,
                demo,
                quiet,
                calm,
                clock,
                until=over,
                seed=-1,
                pause_s=QUIET_PAUSE_S,
            )
        )
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=FLOOD_S + 30)
    alone_ms = [s.latency * 1000 for s in alone]
    print(
        f"quiet partner alone: {len(alone)} requests, p50 {percentile(alone_ms, 0.5):.1f} ms, "
        f"p99 {percentile(alone_ms, 0.99):.1f} ms"
    )
    return flood, calm


async def test_a_flood_from_one_partner_leaves_another_unharmed(
    flooded: tuple[Replica, DemoData],
) -> None:
    gateway, demo = flooded
    flood, calm = await _flood(gateway, demo)
    limited = [s for s in flood if s.status == 429]
    granted = [s for s in flood if s.status == 200]
    latencies = [s.latency for s in calm]
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    summary = (
        f"flooder: {len(flood)} requests, {len(granted)} x 200, {len(limited)} x 429; "
        f"quiet partner: {len(calm)} requests, p50 {p50 * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )
    print(summary)

    # The flooder is held to its own bucket.
    assert not [s for s in flood if s.status not in (200, 429)], summary
    assert limited, summary
    for s in limited:
        assert s.content_type.startswith("application/problem+json"), s
        assert s.code == "rate_limited", s
        assert s.retry_after is not None, s
        assert int(s.retry_after) >= 1, s
    allowed = 2 * RATE + RATE * FLOOD_S
    assert len(granted) <= allowed * 1.2, summary

    # The quiet partner keeps its service.
    assert len(calm) >= 10, summary
    assert [s.status for s in calm] == [200] * len(calm), summary
    assert p99 <= QUIET_P99_BOUND_S, summary
    assert gateway.alive(), gateway.log_tail()
