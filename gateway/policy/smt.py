"""Policies as SMT formulas (z3): the encoding ``policy prove`` and ``policy diff`` share.

A *symbolic subject* holds, for every fact a rule reads, a Bool ``known`` and a
value of the fact's type. POLICY.md's three-valued semantics is kept exactly: a
condition becomes a pair ``(true, false)`` of formulas, both false when it is
unknown; a rule fires when ``true`` holds. A fact with a catalogue ``default``
is never unknown (its absence reads as the default). A fact of another subject
kind is absent for the subject, as in the evaluator.

Types: integer and date (day ordinal) are Ints, number a Real, boolean a Bool,
enum an Int index into its values, string an Int code: the constants the rules
mention get codes 0, 1, …, and any other code stands for a string none of them
equals (strings are only compared with ``==``/``in``). A derived fact is an
unconstrained variable of its type: the prover assumes nothing about what a
derivation can return.

z3 is imported here, lazily by callers: the gateway serves without it.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import z3

from gateway.policy.evaluator import CompiledRule, Evaluation, Reason, compile_condition
from gateway.policy.evaluator import evaluate_rules as _evaluate_rules
from gateway.policy.model import (
    AllOf,
    AnyOf,
    BenefitCatalogue,
    Comparison,
    Condition,
    Fact,
    FactCatalogue,
    FactType,
    Not,
    Rule,
)

__all__ = [
    "Encoding",
    "ProveError",
    "SymResult",
    "SymSubject",
    "evaluate",
    "fired",
    "results_differ",
]

_MAX_DATE = dt.date.max.toordinal()


class ProveError(Exception):
    """The input cannot be modelled (an unknown fact, an ill-typed comparison …)."""


def _real(value: Any) -> Any:
    fr = Fraction(value)
    return z3.RealVal(f"{fr.numerator}/{fr.denominator}")


@dataclass(slots=True)
class _Var:
    fact: Fact
    known: Any  # z3 Bool (always true for a fact with a default)
    value: Any  # z3 term of the fact's sort


@dataclass(frozen=True, slots=True)
class SymResult:
    """A rule set's result on a symbolic subject, as formulas.

    ``measures[m]``: measure m applies; ``benefits[b]``: b is granted (so not
    constrained); ``params[(b, p)]``: the rank of p's merged value (0 is the most
    favourable value any rule set under study grants), -1 when it is not granted.
    """

    measures: dict[str, Any]
    benefits: dict[str, Any]
    params: dict[tuple[str, str], Any]

    def measure(self, name: str) -> Any:
        return self.measures.get(name, z3.BoolVal(False))

    def benefit(self, name: str) -> Any:
        return self.benefits.get(name, z3.BoolVal(False))

    def param(self, key: tuple[str, str]) -> Any:
        return self.params.get(key, z3.IntVal(-1))

    @property
    def constrained(self) -> Any:
        return z3.Or(*self.measures.values()) if self.measures else z3.BoolVal(False)


def results_differ(a: SymResult, b: SymResult) -> Any:
    """True for a subject whose outcome, constraints, benefits or parameters differ."""
    parts = [a.measure(m) != b.measure(m) for m in sorted(a.measures.keys() | b.measures.keys())]
    parts += [a.benefit(x) != b.benefit(x) for x in sorted(a.benefits.keys() | b.benefits.keys())]
    parts += [a.param(k) != b.param(k) for k in sorted(a.params.keys() | b.params.keys())]
    return z3.Or(*parts) if parts else z3.BoolVal(False)


class Encoding:
    """The vocabulary shared by every rule set compared in one proof.

    ``rules`` are all the rules that will be encoded (so parameter values can be
    ranked across versions); ``kinds`` the subject kinds a subject may be.
    """

    def __init__(
        self,
        catalogue: FactCatalogue,
        benefits: BenefitCatalogue,
        kinds: Sequence[str],
        rules: Iterable[Rule],
    ) -> None:
        if not kinds:
            raise ProveError("no subject kinds to prove over")
        self.catalogue = catalogue
        self.benefits = benefits
        self.kinds = tuple(kinds)
        self._codes: dict[str, dict[str, int]] = {}  # string fact -> constant -> code
        self._ranks: dict[tuple[str, str], list[Any]] = {}
        self._subjects = 0
        values: dict[tuple[str, str], list[Any]] = {}
        for rule in rules:
            if rule.grant is None:
                continue
            for name, value in rule.grant.params.items():
                values.setdefault((rule.grant.benefit, name), []).append(value)
        for key, found in values.items():
            self._ranks[key] = self._rank_table(key, found)

    # --- parameters ---------------------------------------------------------------

    def _rank_table(self, key: tuple[str, str], found: list[Any]) -> list[Any]:
        """Distinct values, most favourable first (merge_params keeps the best)."""
        code, name = key
        spec = self.benefits.benefits.get(code)
        if spec is None:
            raise ProveError(f"benefit {code!r} is not in the benefit catalogue")
        higher = name not in spec.params or spec.params[name].favourable == "higher"
        for value in found:
            if isinstance(value, float) and math.isnan(value):
                raise ProveError(f"{code}.{name} is NaN")

        def order(a: Any, b: Any) -> int:
            try:
                return -1 if a > b else 1 if a < b else 0
            except TypeError as exc:
                raise ProveError(f"{code}.{name} mixes values of different types") from exc

        table: list[Any] = []
        for value in sorted(found, key=functools.cmp_to_key(order), reverse=not higher):
            if not table or order(table[-1], value) != 0:
                table.append(value)
        return table

    def rank(self, code: str, name: str, value: Any) -> int:
        table = self._ranks[(code, name)]
        for i, candidate in enumerate(table):
            if candidate == value:
                return i
        raise ProveError(f"{code}.{name} = {value!r} was not ranked")  # pragma: no cover

    # --- subjects -----------------------------------------------------------------

    def subject(
        self, like: SymSubject | None = None, varying: frozenset[str] = frozenset()
    ) -> SymSubject:
        """A fresh symbolic subject; with ``like``, one equal to it except on ``varying`` facts."""
        self._subjects += 1
        return SymSubject(self, f"s{self._subjects}", like, varying)

    def code(self, fact: str, constant: str) -> int:
        table = self._codes.setdefault(fact, {})
        return table.setdefault(constant, len(table))

    def string_of(self, fact: str, code: int) -> str:
        table = self._codes.get(fact, {})
        for text, c in table.items():
            if c == code:
                return text
        other = "other"
        while other in table:
            other += "'"
        return other


class SymSubject:
    """One subject: its kind and its facts as z3 variables, made on first read."""

    def __init__(
        self, enc: Encoding, tag: str, like: SymSubject | None, varying: frozenset[str]
    ) -> None:
        self.enc = enc
        self.tag = tag
        self.like = like
        self.varying = varying
        self.vars: dict[str, _Var] = {}
        self.constraints: list[Any] = []
        if like is not None:
            self.kind: Any = like.kind
        elif len(enc.kinds) == 1:
            self.kind = z3.IntVal(0)
        else:
            self.kind = z3.Int(f"{tag}.kind")
            self.constraints.append(z3.And(self.kind >= 0, self.kind < len(enc.kinds)))

    def var(self, name: str) -> _Var:
        found = self.vars.get(name)
        if found is not None:
            return found
        if self.like is not None and name not in self.varying:
            found = self.like.var(name)
            self.vars[name] = found
            return found
        fact = self.enc.catalogue.facts.get(name)
        if fact is None:
            raise ProveError(f"fact {name!r} is not in the catalogue")
        if fact.type is FactType.RECORDS:
            raise ProveError(f"{name} is a records fact: only derivations read it")
        found = self._make(name, fact)
        self.vars[name] = found
        return found

    def _make(self, name: str, fact: Fact) -> _Var:
        label = f"{self.tag}.{name}"
        t = fact.type
        if t is FactType.BOOLEAN:
            value: Any = z3.Bool(label)
        elif t is FactType.NUMBER:
            value = z3.Real(label)
        else:
            value = z3.Int(label)
        if t is FactType.ENUM:
            self.constraints.append(z3.And(value >= 0, value < len(fact.values or ())))
        elif t is FactType.DATE:
            self.constraints.append(z3.And(value >= 1, value <= _MAX_DATE))
        elif t is FactType.STRING:
            self.constraints.append(value >= 0)
        if fact.subject == "any":
            available: Any = z3.BoolVal(True)
        elif fact.subject in self.enc.kinds:
            available = self.kind == self.enc.kinds.index(fact.subject)
        else:
            available = z3.BoolVal(False)
        if fact.default is not None:
            # Absent reads as the default, so the fact is never unknown.
            self.constraints.append(
                z3.Implies(z3.Not(available), value == self._const(name, fact, fact.default))
            )
            return _Var(fact, z3.BoolVal(True), value)
        known = z3.Bool(f"{label}.known")
        self.constraints.append(z3.Implies(z3.Not(available), z3.Not(known)))
        return _Var(fact, known, value)

    def _const(self, name: str, fact: Fact, constant: Any) -> Any:
        t = fact.type
        bad = ProveError(f"{name}: {constant!r} is not a {t.value} (run policy lint)")
        if t is FactType.BOOLEAN:
            if not isinstance(constant, bool):
                raise bad
            return z3.BoolVal(constant)
        if isinstance(constant, bool):
            raise bad
        if t is FactType.INTEGER and isinstance(constant, int):
            return z3.IntVal(constant)
        if t is FactType.NUMBER and isinstance(constant, int | float) and math.isfinite(constant):
            return _real(constant)
        if (
            t is FactType.DATE
            and isinstance(constant, dt.date)
            and not isinstance(constant, dt.datetime)
        ):
            return z3.IntVal(constant.toordinal())
        if t is FactType.ENUM and isinstance(constant, str) and constant in (fact.values or ()):
            return z3.IntVal((fact.values or []).index(constant))
        if t is FactType.STRING and isinstance(constant, str):
            return z3.IntVal(self.enc.code(name, constant))
        raise bad

    # --- conditions ---------------------------------------------------------------

    def condition(self, cond: Condition) -> tuple[Any, Any]:
        """(definitely true, definitely false) for a condition tree."""
        if isinstance(cond, Comparison):
            return self._comparison(cond)
        if isinstance(cond, Not):
            t, f = self.condition(cond.not_)
            return f, t
        pairs = [self.condition(c) for c in (cond.all if isinstance(cond, AllOf) else cond.any)]
        trues, falses = [p[0] for p in pairs], [p[1] for p in pairs]
        if isinstance(cond, AllOf):
            return z3.And(*trues), z3.Or(*falses)
        assert isinstance(cond, AnyOf)
        return z3.Or(*trues), z3.And(*falses)

    def _comparison(self, cmp: Comparison) -> tuple[Any, Any]:
        v = self.var(cmp.fact)
        ordered = v.fact.type in (FactType.INTEGER, FactType.NUMBER, FactType.DATE)
        if cmp.op in ("in", "not_in"):
            if not isinstance(cmp.value, list) or not cmp.value:
                raise ProveError(f"{cmp.op} on {cmp.fact} takes a non-empty list")
            member = z3.Or(*(v.value == self._const(cmp.fact, v.fact, c) for c in cmp.value))
            holds = member if cmp.op == "in" else z3.Not(member)
        else:
            c = self._const(cmp.fact, v.fact, cmp.value)
            if cmp.op in ("<", "<=", ">", ">=") and not ordered:
                raise ProveError(f"{cmp.op} needs an ordered fact; {cmp.fact} is not")
            holds = {
                "==": lambda: v.value == c,
                "!=": lambda: v.value != c,
                "<": lambda: v.value < c,
                "<=": lambda: v.value <= c,
                ">": lambda: v.value > c,
                ">=": lambda: v.value >= c,
            }[cmp.op]()
        return z3.And(v.known, holds), z3.And(v.known, z3.Not(holds))

    def fires(self, rule: Rule) -> Any:
        return self.condition(rule.when)[0]

    # --- results ------------------------------------------------------------------

    def result(self, rules: Sequence[Rule], served: Any = True) -> SymResult:
        """The outcome of ``rules`` for this subject (before any runtime guard)."""
        fire = [(r, z3.And(served, self.fires(r))) for r in rules]
        measures: dict[str, list[Any]] = {}
        grants: dict[str, list[Any]] = {}
        by_param: dict[tuple[str, str], list[tuple[int, Any]]] = {}
        for rule, f in fire:
            if rule.constrain is not None:
                measures.setdefault(rule.constrain.measure, []).append(f)
            elif rule.grant is not None:
                code = rule.grant.benefit
                grants.setdefault(code, []).append(f)
                for name, value in rule.grant.params.items():
                    by_param.setdefault((code, name), []).append(
                        (self.enc.rank(code, name, value), f)
                    )
        applied = {m: z3.Or(*fs) for m, fs in measures.items()}
        constrained = z3.Or(*applied.values()) if applied else z3.BoolVal(False)
        benefits = {b: z3.And(z3.Not(constrained), z3.Or(*fs)) for b, fs in grants.items()}
        params: dict[tuple[str, str], Any] = {}
        for key, ranked in by_param.items():
            expr: Any = z3.IntVal(-1)
            for rank, f in sorted(ranked, key=lambda rf: rf[0], reverse=True):
                expr = z3.If(f, z3.IntVal(rank), expr)
            params[key] = z3.If(constrained, z3.IntVal(-1), expr)
        return SymResult(applied, benefits, params)

    def pinned(self, kind: str, facts: Mapping[str, Any]) -> Any:
        """A formula fixing this subject to a concrete one (for checking the encoding).

        Only the facts already read are pinned: a fact absent from ``facts`` is
        unknown, or its default.
        """
        parts = [self.kind == self.enc.kinds.index(kind)]
        for name, v in self.vars.items():
            value = facts.get(name, v.fact.default) if v.fact.subject in ("any", kind) else None
            if value is None:
                value = v.fact.default
            if value is None:
                parts.append(z3.Not(v.known))
            else:
                parts.append(z3.And(v.known, v.value == self._const(name, v.fact, value)))
        return z3.And(*parts)

    # --- models -------------------------------------------------------------------

    def kind_in(self, model: Any) -> str:
        index: int = model.eval(self.kind, model_completion=True).as_long()
        return self.enc.kinds[index]

    def facts_in(self, model: Any) -> dict[str, Any]:
        """The concrete facts of this subject in a model: absent facts are left out."""
        kind = self.kind_in(model)
        out: dict[str, Any] = {}
        for name in sorted(self.vars):
            v = self.vars[name]
            if v.fact.subject not in ("any", kind):
                continue
            if not z3.is_true(model.eval(v.known, model_completion=True)):
                continue
            value = self._decode(name, v, model.eval(v.value, model_completion=True))
            if v.fact.default is not None and value == v.fact.default:
                continue  # absence says the same
            out[name] = value
        return out

    def _decode(self, name: str, v: _Var, term: Any) -> Any:
        t = v.fact.type
        if t is FactType.BOOLEAN:
            return z3.is_true(term)
        if t is FactType.NUMBER:
            fr = Fraction(term.numerator_as_long(), term.denominator_as_long())
            return int(fr) if fr.denominator == 1 else float(fr)
        n = term.as_long()
        if t is FactType.DATE:
            return dt.date.fromordinal(n)
        if t is FactType.ENUM:
            return (v.fact.values or [])[n]
        if t is FactType.STRING:
            return self.enc.string_of(name, n)
        return n


def evaluate(
    rules: Sequence[Rule],
    catalogue: FactCatalogue,
    benefits: BenefitCatalogue,
    facts: Mapping[str, Any],
) -> Evaluation:
    """Evaluate rules as written — the evaluator's closures, without the runtime guard's drops."""
    defaults = {n: f.default for n, f in catalogue.facts.items() if f.default is not None}
    compiled = tuple(
        CompiledRule(
            id=r.id,
            predicate=compile_condition(r.when, defaults),
            reason=Reason(r.id, "grant" if r.grant else "constrain", (), ()),
            benefit=r.grant.benefit if r.grant else None,
            params=dict(r.grant.params) if r.grant else {},
            measure=r.constrain.measure if r.constrain else None,
        )
        for r in rules
    )
    return _evaluate_rules(compiled, facts, benefits, basic_public_service=False)


def fired(rules: Sequence[Rule], catalogue: FactCatalogue, facts: Mapping[str, Any]) -> list[str]:
    """The ids of the rules whose condition is true for ``facts``."""
    defaults = {n: f.default for n, f in catalogue.facts.items() if f.default is not None}
    return [r.id for r in rules if compile_condition(r.when, defaults)(facts) is True]
