"""Compile policy condition trees to closures and evaluate them.

Semantics are POLICY.md's three-valued logic: a comparison on a fact with no
value (and no catalogue ``default``) is unknown (``None``); ``not`` keeps
unknown; ``all`` is true only when every part is true, ``any`` when some part
is true; a rule fires only on true. So missing data never fires a rule.

Compiling to closures keeps a 12-rule policy well under a microsecond per
rule on the hot path (DESIGN §11).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.policy.model import AllOf, AnyOf, BenefitCatalogue, Comparison, Condition, Not

__all__ = [
    "CompiledRule",
    "Evaluation",
    "Predicate",
    "Reason",
    "compile_condition",
    "evaluate_rules",
    "merge_params",
]

Predicate = Callable[[Mapping[str, Any]], bool | None]
Outcome = Literal["granted", "standard", "constrained"]

_BINARY: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda value, options: value in options,
    "not_in": lambda value, options: value not in options,
}


def _comparison(cmp: Comparison, default: Any) -> Predicate:
    name = cmp.fact
    fn = _BINARY[cmp.op]
    value: Any = frozenset(cmp.value) if cmp.op in ("in", "not_in") else cmp.value

    def pred(facts: Mapping[str, Any]) -> bool | None:
        current = facts.get(name, default)
        if current is None:
            return None
        try:
            return fn(current, value)
        except TypeError:
            # A source value of the wrong type is no more than missing data.
            return None

    return pred


def _all(parts: list[Predicate]) -> Predicate:
    def pred(facts: Mapping[str, Any]) -> bool | None:
        result: bool | None = True
        for part in parts:
            r = part(facts)
            if r is False:
                return False
            if r is None:
                result = None
        return result

    return pred


def _any(parts: list[Predicate]) -> Predicate:
    def pred(facts: Mapping[str, Any]) -> bool | None:
        result: bool | None = False
        for part in parts:
            r = part(facts)
            if r is True:
                return True
            if r is None:
                result = None
        return result

    return pred


def _not(inner: Predicate) -> Predicate:
    def pred(facts: Mapping[str, Any]) -> bool | None:
        r = inner(facts)
        return None if r is None else not r

    return pred


def compile_condition(cond: Condition, defaults: Mapping[str, Any]) -> Predicate:
    """Turn a condition tree into one closure; ``defaults`` holds catalogue defaults."""
    if isinstance(cond, Comparison):
        return _comparison(cond, defaults.get(cond.fact))
    if isinstance(cond, AllOf):
        return _all([compile_condition(c, defaults) for c in cond.all])
    if isinstance(cond, AnyOf):
        return _any([compile_condition(c, defaults) for c in cond.any])
    if isinstance(cond, Not):
        return _not(compile_condition(cond.not_, defaults))
    raise TypeError(f"not a condition: {type(cond).__name__}")


@dataclass(frozen=True, slots=True)
class Reason:
    rule: str
    effect: Literal["grant", "constrain"]
    legal_basis: tuple[str, ...]
    facts: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "effect": self.effect,
            "legal_basis": list(self.legal_basis),
            "facts": list(self.facts),
        }


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    predicate: Predicate
    reason: Reason
    benefit: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    measure: str | None = None
    # Every fact class the rule reads, through derivations too: the runtime guard's input.
    classes: frozenset[str] = frozenset()


@dataclass(slots=True)  # built per request, so not frozen (see store/base.py)
class Evaluation:
    outcome: Outcome
    benefits: list[tuple[str, dict[str, Any]]]
    constraints: list[str]
    reasons: list[Reason]
    dropped: list[str]


# A constraint may rest only on these classes (DESIGN §5, rule 1).
CONSTRAINT_CLASSES = frozenset({"effective_document", "context"})


def merge_params(
    benefits: BenefitCatalogue, code: str, a: Mapping[str, Any], b: Mapping[str, Any]
) -> dict[str, Any]:
    """Merge two grants of one benefit, keeping each parameter's most favourable value."""
    spec = benefits.benefits[code].params
    merged = dict(a)
    for name, value in b.items():
        if name not in merged:
            merged[name] = value
            continue
        direction = spec[name].favourable if name in spec else "higher"
        try:
            better = value > merged[name] if direction == "higher" else value < merged[name]
        except TypeError:
            better = False
        if better:
            merged[name] = value
    return merged


def evaluate_rules(
    rules: tuple[CompiledRule, ...],
    facts: Mapping[str, Any],
    benefits: BenefitCatalogue,
    basic_public_service: bool,
) -> Evaluation:
    """Fire rules in order and combine them: forbid wins, then grant, else standard.

    The runtime guard drops a firing constraint whose read set holds anything
    but effective-document or context facts, or that sits in a basic public
    service; lint makes that unreachable, and this keeps it so if lint is
    bypassed. Dropped rule ids are returned for the caller to count and log.
    """
    granted: dict[str, dict[str, Any]] = {}
    grant_reasons: list[Reason] = []
    constraints: list[str] = []
    constraint_reasons: list[Reason] = []
    dropped: list[str] = []
    for rule in rules:
        if rule.predicate(facts) is not True:
            continue
        if rule.measure is not None:
            if basic_public_service or not rule.classes <= CONSTRAINT_CLASSES:
                dropped.append(rule.id)
                continue
            if rule.measure not in constraints:
                constraints.append(rule.measure)
            constraint_reasons.append(rule.reason)
        elif rule.benefit is not None:
            current = granted.get(rule.benefit)
            granted[rule.benefit] = (
                dict(rule.params)
                if current is None
                else merge_params(benefits, rule.benefit, current, rule.params)
            )
            grant_reasons.append(rule.reason)
    if constraints:
        return Evaluation("constrained", [], constraints, constraint_reasons, dropped)
    if granted:
        return Evaluation("granted", list(granted.items()), [], grant_reasons, dropped)
    return Evaluation("standard", [], [], [], dropped)
