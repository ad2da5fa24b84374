"""Static checks on catalogues and policies: the guard of DESIGN §5.

Every check reports a :class:`Problem` with POLICY.md's refusal code and a
message that says why; the loader refuses a policy set with any problem. Taint
is computed from the catalogue's declarations alone: a derived fact carries the
union of its inputs' classes, transitively.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

from gateway.facts.derivations import DERIVATIONS
from gateway.policy.measure_checks import document_mismatch
from gateway.policy.model import (
    AllOf,
    AnyOf,
    BenefitCatalogue,
    Comparison,
    Condition,
    FactCatalogue,
    FactClass,
    FactType,
    MeasureList,
    Not,
    Policy,
)
from gateway.policy.problem import Problem
from gateway.policy.prohibited import is_prohibited
from gateway.policy.reachability import ungrounded_alternative, unsatisfiable_reason

__all__ = [
    "Problem",
    "Taint",
    "check_benefits",
    "check_catalogue",
    "check_policy",
    "comparisons",
    "value_fits",
]

CONSTRAINT_OK = frozenset({FactClass.EFFECTIVE_DOCUMENT.value, FactClass.CONTEXT.value})


class Taint:
    """The class set of every catalogue fact, with the path that brought each class."""

    def __init__(self, catalogue: FactCatalogue) -> None:
        self._catalogue = catalogue
        self._classes: dict[str, frozenset[str]] = {}

    def classes(self, name: str) -> frozenset[str]:
        """The classes of every base fact ``name`` reaches through ``derived_from``.

        A walk with a visited set, not a memoised recursion: with a cycle among
        derived facts a memoised partial result would drop classes that reach the
        cycle through its other members.
        """
        cached = self._classes.get(name)
        if cached is not None:
            return cached
        found: set[str] = set()
        seen: set[str] = set()
        todo = [name]
        while todo:
            current = todo.pop()
            fact = self._catalogue.facts.get(current)
            if current in seen or fact is None:
                continue
            seen.add(current)
            if fact.derived_from is None:
                if fact.class_ is not None:
                    found.add(fact.class_.value)
            else:
                todo.extend(fact.derived_from)
        result = frozenset(found)
        self._classes[name] = result
        return result

    def path_to(
        self, name: str, wanted: frozenset[str], _seen: set[str] | None = None
    ) -> list[str]:
        """The chain of facts from ``name`` down to a base fact of a wanted class."""
        seen = set() if _seen is None else _seen
        fact = self._catalogue.facts.get(name)
        if fact is None or name in seen:
            return []
        seen.add(name)
        if fact.derived_from is None:
            return [name] if fact.class_ and fact.class_.value in wanted else []
        for src in fact.derived_from:
            if self.classes(src) & wanted:
                tail = self.path_to(src, wanted, seen)
                if tail:
                    return [name, *tail]
        return []


def comparisons(cond: Condition) -> Iterator[Comparison]:
    if isinstance(cond, Comparison):
        yield cond
    elif isinstance(cond, AllOf):
        for c in cond.all:
            yield from comparisons(c)
    elif isinstance(cond, AnyOf):
        for c in cond.any:
            yield from comparisons(c)
    elif isinstance(cond, Not):
        yield from comparisons(cond.not_)


def check_catalogue(catalogue: FactCatalogue, file: str = "catalogue.yaml") -> list[Problem]:
    problems: list[Problem] = [
        Problem(file, name, "missing_legal_basis", "a listed behaviour needs its basis (依据)")
        for name, behaviour in catalogue.behaviours.items()
        if not [b for b in behaviour.legal_basis if b.strip()]
    ]
    for name, fact in catalogue.facts.items():
        if fact.behaviour is not None and fact.behaviour not in catalogue.behaviours:
            problems.append(
                Problem(
                    file,
                    name,
                    "unknown_behaviour",
                    f"behaviour {fact.behaviour!r} is not in the behaviour list (行为清单)",
                )
            )
        if is_prohibited(fact.domain, fact.source, fact.title):
            problems.append(
                Problem(
                    file,
                    name,
                    "prohibited_domain",
                    f"domain {fact.domain!r} / source {fact.source!r} is behaviour that may not "
                    "enter credit supervision without legislation (信访, 拆迁, 闯红灯, 养犬, "
                    "物业费, 垃圾分类)",
                )
            )
        if (
            fact.default is not None
            and fact.type is not FactType.RECORDS
            and not value_fits(fact.type, fact.values, fact.default)
        ):
            # An ill-typed default decides comparisons on absent data (1 == true).
            problems.append(
                Problem(
                    file,
                    name,
                    "type_mismatch",
                    f"default {fact.default!r} does not fit the fact's type {fact.type.value}",
                )
            )
        if fact.derived_from is None or fact.derive is None:
            continue
        for src in fact.derived_from:
            if src not in catalogue.facts:
                problems.append(
                    Problem(file, name, "unknown_fact", f"derived_from names unknown fact {src!r}")
                )
        derivation = DERIVATIONS.get(fact.derive)
        if derivation is None:
            problems.append(
                Problem(
                    file,
                    name,
                    "unknown_derivation",
                    f"derive {fact.derive!r} is not implemented (known: {sorted(DERIVATIONS)})",
                )
            )
        else:
            # Input types too: a derivation fed the wrong kind of value fails at request time.
            given = [
                catalogue.facts[src].type.value if src in catalogue.facts else None
                for src in fact.derived_from
            ]
            inputs_fit = None in given or given == list(derivation.inputs)
            if (
                len(derivation.inputs) != len(fact.derived_from)
                or derivation.output != fact.type
                or not inputs_fit
            ):
                problems.append(
                    Problem(
                        file,
                        name,
                        "type_mismatch",
                        f"derivation {fact.derive!r} takes {list(derivation.inputs)} and gives "
                        f"{derivation.output}; the fact declares inputs "
                        f"{[g or '?' for g in given]} and type {fact.type.value}",
                    )
                )
    return problems


def check_benefits(benefits: BenefitCatalogue, file: str = "benefits.yaml") -> list[Problem]:
    problems = []
    for name, benefit in benefits.benefits.items():
        for pname, spec in benefit.params.items():
            if spec.min is not None and spec.max is not None and spec.min > spec.max:
                problems.append(
                    Problem(file, name, "invalid_policy", f"param {pname!r} has min > max")
                )
            if any(b is not None and math.isnan(b) for b in (spec.min, spec.max)):
                problems.append(
                    Problem(file, name, "invalid_policy", f"param {pname!r} has a NaN bound")
                )
    return problems


def value_fits(ftype: FactType, values: list[str] | None, value: Any) -> bool:
    if ftype is FactType.BOOLEAN:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if ftype is FactType.INTEGER:
        return isinstance(value, int)
    if ftype is FactType.NUMBER:
        return isinstance(value, int | float)
    if ftype is FactType.STRING:
        return isinstance(value, str)
    if ftype is FactType.DATE:
        return isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    if ftype is FactType.ENUM:
        return isinstance(value, str) and value in (values or [])
    return False


_ORDERED = frozenset({FactType.INTEGER, FactType.NUMBER, FactType.DATE})


def _check_comparison(
    policy: Policy, catalogue: FactCatalogue, file: str, rule: str, cmp: Comparison
) -> list[Problem]:
    fact = catalogue.facts.get(cmp.fact)
    if fact is None:
        return [Problem(file, rule, "unknown_fact", f"fact {cmp.fact!r} is not in the catalogue")]
    if fact.subject != "any" and fact.subject not in policy.subjects:
        return [
            Problem(
                file,
                rule,
                "unknown_fact",
                f"fact {cmp.fact!r} describes a {fact.subject}, the policy serves "
                f"{policy.subjects}",
            )
        ]
    if fact.type is FactType.RECORDS:
        return [
            Problem(
                file,
                rule,
                "type_mismatch",
                f"{cmp.fact} is a records fact: only derivations read it",
            )
        ]
    if cmp.op in ("in", "not_in"):
        if not isinstance(cmp.value, list) or not cmp.value:
            return [Problem(file, rule, "type_mismatch", f"{cmp.op} on {cmp.fact} takes a list")]
        bad = [v for v in cmp.value if not value_fits(fact.type, fact.values, v)]
    else:
        bad = [] if value_fits(fact.type, fact.values, cmp.value) else [cmp.value]
        if cmp.op in ("<", "<=", ">", ">=") and fact.type not in _ORDERED:
            return [
                Problem(
                    file,
                    rule,
                    "type_mismatch",
                    f"{cmp.op} needs an ordered fact; {cmp.fact} is {fact.type.value}",
                )
            ]
    if bad:
        expected = f"one of {fact.values}" if fact.type is FactType.ENUM else fact.type.value
        return [
            Problem(
                file,
                rule,
                "type_mismatch",
                f"{cmp.fact} {cmp.op} {bad[0]!r}: the value must be {expected}",
            )
        ]
    return []


def _check_grant(
    benefits: BenefitCatalogue, file: str, rule: str, code: str, params: dict[str, Any]
) -> list[Problem]:
    benefit = benefits.benefits.get(code)
    if benefit is None:
        return [Problem(file, rule, "benefit_param_out_of_range", f"benefit {code!r} is not known")]
    problems = []
    for name, value in params.items():
        spec = benefit.params.get(name)
        if spec is None:
            problems.append(
                Problem(
                    file,
                    rule,
                    "benefit_param_out_of_range",
                    f"{code} has no parameter {name!r}",
                )
            )
            continue
        numeric = spec.type in ("integer", "number")
        fits = (
            (isinstance(value, int) and not isinstance(value, bool))
            if spec.type == "integer"
            else (isinstance(value, int | float) and not isinstance(value, bool))
            if spec.type == "number"
            else isinstance(value, bool)
            if spec.type == "boolean"
            else isinstance(value, str)
        )
        if not fits:
            problems.append(
                Problem(
                    file, rule, "benefit_param_out_of_range", f"{code}.{name} must be {spec.type}"
                )
            )
        elif numeric and (
            (isinstance(value, float) and math.isnan(value))  # NaN is in no range
            or (spec.min is not None and value < spec.min)
            or (spec.max is not None and value > spec.max)
        ):
            problems.append(
                Problem(
                    file,
                    rule,
                    "benefit_param_out_of_range",
                    f"{code}.{name} = {value} is outside its favourable range "
                    f"[{spec.min}, {spec.max}]: a benefit may not be a penalty in disguise",
                )
            )
    return problems


def check_policy(
    policy: Policy,
    file: str,
    catalogue: FactCatalogue,
    benefits: BenefitCatalogue,
    measures: MeasureList,
    taint: Taint,
) -> list[Problem]:
    problems: list[Problem] = []
    if not [b for b in policy.legal_basis if b.strip()]:
        problems.append(
            Problem(file, "-", "missing_legal_basis", "a policy needs its legal basis (依据)")
        )
    for name in policy.context_required:
        fact = catalogue.facts.get(name)
        if fact is None or fact.class_ is not FactClass.CONTEXT:
            problems.append(
                Problem(
                    file,
                    "-",
                    "unknown_fact",
                    f"context_required names {name!r}, "
                    "which is not a context fact in the catalogue",
                )
            )
    for rule in policy.rules:
        reads = list(comparisons(rule.when))
        typed = [
            p for cmp in reads for p in _check_comparison(policy, catalogue, file, rule.id, cmp)
        ]
        problems.extend(typed)
        if not typed and (why := unsatisfiable_reason(rule.when, catalogue)):
            problems.append(Problem(file, rule.id, "unreachable_rule", why))
        if rule.grant is not None:
            problems.extend(
                _check_grant(benefits, file, rule.id, rule.grant.benefit, rule.grant.params)
            )
            continue
        assert rule.constrain is not None
        if policy.basic_public_service:
            problems.append(
                Problem(
                    file,
                    rule.id,
                    "constraint_in_basic_public_service",
                    "a basic public service may not be restricted by credit: the scene can "
                    "only grant",
                )
            )
        if rule.constrain.measure not in measures.measures:
            problems.append(
                Problem(
                    file,
                    rule.id,
                    "unknown_measure",
                    f"measure {rule.constrain.measure!r} is not in the measures list (措施清单)",
                )
            )
        taint_problems = _constraint_taint(file, rule.id, [c.fact for c in reads], taint)
        problems.extend(taint_problems)
        if not taint_problems and not typed:
            documents = frozenset(
                c.fact
                for c in reads
                if taint.classes(c.fact) == {FactClass.EFFECTIVE_DOCUMENT.value}
            )
            loose = ungrounded_alternative(rule.when, catalogue, documents)
            if loose is not None:
                shown = " and ".join(str(a) for a in loose) or "(always)"
                problems.append(
                    Problem(
                        file,
                        rule.id,
                        "constraint_needs_effective_document",
                        f"the constraint can fire with no effective document behind it "
                        f"(when {shown}): each way it fires must need a document's record",
                    )
                )
            else:
                measure = measures.measures.get(rule.constrain.measure)
                if measure is not None and measure.documents:
                    problems.extend(
                        document_mismatch(file, rule, measure.documents, documents, catalogue)
                    )
    return problems


def _constraint_taint(file: str, rule: str, facts: list[str], taint: Taint) -> list[Problem]:
    problems = []
    for name in dict.fromkeys(facts):
        classes = taint.classes(name)
        if FactClass.PERSONAL_SCORE.value in classes:
            path = taint.path_to(name, frozenset({FactClass.PERSONAL_SCORE.value}))
            problems.append(
                Problem(
                    file,
                    rule,
                    "personal_score_to_constraint",
                    f"constrain reads {' ← '.join(path)} (personal_score): a personal credit "
                    "score may not be used for punishment",
                )
            )
        elif not classes <= CONSTRAINT_OK:
            other = frozenset(classes - CONSTRAINT_OK)
            path = taint.path_to(name, other)
            problems.append(
                Problem(
                    file,
                    rule,
                    "constraint_needs_effective_document",
                    f"constrain reads {' ← '.join(path)} ({', '.join(sorted(other))}): a "
                    "constraint must rest on legally effective documents",
                )
            )
    return problems
