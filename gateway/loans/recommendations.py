"""名单推荐: the open demands a product's bank may serve, ranked, a page at a time.

Every listed enterprise is an audited use of its data (``loan_recommendation``).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import heapq
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import orjson
from prometheus_client import Counter

from gateway.errors import FieldError, InvalidRequest
from gateway.ids import ordered_id
from gateway.loans.deadlines import iso_utc
from gateway.loans.facts_cache import LoanFactsCache
from gateway.loans.matching import LoanFactPlans, ProductMatch, region_cover
from gateway.loans.models import LoanDemand, LoanProduct
from gateway.loans.rules.compile import ProductRules
from gateway.loans.sealing import Sealer
from gateway.loans.store import LoanStore
from gateway.policy.loader import PolicySet
from gateway.settings import Partner
from gateway.store.base import AuditEvent
from gateway.trust.pseudonyms import Pseudonyms

__all__ = ["LoanRecommendations", "Recommendation", "decode_cursor"]

SCENE = "loan"
# Enterprises whose rule keys one warm-up step builds before yielding to requests.
_WARM_CHUNK = 2000


@dataclass(slots=True)
class Recommendation:
    demand: LoanDemand
    match: ProductMatch
    # Lowest rate (best credit) first, then the larger amount, then the oldest demand.
    rank: tuple[float, int, int, str]

    def key(self) -> tuple[float, int, int, str]:
        return self.rank


_RANK = attrgetter("rank")


def _cursor(key: tuple[Any, ...]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def decode_cursor(raw: str) -> tuple[Any, ...]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        data = None
    if not isinstance(data, list) or not data:
        raise InvalidRequest(
            "the cursor is not one this gateway gave", errors=[FieldError("/cursor", "invalid")]
        )
    return tuple(data)


class LoanRecommendations:
    def __init__(
        self,
        *,
        store: LoanStore,
        rules: ProductRules,
        plans: LoanFactPlans,
        facts: LoanFactsCache,
        sealer: Sealer,
        pseudonyms: Pseudonyms,
        deadline: Callable[[LoanDemand], int],
        audit_use: Callable[[AuditEvent], Awaitable[None]],
        operations: Counter,
    ) -> None:
        self._store = store
        self._rules = rules
        self._plans = plans
        self._facts = facts
        self._sealer = sealer
        self._pseudonyms = pseudonyms
        self._deadline = deadline
        self._audit_use = audit_use
        self._operations = operations
        # Per read set, per enterprise: the values of the facts the rules read.
        self._read_keys: dict[
            tuple[str, ...], dict[str, tuple[dict[str, Any], tuple[Any, ...]]]
        ] = {}

    async def rank_demands(
        self,
        product: LoanProduct,
        policies: PolicySet,
        today: dt.date,
        now: int,
        *,
        ordered: bool = True,
    ) -> list[Recommendation]:
        """Every open demand that authorised the product's bank and matches it, ranked
        (``ordered=False``: in no particular order, for a caller that takes one page)."""
        compiled = self._rules.compiled(product, policies)
        if compiled is None or product.status != "active" or not product.valid_on(today):
            return []
        kinds, regions = product.subject_kinds, product.regions
        low, high = product.amount_min, product.amount_max
        shortest, longest = product.term_min, product.term_max
        covered: dict[str, bool] = {}  # per region code: a few hundred codes at most
        candidates = []
        for d in await self._store.open_demands(product.bank, now):
            if not (low <= d.amount <= high and shortest <= d.term_months <= longest):
                continue
            inside = covered.get(d.region)
            if inside is None:
                inside = covered[d.region] = not region_cover(d.region).isdisjoint(regions)
            if inside and d.subject_kind in kinds:
                candidates.append(d)
        base = await self._facts.demand_facts(policies, candidates, today)
        plan = self._plans.plan(policies)
        # Most products read no request context: their rules run on the cached facts as
        # they are, without a copy per demand.
        reads_context = not plan.context_dependent.isdisjoint(compiled.policy.reads)
        outcome_of = compiled.outcome
        found = []
        # The values of the facts the rules read, per enterprise, kept while its cached
        # facts are the same object (a credit event or renewal replaces them).
        reads = compiled.reads
        keys = self._read_keys.setdefault(reads, {})
        if len(keys) > 500_000:
            keys.clear()
        for d in candidates:
            facts = base[d.subject_key]
            if reads_context:
                context = {"loan_amount": d.amount, "term_months": d.term_months}
                outcome = outcome_of(plan.with_context(facts, context, today))
            else:
                held = keys.get(d.subject_key)
                if held is None or held[0] is not facts:
                    get = facts.get
                    held = keys[d.subject_key] = (facts, tuple([get(n) for n in reads]))
                outcome = outcome_of(facts, held[1])
            if outcome.constrained_by or not outcome.access:
                continue
            eligible = d.amount if d.amount < high else high
            if outcome.cap is not None and outcome.cap < eligible:
                eligible = int(outcome.cap)
            if eligible < low:
                continue
            rate = round(max(product.rate_min, product.rate_max - outcome.bp / 100), 4)
            match = ProductMatch(product, True, [], eligible, rate, outcome.bp, outcome.fired)
            found.append(Recommendation(d, match, (rate, -eligible, d.created_at, d.id)))
        if ordered:
            found.sort(key=_RANK)
        return found

    async def warm_keys(
        self, products: list[LoanProduct], policies: PolicySet, today: dt.date
    ) -> int:
        """Build the rule keys ``rank_demands`` reads, for every enterprise whose facts
        are cached and each read set of the active products that read no request
        context; how many were built.

        Run after the background warm-up (gateway/loans/warmer.py): the first 名单推荐
        on a replica then finds them instead of building them for every demand.
        """
        plan = self._plans.plan(policies)
        read_sets: set[tuple[str, ...]] = set()
        for product in products:
            if product.status != "active" or not product.valid_on(today):
                continue
            compiled = self._rules.compiled(product, policies)
            if compiled is not None and plan.context_dependent.isdisjoint(compiled.policy.reads):
                read_sets.add(compiled.reads)
        cached = self._facts.cached(today)
        built = 0
        for reads in read_sets:
            keys = self._read_keys.setdefault(reads, {})
            if len(keys) + len(cached) > 500_000:
                keys.clear()
            for n, (subject_key, facts) in enumerate(cached, 1):
                held = keys.get(subject_key)
                if held is None or held[0] is not facts:
                    get = facts.get
                    keys[subject_key] = (facts, tuple([get(name) for name in reads]))
                    built += 1
                if n % _WARM_CHUNK == 0:
                    await asyncio.sleep(0)  # requests are served between chunks
        return built

    async def recommendations(
        self,
        bank: Partner,
        product: LoanProduct,
        policies: PolicySet,
        today: dt.date,
        now: dt.datetime,
        *,
        limit: int,
        cursor: str | None,
    ) -> dict[str, Any]:
        ranked = await self.rank_demands(
            product, policies, today, int(now.timestamp()), ordered=False
        )
        if cursor is not None:
            after = list(decode_cursor(cursor))
            ranked = [r for r in ranked if list(r.rank) > after]
        # One page needs the best limit + 1 entries, not a sort of every match.
        page = heapq.nsmallest(limit + 1, ranked, key=_RANK)[:limit]
        entries = []
        events = []
        for rec in page:
            demand = rec.demand
            subject_id, name = self._sealer.open(demand.id, demand.sealed)
            pseudonym = self._pseudonyms.of(bank.pseudonym_sector, "enterprise", subject_id)
            enterprise: dict[str, Any] = {"pseudonym": pseudonym}
            if demand.discloses_to(bank.id):
                enterprise = {"id": subject_id, "name": name}
            entries.append(
                {
                    "demand_id": demand.id,
                    "enterprise": enterprise,
                    "amount": demand.amount,
                    "term_months": demand.term_months,
                    "purpose": demand.purpose,
                    "region": demand.region,
                    "eligible_amount": rec.match.eligible_amount,
                    "rate": rec.match.rate,
                    "discount_bp": rec.match.discount_bp,
                    "rules": [
                        {"rule": r.rule, "legal_basis": list(r.legal_basis)}
                        for r in rec.match.fired
                    ],
                    "response_deadline": iso_utc(self._deadline(demand)),
                    "expires_at": iso_utc(demand.expires_at),
                }
            )
            events.append(
                AuditEvent(
                    kind="loan_recommendation",
                    time=now.isoformat(timespec="seconds"),
                    partner=bank.id,
                    record_id=ordered_id("rec_"),
                    scene=SCENE,
                    purpose=bank.purposes[0] if bank.purposes else "credit_loan_assessment",
                    subject=pseudonym,
                    outcome="listed",
                    detail={
                        "product": product.id,
                        "version": product.version,
                        "demand_id": demand.id,
                    },
                )
            )
        await asyncio.gather(*(self._audit_use(e) for e in events))
        self._operations.labels("recommendation_listed").inc(len(events))
        body: dict[str, Any] = {
            "product": {"id": product.id, "version": product.version},
            "remaining": len(ranked),
            "recommendations": entries,
        }
        if len(ranked) > limit:
            body["next_cursor"] = _cursor(page[-1].rank)
        return body
