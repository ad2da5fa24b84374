"""A rule-by-rule trace of how a policy decides on a set of facts.

For credit offices and auditors at the command line: it prints values,
which the HTTP API never does. Every node is evaluated with the same compiled
closures the gateway serves with, so the trace cannot disagree with a decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.policy.evaluator import compile_condition
from gateway.policy.loader import CompiledPolicy
from gateway.policy.model import AllOf, AnyOf, Comparison, Condition, FactCatalogue, Not

__all__ = ["explain"]

_WORD = {True: "true", False: "false", None: "unknown"}


def _node(
    cond: Condition,
    facts: Mapping[str, Any],
    defaults: Mapping[str, Any],
    depth: int,
    out: list[str],
) -> None:
    value = compile_condition(cond, defaults)(facts)
    pad = "    " * depth
    if isinstance(cond, Comparison):
        if cond.fact in facts:
            seen = f"value {facts[cond.fact]!r}"
        elif cond.fact in defaults:
            seen = f"no value, default {defaults[cond.fact]!r}"
        else:
            seen = "no value"
        out.append(f"{pad}{cond.fact} {cond.op} {cond.value!r} → {_WORD[value]} ({seen})")
        return
    if isinstance(cond, Not):
        out.append(f"{pad}not → {_WORD[value]}")
        _node(cond.not_, facts, defaults, depth + 1, out)
        return
    label, parts = ("all", cond.all) if isinstance(cond, AllOf) else ("any", cond.any)
    assert isinstance(cond, AllOf | AnyOf)
    out.append(f"{pad}{label} → {_WORD[value]}")
    for part in parts:
        _node(part, facts, defaults, depth + 1, out)


def explain(compiled: CompiledPolicy, catalogue: FactCatalogue, facts: Mapping[str, Any]) -> str:
    policy = compiled.policy
    defaults = {n: f.default for n, f in catalogue.facts.items() if f.default is not None}
    out = [f"policy {policy.id} {policy.version} ({compiled.hash}), scene {policy.scene}"]
    for rule in policy.rules:
        fired = compile_condition(rule.when, defaults)(facts) is True
        if rule.grant:
            effect = f"grant {rule.grant.benefit} {rule.grant.params or ''}".rstrip()
        else:
            assert rule.constrain is not None
            effect = f"constrain {rule.constrain.measure}"
        out.append(f"rule {rule.id}: {effect} — {'FIRES' if fired else 'does not fire'}")
        _node(rule.when, facts, defaults, 1, out)
    result = compiled.evaluate(facts)
    benefits = ", ".join(f"{code} {params}" for code, params in result.benefits) or "none"
    out.append(
        f"outcome: {result.outcome}; benefits: {benefits}; constraints: "
        f"{', '.join(result.constraints) or 'none'}"
    )
    if result.dropped:
        out.append(f"runtime guard dropped: {', '.join(result.dropped)}")
    return "\n".join(out)
