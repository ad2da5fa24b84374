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
from dataclasses import dataclass

from pydantic import ValidationError

from gateway.loans.models import LoanProduct
from gateway.policy.checks import Problem, Taint, check_policy
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
class CompiledProduct:
    product: LoanProduct
    policy: CompiledPolicy
    # Rules granting credit_loan_access: when there are some, one must fire.
    access_rules: tuple[str, ...]


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

    def taint(self, policies: PolicySet) -> Taint:
        if self._taint is None or self._taint[0] != policies.hash:
            self._taint = (policies.hash, Taint(policies.catalogue))
        return self._taint[1]

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
        result = CompiledProduct(product, compiled, access)
        self._compiled[key] = result
        if len(self._compiled) > self._max:
            self._compiled.popitem(last=False)
        return result

    def compiled(self, product: LoanProduct, policies: PolicySet) -> CompiledProduct | None:
        """The compiled product, or None when today's policy set refuses it."""
        try:
            return self.check(product, policies)
        except ProductRefused:
            return None
