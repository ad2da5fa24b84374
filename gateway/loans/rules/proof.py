"""What the SMT prover says of a loan product's rules (issue 16), when it is published.

The guard has already refused anything that reads a personal score on the way
to a constraint; the prover adds what a syntactic check cannot say: whether
each rule can match anyone at all, whether it changes the outcome for anyone,
and whether a grant and a constraint can fire together. The bank gets the
findings with its product. A refuted non-interference (which the guard makes
impossible) refuses the product. Without the ``prove`` extra (z3) nothing is
proved, and the answer says so.
"""

from __future__ import annotations

from typing import Any

from gateway.policy.loader import PolicySet
from gateway.policy.model import Policy
from gateway.policy.problem import Problem

__all__ = ["prove_product"]


def prove_product(
    policy: Policy, file: str, policies: PolicySet
) -> tuple[dict[str, Any], list[Problem]]:
    """The findings for the bank, and the problems that refuse the product."""
    try:
        from gateway.policy.prove import ProveError, prove_rules
    except ImportError:
        return {"status": "not_run", "reason": "z3-solver (the prove extra) is not installed"}, []
    try:
        proof = prove_rules(
            policy.rules,
            policies.catalogue,
            policies.benefits,
            subjects=list(policy.subjects),
            label=policy.id,
        )
    except ProveError as exc:
        return {"status": "not_modelled", "reason": str(exc)}, []
    findings = [
        {"property": f.property, "rule": f.rule, "holds": f.holds, "message": f.message}
        for f in proof.findings
        if f.applicable
    ]
    problems = [
        Problem(file, "-", "personal_score_to_constraint", f.message)
        for f in proof.refuted
        if f.property == "non_interference"
    ]
    status = "proved" if not proof.refuted else "refuted"
    return {"status": status, "findings": findings}, problems
