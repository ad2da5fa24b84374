"""Can a rule's condition ever be true? (the ``unreachable_rule`` check)

The condition is put in negation normal form: ``not`` is pushed onto the
comparisons (``not x > 5`` becomes ``x <= 5``). Under POLICY.md's three-valued
semantics that is exact — both are true only when ``x`` is known and at most
5 — and De Morgan's laws hold, so the rewritten tree is true exactly when the
original is. It is then expanded into alternatives (disjunctive normal form),
each a conjunction of comparisons; the rule can fire iff some alternative is
satisfiable.

A conjunction is satisfiable iff, fact by fact, some value meets all of that
fact's comparisons. The values to try are finite: for a finite domain (boolean,
enum) all of it; otherwise the constants the comparisons mention, and a point
between and beyond each — the set a conjunction of point and interval
constraints allows is a union of intervals bounded by those constants, so if it
is not empty it holds one of these points. The check is therefore complete for
this language, not a heuristic.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gateway.policy.model import AllOf, Comparison, Condition, FactCatalogue, FactType, Not

__all__ = ["Atom", "ungrounded_alternative", "unsatisfiable_reason"]

_NEGATE = {
    "==": "!=",
    "!=": "==",
    "<": ">=",
    ">=": "<",
    ">": "<=",
    "<=": ">",
    "in": "not_in",
    "not_in": "in",
}

# Past this many alternatives the expansion stops and the rule is taken as reachable:
# a false "reachable" only loses a warning, a false "unreachable" would refuse a policy.
_MAX_ALTERNATIVES = 4096


@dataclass(frozen=True, slots=True)
class Atom:
    fact: str
    op: str
    value: Any

    def holds(self, x: Any) -> bool:
        op, v = self.op, self.value
        if op == "==":
            return bool(x == v)
        if op == "!=":
            return bool(x != v)
        if op == "<":
            return bool(x < v)
        if op == "<=":
            return bool(x <= v)
        if op == ">":
            return bool(x > v)
        if op == ">=":
            return bool(x >= v)
        if op == "in":
            return x in v
        return x not in v

    def __str__(self) -> str:
        return f"{self.fact} {self.op} {self.value!r}"


class _TooLarge(Exception):
    pass


def _alternatives(cond: Condition, negate: bool = False) -> list[list[Atom]]:
    """The condition (negated if asked) as a list of conjunctions of atoms."""
    if isinstance(cond, Comparison):
        op = _NEGATE[cond.op] if negate else cond.op
        return [[Atom(cond.fact, op, cond.value)]]
    if isinstance(cond, Not):
        return _alternatives(cond.not_, not negate)
    parts = cond.all if isinstance(cond, AllOf) else cond.any
    conjunctive = isinstance(cond, AllOf) != negate  # De Morgan swaps all and any
    expanded = [_alternatives(part, negate) for part in parts]
    if not conjunctive:
        result = [alt for alts in expanded for alt in alts]
    else:
        result = []
        for combo in itertools.product(*expanded):
            result.append([atom for alt in combo for atom in alt])
            if len(result) > _MAX_ALTERNATIVES:
                raise _TooLarge
    if len(result) > _MAX_ALTERNATIVES:
        raise _TooLarge
    return result


def _ordinal(value: Any) -> Any:
    return value.toordinal() if isinstance(value, dt.date) else value


def _candidates(ftype: FactType, values: list[str] | None, atoms: list[Atom]) -> Iterable[Any]:
    if ftype is FactType.BOOLEAN:
        return (True, False)
    if ftype is FactType.ENUM:
        return tuple(values or ())
    constants: set[Any] = set()
    for atom in atoms:
        if atom.op in ("in", "not_in"):
            constants.update(atom.value)
        else:
            constants.add(atom.value)
    if ftype is FactType.STRING:
        # Any string unlike every constant stands for all the others.
        return (*constants, "\x00" + "".join(sorted(map(str, constants))))
    points = sorted(constants)
    if not points:
        return (0,)
    found: set[Any] = set(points)
    if ftype is FactType.NUMBER:
        found.update((points[0] - 1, points[-1] + 1))
        found.update((a + b) / 2 for a, b in itertools.pairwise(points))
    else:  # integers and dates (as day ordinals)
        found.update(p + d for p in points for d in (-1, 1))
    return found


def _fact_satisfiable(ftype: FactType, values: list[str] | None, atoms: list[Atom]) -> bool:
    if ftype is FactType.DATE:
        atoms = [
            Atom(
                a.fact,
                a.op,
                [_ordinal(v) for v in a.value] if a.op in ("in", "not_in") else _ordinal(a.value),
            )
            for a in atoms
        ]
    for x in _candidates(ftype, values, atoms):
        try:
            if all(atom.holds(x) for atom in atoms):
                return True
        except TypeError:
            return True  # ill-typed comparisons are type_mismatch's business
    return False


def unsatisfiable_reason(cond: Condition, catalogue: FactCatalogue) -> str | None:
    """None when the condition can be true; otherwise why it never can."""
    try:
        alternatives = _alternatives(cond)
    except _TooLarge:
        return None
    first_conflict = ""
    for alternative in alternatives:
        conflict = _conflict(alternative, catalogue)
        if conflict is None:
            return None
        first_conflict = first_conflict or conflict
    return f"the condition can never be true: {first_conflict} cannot hold together"


def _conflict(alternative: list[Atom], catalogue: FactCatalogue) -> str | None:
    """The comparisons on one fact that cannot hold together, if any."""
    by_fact: dict[str, list[Atom]] = {}
    for atom in alternative:
        by_fact.setdefault(atom.fact, []).append(atom)
    for name, atoms in by_fact.items():
        fact = catalogue.facts.get(name)
        if fact is None or fact.type is FactType.RECORDS:
            continue
        if not _fact_satisfiable(fact.type, fact.values, atoms):
            return " and ".join(str(a) for a in atoms)
    return None


def ungrounded_alternative(
    cond: Condition, catalogue: FactCatalogue, document_facts: frozenset[str]
) -> list[Atom] | None:
    """A way the condition can be true without any effective document, if there is one.

    Each alternative of a constraint must hold a comparison on an
    effective-document fact that the fact's *absence* cannot satisfy: a fact
    with no default is unknown when absent (so any comparison on it needs a
    record), and one with a default needs a comparison its default fails
    (``listed == true``, not ``listed != true``). Otherwise the rule would fire
    on people no document names — "constrain everyone not on the red list".
    """
    try:
        alternatives = _alternatives(cond)
    except _TooLarge:
        return None
    for alternative in alternatives:
        if _conflict(alternative, catalogue) is not None:
            continue  # this way can never fire at all
        grounded = False
        for atom in alternative:
            fact = catalogue.facts.get(atom.fact)
            if fact is None or atom.fact not in document_facts:
                continue
            try:
                grounded = fact.default is None or not atom.holds(fact.default)
            except TypeError:
                grounded = True  # ill-typed: type_mismatch reports it
            if grounded:
                break
        if not grounded:
            return alternative
    return None
