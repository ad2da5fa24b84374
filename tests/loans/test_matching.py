"""Matching semantics: reasons, rate after discount, eligible amount, the guard."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from gateway.loans.matching import DemandTerms, match_product
from gateway.loans.models import LoanProduct
from gateway.loans.rules.compile import ProductRefused, ProductRules
from gateway.policy.loader import PolicySet
from tests.loans._kit import LEGAL, product


def _product(**changes: Any) -> LoanProduct:
    body = product("bank-a.p") | changes
    return LoanProduct(
        id=body["id"],
        version=1,
        bank="bank-a",
        title=body["title"],
        amount_min=body["amount"]["min"],
        amount_max=body["amount"]["max"],
        term_min=body["term_months"]["min"],
        term_max=body["term_months"]["max"],
        rate_min=body["annual_rate"]["min"],
        rate_max=body["annual_rate"]["max"],
        regions=tuple(body["regions"]),
        subject_kinds=tuple(body["subject_kinds"]),
        valid_from=dt.date(2025, 1, 1),
        valid_until=None,
        legal_basis=tuple(body["legal_basis"]),
        rules=tuple(body["rules"]),
        created_at=0,
    )


TERMS = DemandTerms("enterprise", 3_000_000, 12, "210102")


def test_a_red_listed_enterprise_gets_the_discounted_rate_and_the_full_amount(
    shipped_policies: PolicySet,
) -> None:
    p = _product()
    compiled = ProductRules().check(p, shipped_policies)
    m = match_product(compiled, p, {"enterprise.red_listed": True}, TERMS)
    assert (m.matched, m.eligible_amount, m.rate, m.discount_bp) == (True, 3_000_000, 3.85, 50)
    assert [r.rule for r in m.fired] == ["red-list", "red-list-discount"]


def test_a_grant_caps_the_amount_and_the_rate_never_falls_below_the_floor(
    shipped_policies: PolicySet,
) -> None:
    p = _product(annual_rate={"min": 4.2, "max": 4.35})
    compiled = ProductRules().check(p, shipped_policies)
    m = match_product(compiled, p, {"enterprise.tax_credit_grade": "A"}, TERMS)
    assert (m.matched, m.eligible_amount, m.rate) == (True, 2_000_000, 4.2)


def test_reasons_name_what_to_fix(shipped_policies: PolicySet) -> None:
    p = _product()
    compiled = ProductRules().check(p, shipped_policies)
    nothing = match_product(compiled, p, {}, DemandTerms("enterprise", 50, 48, "210102"))
    assert nothing.reasons == [
        "amount_out_of_range",
        "term_out_of_range",
        "rule:red-list",
        "rule:tax-a",
    ]
    listed = {"enterprise.red_listed": True, "enterprise.serious_dishonesty_listed": True}
    assert match_product(compiled, p, listed, TERMS).reasons == ["rule:serious-dishonesty"]
    # Another province: nothing the enterprise can change, so that reason alone.
    away = match_product(compiled, p, listed, DemandTerms("enterprise", 1, 1, "110101"))
    assert away.reasons == ["amount_out_of_range", "term_out_of_range", "region"]
    assert match_product(compiled, p, {}, DemandTerms("person", 1, 1, "210102")).reasons[0] == (
        "subject_kind"
    )


def test_outcomes_are_memoised_on_the_facts_the_rules_read(shipped_policies: PolicySet) -> None:
    p = _product()
    compiled = ProductRules().check(p, shipped_policies)
    first = compiled.outcome({"enterprise.red_listed": True, "enterprise.unrelated": 1})
    again = compiled.outcome({"enterprise.red_listed": True, "enterprise.unrelated": 2})
    assert first is again
    assert compiled.outcome({"enterprise.red_listed": False}) is not first


@pytest.mark.parametrize(
    ("rules", "code"),
    [
        (
            [{"id": "x", "when": {"fact": "person.credit_score", "op": "<", "value": 600},
              "constrain": {"measure": "loan.restrict_credit"}}],
            "personal_score_to_constraint",
        ),
        (
            [{"id": "x", "when": {"fact": "enterprise.tax_credit_grade", "op": "==", "value": "D"},
              "constrain": {"measure": "loan.restrict_credit"}}],
            "constraint_needs_effective_document",
        ),
        (
            [{"id": "x", "when": {"fact": "enterprise.serious_dishonesty_listed", "op": "==",
                                  "value": True},
              "constrain": {"measure": "loan.no_such_measure"}}],
            "unknown_measure",
        ),
        (
            [{"id": "x", "when": {"fact": "enterprise.red_listed", "op": "==", "value": True},
              "grant": {"benefit": "loan_rate_discount", "params": {"bp": 900}}}],
            "benefit_param_out_of_range",
        ),
        ([{"id": "x", "when": {"fact": "enterprise.red_listed", "op": "=="}}], "invalid_policy"),
    ],
)  # fmt: skip
def test_the_guard_refuses_what_it_refuses_in_policy_files(
    shipped_policies: PolicySet, rules: list[dict[str, Any]], code: str
) -> None:
    p = _product(rules=rules, subject_kinds=["enterprise", "person"])
    with pytest.raises(ProductRefused) as refused:
        ProductRules().check(p, shipped_policies)
    assert refused.value.code == code


def test_a_product_needs_a_legal_basis(shipped_policies: PolicySet) -> None:
    assert LEGAL
    with pytest.raises(ProductRefused) as refused:
        ProductRules().check(_product(legal_basis=[]), shipped_policies)
    assert refused.value.code == "missing_legal_basis"
