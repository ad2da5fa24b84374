"""After a credit change: a subject's live tokens re-checked, and revoked when
no longer justified (API.md "Credit events").

A token stays valid while its scene's policy, on fresh records and the
token's own request context, still grants every benefit it carries.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from adapters.credit.base import SubjectKind
from gateway.facts.subject_records import SubjectRecords
from gateway.metrics import Metrics
from gateway.policy.loader import PolicySet
from gateway.settings import Partner
from gateway.store.base import IssuedToken, Store
from gateway.tokens.status_list import INVALID, VALID
from gateway.trust.baseline import with_baseline
from gateway.trust.pseudonyms import Pseudonyms

__all__ = ["TokenRecheck"]

log = logging.getLogger("xinyi.decisions")


class TokenRecheck:
    def __init__(
        self,
        *,
        store: Store,
        records: SubjectRecords,
        pseudonyms: Pseudonyms,
        metrics: Metrics,
        on_revoke: Callable[[IssuedToken, str], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._records = records
        self._pseudonyms = pseudonyms
        self._metrics = metrics
        # Tells the token's audience of a revocation (gateway.trust.revocation).
        self._on_revoke = on_revoke

    async def __call__(
        self,
        kind: SubjectKind,
        subject_id: str,
        policies: PolicySet,
        today: dt.date,
        partners: Mapping[str, Partner] | None = None,
    ) -> tuple[int, int]:
        """Revoke the subject's live tokens no longer justified.

        Returns (tokens checked, tokens revoked).
        """
        subject_key = self._pseudonyms.internal(kind, subject_id)
        self._records.forget(subject_key)
        live = await self._store.live_tokens(subject_key, int(time.time()))
        if not live:
            return 0, 0
        records = await self._records.fetch(kind, subject_id, subject_key)
        records = await self._records.with_breaches(records, live[0].subject_key, today)
        revoked = 0
        for token in live:
            if await self._store.token_status(token.status) != VALID:
                continue
            compiled = policies.active(token.scene, today)
            justified = False
            if compiled is not None:
                result = compiled.evaluate(compiled.plan.build(records, token.context, today, kind))
                owner = (partners or {}).get(token.partner)
                if owner is not None and owner.baseline:
                    result = with_baseline(
                        result, owner.baseline, token.scene, owner.id, policies.benefits
                    )
                granted = {code for code, _ in result.benefits}
                justified = result.outcome == "granted" and set(token.benefits) <= granted
            if not justified:
                await self._store.set_status(token.status, INVALID)
                self._metrics.tokens_revoked.labels("credit_event").inc()
                if self._on_revoke is not None:
                    await self._on_revoke(token, "credit_event")
                revoked += 1
        if revoked:
            log.info("tokens revoked after a credit event", extra={"revoked": revoked})
        return len(live), revoked
