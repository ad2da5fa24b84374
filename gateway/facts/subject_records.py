"""A subject's records as policies read them: the credit source's, cached, and
the gateway's own commitment breaches.

Decisions and the re-check of live tokens after a credit event both read
them this way, so a change of source, cache or breaker shows in both.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from adapters.credit.base import (
    CircuitOpen,
    CreditRecord,
    CreditSource,
    CreditSourceError,
    SubjectKind,
)
from gateway.errors import DependencyUnavailable
from gateway.facts.cache import RecordCache
from gateway.metrics import Metrics
from gateway.policy.prohibited import is_prohibited
from gateway.store.base import StoreUnavailable

__all__ = ["BreachRecords", "SubjectRecords"]

log = logging.getLogger("xinyi.decisions")

# The commitment register's answer for one subject on one day, as records.
BreachRecords = Callable[[str, dt.date], Awaitable[list[CreditRecord]]]


class SubjectRecords:
    def __init__(
        self,
        *,
        credit: CreditSource,
        credit_name: str,
        cache: RecordCache,
        metrics: Metrics,
        breach_records: BreachRecords | None = None,
    ) -> None:
        self._credit = credit
        self._credit_name = credit_name
        self._cache = cache
        self._metrics = metrics
        # Breaches withhold incentives (policies read them as `commitment_breached`).
        self.breach_records = breach_records
        # The breaker is the source's own (purgatory in the platform adapter): the
        # gauge shows what it last said, open from a refused lookup to a good one.
        self._circuit_gauge = metrics.circuit_open.labels(credit_name)
        self._circuit_gauge.set(0)
        self._circuit_open = False
        self._calls_ok: Any = None  # upstream_calls' "ok" child: one per record-cache miss

    async def fetch(self, kind: SubjectKind, subject_id: str, subject_key: str) -> Any:
        """The credit source's records of the subject (``subject_key`` keys the cache)."""
        records = self._cache.get(subject_key)
        if records is not None:
            return records
        try:
            records = await self._credit.records(kind, subject_id)
        except CreditSourceError as exc:
            if isinstance(exc, CircuitOpen):  # refused by the source's breaker: not asked
                self._circuit_open = True
                self._circuit_gauge.set(1)
                self._metrics.upstream_calls.labels(self._credit_name, "short_circuited").inc()
            else:
                self._metrics.upstream_calls.labels(self._credit_name, "error").inc()
                log.warning("credit source failed", extra={"adapter": self._credit_name})
            wait = exc.retry_after_s
            raise DependencyUnavailable(
                "the credit source is not answering",
                retry_after_s=max(1, math.ceil(wait)) if wait is not None else 1,
            ) from exc
        if self._circuit_open:
            self._circuit_open = False
            self._circuit_gauge.set(0)
        calls_ok = self._calls_ok
        if calls_ok is None:  # made on the first answer, as labels() would: no series before
            calls_ok = self._calls_ok = self._metrics.upstream_calls.labels(self._credit_name, "ok")
        calls_ok.inc()
        # Records from domains that may not enter credit supervision are dropped
        # when facts are built; counted here, once per fetch.
        ignored = sum(1 for r in records if is_prohibited(r.domain, r.title))
        if ignored:
            self._metrics.records_dropped.inc(ignored)
        self._cache.put(subject_key, records)
        return records

    async def with_breaches(
        self,
        records: Sequence[CreditRecord],
        subject_key: str,
        today: dt.date,
        read: list[CreditRecord] | None = None,
    ) -> Sequence[CreditRecord]:
        """``records`` and the subject's breaches still withholding on ``today``.

        ``read``: the breaches as the decision's admission call read them
        (``Store.admit``); else they are asked of the commitment register.
        """
        breaches = read
        if breaches is None:
            if self.breach_records is None:
                return records
            try:
                breaches = await self.breach_records(subject_key, today)
            except StoreUnavailable as exc:
                raise DependencyUnavailable("the commitment register is not answering") from exc
        # The cached sequence stays as it is when there is nothing to add, so the
        # fact plan's memo still recognises it.
        return [*records, *breaches] if breaches else records

    def forget(self, subject_key: str | None = None) -> None:
        """Drop one subject's cached records (by internal pseudonym), or all of them."""
        if subject_key is None:
            self._cache.clear()
        else:
            self._cache.forget(subject_key)
