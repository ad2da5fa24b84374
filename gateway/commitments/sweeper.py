"""The sweeper: every replica runs one; commitments close only while open, so
replicas sweeping together breach each overdue commitment once."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from gateway.commitments.service import CommitmentService
from gateway.store.base import StoreUnavailable

__all__ = ["run_sweeper"]

log = logging.getLogger("xinyi.commitments")


async def run_sweeper(
    service: CommitmentService,
    interval_s: float,
    today: Callable[[], dt.date],
    now: Callable[[], dt.datetime],
) -> None:
    """Until cancelled: breach what is overdue, then wait ``interval_s``."""
    while True:
        try:
            breached = await service.sweep(today(), now())
            if breached:
                log.info("overdue commitments breached", extra={"breached": breached})
        except StoreUnavailable as exc:
            log.warning("commitment sweep skipped: store unavailable", extra={"error": str(exc)})
        await asyncio.sleep(interval_s)
