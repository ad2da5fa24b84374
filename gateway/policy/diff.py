"""Change impact between two versions of a policy (``xinyi-gateway policy diff OLD NEW``).

Both versions are encoded over one symbolic subject (smt.py). They are
equivalent when no subject gets a different outcome, constraint set, benefit
set or benefit parameter. Otherwise each kind of change — a benefit gained or
lost, a parameter made more or less favourable, a constraint added or lifted —
is characterised by the *patterns* of rules that produce it: which old rules
and which new rules fire for the subjects concerned, each with an example
subject. A subject kind only one version serves gets nothing from the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import z3

from gateway.policy.evaluator import Evaluation
from gateway.policy.model import BenefitCatalogue, FactCatalogue, Policy
from gateway.policy.prove import Example
from gateway.policy.smt import Encoding, ProveError, SymSubject, evaluate, results_differ

__all__ = ["Change", "PolicyDiff", "diff_policies", "replay"]

# Distinct rule patterns reported per kind of change; more only lengthen the report.
PATTERNS_PER_CHANGE = 3


@dataclass(frozen=True, slots=True)
class Change:
    """One way subjects are affected, with the rules behind it and an example subject."""

    direction: Literal["gain", "loss", "other"]
    kind: str  # benefit_added | benefit_removed | param_better | param_worse | param_added
    #            | param_dropped | constraint_added | constraint_lifted
    what: str  # the benefit, ``benefit.param`` or measure
    old_rules: tuple[str, ...]  # old rules that fire for these subjects
    new_rules: tuple[str, ...]
    example: Example

    def describe(self) -> str:
        verb = {
            "benefit_added": "gains benefit",
            "benefit_removed": "loses benefit",
            "param_better": "gets a more favourable",
            "param_worse": "gets a less favourable",
            "param_added": "gets a new parameter",
            "param_dropped": "no longer gets parameter",
            "constraint_added": "is newly constrained by",
            "constraint_lifted": "is no longer constrained by",
        }[self.kind]
        return (
            f"{verb} {self.what}: subjects for whom old rules [{', '.join(self.old_rules)}] "
            f"and new rules [{', '.join(self.new_rules)}] fire"
        )

    def shown_by(self, before: Evaluation, after: Evaluation, benefits: BenefitCatalogue) -> bool:
        """Whether the evaluator's results under both versions show this change."""
        had, has = dict(before.benefits), dict(after.benefits)
        if self.kind in ("benefit_removed", "benefit_added"):
            gone, there = (had, has) if self.kind == "benefit_removed" else (has, had)
            return self.what in gone and self.what not in there
        if self.kind in ("constraint_added", "constraint_lifted"):
            on, off = (after, before) if self.kind == "constraint_added" else (before, after)
            return self.what in on.constraints and self.what not in off.constraints
        code, name = self.what.split(".", 1)
        was, now = had.get(code, {}).get(name), has.get(code, {}).get(name)
        if self.kind == "param_dropped":
            return was is not None and now is None and code in has
        if self.kind == "param_added":
            return was is None and now is not None and code in had
        if was is None or now is None or was == now:
            return False
        spec = benefits.benefits[code].params.get(name)
        higher = spec is None or spec.favourable == "higher"
        better = bool(now > was if higher else now < was)
        return better == (self.kind == "param_better")


@dataclass(slots=True)
class PolicyDiff:
    old: str
    new: str
    equivalent: bool
    changes: list[Change] = field(default_factory=list)

    @property
    def gains(self) -> list[Change]:
        return [c for c in self.changes if c.direction == "gain"]

    @property
    def losses(self) -> list[Change]:
        return [c for c in self.changes if c.direction == "loss"]


def _served(s: SymSubject, enc: Encoding, policy: Policy) -> Any:
    return z3.Or(z3.BoolVal(False), *(s.kind == enc.kinds.index(k) for k in policy.subjects))


def diff_policies(
    old: Policy, new: Policy, catalogue: FactCatalogue, benefits: BenefitCatalogue
) -> PolicyDiff:
    """Compare two versions; raises smt.ProveError when either cannot be modelled."""
    for version in (old, new):
        ids = [r.id for r in version.rules]
        if len(set(ids)) != len(ids):
            raise ProveError(f"{version.id} {version.version} uses a rule id twice")
    kinds = list(dict.fromkeys([*old.subjects, *new.subjects]))
    enc = Encoding(catalogue, benefits, kinds, [*old.rules, *new.rules])
    s = enc.subject()
    before = s.result(old.rules, _served(s, enc, old))
    after = s.result(new.rules, _served(s, enc, new))
    old_fires = [(r.id, s.fires(r)) for r in old.rules]
    new_fires = [(r.id, s.fires(r)) for r in new.rules]
    solver = z3.Solver()
    solver.add(*s.constraints)
    label_old, label_new = f"{old.id} {old.version}", f"{new.id} {new.version}"
    solver.push()
    solver.add(results_differ(before, after))
    equivalent = solver.check() == z3.unsat
    solver.pop()
    result = PolicyDiff(label_old, label_new, equivalent)
    if equivalent:
        return result

    queries: list[tuple[Literal["gain", "loss", "other"], str, str, Any]] = []
    for code in sorted(before.benefits.keys() | after.benefits.keys()):
        had, has = before.benefit(code), after.benefit(code)
        queries.append(("loss", "benefit_removed", code, z3.And(had, z3.Not(has))))
        queries.append(("gain", "benefit_added", code, z3.And(has, z3.Not(had))))
    for key in sorted(before.params.keys() | after.params.keys()):
        was, now = before.param(key), after.param(key)
        both = z3.And(before.benefit(key[0]), after.benefit(key[0]))
        what = ".".join(key)
        # Rank 0 is the most favourable value: a higher rank is worse for the subject.
        queries.append(("loss", "param_worse", what, z3.And(both, was >= 0, now > was)))
        queries.append(("gain", "param_better", what, z3.And(both, now >= 0, now < was)))
        queries.append(("other", "param_dropped", what, z3.And(both, was >= 0, now < 0)))
        queries.append(("other", "param_added", what, z3.And(both, was < 0, now >= 0)))
    for measure in sorted(before.measures.keys() | after.measures.keys()):
        was_c, now_c = before.measure(measure), after.measure(measure)
        queries.append(("loss", "constraint_added", measure, z3.And(now_c, z3.Not(was_c))))
        queries.append(("gain", "constraint_lifted", measure, z3.And(was_c, z3.Not(now_c))))

    for direction, kind, what, goal in queries:
        result.changes.extend(
            _patterns(solver, s, goal, old_fires, new_fires, direction, kind, what)
        )
    for change in result.changes:
        under_old = replay(old, catalogue, benefits, change.example)
        under_new = replay(new, catalogue, benefits, change.example)
        if not change.shown_by(under_old, under_new, benefits):  # pragma: no cover - a prover bug
            raise ProveError(f"internal: the example for {change.kind} {change.what}")
    return result


def replay(
    policy: Policy, catalogue: FactCatalogue, benefits: BenefitCatalogue, example: Example
) -> Evaluation:
    """The evaluator's result for an example subject; nothing when the kind is not served."""
    if example.subject not in policy.subjects:
        return Evaluation("standard", [], [], [], [])
    return evaluate(policy.rules, catalogue, benefits, example.facts)


def _patterns(
    solver: Any,
    s: SymSubject,
    goal: Any,
    old_fires: Sequence[tuple[str, Any]],
    new_fires: Sequence[tuple[str, Any]],
    direction: Literal["gain", "loss", "other"],
    kind: str,
    what: str,
) -> list[Change]:
    """Up to PATTERNS_PER_CHANGE distinct firing patterns for which ``goal`` holds."""
    found: list[Change] = []
    solver.push()
    try:
        solver.add(goal)
        while len(found) < PATTERNS_PER_CHANGE and solver.check() == z3.sat:
            model = solver.model()
            pattern = [
                (f, z3.is_true(model.eval(f, model_completion=True)))
                for _, f in [*old_fires, *new_fires]
            ]
            old_ids = tuple(
                rid for rid, f in old_fires if z3.is_true(model.eval(f, model_completion=True))
            )
            new_ids = tuple(
                rid for rid, f in new_fires if z3.is_true(model.eval(f, model_completion=True))
            )
            example = Example(s.kind_in(model), s.facts_in(model))
            found.append(Change(direction, kind, what, old_ids, new_ids, example))
            # The next pattern must differ in at least one rule's firing.
            solver.add(z3.Or(z3.BoolVal(False), *(f != z3.BoolVal(v) for f, v in pattern)))
    finally:
        solver.pop()
    return found
