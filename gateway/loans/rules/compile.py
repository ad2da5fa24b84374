"""A loan product's eligibility rules: checked by the guard, compiled once per version.

A product's rules are policy-language rules (POLICY.md): the same condition
trees, fact catalogue, benefits and measures. Each product version is wrapped
as a policy of the ``loan`` scene and goes through ``check_policy`` — the
guard that refuses policy files — so a product that excludes by a personal
score, through any chain of derived facts, is refused with the guard's code
and the rule named, exactly as a policy file would be. On top, a loan product
may grant only the loan benefits.

Compiled products are cached by (product, version, policy-set hash): a
request never re-parses rules, and a reloaded catalogue recompiles them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from gateway.loans.models import LoanProduct
from gateway.loans.rules.proof import prove_product
from gateway.policy.checks import Problem, Taint, check_policy
from gateway.policy.evaluator import Reason
from gateway.policy.loader import CompiledPolicy, PolicySet, _compile, _schema_problems
from gateway.policy.model import Policy

__all__ = [
    "LOAN_BENEFITS",
    "CompiledProduct",
    "ProductRefused",
    "ProductRules",
    "check_product",
]

# What a loan product's rules may grant.
LOAN_BENEFITS = frozenset({"credit_loan_access", "loan_rate_discount"})
ACCESS = "credit_loan_access"
DISCOUNT = "loan_rate_discount"

# POLICY.md's codes, the gravest first: a refusal names the first one found.
_CODE_ORDER = (
    "personal_score_to_constraint",
    "constraint_needs_effective_document",
    "prohibited_domain",
    "unknown_measure",
    "missing_legal_basis",
    "benefit_param_out_of_range",
    "unknown_fact",
    "type_mismatch",
    "unreachable_rule",
    "invalid_policy",
)


class ProductRefused(Exception):
    """The guard refused a product; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        rank = {code: i for i, code in enumerate(_CODE_ORDER)}
        self.problems = sorted(problems, key=lambda p: (rank.get(p.code, len(rank)), p))
        super().__init__("; ".join(str(p) for p in self.problems))

    @property
    def code(self) -> str:
        return self.problems[0].code


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """What a product's rules say about one set of facts."""

    constrained_by: tuple[str, ...]  # constraint rules that fired
    access: bool  # credit_loan_access granted, or the product needs no grant
    cap: float | None  # the grant's max_amount_cny
    bp: int  # loan_rate_discount
    fired: tuple[Reason, ...]


_MEMO_SIZE = 4096


@dataclass(frozen=True, slots=True)
class CompiledProduct:
    product: LoanProduct
    policy: CompiledPolicy
    # Rules granting credit_loan_access: when there are some, one must fire.
    access_rules: tuple[str, ...]
    # Every fact the rules read. Evaluation depends on nothing else, so its outcome
    # is kept per tuple of those facts' values: enterprises share a few dozen such
    # tuples, and a 名单推荐 over 100,000 demands evaluates each tuple once.
    reads: tuple[str, ...]
    memo: dict[tuple[Any, ...], RuleOutcome] = field(default_factory=dict, compare=False)

    def outcome(self, facts: Mapping[str, Any], key: tuple[Any, ...] | None = None) -> RuleOutcome:
        """``key``: the values of ``reads`` in ``facts``, when the caller has them
        (products of one template read the same facts: one key serves them all)."""
        if key is None:
            get = facts.get
            key = tuple([get(name) for name in self.reads])
        try:
            hit = self.memo.get(key)
        except TypeError:  # an unhashable value (a records fact): evaluate every time
            return self._evaluate(facts)
        if hit is None:
            hit = self._evaluate(facts)
            if len(self.memo) >= _MEMO_SIZE:
                self.memo.clear()
            self.memo[key] = hit
        return hit

    def _evaluate(self, facts: Mapping[str, Any]) -> RuleOutcome:
        result = self.policy.evaluate(facts)
        if result.outcome == "constrained":
            return RuleOutcome(tuple(r.rule for r in result.reasons), False, None, 0, ())
        granted = dict(result.benefits)
        cap = granted.get(ACCESS, {}).get("max_amount_cny")
        bp = granted.get(DISCOUNT, {}).get("bp", 0)
        return RuleOutcome(
            (),
            not self.access_rules or ACCESS in granted,
            float(cap) if isinstance(cap, int | float) else None,
            bp if isinstance(bp, int) else 0,
            tuple(result.reasons),
        )


def _file(product: LoanProduct) -> str:
    return f"loan-product:{product.id}@{product.version}"


def _as_policy(product: LoanProduct) -> Policy:
    data = {
        "id": f"loan-product.{product.id}",
        "version": str(product.version),
        "scene": "loan",
        "title": product.title,
        "basic_public_service": False,
        "subjects": list(product.subject_kinds),
        "consent_required_for": list(product.subject_kinds),
        "departments": {"initiating": product.bank, "implementing": product.bank},
        "legal_basis": list(product.legal_basis),
        "effective": {"from": product.valid_from, "until": product.valid_until},
        "rules": list(product.rules),
    }
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise ProductRefused(_schema_problems(_file(product), exc, data)) from None


def check_product(product: LoanProduct, policies: PolicySet, taint: Taint) -> Policy:
    """The product as a checked policy, or ProductRefused with every problem."""
    policy = _as_policy(product)
    file = _file(product)
    problems = check_policy(
        policy, file, policies.catalogue, policies.benefits, policies.measures, taint
    )
    for rule in policy.rules:
        if rule.grant is not None and rule.grant.benefit not in LOAN_BENEFITS:
            problems.append(
                Problem(
                    file,
                    rule.id,
                    "benefit_param_out_of_range",
                    f"a loan product grants only {sorted(LOAN_BENEFITS)}, "
                    f"not {rule.grant.benefit!r}",
                )
            )
    if problems:
        raise ProductRefused(problems)
    return policy


class ProductRules:
    """Compiled products, once per (id, version, policy set)."""

    def __init__(self, max_entries: int = 20_000) -> None:
        self._max = max_entries
        self._compiled: OrderedDict[tuple[str, int, str], CompiledProduct] = OrderedDict()
        self._taint: tuple[str, Taint] | None = None
        self._proofs: OrderedDict[tuple[str, int, str], dict[str, Any]] = OrderedDict()
        self._latest: dict[str, tuple[int, str, CompiledProduct | None]] = {}

    def taint(self, policies: PolicySet) -> Taint:
        if self._taint is None or self._taint[0] != policies.hash:
            self._taint = (policies.hash, Taint(policies.catalogue))
        return self._taint[1]

    def prove(self, product: LoanProduct, policies: PolicySet) -> dict[str, Any]:
        """The prover's findings on a checked product (ProductRefused if it refutes
        non-interference); computed once per (id, version, policy set)."""
        key = (product.id, product.version, policies.hash)
        found = self._proofs.get(key)
        if found is None:
            policy = check_product(product, policies, self.taint(policies))
            found, problems = prove_product(policy, _file(product), policies)
            if problems:
                raise ProductRefused(problems)
            self._proofs[key] = found
            if len(self._proofs) > self._max:
                self._proofs.popitem(last=False)
        return found

    def check(self, product: LoanProduct, policies: PolicySet) -> CompiledProduct:
        """Check (ProductRefused) and compile; the result is cached for requests."""
        key = (product.id, product.version, policies.hash)
        cached = self._compiled.get(key)
        if cached is not None:
            return cached
        policy = check_product(product, policies, self.taint(policies))
        compiled = _compile(
            policy,
            _file(product),
            f"{product.id}@{product.version}",
            policies.catalogue,
            policies.benefits,
            self.taint(policies),
        )
        access = tuple(r.id for r in compiled.rules if r.benefit == ACCESS)
        result = CompiledProduct(product, compiled, access, tuple(sorted(compiled.reads)))
        self._compiled[key] = result
        if len(self._compiled) > self._max:
            self._compiled.popitem(last=False)
        return result

    def compiled(self, product: LoanProduct, policies: PolicySet) -> CompiledProduct | None:
        """The compiled product, or None when the serving policy set refuses it.

        Per request this is one lookup by product id; a refusal is remembered
        too, so a product a reloaded catalogue refuses is not re-checked per match.
        """
        hit = self._latest.get(product.id)
        if hit is not None and hit[0] == product.version and hit[1] == policies.hash:
            return hit[2]
        try:
            result: CompiledProduct | None = self.check(product, policies)
        except ProductRefused:
            result = None
        if len(self._latest) > self._max:
            self._latest.clear()
        self._latest[product.id] = (product.version, policies.hash, result)
        return result
