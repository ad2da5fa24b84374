"""The SMT encoding agrees with the evaluator, and with lint's reachability check.

On random catalogues, policies and subjects (tests/guard/test_properties.py's
generators): pinned to a concrete subject, a condition's (true, false) formulas
are satisfiable exactly when the evaluator's closure returns True / False; and
for a policy serving one kind of subject, the solver finds a subject for a
rule exactly when lint's complete per-fact check finds the rule reachable.
"""

from __future__ import annotations

import z3
from hypothesis import event, given

from gateway.policy.checks import comparisons
from gateway.policy.evaluator import compile_condition
from gateway.policy.model import FactCatalogue, Policy
from gateway.policy.prove import witness
from gateway.policy.reachability import unsatisfiable_reason
from gateway.policy.smt import Encoding
from tests.guard.test_properties import BENEFIT_MODEL, Scenario, examples, scenarios


def _sat(*formulas: object) -> bool:
    solver = z3.Solver()
    solver.add(*formulas)
    return solver.check() == z3.sat


@examples(80)
@given(scenario=scenarios(bad_params=False, with_score=True))
def test_three_valued_encoding_matches_the_evaluator(scenario: Scenario) -> None:
    catalogue = FactCatalogue.model_validate({"facts": scenario.facts})
    policy = Policy.model_validate(scenario.policy)
    kind = policy.subjects[0]
    defaults = {n: f.default for n, f in catalogue.facts.items() if f.default is not None}
    enc = Encoding(catalogue, BENEFIT_MODEL, policy.subjects, policy.rules)
    s = enc.subject()
    for rule in policy.rules:
        true, false = s.condition(rule.when)
        for subject in scenario.subjects:
            facts = {
                n: v for n, v in subject.items() if catalogue.facts[n].subject in ("any", kind)
            }
            expected = compile_condition(rule.when, defaults)(facts)
            event(f"condition is {expected}")
            pin = s.pinned(kind, facts)
            assert _sat(*s.constraints, pin, true) == (expected is True)
            assert _sat(*s.constraints, pin, false) == (expected is False)


@examples(80)
@given(scenario=scenarios(bad_params=False))
def test_the_solver_and_lint_agree_on_dead_rules(scenario: Scenario) -> None:
    catalogue = FactCatalogue.model_validate({"facts": scenario.facts})
    policy = Policy.model_validate(scenario.policy)
    for kind in policy.subjects:
        for rule in policy.rules:
            found = witness(rule.when, catalogue, BENEFIT_MODEL, [kind])
            reads = {catalogue.facts[c.fact].subject for c in comparisons(rule.when)} - {"any"}
            if reads <= {kind}:  # lint's check knows nothing of subject kinds
                assert (found is not None) == (unsatisfiable_reason(rule.when, catalogue) is None)
                event(f"reachable: {found is not None}")
            if found is not None:
                defaults = {
                    n: f.default for n, f in catalogue.facts.items() if f.default is not None
                }
                assert compile_condition(rule.when, defaults)(found.facts) is True
