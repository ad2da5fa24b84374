"""``loan_response_overdue``: a bank that let a demand's deadline pass hears of it once.

Every replica scans for (demand, bank) pairs newly past their deadline; the
replica that first claims a pair in the shared replay cache emits the event to
the bank and to the platform that recorded the demand, so two replicas never
send one pair twice. The outbox then delivers it at least once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from gateway.loans.stats import OverduePair
from gateway.store.base import StoreUnavailable

__all__ = ["notify_overdue", "run_overdue_notifier"]

log = logging.getLogger("xinyi.loans")

# A claim outlives any demand (at most 366 days) with its deadline.
_CLAIM_TTL_S = 400 * 86_400
# After a start, pairs that fell overdue while no replica ran are still sent.
_LOOK_BACK_S = 14 * 86_400

Overdue = Callable[[int, int | None], Awaitable[list[OverduePair]]]
Claim = Callable[[str, float], Awaitable[bool]]
Emit = Callable[..., Awaitable[int]]


async def notify_overdue(overdue: Overdue, claim: Claim, emit: Emit, now: int, since: int) -> int:
    """Emit the event for each pair that fell overdue in (since, now]; how many were sent."""
    sent = 0
    for pair in await overdue(now, since):
        if not await claim(f"loan-overdue:{pair.demand_id}:{pair.bank}", _CLAIM_TTL_S):
            continue  # another replica (or an earlier run) sent it
        data: Mapping[str, Any] = {
            "demand_id": pair.demand_id,
            "bank": pair.bank,
            "deadline": dt.datetime.fromtimestamp(pair.deadline, dt.UTC).isoformat(),
        }
        await emit("loan_response_overdue", data, audience=_audience(pair))
        sent += 1
    return sent


def _audience(pair: OverduePair) -> Iterable[str]:
    return dict.fromkeys([pair.bank, pair.platform])


async def run_overdue_notifier(
    overdue: Overdue, claim: Claim, emit: Emit, interval_s: float, now: Callable[[], int]
) -> None:
    """Until cancelled: every ``interval_s``, send what fell overdue since the last pass."""
    since = now() - _LOOK_BACK_S
    while True:
        at = now()
        try:
            sent = await notify_overdue(overdue, claim, emit, at, since)
            if sent:
                log.info("loan responses overdue announced", extra={"pairs": sent})
            since = at
        except StoreUnavailable as exc:
            log.warning("overdue scan skipped: store unavailable", extra={"error": str(exc)})
        await asyncio.sleep(interval_s)
