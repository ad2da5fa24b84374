"""From credit records and a request's context to the facts a policy reads.

Doubt favours the subject (DESIGN §2): a record counts against nobody when it
is repaired, past its publication period, under objection, or from a domain
that may not enter credit supervision at all. Such records are dropped here,
before any fact or derivation sees them.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.credit.base import CreditRecord, RecordStatus
from gateway.facts.derivations import DERIVATIONS
from gateway.policy.model import Fact, FactCatalogue, FactClass, FactType
from gateway.policy.prohibited import is_prohibited

__all__ = ["FactPlan", "record_counts"]


def record_counts(record: CreditRecord, as_of: dt.date) -> bool:
    """Whether a record may feed any fact as of a date."""
    if is_prohibited(record.domain, record.title):
        return False
    if record.decided_on > as_of:
        return False
    if record.status in (RecordStatus.REPAIRED, RecordStatus.EXPIRED):
        return False
    if record.publication_until is not None and record.publication_until < as_of:
        return False
    # An objection suspends an adverse record; a favourable one stands meanwhile.
    return not (record.status is RecordStatus.UNDER_OBJECTION and record.adverse)


def _coerce(fact: Fact, value: Any) -> Any:
    """The record's value in the fact's type, or None when it does not fit."""
    t = fact.type
    if value is None or (isinstance(value, bool) and t is not FactType.BOOLEAN):
        return None
    if t is FactType.BOOLEAN:
        return value if isinstance(value, bool) else None
    if t is FactType.INTEGER:
        return value if isinstance(value, int) else None
    if t is FactType.NUMBER:
        return value if isinstance(value, int | float) else None
    if t is FactType.ENUM:
        return value if isinstance(value, str) and value in (fact.values or ()) else None
    if t is FactType.STRING:
        return value if isinstance(value, str) else None
    if t is FactType.DATE:
        try:
            return dt.date.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            return None
    return None


@dataclass(frozen=True, slots=True)
class _BaseStep:
    name: str
    fact: Fact
    types: frozenset[str] | None  # None: every record type
    adverse: bool | None
    documents_only: bool


@dataclass(frozen=True, slots=True)
class _DerivedStep:
    name: str
    derive: str
    inputs: tuple[str, ...]
    start: dt.date | None = None


# Record-derived fact sets kept per plan; a few thousand subjects' worth.
_MEMO_SIZE = 4096


class FactPlan:
    """The facts one policy needs, in an order where inputs come first.

    What comes from records depends only on the records and the date, so it
    is worked out once per record set and day and reused (the pipeline's
    record cache hands out the same record sequence until the TTL or a credit
    event replaces it). Context facts, and derivations reading them, are
    built on every call.
    """

    def __init__(self, catalogue: FactCatalogue, needed: Iterable[str]) -> None:
        self._context: list[tuple[str, str]] = []
        self._base: list[_BaseStep] = []
        self._derived: list[_DerivedStep] = []
        seen: set[str] = set()
        for name in sorted(needed):
            self._visit(catalogue, name, seen)
        # Derivations with a context fact among their (transitive) inputs.
        uses_context = {name for name, _ in self._context}
        for step in self._derived:
            if uses_context.intersection(step.inputs):
                uses_context.add(step.name)
        # Facts about the other kind of subject, per kind: a policy serving persons
        # and enterprises must not read a person's facts off an enterprise's records.
        subject = {n: catalogue.facts[n].subject for n in seen}
        self._foreign = {
            kind: frozenset(n for n, s in subject.items() if s not in ("any", kind))
            for kind in ("person", "enterprise")
        }
        self._inputs = {s.name: s.inputs for s in self._derived}
        self._by_name = {s.name: s for s in self._base}
        self._record_derived = [s for s in self._derived if s.name not in uses_context]
        self._context_derived = [s for s in self._derived if s.name in uses_context]
        # id(records) -> (records, as_of, facts); the entry holds the records, so
        # their id cannot be reused by another object while the entry lives.
        # An OrderedDict: dropping a plain dict's oldest key (next(iter(d))) walks
        # past every slot freed by earlier drops until the dict is resized, ~3 µs a
        # record-cache miss at 4,096 entries.
        self._memo: OrderedDict[int, tuple[Sequence[CreditRecord], dt.date, dict[str, Any]]] = (
            OrderedDict()
        )
        self._reads: dict[str, bool] = {}  # reads_type's answers: the plan never changes

    def _visit(self, catalogue: FactCatalogue, name: str, seen: set[str]) -> None:
        if name in seen:
            return
        seen.add(name)
        fact = catalogue.facts[name]
        if fact.derived_from is not None and fact.derive is not None:
            for source in fact.derived_from:
                self._visit(catalogue, source, seen)
            self._derived.append(
                _DerivedStep(name, fact.derive, tuple(fact.derived_from), fact.record_start)
            )
        elif fact.class_ is FactClass.CONTEXT:
            self._context.append((name, name.split(".", 1)[-1]))
        else:
            select = fact.select
            if select is None:
                types: frozenset[str] | None = frozenset({name.split(".", 1)[-1]})
            else:
                types = frozenset(select.types) if select.types is not None else None
            self._base.append(
                _BaseStep(
                    name,
                    fact,
                    types,
                    select.adverse if select else None,
                    fact.class_ is FactClass.EFFECTIVE_DOCUMENT,
                )
            )

    def reads_type(self, record_type: str) -> bool:
        """Whether a fact of this plan names ``record_type`` among the records it reads."""
        reads = self._reads.get(record_type)
        if reads is None:
            reads = any(s.types is not None and record_type in s.types for s in self._base)
            self._reads[record_type] = reads
        return reads

    def build(
        self,
        records: Sequence[CreditRecord],
        context: Mapping[str, Any],
        as_of: dt.date,
        kind: str | None = None,
    ) -> dict[str, Any]:
        """The facts on ``records``; with ``kind``, none about another kind of subject."""
        return self.with_context(self.from_records(records, as_of, kind), context, as_of)

    @property
    def context_dependent(self) -> frozenset[str]:
        """The facts a request's context feeds, directly or through derivations."""
        return frozenset(
            [name for name, _ in self._context] + [s.name for s in self._context_derived]
        )

    def from_records(
        self, records: Sequence[CreditRecord], as_of: dt.date, kind: str | None = None
    ) -> dict[str, Any]:
        """The facts that depend on records alone (with ``kind``, none about another
        kind of subject): a caller may keep them per subject and day (a 名单推荐 reuses
        them across requests); do not change the dict."""
        facts = self._from_records(records, as_of)
        foreign = self._foreign.get(kind) if kind is not None else None
        if foreign:
            facts = {name: value for name, value in facts.items() if name not in foreign}
        return facts

    def with_context(
        self, base: Mapping[str, Any], context: Mapping[str, Any], as_of: dt.date
    ) -> dict[str, Any]:
        """``base`` (from ``from_records``) completed with a request's context."""
        facts = dict(base)
        for name, key in self._context:
            value = context.get(key)
            if value is not None:
                facts[name] = value
        self._derive(self._context_derived, facts, as_of)
        return facts

    def _from_records(self, records: Sequence[CreditRecord], as_of: dt.date) -> dict[str, Any]:
        hit = self._memo.get(id(records))
        if hit is not None and hit[0] is records and hit[1] == as_of:
            return hit[2]
        facts: dict[str, Any] = {}
        if self._base:
            counting = [r for r in records if record_counts(r, as_of)]
            # A subject has a record or two, a plan a dozen base facts: most facts
            # read types the subject has no record of. One set test settles those
            # (nothing matches: a records fact is empty, any other fact unknown, as
            # _extract says) instead of a pass over the records and a call; this
            # runs on every record-cache miss.
            present = {r.type for r in counting}
            for step in self._base:
                if step.types is not None and step.types.isdisjoint(present):
                    if step.fact.type is FactType.RECORDS:
                        facts[step.name] = []
                    continue
                matching = [
                    r
                    for r in counting
                    if (step.types is None or r.type in step.types)
                    and (step.adverse is None or r.adverse == step.adverse)
                    and (r.effective_document or not step.documents_only)
                ]
                value = self._extract(step.fact, matching)
                if value is not None:
                    facts[step.name] = value
        self._derive(self._record_derived, facts, as_of)
        if len(self._memo) >= _MEMO_SIZE:
            self._memo.popitem(last=False)  # the oldest entry
        self._memo[id(records)] = (records, as_of, facts)
        return facts

    def evidence(
        self,
        records: Sequence[CreditRecord],
        names: Iterable[str],
        as_of: dt.date,
        kind: str | None = None,
        adverse_only: bool = False,
    ) -> list[CreditRecord]:
        """The counting records that feed the named facts, through derivations too.

        What a decision rested on: the subject is told these records (to repair
        or object to them) and a later repair of one finds the decision again.
        """
        if adverse_only:
            records = [r for r in records if r.adverse]
            if not records:
                return []  # most subjects: nothing adverse, nothing to walk
        inputs = self._inputs
        base = self._by_name
        wanted: set[str] = set()
        todo = list(names)
        while todo:
            name = todo.pop()
            if name in wanted:
                continue
            wanted.add(name)
            todo.extend(inputs.get(name, ()))
        foreign = self._foreign.get(kind, frozenset()) if kind is not None else frozenset()
        steps = [base[n] for n in sorted(wanted) if n in base and n not in foreign]
        found: dict[str, CreditRecord] = {}
        for record in records:
            if record.record_id in found or not record_counts(record, as_of):
                continue
            for step in steps:
                if (
                    (step.types is None or record.type in step.types)
                    and (step.adverse is None or record.adverse == step.adverse)
                    and (record.effective_document or not step.documents_only)
                ):
                    found[record.record_id] = record
                    break
        return list(found.values())

    @staticmethod
    def _derive(steps: list[_DerivedStep], facts: dict[str, Any], as_of: dt.date) -> None:
        for derived in steps:
            inputs = [facts.get(source) for source in derived.inputs]
            value = DERIVATIONS[derived.derive].compute(inputs, as_of, derived.start)
            if value is not None:
                facts[derived.name] = value

    @staticmethod
    def _extract(fact: Fact, matching: list[CreditRecord]) -> Any:
        if fact.type is FactType.RECORDS:
            return matching
        if not matching:
            return None  # the catalogue's default, if any, applies in the evaluator
        if fact.type is FactType.BOOLEAN:
            # A listing record means "listed" unless it says otherwise explicitly.
            return any(r.value is None or r.value is True for r in matching)
        latest = max(matching, key=lambda r: r.decided_on)
        return _coerce(fact, latest.value)
