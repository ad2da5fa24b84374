"""Record-derived facts per enterprise, kept warm for 名单推荐.

Facts are cached per enterprise (internal pseudonym) and day, as fresh as the
decision path's record cache (``facts_ttl_s``); a credit event drops them
(``forget``, fed by the change feed on every replica), and facts read while an
event arrived answer that request only. ``warm_facts`` runs in the background
(gateway/loans/warmer.py) so a recommendation reads cached facts only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Sequence
from typing import Any

from adapters.credit.base import CreditSource, CreditSourceError
from gateway.errors import DependencyUnavailable
from gateway.loans.matching import LoanFactPlans
from gateway.loans.models import ALL_BANKS, LoanDemand
from gateway.loans.sealing import Sealer
from gateway.loans.store import LoanStore
from gateway.policy.loader import PolicySet

__all__ = ["LoanFactsCache"]

# Enterprises whose records one warm-up step reads before yielding to requests.
_WARM_CHUNK = 2000


class LoanFactsCache:
    def __init__(
        self,
        *,
        store: LoanStore,
        credit: CreditSource,
        sealer: Sealer,
        plans: LoanFactPlans,
        banks: Sequence[str],
        ttl_s: float,
    ) -> None:
        self._store = store
        self._credit = credit
        self._sealer = sealer
        self._plans = plans
        self._banks = tuple(banks)
        self._ttl = ttl_s
        # Record-derived facts per enterprise (internal pseudonym) and day.
        self._facts: dict[str, tuple[float, dt.date, dict[str, Any]]] = {}
        # Credit events seen while records are being read (see _fetch_facts).
        self._generation = 0
        self._cleared = 0
        self._fetching = 0
        self._forgotten: dict[str, int] = {}

    async def base_facts(
        self, policies: PolicySet, keyed: dict[str, str], today: dt.date
    ) -> dict[str, dict[str, Any]]:
        """Record-derived facts per subject key; ``keyed`` maps key → subject id."""
        clock = time.monotonic()
        out: dict[str, dict[str, Any]] = {}
        missing: dict[str, str] = {}
        for key, subject_id in keyed.items():
            hit = self._facts.get(key)
            if hit is not None and hit[0] > clock and hit[1] == today:
                out[key] = hit[2]
            else:
                missing[subject_id] = key
        if missing:
            out.update(await self._fetch_facts(policies, missing, today))
        return out

    async def _fetch_facts(
        self, policies: PolicySet, missing: dict[str, str], today: dt.date
    ) -> dict[str, dict[str, Any]]:
        """Read the records of ``missing`` (subject id → key), derive and cache their facts."""
        plan = self._plans.plan(policies)
        started = self._generation
        self._fetching += 1
        try:
            found = await self._credit.records_many("enterprise", list(missing))
        except CreditSourceError as exc:
            raise DependencyUnavailable("the credit source is not answering") from exc
        finally:
            self._fetching -= 1
        expires = time.monotonic() + self._ttl
        if len(self._facts) > 500_000:
            self._facts.clear()
        forgotten = self._forgotten
        cleared = self._cleared > started
        out: dict[str, dict[str, Any]] = {}
        for subject_id, records in found.items():
            key = missing[subject_id]
            facts = plan.from_records(records, today)
            out[key] = facts
            # A credit event that arrived while the records were being read may have
            # changed them after the read: these facts answer this request only.
            if self._ttl > 0 and not cleared and forgotten.get(key, -1) <= started:
                self._facts[key] = (expires, today, facts)
        if not self._fetching:
            forgotten.clear()
        return out

    async def demand_facts(
        self, policies: PolicySet, demands: list[LoanDemand], today: dt.date
    ) -> dict[str, dict[str, Any]]:
        """Record-derived facts per demand's enterprise (by subject key).

        Only enterprises whose facts are not cached have their seal opened and
        their records read — all of them in one bulk call to the credit source.
        """
        clock = time.monotonic()
        cache = self._facts
        out: dict[str, dict[str, Any]] = {}
        missing: dict[str, str] = {}
        for d in demands:
            key = d.subject_key
            if key in out:
                continue
            hit = cache.get(key)
            if hit is not None and hit[0] > clock and hit[1] == today:
                out[key] = hit[2]
            else:
                missing[self._sealer.open(d.id, d.sealed)[0]] = key
        if missing:
            out.update(await self._fetch_facts(policies, missing, today))
        return out

    async def warm_facts(
        self, policies: PolicySet, today: dt.date, now: int, *, within_s: float = 0.0
    ) -> int:
        """Derive the facts of every enterprise with an open demand whose cached facts are
        missing, of another day, or expire within ``within_s``; how many were derived.

        Run in the background (gateway/loans/warmer.py) so that 名单推荐 reads cached
        facts only. Records are read in chunks, yielding to the event loop between them.
        """
        if self._ttl <= 0:
            return 0
        demands: dict[str, LoanDemand] = {}
        for bank in self._banks or (ALL_BANKS,):
            for d in await self._store.open_demands(bank, now):
                demands.setdefault(d.subject_key, d)
        horizon = time.monotonic() + within_s
        due: dict[str, str] = {}
        for key, d in demands.items():
            hit = self._facts.get(key)
            if hit is None or hit[0] <= horizon or hit[1] != today:
                due[self._sealer.open(d.id, d.sealed)[0]] = key
        chunk: dict[str, str] = {}
        for subject_id, key in due.items():
            chunk[subject_id] = key
            if len(chunk) >= _WARM_CHUNK:
                await self._fetch_facts(policies, chunk, today)
                chunk = {}
                await asyncio.sleep(0)
        if chunk:
            await self._fetch_facts(policies, chunk, today)
        return len(due)

    def cached(self, today: dt.date) -> list[tuple[str, dict[str, Any]]]:
        """Every enterprise's facts held for ``today`` and not expired (by subject key)."""
        clock = time.monotonic()
        return [
            (key, hit[2]) for key, hit in self._facts.items() if hit[0] > clock and hit[1] == today
        ]

    def forget(self, subject_key: str | None = None) -> None:
        """A credit event changed a subject's records (by internal pseudonym; None: any)."""
        self._generation += 1
        if subject_key is None:
            self._facts.clear()
            self._cleared = self._generation
        else:
            self._facts.pop(subject_key, None)
            if self._fetching:
                self._forgotten[subject_key] = self._generation
