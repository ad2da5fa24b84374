"""Doubt favours the subject: clean years count from a documented start (issue 15, item 5).

A person with no adverse record is not refused a benefit because the
platform holds no registration record for them: ``person.clean_record_years``
counts from the catalogue's ``record_start``. An enterprise counts from its
registration. One case per scene that reads a clean-years fact.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from adapters.credit.base import CreditRecord, RecordStatus
from gateway.facts.derivations import whole_years
from gateway.policy.loader import PolicySet

TODAY = dt.date(2026, 12, 4)
RECORD_START = dt.date(2014, 6, 14)

# scene → (subject kind, context)
SCENES: dict[str, tuple[str, dict[str, Any]]] = {
    "transit": ("person", {}),
    "rental": ("person", {}),
    "medical": ("person", {}),
    "parking": ("person", {}),
    "loan": ("enterprise", {"loan_amount": 1_000_000}),
    "approval": ("enterprise", {"matter_code": "X-1", "missing_key_materials": False}),
    "approval-person": ("person", {"matter_code": "X-1", "missing_key_materials": False}),
    "tax": ("enterprise", {}),
}


def _record(type_: str, decided: dt.date, value: Any = None, **kw: Any) -> CreditRecord:
    return CreditRecord(
        record_id=f"r-{type_}",
        type=type_,
        domain=kw.pop("domain", "x"),
        effective_document=kw.pop("document", False),
        adverse=kw.pop("adverse", False),
        decided_on=decided,
        publication_until=None,
        status=kw.pop("status", RecordStatus.ACTIVE),
        value=value,
    )


def _clean_subject(kind: str) -> list[CreditRecord]:
    if kind == "person":  # a score and nothing else: no registration record at all
        return [_record("credit_score", TODAY - dt.timedelta(days=10), 700)]
    return [_record("registration", dt.date(2015, 3, 1)), _record("tax_credit_grade", TODAY, "A")]


def test_every_scene_reading_clean_years_has_a_case(shipped_policies: PolicySet) -> None:
    reading = {
        scene
        for scene, versions in shipped_policies.by_scene.items()
        if any(f.endswith(".clean_record_years") for p in versions for f in p.reads)
    }
    assert reading == {s.split("-")[0] for s in SCENES}


@pytest.mark.parametrize("scene", sorted(SCENES))
def test_a_clean_subject_gets_the_clean_record_benefit(
    shipped_policies: PolicySet, scene: str
) -> None:
    kind, context = SCENES[scene]
    compiled = shipped_policies.active(scene.split("-")[0], TODAY)
    assert compiled is not None
    facts = compiled.plan.build(_clean_subject(kind), context, TODAY, kind)
    fact = f"{kind}.clean_record_years"
    start = RECORD_START if kind == "person" else dt.date(2015, 3, 1)
    assert facts[fact] == whole_years(start, TODAY)
    result = compiled.evaluate(facts)
    assert result.outcome == "granted", result
    assert any(fact in reason.facts for reason in result.reasons), result.reasons


@pytest.mark.parametrize("scene", sorted(s for s, (k, _) in SCENES.items() if k == "person"))
def test_a_repaired_record_does_not_shorten_a_persons_clean_years(
    shipped_policies: PolicySet, scene: str
) -> None:
    compiled = shipped_policies.active(scene.split("-")[0], TODAY)
    assert compiled is not None
    records = [
        *_clean_subject("person"),
        _record(
            "administrative_penalty",
            TODAY - dt.timedelta(days=30),
            adverse=True,
            document=True,
            status=RecordStatus.REPAIRED,
        ),
    ]
    facts = compiled.plan.build(records, SCENES[scene][1], TODAY, "person")
    assert facts["person.clean_record_years"] == whole_years(RECORD_START, TODAY)
    assert compiled.evaluate(facts).outcome == "granted"


def test_an_enterprise_the_platform_does_not_know_stays_unknown(
    shipped_policies: PolicySet,
) -> None:
    compiled = shipped_policies.active("approval", TODAY)
    assert compiled is not None
    facts = compiled.plan.build([], {"matter_code": "X-1"}, TODAY, "enterprise")
    assert "enterprise.clean_record_years" not in facts
    assert compiled.evaluate(facts).outcome == "standard"
