"""The evaluator: POLICY.md's three-valued semantics, forbid wins, merging, the runtime guard."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import TypeAdapter

from gateway.policy.evaluator import CompiledRule, Reason, compile_condition, evaluate_rules
from gateway.policy.model import BenefitCatalogue, Condition

CONDITION: TypeAdapter[Any] = TypeAdapter(Condition)

BENEFITS = BenefitCatalogue.model_validate(
    {
        "benefits": {
            "deposit_waiver": {
                "title": "免押金",
                "params": {
                    "max_items": {"type": "integer", "min": 1},
                    "max_value_cny": {"type": "number", "min": 0},
                    # a fee the subject still pays: lower is better
                    "fee_cny": {"type": "number", "min": 0, "favourable": "lower"},
                },
            },
            "green_channel": {"title": "绿色通道", "params": {}},
        }
    }
)


def pred(cond: dict[str, Any], defaults: Mapping[str, Any] | None = None) -> Any:
    return compile_condition(CONDITION.validate_python(cond), defaults or {})


A_TRUE = {"fact": "a", "op": "==", "value": True}
B_TRUE = {"fact": "b", "op": "==", "value": True}

# A fact value per truth value of "x == true": missing data is unknown.
TRUTH: dict[str, dict[str, Any]] = {"T": {"v": True}, "F": {"v": False}, "U": {}}


def facts_for(a: str, b: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "v" in TRUTH[a]:
        out["a"] = TRUTH[a]["v"]
    if "v" in TRUTH[b]:
        out["b"] = TRUTH[b]["v"]
    return out


AS_BOOL = {"T": True, "F": False, "U": None}

# Written out by hand from POLICY.md: all is true only when every part is true,
# false as soon as one part is false, unknown otherwise; any mirrors it.
ALL_TABLE = {
    ("T", "T"): "T",
    ("T", "F"): "F",
    ("T", "U"): "U",
    ("F", "T"): "F",
    ("F", "F"): "F",
    ("F", "U"): "F",
    ("U", "T"): "U",
    ("U", "F"): "F",
    ("U", "U"): "U",
}
ANY_TABLE = {
    ("T", "T"): "T",
    ("T", "F"): "T",
    ("T", "U"): "T",
    ("F", "T"): "T",
    ("F", "F"): "F",
    ("F", "U"): "U",
    ("U", "T"): "T",
    ("U", "F"): "U",
    ("U", "U"): "U",
}


@pytest.mark.parametrize(("ab", "expected"), sorted(ALL_TABLE.items()))
def test_all_truth_table(ab: tuple[str, str], expected: str) -> None:
    assert pred({"all": [A_TRUE, B_TRUE]})(facts_for(*ab)) is AS_BOOL[expected]


@pytest.mark.parametrize(("ab", "expected"), sorted(ANY_TABLE.items()))
def test_any_truth_table(ab: tuple[str, str], expected: str) -> None:
    assert pred({"any": [A_TRUE, B_TRUE]})(facts_for(*ab)) is AS_BOOL[expected]


@pytest.mark.parametrize(("a", "expected"), [("T", False), ("F", True), ("U", None)])
def test_not_keeps_unknown(a: str, expected: bool | None) -> None:
    assert pred({"not": A_TRUE})(facts_for(a, "U")) is expected


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_comparison_on_missing_fact_is_unknown(op: str) -> None:
    assert pred({"fact": "score", "op": op, "value": 600})({}) is None
    assert pred({"fact": "score", "op": op, "value": 600})({"score": None}) is None


@pytest.mark.parametrize("op", ["in", "not_in"])
def test_membership_on_missing_fact_is_unknown(op: str) -> None:
    assert pred({"fact": "grade", "op": op, "value": ["A", "B"]})({}) is None


@pytest.mark.parametrize(
    ("op", "value", "fact", "expected"),
    [
        ("==", 600, 600, True),
        ("!=", 600, 600, False),
        ("<", 600, 599, True),
        ("<=", 600, 600, True),
        (">", 600, 600, False),
        (">=", 600, 600, True),
        (">=", 600, 599, False),
        ("in", ["A", "B"], "B", True),
        ("in", ["A", "B"], "C", False),
        ("not_in", ["A", "B"], "C", True),
        ("not_in", ["A", "B"], "A", False),
    ],
)
def test_comparisons_on_known_values(op: str, value: Any, fact: Any, expected: bool) -> None:
    assert pred({"fact": "x", "op": op, "value": value})({"x": fact}) is expected


def test_source_value_of_wrong_type_is_unknown_not_an_error() -> None:
    assert pred({"fact": "score", "op": ">=", "value": 600})({"score": "high"}) is None


def test_catalogue_default_replaces_unknown() -> None:
    cond = {"not": {"fact": "listed", "op": "==", "value": True}}
    assert pred(cond)({}) is None
    assert pred(cond, {"listed": False})({}) is True
    # a value the source gave beats the default
    assert pred(cond, {"listed": False})({"listed": True}) is False


def rule(
    rule_id: str,
    cond: dict[str, Any],
    *,
    benefit: str | None = None,
    params: dict[str, Any] | None = None,
    measure: str | None = None,
    classes: frozenset[str] = frozenset({"effective_document"}),
    defaults: Mapping[str, Any] | None = None,
) -> CompiledRule:
    effect: Any = "constrain" if measure else "grant"
    return CompiledRule(
        id=rule_id,
        predicate=pred(cond, defaults),
        reason=Reason(rule_id, effect, ("basis",), ()),
        benefit=benefit,
        params=params or {},
        measure=measure,
        classes=classes,
    )


def evaluate(rules: list[CompiledRule], facts: Mapping[str, Any], bps: bool = False) -> Any:
    return evaluate_rules(tuple(rules), facts, BENEFITS, bps)


def test_no_rule_fires_on_missing_data() -> None:
    # Both rules would fire if "not listed" were read as true for a missing listing.
    rules = [
        rule("grant-unlisted", {"not": A_TRUE}, benefit="green_channel"),
        rule("constrain-unlisted", {"not": B_TRUE}, measure="loan.restrict_credit"),
        rule("grant-low", {"fact": "score", "op": "<", "value": 600}, benefit="green_channel"),
    ]
    result = evaluate(rules, {})
    assert result.outcome == "standard"
    assert result.benefits == []
    assert result.constraints == []
    assert result.reasons == []
    assert result.dropped == []


def test_default_lets_a_rule_fire_when_the_source_is_authoritative() -> None:
    r = rule("unlisted", {"not": A_TRUE}, benefit="green_channel", defaults={"a": False})
    assert evaluate([r], {}).outcome == "granted"


def test_forbid_wins_over_grants() -> None:
    rules = [
        rule("grant", A_TRUE, benefit="green_channel"),
        rule("constrain", B_TRUE, measure="loan.restrict_credit"),
    ]
    result = evaluate(rules, {"a": True, "b": True})
    assert result.outcome == "constrained"
    assert result.benefits == []
    assert result.constraints == ["loan.restrict_credit"]
    assert [r.rule for r in result.reasons] == ["constrain"]
    only_grant = evaluate(rules, {"a": True, "b": False})
    assert only_grant.outcome == "granted"
    assert only_grant.benefits == [("green_channel", {})]


def test_same_measure_from_two_rules_is_listed_once() -> None:
    rules = [
        rule("one", A_TRUE, measure="loan.restrict_credit"),
        rule("two", B_TRUE, measure="loan.restrict_credit"),
    ]
    result = evaluate(rules, {"a": True, "b": True})
    assert result.constraints == ["loan.restrict_credit"]
    assert [r.rule for r in result.reasons] == ["one", "two"]


@pytest.mark.parametrize("reverse", [False, True])
def test_same_benefit_merges_to_most_favourable_params(reverse: bool) -> None:
    rules = [
        rule(
            "small",
            A_TRUE,
            benefit="deposit_waiver",
            params={"max_items": 12, "max_value_cny": 100, "fee_cny": 5},
        ),
        rule(
            "large",
            B_TRUE,
            benefit="deposit_waiver",
            params={"max_items": 6, "max_value_cny": 200, "fee_cny": 10},
        ),
        rule("extra", A_TRUE, benefit="deposit_waiver", params={"max_items": 1}),
    ]
    if reverse:
        rules.reverse()
    result = evaluate(rules, {"a": True, "b": True})
    assert result.outcome == "granted"
    assert result.benefits == [
        ("deposit_waiver", {"max_items": 12, "max_value_cny": 200, "fee_cny": 5})
    ]
    assert sorted(r.rule for r in result.reasons) == ["extra", "large", "small"]


def test_a_param_only_one_grant_names_is_kept() -> None:
    rules = [
        rule("items", A_TRUE, benefit="deposit_waiver", params={"max_items": 3}),
        rule("value", B_TRUE, benefit="deposit_waiver", params={"max_value_cny": 50}),
    ]
    result = evaluate(rules, {"a": True, "b": True})
    assert result.benefits == [("deposit_waiver", {"max_items": 3, "max_value_cny": 50})]


@pytest.mark.parametrize(
    "classes",
    [
        frozenset({"personal_score"}),
        frozenset({"personal_score", "effective_document"}),
        frozenset({"public_record", "context"}),
    ],
)
def test_runtime_guard_drops_constraint_on_forbidden_classes(classes: frozenset[str]) -> None:
    rules = [
        rule("bad", A_TRUE, measure="loan.restrict_credit", classes=classes),
        rule("grant", A_TRUE, benefit="green_channel"),
    ]
    result = evaluate(rules, {"a": True})
    assert result.dropped == ["bad"]
    assert result.constraints == []
    assert result.outcome == "granted"
    assert [r.rule for r in result.reasons] == ["grant"]


def test_runtime_guard_drops_constraint_in_basic_public_service() -> None:
    r = rule("doc", A_TRUE, measure="loan.restrict_credit")
    assert evaluate([r], {"a": True}, bps=True).outcome == "standard"
    assert evaluate([r], {"a": True}, bps=True).dropped == ["doc"]
    # the same rule outside a basic public service constrains
    allowed = evaluate([r], {"a": True}, bps=False)
    assert allowed.outcome == "constrained"
    assert allowed.dropped == []


def test_runtime_guard_accepts_documents_and_context() -> None:
    r = rule(
        "doc",
        A_TRUE,
        measure="loan.restrict_credit",
        classes=frozenset({"effective_document", "context"}),
    )
    assert evaluate([r], {"a": True}).outcome == "constrained"


def test_guarded_rule_that_does_not_fire_is_not_reported() -> None:
    r = rule("bad", A_TRUE, measure="m", classes=frozenset({"personal_score"}))
    assert evaluate([r], {"a": False}).dropped == []
