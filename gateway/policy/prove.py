"""What a policy does, proved with an SMT solver (``xinyi-gateway policy prove``).

For one rule list (a policy's, or any other list of condition-tree rules such
as a loan product's) :func:`prove_rules` proves or refutes:

* ``non_interference`` — two subjects that differ only in facts tainted by a
  ``personal_score`` class (base facts, and derived facts whose inputs reach
  one) always get the same set of constraints;
* ``basic_public_service`` — in such a scene no subject is ever constrained;
* ``fires`` (per rule) — some subject makes the rule's condition true;
* ``matters`` (per rule) — for some subject the result (outcome, constraints,
  benefits, parameters) differs with and without the rule;

and reports ``conflicts`` — grant and constrain rules that can fire together
(forbid wins) — for information. Every example is a concrete set of facts,
replayed through the evaluator before it is reported. The rules are proved as
written: the runtime guard that drops unlawful constraints is not relied on.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import z3

from gateway.policy.checks import Taint, comparisons
from gateway.policy.evaluator import Evaluation
from gateway.policy.model import (
    BenefitCatalogue,
    Condition,
    FactCatalogue,
    FactClass,
    Policy,
    Rule,
)
from gateway.policy.reachability import unsatisfiable_reason
from gateway.policy.smt import Encoding, ProveError, SymSubject, evaluate, fired, results_differ

__all__ = [
    "Example",
    "Finding",
    "PolicyProof",
    "ProveError",
    "as_test_case",
    "prove_policy",
    "prove_rules",
    "witness",
]


@dataclass(frozen=True, slots=True)
class Example:
    """A concrete subject: its kind and the facts it has (absent facts are unknown)."""

    subject: str
    facts: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Finding:
    property: str  # non_interference | basic_public_service | fires | matters | conflicts
    holds: bool
    message: str
    rule: str | None = None
    examples: tuple[Example, ...] = ()
    applicable: bool = True


@dataclass(slots=True)
class PolicyProof:
    label: str
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def refuted(self) -> list[Finding]:
        return [f for f in self.findings if not f.holds]


def as_test_case(name: str, example: Example, result: Evaluation) -> dict[str, Any]:
    """A ``tests:`` entry (POLICY.md) pinning what the evaluator does for ``example``."""
    expect: dict[str, Any] = {"outcome": result.outcome}
    if result.benefits:
        expect["benefits"] = sorted(code for code, _ in result.benefits)
    if result.constraints:
        expect["constraints"] = sorted(result.constraints)
    return {"name": name, "subject": example.subject, "facts": example.facts, "expect": expect}


def _solver(*subjects: SymSubject) -> Any:
    solver = z3.Solver()
    for s in subjects:
        solver.add(*s.constraints)
    return solver


def _check(solver: Any, goal: Any, *subjects: SymSubject) -> Any | None:
    """A model of ``goal`` (with the subjects' domain constraints), or None if unsat."""
    solver.push()
    try:
        for s in subjects:
            solver.add(*s.constraints)  # facts first read while building ``goal``
        solver.add(goal)
        outcome = solver.check()
        if outcome == z3.unknown:  # pragma: no cover - the fragment is decidable
            raise ProveError(f"the solver gave up: {solver.reason_unknown()}")
        return solver.model() if outcome == z3.sat else None
    finally:
        solver.pop()


def _example(s: SymSubject, model: Any) -> Example:
    return Example(s.kind_in(model), s.facts_in(model))


def witness(
    cond: Condition,
    catalogue: FactCatalogue,
    benefits: BenefitCatalogue,
    subjects: Sequence[str],
) -> Example | None:
    """A subject for whom ``cond`` is definitely true, or None when no subject is."""
    enc = Encoding(catalogue, benefits, subjects, ())
    s = enc.subject()
    model = _check(z3.Solver(), s.condition(cond)[0], s)
    return None if model is None else _example(s, model)


def _score_tainted(catalogue: FactCatalogue) -> frozenset[str]:
    taint = Taint(catalogue)
    score = FactClass.PERSONAL_SCORE.value
    return frozenset(n for n in catalogue.facts if score in taint.classes(n))


class _Prover:
    def __init__(
        self,
        rules: Sequence[Rule],
        catalogue: FactCatalogue,
        benefits: BenefitCatalogue,
        subjects: Sequence[str],
    ) -> None:
        self.rules = list(rules)
        self.catalogue = catalogue
        self.benefits = benefits
        self.enc = Encoding(catalogue, benefits, subjects, self.rules)
        self.a = self.enc.subject()
        self.fires = {r.id: self.a.fires(r) for r in self.rules}
        self.full = self.a.result(self.rules)
        self.solver = _solver(self.a)

    def replay(self, example: Example, rules: Sequence[Rule] | None = None) -> Evaluation:
        return evaluate(
            self.rules if rules is None else rules, self.catalogue, self.benefits, example.facts
        )

    def fired(self, example: Example) -> list[str]:
        return fired(self.rules, self.catalogue, example.facts)

    def non_interference(self) -> Finding:
        tainted = _score_tainted(self.catalogue)
        b = self.enc.subject(like=self.a, varying=tainted)
        other = b.result(self.rules)
        measures = sorted(self.full.measures.keys() | other.measures.keys())
        differ = z3.Or(
            z3.BoolVal(False), *(self.full.measure(m) != other.measure(m) for m in measures)
        )
        model = _check(self.solver, differ, self.a, b)
        if model is None:
            return Finding("non_interference", True, "proved")
        ea, eb = _example(self.a, model), _example(b, model)
        ra, rb = self.replay(ea), self.replay(eb)
        if sorted(ra.constraints) == sorted(rb.constraints):  # pragma: no cover - a prover bug
            raise ProveError("internal: the non-interference counterexample does not replay")
        varied = sorted(k for k in ea.facts.keys() | eb.facts.keys() if k in tainted)
        return Finding(
            "non_interference",
            False,
            f"two subjects differing only in personal-score facts ({', '.join(varied)}) get "
            f"constraints {sorted(ra.constraints)} and {sorted(rb.constraints)}",
            examples=(ea, eb),
        )

    def basic_public_service(self, basic: bool) -> Finding:
        if not basic:
            return Finding(
                "basic_public_service", True, "n/a (not a basic public service)", applicable=False
            )
        model = _check(self.solver, self.full.constrained, self.a)
        if model is None:
            return Finding("basic_public_service", True, "proved")
        ex = _example(self.a, model)
        result = self.replay(ex)
        if result.outcome != "constrained":  # pragma: no cover - a prover bug
            raise ProveError("internal: the basic-public-service counterexample does not replay")
        return Finding(
            "basic_public_service",
            False,
            f"a subject of this basic public service is constrained ({result.constraints})",
            examples=(ex,),
        )

    def rule_fires(self, rule: Rule) -> Finding:
        model = _check(self.solver, self.fires[rule.id], self.a)
        if model is None:
            return Finding("fires", False, f"dead: {self._why_dead(rule)}", rule.id)
        ex = _example(self.a, model)
        if rule.id not in self.fired(ex):  # pragma: no cover - a prover bug
            raise ProveError(f"internal: the example for {rule.id} does not fire it")
        return Finding("fires", True, "proved", rule.id, (ex,))

    def _why_dead(self, rule: Rule) -> str:
        why = unsatisfiable_reason(rule.when, self.catalogue)
        if why is not None:
            return why
        kinds = sorted(
            {
                fact.subject
                for c in comparisons(rule.when)
                if (fact := self.catalogue.facts.get(c.fact)) and fact.subject != "any"
            }
        )
        if len(kinds) > 1:
            return (
                f"the rule fires for no subject: it needs {' and '.join(kinds)} facts at "
                "once, and a subject is one kind or the other"
            )
        return "the rule fires for no subject (given each fact's kind, type and default)"

    def rule_matters(self, rule: Rule) -> Finding:
        others = [r for r in self.rules if r is not rule]
        without = self.a.result(others)
        model = _check(self.solver, results_differ(self.full, without), self.a)
        if model is not None:
            ex = _example(self.a, model)
            if _same(self.replay(ex), self.replay(ex, others)):  # pragma: no cover
                raise ProveError(f"internal: the example for {rule.id} does not replay")
            return Finding("matters", True, "proved", rule.id, (ex,))
        model = _check(self.solver, self.fires[rule.id], self.a)
        if model is None:
            return Finding("matters", False, "never changes the outcome: it never fires", rule.id)
        ex = _example(self.a, model)
        if not _same(self.replay(ex), self.replay(ex, others)):  # pragma: no cover
            raise ProveError(f"internal: the shadowing example for {rule.id} does not replay")
        also = [r for r in self.fired(ex) if r != rule.id]
        return Finding(
            "matters",
            False,
            "shadowed: wherever the rule fires the outcome is the same without it; e.g. here "
            f"it fires with {', '.join(also) or 'no other rule'} → {self.replay(ex).outcome}",
            rule.id,
            (ex,),
        )

    def conflicts(self) -> list[Finding]:
        found = []
        constrains = [r for r in self.rules if r.constrain is not None]
        for grant in (r for r in self.rules if r.grant is not None):
            together = []
            example = None
            for c in constrains:
                model = _check(self.solver, z3.And(self.fires[grant.id], self.fires[c.id]), self.a)
                if model is not None:
                    together.append(c.id)
                    shown = _example(self.a, model)
                    if not {grant.id, c.id} <= set(self.fired(shown)):  # pragma: no cover
                        raise ProveError(f"internal: the conflict example for {grant.id}")
                    example = example or shown
            if example is not None:
                found.append(
                    Finding(
                        "conflicts",
                        True,
                        f"grant {grant.id} and constrain {', '.join(together)} can both fire "
                        "(forbid wins)",
                        grant.id,
                        (example,),
                    )
                )
        return found


def _unique_ids(rules: Sequence[Rule]) -> None:
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise ProveError(f"rule id {rule.id!r} is used twice: findings could not name it")
        seen.add(rule.id)


def _same(a: Evaluation, b: Evaluation) -> bool:
    return (
        a.outcome == b.outcome
        and sorted(a.constraints) == sorted(b.constraints)
        and sorted(a.benefits, key=lambda cp: cp[0]) == sorted(b.benefits, key=lambda cp: cp[0])
    )


def prove_rules(
    rules: Sequence[Rule],
    catalogue: FactCatalogue,
    benefits: BenefitCatalogue,
    *,
    subjects: Sequence[str],
    basic_public_service: bool = False,
    label: str = "rules",
) -> PolicyProof:
    """Prove every property of one rule list; raises ProveError when it cannot be modelled."""
    started = time.perf_counter()
    _unique_ids(rules)
    prover = _Prover(rules, catalogue, benefits, subjects)
    proof = PolicyProof(label)
    proof.findings.append(prover.non_interference())
    proof.findings.append(prover.basic_public_service(basic_public_service))
    for rule in rules:
        proof.findings.append(prover.rule_fires(rule))
        proof.findings.append(prover.rule_matters(rule))
    proof.findings.extend(prover.conflicts())
    proof.seconds = time.perf_counter() - started
    return proof


def prove_policy(
    policy: Policy, catalogue: FactCatalogue, benefits: BenefitCatalogue, file: str = ""
) -> PolicyProof:
    label = f"{file + ': ' if file else ''}{policy.id} {policy.version} (scene {policy.scene})"
    return prove_rules(
        policy.rules,
        catalogue,
        benefits,
        subjects=policy.subjects,
        basic_public_service=policy.basic_public_service,
        label=label,
    )


def replay_rules(
    rules: Sequence[Rule],
    catalogue: FactCatalogue,
    benefits: BenefitCatalogue,
    facts: Mapping[str, Any],
) -> Evaluation:
    """The evaluator's result for ``facts`` under ``rules`` as written (for callers and tests)."""
    return evaluate(rules, catalogue, benefits, facts)
