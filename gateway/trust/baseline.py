"""A partner's own baseline: what it already gives everyone is a floor (DOMAIN.md).

A library that waives deposits for every reader declares so (``Partner.baseline``);
a decision for that partner then never offers less: the baseline's benefits are
merged in, each parameter at its most favourable value, and a ``standard``
outcome becomes ``granted`` with the baseline's benefits (and a token, so kiosks
verify it like any grant). A ``constrained`` outcome (never in a basic public
service) keeps its outcome and measures and lists the baseline's benefits too.
The reason cites the partner's own rule, never a credit fact.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.policy.checks import _check_grant
from gateway.policy.evaluator import Evaluation, Outcome, Reason, merge_params
from gateway.policy.model import BenefitCatalogue
from gateway.settings import BaselineBenefit, Partner

__all__ = ["baseline_problems", "with_baseline"]


def baseline_problems(partner: Partner, benefits: BenefitCatalogue) -> list[str]:
    """What is wrong with a partner's baseline against the benefit catalogue."""
    problems = []
    for i, item in enumerate(partner.baseline):
        if item.scene not in partner.scenes:
            problems.append(f"baseline[{i}]: the contract does not cover the scene {item.scene!r}")
        for problem in _check_grant(
            benefits, "partners", f"baseline[{i}]", item.benefit, dict(item.params)
        ):
            problems.append(f"baseline[{i}]: {problem.message}")
    return problems


def with_baseline(
    result: Evaluation,
    baseline: Sequence[BaselineBenefit],
    scene: str,
    partner: str,
    benefits: BenefitCatalogue,
) -> Evaluation:
    """``result`` raised to the partner's baseline for ``scene``."""
    floor = [b for b in baseline if b.scene == scene]
    if not floor:
        return result
    granted = dict(result.benefits)
    reasons = list(result.reasons)
    for item in floor:
        if item.benefit not in benefits.benefits:
            continue  # a reloaded policy set dropped the benefit: nothing to raise to
        current = granted.get(item.benefit)
        granted[item.benefit] = (
            dict(item.params)
            if current is None
            else merge_params(benefits, item.benefit, current, item.params)
        )
        reasons.append(
            Reason(
                rule=f"partner-baseline:{partner}",
                effect="grant",
                legal_basis=(item.basis,) if item.basis else (),
                facts=(),
            )
        )
    outcome: Outcome = "constrained" if result.outcome == "constrained" else "granted"
    return Evaluation(outcome, list(granted.items()), result.constraints, reasons, result.dropped)
