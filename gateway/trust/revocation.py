"""Revocation that reaches partners: the status bit flips, and the token's
audience hears of it (``token_revoked``); a revoked consent takes the live
tokens issued under it along (``consent_revoked``).

The status bit is set first and the event queued right after, not in one
transaction: a crash in between leaves the token revoked (every verifier sees
it on the status list) with the partner's notice lost — never the reverse.
"""

from __future__ import annotations

import datetime as dt
import time

from gateway.metrics import Metrics
from gateway.outbox.events import Events
from gateway.store.base import Consent, IssuedToken, Store
from gateway.tokens.status_list import INVALID, VALID

__all__ = ["Revocations"]


class Revocations:
    def __init__(self, store: Store, events: Events, metrics: Metrics) -> None:
        self._store = store
        self._events = events
        self._metrics = metrics

    async def announce(self, token: IssuedToken, reason: str) -> None:
        """Tell the token's audience its token was revoked (the bit is set already)."""
        await self._events.emit(
            "token_revoked",
            {
                "jti": token.jti,
                "decision_id": token.decision_id,
                "scene": token.scene,
                "reason": reason,
                "status_list": token.status.list_id,
                "status_index": token.status.index,
            },
            audience=[token.partner],
        )

    async def revoke(self, token: IssuedToken, reason: str) -> bool:
        """Revoke one token if still valid, and announce it; whether it changed."""
        if await self._store.token_status(token.status) != VALID:
            return False
        await self._store.set_status(token.status, INVALID)
        self._metrics.tokens_revoked.labels(reason).inc()
        await self.announce(token, reason)
        return True

    async def consent_revoked(self, consent: Consent, at: dt.datetime) -> int:
        """After the store revoked ``consent``: its live tokens go too; how many."""
        live = await self._store.live_tokens(consent.subject_key, int(time.time()))
        revoked = 0
        for token in live:
            covered = (
                token.partner == consent.partner
                and token.scene in consent.scenes
                and token.purpose == consent.purpose
            )
            if covered and await self.revoke(token, "consent_revoked"):
                revoked += 1
        await self._events.emit(
            "consent_revoked",
            {
                "consent_id": consent.consent_id,
                "revoked_at": at.isoformat(timespec="seconds"),
                "tokens_revoked": revoked,
            },
            audience=[consent.partner],
        )
        return revoked
