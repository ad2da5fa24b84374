"""Keeps each replica's record-derived loan facts warm for 名单推荐.

Deriving facts for tens of thousands of enterprises takes seconds; a bank asking
for its recommendations should not wait for it. So every replica derives, in the
background, the facts of every enterprise with an open demand, and re-derives
them before they expire. The facts live in the replica's memory only (never in
the shared store); credit events drop an enterprise's facts on every replica
(gateway/sync.py), and the next pass derives them again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable

from gateway.errors import DependencyUnavailable
from gateway.loans.service import LoanService
from gateway.policy.loader import PolicySet
from gateway.store.base import StoreUnavailable

__all__ = ["run_facts_warmer", "warm_interval"]

log = logging.getLogger("xinyi.loans")


def warm_interval(ttl_s: float) -> float:
    """Seconds between passes: often enough that a fact is re-derived before it
    expires (each pass renews what expires within two intervals), at most a minute."""
    return max(1.0, min(60.0, ttl_s / 4))


async def run_facts_warmer(
    loans: LoanService,
    policies: Callable[[], PolicySet],
    today: Callable[[], dt.date],
    now: Callable[[], int],
    ttl_s: float,
) -> None:
    """Until cancelled: derive missing or soon-expiring facts, then sleep an interval."""
    if ttl_s <= 0:
        return
    interval = warm_interval(ttl_s)
    while True:
        started = time.monotonic()
        try:
            derived = await loans.warm_facts(policies(), today(), now(), within_s=2 * interval)
            if derived:
                log.info(
                    "loan facts warmed",
                    extra={"enterprises": derived, "seconds": round(time.monotonic() - started, 2)},
                )
        except (StoreUnavailable, DependencyUnavailable) as exc:
            log.warning("loan facts warm-up skipped", extra={"error": str(exc)})
        await asyncio.sleep(interval)
