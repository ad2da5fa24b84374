"""The loan workflow: what the HTTP handlers ask of it, with its rules and audit.

Handlers authenticate and validate shapes; this service enforces who may see
and change what, runs products through the guard, matches, ranks, records
responses and computes statistics. Every use of an enterprise's credit data
(a match, a listed recommendation, a response) appends an audit record on the
shared hash chain, naming the enterprise only by the partner's pseudonym.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import heapq
import time
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from prometheus_client import CollectorRegistry, Counter

from adapters.credit.base import CreditSource, CreditSourceError
from gateway.errors import DependencyUnavailable, FieldError, InvalidRequest
from gateway.ids import ordered_id
from gateway.loans.bodies import DemandBody, ProductBody, ResponseBody
from gateway.loans.deadlines import WorkingDays
from gateway.loans.matching import (
    DemandTerms,
    LoanFactPlans,
    ProductMatch,
    match_product,
    rank_matches,
    region_cover,
)
from gateway.loans.models import (
    ALL_BANKS,
    REFUSAL_REASONS,
    LoanDemand,
    LoanProduct,
    LoanResponse,
)
from gateway.loans.rules.compile import ProductRules
from gateway.loans.sealing import Sealer
from gateway.loans.stats import OverduePair, bank_stats, overdue_pairs, state_for
from gateway.loans.store import LoanStore
from gateway.policy.loader import PolicySet
from gateway.settings import Partner
from gateway.store.base import AuditEvent, Store, StoreUnavailable
from gateway.trust.pseudonyms import Pseudonyms

__all__ = ["LoanService", "Recommendation"]

SCENE = "loan"
# Enterprises whose records one warm-up step reads before yielding to requests.
_WARM_CHUNK = 2000


class Conflict(InvalidRequest):
    """409: the request is well formed but the resource's state refuses it."""

    status = 409
    code = "conflict"
    title = "Conflict"


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


def _iso(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


class LoanService:
    def __init__(
        self,
        *,
        store: LoanStore,
        audit: Store,
        credit: CreditSource,
        pseudonyms: Pseudonyms,
        sealer: Sealer,
        tz: ZoneInfo,
        banks: Sequence[str],
        facts_ttl_s: float,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.store = store
        self._audit = audit
        self._credit = credit
        self._pseudonyms = pseudonyms
        self._sealer = sealer
        self.rules = ProductRules()
        self.plans = LoanFactPlans()
        self.working_days = WorkingDays(tz)
        self._banks = tuple(banks)
        self._ttl = facts_ttl_s
        # Record-derived facts per enterprise (internal pseudonym) and day, for
        # 名单推荐 over many demands; as fresh as the decision path's record cache.
        self._facts: dict[str, tuple[float, dt.date, dict[str, Any]]] = {}
        # Credit events seen while records are being read (see _fetch_facts).
        self._generation = 0
        self._cleared = 0
        self._fetching = 0
        self._forgotten: dict[str, int] = {}
        self._read_keys: dict[
            tuple[str, ...], dict[str, tuple[dict[str, Any], tuple[Any, ...]]]
        ] = {}
        self.operations = Counter(
            "xinyi_loans_total",
            "Loan workflow operations: products published, demands recorded, matches, "
            "enterprises listed in 名单推荐, responses by status",
            ["operation"],
            registry=registry,
        )

    async def open(self) -> None:
        await self.store.open()

    # -- products ----------------------------------------------------------------------
    def _product(
        self, bank: str, product_id: str, version: int, body: ProductBody, now: int
    ) -> LoanProduct:
        return LoanProduct(
            id=product_id,
            version=version,
            bank=bank,
            title=body.title,
            amount_min=body.amount.min,
            amount_max=body.amount.max,
            term_min=body.term_months.min,
            term_max=body.term_months.max,
            rate_min=body.annual_rate.min,
            rate_max=body.annual_rate.max,
            regions=tuple(dict.fromkeys(body.regions)),
            subject_kinds=tuple(dict.fromkeys(body.subject_kinds)),
            valid_from=body.valid_from,
            valid_until=body.valid_until,
            legal_basis=tuple(body.legal_basis),
            rules=tuple(body.rules),
            created_at=now,
        )

    async def publish(
        self, bank: Partner, body: ProductBody, policies: PolicySet, now: int
    ) -> LoanProduct:
        """Version 1 of a new product, after the guard; ProductRefused or Conflict."""
        assert body.id is not None
        product = self._product(bank.id, body.id, 1, body, now)
        self.rules.check(product, policies)
        self.rules.prove(product, policies)
        if not await self.store.create_product(product):
            raise Conflict(
                f"a loan product with id {body.id!r} exists",
                errors=[FieldError("/id", "taken")],
            )
        self.operations.labels("product_published").inc()
        return product

    async def revise(
        self, current: LoanProduct, body: ProductBody, policies: PolicySet, now: int
    ) -> LoanProduct:
        if current.status == "withdrawn":
            raise Conflict("a withdrawn product cannot get a new version")
        product = self._product(current.bank, current.id, current.version + 1, body, now)
        self.rules.check(product, policies)
        self.rules.prove(product, policies)
        if not await self.store.save_product(product, current.version):
            raise Conflict("the product changed meanwhile; read it again and retry")
        return product

    async def withdraw(self, current: LoanProduct, now: int) -> LoanProduct:
        if current.status == "withdrawn":
            return current
        withdrawn = current.withdrawn(now)
        if not await self.store.save_product(withdrawn, current.version):
            raise Conflict("the product changed meanwhile; read it again and retry")
        return withdrawn

    async def product(self, product_id: str, version: int | None = None) -> LoanProduct | None:
        found = await self.store.get_product(product_id, version)
        if found is None or version is None:
            return found
        head = await self.store.get_product(product_id)
        # A withdrawal concerns the product, so every version shows it.
        if head is not None and head.status == "withdrawn":
            return found.withdrawn(head.withdrawn_at or head.created_at)
        return found

    # -- demands -------------------------------------------------------------------------
    async def create_demand(
        self, platform: Partner, body: DemandBody, subject_id: str, now: dt.datetime
    ) -> LoanDemand:
        errors: list[FieldError] = []
        for field, banks in (("authorised_banks", body.authorised_banks),
                             ("disclose_to", body.disclose_to)):  # fmt: skip
            for i, bank in enumerate(banks):
                if bank != ALL_BANKS and bank not in self._banks:
                    errors.append(FieldError(f"/{field}/{i}", "no bank partner with this id"))
        if body.expires_at <= now:
            errors.append(FieldError("/expires_at", "must be in the future"))
        elif body.expires_at - now > dt.timedelta(days=366):
            errors.append(FieldError("/expires_at", "must be at most 366 days from now"))
        if errors:
            raise InvalidRequest("the demand has invalid fields", errors=errors)
        authorised = (ALL_BANKS,) if ALL_BANKS in body.authorised_banks else body.authorised_banks
        disclose = tuple(dict.fromkeys(body.disclose_to))
        if ALL_BANKS in disclose:
            disclose = tuple(authorised)
        demand_id = ordered_id("dem_")
        demand = LoanDemand(
            id=demand_id,
            platform=platform.id,
            subject_kind="enterprise",
            subject_key=self._pseudonyms.internal("enterprise", subject_id),
            sealed=self._sealer.seal(demand_id, subject_id, body.name),
            amount=body.amount,
            term_months=body.term_months,
            purpose=body.purpose,
            region=body.region,
            created_at=int(now.timestamp()),
            expires_at=int(body.expires_at.timestamp()),
            banks=tuple(dict.fromkeys(authorised)),
            disclose_to=disclose,
        )
        await self.store.put_demand(demand)
        self.operations.labels("demand_recorded").inc()
        return demand

    def deadline(self, demand: LoanDemand) -> int:
        return self.working_days.deadline(demand.created_at)

    def enterprise_view(self, demand: LoanDemand, bank: Partner) -> dict[str, Any]:
        """How a bank sees the enterprise: its pseudonym, or its id and name if allowed."""
        subject_id, name = self._sealer.open(demand.id, demand.sealed)
        if demand.discloses_to(bank.id):
            return {"id": subject_id, "name": name}
        return {"pseudonym": self._pseudonyms.of(bank.pseudonym_sector, "enterprise", subject_id)}

    async def demand_view(self, demand: LoanDemand, caller: Partner, now: int) -> dict[str, Any]:
        responses = (await self.store.responses([demand.id]))[demand.id]
        deadline = self.deadline(demand)
        body: dict[str, Any] = {
            "demand_id": demand.id,
            "status": "open" if demand.is_open(now) else (
                "expired" if demand.status == "open" else demand.status
            ),
            "amount": demand.amount,
            "term_months": demand.term_months,
            "purpose": demand.purpose,
            "region": demand.region,
            "created_at": _iso(demand.created_at),
            "expires_at": _iso(demand.expires_at),
            "response_deadline": _iso(deadline),
        }  # fmt: skip
        if caller.kind == "bank":
            own = [r for r in responses if r.bank == caller.id]
            body["enterprise"] = self.enterprise_view(demand, caller)
            body["state"] = state_for(demand, own, deadline, now)
            body["responses"] = [r.as_json() for r in own]
            return body
        body["authorised_banks"] = list(demand.banks)
        body["disclose_to"] = list(demand.disclose_to)
        banks = self._banks if ALL_BANKS in demand.banks else demand.banks
        body["banks"] = [
            {
                "bank": bank,
                "state": state_for(demand, [r for r in responses if r.bank == bank], deadline, now),
            }
            for bank in banks
        ]
        body["responses"] = [r.as_json() for r in responses]
        return body

    # -- credit data -----------------------------------------------------------------------
    async def _base_facts(
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
        plan = self.plans.plan(policies)
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

    async def _demand_facts(
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
            for d in await self.store.open_demands(bank, now):
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

    async def _audit_use(self, event: AuditEvent) -> None:
        try:
            await self._audit.append_audit(event)
        except StoreUnavailable as exc:
            raise DependencyUnavailable("the audit log is not writable; try again") from exc

    # -- matching --------------------------------------------------------------------------
    async def match(
        self,
        caller: Partner,
        subject_id: str,
        terms: DemandTerms,
        policies: PolicySet,
        today: dt.date,
        now: dt.datetime,
        *,
        purpose: str,
        consent_id: str | None,
        staff_id: str | None,
        demand_id: str | None,
    ) -> list[ProductMatch]:
        products = await self.store.list_products(caller.id if caller.kind == "bank" else None)
        key = self._pseudonyms.internal("enterprise", subject_id)
        base = (await self._base_facts(policies, {key: subject_id}, today))[key]
        plan = self.plans.plan(policies)
        facts = plan.with_context(base, terms.context, today)
        matches = []
        cover = region_cover(terms.region)
        compiled_for = self.rules.compiled
        # The fact values each distinct read set sees, built once for all its products.
        keys: dict[tuple[str, ...], tuple[Any, ...]] = {}
        for product in products:
            if product.status != "active" or not product.valid_on(today):
                continue
            compiled = compiled_for(product, policies)
            if compiled is None:
                continue
            values = keys.get(compiled.reads)
            if values is None:
                values = keys[compiled.reads] = tuple([facts.get(n) for n in compiled.reads])
            matches.append(match_product(compiled, product, facts, terms, cover=cover, key=values))
        ranked = rank_matches(matches)
        self.operations.labels("match").inc()
        await self._audit_use(
            AuditEvent(
                kind="loan_match",
                time=now.isoformat(timespec="seconds"),
                partner=caller.id,
                record_id=ordered_id("rec_"),
                scene=SCENE,
                purpose=purpose,
                subject=self._pseudonyms.of(caller.pseudonym_sector, "enterprise", subject_id),
                staff_id=staff_id,
                outcome=f"{sum(m.matched for m in ranked)}/{len(ranked)}",
                detail={"consent_id": consent_id, "demand_id": demand_id},
            )
        )
        return ranked

    # -- 名单推荐 -----------------------------------------------------------------------------
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
        compiled = self.rules.compiled(product, policies)
        if compiled is None or product.status != "active" or not product.valid_on(today):
            return []
        kinds, regions = product.subject_kinds, product.regions
        low, high = product.amount_min, product.amount_max
        shortest, longest = product.term_min, product.term_max
        covered: dict[str, bool] = {}  # per region code: a few hundred codes at most
        candidates = []
        for d in await self.store.open_demands(product.bank, now):
            if not (low <= d.amount <= high and shortest <= d.term_months <= longest):
                continue
            inside = covered.get(d.region)
            if inside is None:
                inside = covered[d.region] = not region_cover(d.region).isdisjoint(regions)
            if inside and d.subject_kind in kinds:
                candidates.append(d)
        base = await self._demand_facts(policies, candidates, today)
        plan = self.plans.plan(policies)
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
                    "response_deadline": _iso(self.deadline(demand)),
                    "expires_at": _iso(demand.expires_at),
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
        self.operations.labels("recommendation_listed").inc(len(events))
        body: dict[str, Any] = {
            "product": {"id": product.id, "version": product.version},
            "remaining": len(ranked),
            "recommendations": entries,
        }
        if len(ranked) > limit:
            body["next_cursor"] = _cursor(page[-1].rank)
        return body

    # -- responses ---------------------------------------------------------------------------
    async def respond(
        self, bank: Partner, demand: LoanDemand, body: ResponseBody, now: dt.datetime
    ) -> LoanResponse:
        errors: list[FieldError] = []
        if body.status == "granted":
            for name in ("amount", "rate", "term_months"):
                if getattr(body, name) is None:
                    errors.append(FieldError(f"/{name}", "a grant states it"))
        if body.status == "refused":
            if body.reason_code is None:
                errors.append(FieldError("/reason_code", "a refusal gives a reason code"))
            elif body.reason_code not in REFUSAL_REASONS:
                errors.append(
                    FieldError(
                        "/reason_code", f"not a published reason ({', '.join(REFUSAL_REASONS)})"
                    )
                )
        elif body.reason_code is not None:
            errors.append(FieldError("/reason_code", "only a refusal gives a reason code"))
        version = None
        if body.product_id is not None:
            product = await self.store.get_product(body.product_id)
            if product is None or product.bank != bank.id:
                errors.append(FieldError("/product_id", "not one of your products"))
            else:
                version = product.version
        if errors:
            raise InvalidRequest("the response has invalid fields", errors=errors)
        at = int(now.timestamp())
        if not demand.is_open(at):
            raise Conflict("the demand is closed or expired: it takes no more responses")
        response = LoanResponse(
            response_id=ordered_id("rsp_"),
            demand_id=demand.id,
            bank=bank.id,
            status=body.status,
            at=at,
            product_id=body.product_id,
            product_version=version,
            amount=body.amount,
            rate=body.rate,
            term_months=body.term_months,
            reason_code=body.reason_code,
            reason_text=body.reason_text,
        )
        if not await self.store.add_response(response):
            raise Conflict("the demand is closed: it takes no more responses")
        self.operations.labels(f"response_{body.status}").inc()
        subject_id, _ = self._sealer.open(demand.id, demand.sealed)
        await self._audit_use(
            AuditEvent(
                kind="loan_response",
                time=now.isoformat(timespec="seconds"),
                partner=bank.id,
                record_id=response.response_id,
                scene=SCENE,
                purpose=bank.purposes[0] if bank.purposes else "credit_loan_assessment",
                subject=self._pseudonyms.of(bank.pseudonym_sector, "enterprise", subject_id),
                staff_id=body.staff_id,
                outcome=body.status,
                detail={"demand_id": demand.id, "reason_code": body.reason_code},
            )
        )
        return response

    # -- statistics and deadlines --------------------------------------------------------------
    async def stats(self, banks: Sequence[str], since: int, until: int, now: int) -> list[Any]:
        if len(banks) == 1:
            demands = await self.store.demands_created(since, until, banks[0])
        else:
            demands = await self.store.demands_created(since, until)
        responses = await self.store.responses([d.id for d in demands])
        return [bank_stats(b, demands, responses, self.deadline, now) for b in banks]

    async def overdue(self, now: int, since: int | None = None) -> list[OverduePair]:
        """(demand, bank) pairs past their response deadline unanswered.

        With ``since``: only those whose deadline fell after it, so a caller
        that keeps its last ``now`` (the outbox, for ``loan_response_overdue``)
        sees each pair once. Demands older than a year and a month cannot be
        newly overdue (a demand lives at most 366 days).
        """
        start = (since if since is not None else now) - 400 * 86_400
        demands = await self.store.demands_created(start, now + 1)
        responses = await self.store.responses([d.id for d in demands])
        return overdue_pairs(demands, responses, self._banks, self.deadline, now, since)
