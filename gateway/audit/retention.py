"""The retention sweeper: state past its window leaves the hot store, in the background.

Each sweep archives audit records older than ``retention.audit_days`` (with
their decision bodies and index entries, gateway.audit.log.AuditLog.archive_before)
and purges expired idempotency and replay entries, token records past their
expiry plus ``token_grace_days`` and feedback older than ``feedback_days``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time

from gateway.audit.log import AuditLog, LogDamaged
from gateway.settings import RetentionSettings
from gateway.store.base import StoreUnavailable

__all__ = ["Retention"]

log = logging.getLogger("xinyi.retention")


class Retention:
    def __init__(self, audit: AuditLog, settings: RetentionSettings) -> None:
        self._audit = audit
        self._settings = settings
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._settings.sweep_seconds)
            try:
                await self.sweep(dt.datetime.now(dt.UTC))
            except (StoreUnavailable, LogDamaged, OSError) as exc:
                log.error("retention sweep failed", extra={"error": str(exc)})
            except Exception:  # pragma: no cover - a bug must not stop the loop for good
                log.exception("retention sweep failed")

    async def sweep(self, now: dt.datetime) -> tuple[int, int]:
        """(records archived, other entries purged)."""
        archived = 0
        days = self._settings.audit_days
        if days is not None:
            # Everything up to now is checkpointed first, so the window's edge can be archived.
            await self._audit.checkpoint_now()
            archived = await self._audit.archive_before(
                now - dt.timedelta(days=days), self._settings.segment_records
            )
        feedback_before = (now - dt.timedelta(days=self._settings.feedback_days)).isoformat()
        purged = await self._audit.tree.purge_expired(
            time.time(), self._settings.token_grace_days * 86_400, feedback_before
        )
        if archived or purged:
            log.info("retention sweep", extra={"archived": archived, "purged": purged})
        return archived, purged
