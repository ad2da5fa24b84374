"""The syntactic guard and the SMT proof agree (docs/prove.md).

On random catalogues and policies (the generators of test_properties.py):
whenever the guard raises no taint refusal for a policy, the solver proves
non-interference; and every counterexample the solver finds replays through
the evaluator as two subjects, differing only in personal-score facts, with
different constraints. Policies the guard refuses that the solver proves
harmless are recorded as Hypothesis events: the guard stays strict, because it
must be obviously right to a reviewer, where the proof is right about one
catalogue and one set of derivations.
"""

from __future__ import annotations

from hypothesis import event, given, note

from gateway.policy.checks import Taint, check_policy
from gateway.policy.model import FactCatalogue, Policy
from gateway.policy.prove import Finding, prove_rules
from gateway.policy.smt import evaluate
from tests.guard.test_properties import (
    BENEFIT_MODEL,
    MEASURE_MODEL,
    TAINT_CODES,
    Scenario,
    examples,
    scenarios,
)


def _check(scenario: Scenario) -> None:
    catalogue = FactCatalogue.model_validate({"facts": scenario.facts})
    policy = Policy.model_validate(scenario.policy)
    problems = check_policy(
        policy, "generated.yaml", catalogue, BENEFIT_MODEL, MEASURE_MODEL, Taint(catalogue)
    )
    refused = sorted({p.rule for p in problems if p.code in TAINT_CODES})
    proof = prove_rules(
        policy.rules,
        catalogue,
        BENEFIT_MODEL,
        subjects=policy.subjects,
        basic_public_service=policy.basic_public_service,
    )
    finding: Finding = next(f for f in proof.findings if f.property == "non_interference")
    if not refused:
        assert finding.holds, finding.message
        event("guard accepts: non-interference proved")
        return
    codes = {p.code for p in problems if p.code in TAINT_CODES}
    if finding.holds:
        if "personal_score_to_constraint" in codes:
            # The guard refuses more than it must: e.g. a score read under a branch
            # that cannot change whether the constraint fires. Recorded, not relaxed.
            event("score read refused, solver proves harmless")
            note(f"harmless but refused: rules {refused}")
        else:
            # Refused for resting on a non-document fact: another promise than this one.
            event("refused for a non-document read, no score involved")
        return
    event("guard refuses, solver finds interference")
    a, b = finding.examples
    tainted = {n for n in catalogue.facts if "personal_score" in Taint(catalogue).classes(n)}
    same = {k: v for k, v in a.facts.items() if k not in tainted}
    assert same == {k: v for k, v in b.facts.items() if k not in tainted}
    assert a.subject == b.subject
    ra = evaluate(policy.rules, catalogue, BENEFIT_MODEL, a.facts)
    rb = evaluate(policy.rules, catalogue, BENEFIT_MODEL, b.facts)
    assert sorted(ra.constraints) != sorted(rb.constraints)


@examples(60)
@given(scenario=scenarios(with_score=True, bad_params=False))
def test_guard_acceptance_implies_proved_non_interference(scenario: Scenario) -> None:
    _check(scenario)


@examples(60)
@given(scenario=scenarios(plant_score=True, bad_params=False))
def test_planted_scores_are_refused_or_proved_harmless(scenario: Scenario) -> None:
    _check(scenario)
