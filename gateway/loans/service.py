"""The loan workflow: what the HTTP handlers ask of it, with its rules and audit.

Handlers authenticate and validate shapes; this service enforces who may see
and change what, runs products through the guard, matches, ranks, records
responses and computes statistics. Every use of an enterprise's credit data
(a match, a listed recommendation, a response) appends an audit record on the
shared hash chain, naming the enterprise only by the partner's pseudonym.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry, Counter

from adapters.credit.base import CreditSource
from gateway.errors import DependencyUnavailable, FieldError, InvalidRequest
from gateway.ids import ordered_id
from gateway.loans.bodies import DemandBody, ProductBody, ResponseBody
from gateway.loans.deadlines import WorkingDays, iso_utc
from gateway.loans.facts_cache import LoanFactsCache
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
from gateway.loans.recommendations import LoanRecommendations, Recommendation
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


class Conflict(InvalidRequest):
    """409: the request is well formed but the resource's state refuses it."""

    status = 409
    code = "conflict"
    title = "Conflict"


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
        self._pseudonyms = pseudonyms
        self._sealer = sealer
        self.rules = ProductRules()
        self.plans = LoanFactPlans()
        self.working_days = WorkingDays(tz)
        self._banks = tuple(banks)
        self.operations = Counter(
            "xinyi_loans_total",
            "Loan workflow operations: products published, demands recorded, matches, "
            "enterprises listed in 名单推荐, responses by status",
            ["operation"],
            registry=registry,
        )
        self.facts = LoanFactsCache(
            store=store,
            credit=credit,
            sealer=sealer,
            plans=self.plans,
            banks=banks,
            ttl_s=facts_ttl_s,
        )
        # 名单推荐 (recommendations.py): handlers call it directly.
        self.recommend = LoanRecommendations(
            store=store,
            rules=self.rules,
            plans=self.plans,
            facts=self.facts,
            sealer=sealer,
            pseudonyms=pseudonyms,
            deadline=self.deadline,
            audit_use=self._audit_use,
            operations=self.operations,
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
            "created_at": iso_utc(demand.created_at),
            "expires_at": iso_utc(demand.expires_at),
            "response_deadline": iso_utc(deadline),
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

    # -- credit data (facts_cache.py) ----------------------------------------------------------
    async def warm_facts(
        self, policies: PolicySet, today: dt.date, now: int, *, within_s: float = 0.0
    ) -> int:
        """See ``LoanFactsCache.warm_facts`` (run by gateway/loans/warmer.py); then the
        rule keys 名单推荐 reads are built for the facts now cached."""
        derived = await self.facts.warm_facts(policies, today, now, within_s=within_s)
        if derived:
            products = await self.store.list_products()
            await self.recommend.warm_keys(products, policies, today)
        return derived

    def forget(self, subject_key: str | None = None) -> None:
        """A credit event changed a subject's records (by internal pseudonym; None: any)."""
        self.facts.forget(subject_key)

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
        base = (await self.facts.base_facts(policies, {key: subject_id}, today))[key]
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
