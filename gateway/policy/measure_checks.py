"""Checks of the measures list (措施清单) and of constraints against it.

A measure names the kinds of effective document it rests on (``documents``:
domains of the catalogue's effective-document facts); a constrain rule must
need a document of one of those kinds each way it can fire
(``measure_document_mismatch``), and a measure's remedies must be listed.
"""

from __future__ import annotations

from gateway.policy.model import FactCatalogue, FactClass, MeasureList, Rule
from gateway.policy.problem import Problem
from gateway.policy.reachability import ungrounded_alternative

__all__ = ["check_measures", "document_kinds", "document_mismatch"]


def document_kinds(catalogue: FactCatalogue) -> frozenset[str]:
    """The document kinds (domains) of the catalogue's effective-document facts."""
    return frozenset(
        f.domain for f in catalogue.facts.values() if f.class_ is FactClass.EFFECTIVE_DOCUMENT
    )


def check_measures(
    measures: MeasureList,
    file: str = "measures.yaml",
    catalogue: FactCatalogue | None = None,
) -> list[Problem]:
    problems = [
        Problem(file, name, "missing_legal_basis", "a measure needs its legal basis (依据)")
        for name, measure in measures.measures.items()
        if not [b for b in measure.legal_basis if b.strip()]
    ]
    kinds = document_kinds(catalogue) if catalogue is not None else None
    for name, measure in measures.measures.items():
        for remedy in measure.remedies:
            if remedy not in measures.remedies:
                problems.append(
                    Problem(
                        file,
                        name,
                        "invalid_policy",
                        f"remedies names {remedy!r}, which is not under 'remedies:'",
                    )
                )
        if measure.documents is not None and not measure.documents:
            problems.append(
                Problem(
                    file,
                    name,
                    "measure_document_mismatch",
                    "'documents' is empty: a measure rests on at least one kind of document",
                )
            )
        for kind in measure.documents or ():
            if kinds is not None and kind not in kinds:
                problems.append(
                    Problem(
                        file,
                        name,
                        "measure_document_mismatch",
                        f"documents names {kind!r}, but no effective-document fact in the "
                        "catalogue is of that kind",
                    )
                )
    return problems


def document_mismatch(
    file: str,
    rule: Rule,
    kinds: list[str],
    documents: frozenset[str],
    catalogue: FactCatalogue,
) -> list[Problem]:
    """Each way a constraint fires must need a document of a kind its measure rests on.

    A measure of the list names the documents it may follow (e.g. restricting
    credit follows a serious-dishonesty list or the court's list); a rule that
    can fire on another kind of document applies the measure without its basis.
    Derived document facts count only when every input is of a listed kind.
    """
    assert rule.constrain is not None
    wanted = frozenset(kinds)
    fitting = frozenset(name for name in documents if _base_domains(name, catalogue) <= wanted)
    loose = ungrounded_alternative(rule.when, catalogue, fitting)
    if loose is None:
        return []
    shown = " and ".join(str(a) for a in loose) or "(always)"
    read = sorted({d for name in documents for d in _base_domains(name, catalogue)})
    return [
        Problem(
            file,
            rule.id,
            "measure_document_mismatch",
            f"measure {rule.constrain.measure} rests on documents of kind {sorted(wanted)}; "
            f"the rule can fire without one (when {shown}; it reads {read or 'none'})",
        )
    ]


def _base_domains(name: str, catalogue: FactCatalogue) -> frozenset[str]:
    """The domains of the base facts a fact reaches through ``derived_from``."""
    found: set[str] = set()
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        fact = catalogue.facts.get(current)
        if current in seen or fact is None:
            continue
        seen.add(current)
        if fact.derived_from is None:
            found.add(fact.domain)
        else:
            todo.extend(fact.derived_from)
    return frozenset(found)
