"""Matching one enterprise's demand against loan products, and ranking.

The enterprise's credit records are turned into facts once per request, with
one fact plan covering every enterprise fact of the catalogue; each product's
compiled rules are then evaluated on that one fact set. So matching against
1,000 products costs one credit fetch, one fact build and 1,000 rule
evaluations, never 1,000 fetches.

A product matches when the demand is inside its amount and term ranges and
regions, it serves the subject's kind, no constraint fires, and — when it has
rules granting ``credit_loan_access`` — one of them fires. What does not
match says why, with codes the enterprise can act on: ``amount_out_of_range``,
``term_out_of_range``, ``region``, ``subject_kind``, ``rule:<id>``. A product
the enterprise cannot fit whatever it changes (another region or subject kind)
gives that reason alone: its rules are not evaluated.

The rate offered is the product's highest rate less the ``loan_rate_discount``
granted (in basis points), never below its lowest rate; the eligible amount is
the demand's amount, capped by the product's maximum and by the
``credit_loan_access`` grant's ``max_amount_cny``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.credit.base import CreditRecord
from gateway.facts.builder import FactPlan
from gateway.loans.models import LoanProduct
from gateway.loans.rules.compile import CompiledProduct
from gateway.policy.evaluator import Reason
from gateway.policy.loader import PolicySet

__all__ = [
    "DemandTerms",
    "LoanFactPlans",
    "ProductMatch",
    "match_product",
    "rank_matches",
    "region_cover",
]


@dataclass(frozen=True, slots=True)
class DemandTerms:
    kind: str
    amount: int
    term_months: int
    region: str

    @property
    def context(self) -> dict[str, Any]:
        return {"loan_amount": self.amount, "term_months": self.term_months}


@dataclass(slots=True)
class ProductMatch:
    product: LoanProduct
    matched: bool
    reasons: list[str]
    eligible_amount: int | None = None
    rate: float | None = None
    discount_bp: int = 0
    fired: Sequence[Reason] = ()

    def rank_key(self) -> tuple[Any, ...]:
        return (
            not self.matched,
            self.rate if self.rate is not None else float("inf"),
            -(self.eligible_amount or 0),
            len(self.reasons),
            self.product.id,
        )

    def as_json(self) -> dict[str, Any]:
        p = self.product
        body: dict[str, Any] = {
            "product": {"id": p.id, "version": p.version, "bank": p.bank, "title": p.title},
            "matched": self.matched,
        }
        if self.matched:
            body["eligible_amount"] = self.eligible_amount
            body["rate"] = self.rate
            body["discount_bp"] = self.discount_bp
            body["rules"] = [
                {"rule": r.rule, "legal_basis": list(r.legal_basis)} for r in self.fired
            ]
        else:
            body["reasons"] = self.reasons
        return body


class LoanFactPlans:
    """One fact plan per policy set, covering every enterprise fact of its catalogue."""

    def __init__(self) -> None:
        self._plan: tuple[str, FactPlan] | None = None

    def plan(self, policies: PolicySet) -> FactPlan:
        if self._plan is None or self._plan[0] != policies.hash:
            needed = [
                name
                for name, fact in policies.catalogue.facts.items()
                if fact.subject in ("enterprise", "any")
            ]
            self._plan = (policies.hash, FactPlan(policies.catalogue, needed))
        return self._plan[1]

    def facts(
        self,
        policies: PolicySet,
        records: Sequence[CreditRecord],
        terms: DemandTerms,
        today: dt.date,
    ) -> dict[str, Any]:
        return self.plan(policies).build(records, terms.context, today)


def region_cover(region: str) -> frozenset[str]:
    """The product region codes that cover ``region``: itself, its city, its province."""
    return frozenset((region, region[:4] + "00", region[:2] + "0000"))


def match_product(
    compiled: CompiledProduct,
    product: LoanProduct,
    facts: Mapping[str, Any],
    terms: DemandTerms,
    *,
    in_range: bool = False,
    cover: frozenset[str] | None = None,
    key: tuple[Any, ...] | None = None,
) -> ProductMatch:
    """``in_range``: the caller already checked kind, amount, term and region;
    ``cover``: ``region_cover(terms.region)``, worked out once for many products."""
    reasons: list[str] = []
    if not in_range:
        if terms.kind not in product.subject_kinds:
            reasons.append("subject_kind")
        if not product.amount_min <= terms.amount <= product.amount_max:
            reasons.append("amount_out_of_range")
        if not product.term_min <= terms.term_months <= product.term_max:
            reasons.append("term_out_of_range")
        if (cover or region_cover(terms.region)).isdisjoint(product.regions):
            reasons.append("region")
        if reasons and ("region" in reasons or "subject_kind" in reasons):
            # Nothing the enterprise can change makes the product fit: its rules are
            # not worth evaluating (a different amount or term might be).
            return ProductMatch(product, False, reasons)
    outcome = compiled.outcome(facts, key)
    if outcome.constrained_by:
        reasons.extend(f"rule:{rule}" for rule in outcome.constrained_by)
        return ProductMatch(product, False, reasons)
    if not outcome.access:
        reasons.extend(f"rule:{rule}" for rule in compiled.access_rules)
    if reasons:
        return ProductMatch(product, False, reasons)
    eligible = min(terms.amount, product.amount_max)
    if outcome.cap is not None:
        eligible = min(eligible, int(outcome.cap))
    if eligible < product.amount_min:
        return ProductMatch(product, False, ["amount_out_of_range"])
    rate = round(max(product.rate_min, product.rate_max - outcome.bp / 100), 4)
    return ProductMatch(product, True, [], eligible, rate, outcome.bp, outcome.fired)


def rank_matches(matches: list[ProductMatch]) -> list[ProductMatch]:
    """Matching products first, lowest rate then largest amount; the rest after."""
    return sorted(matches, key=ProductMatch.rank_key)
