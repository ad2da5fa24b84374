"""What an adverse answer tells the subject: measure, basis, end, and how to put it right.

A ``constrained`` decision names, per measure, its basis, the records it
rests on, when it ends (a date where the records give one, and the end
conditions of the measures list) and the repair and objection routes with
their deadlines. A decision that withholds an incentive because of adverse
records names those records and the routes. Every text comes from
``measures.yaml`` (DOMAIN.md: 事前告知, 信用修复, 异议), none from code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from adapters.credit.base import CreditRecord
from gateway.policy.model import Measure, MeasureList

__all__ = [
    "CONSTRAINT_SCHEMA",
    "DEFAULT_REMEDIES",
    "NOTICE_SCHEMA",
    "constraint_notice",
    "measure_end",
    "withheld_notice",
]

# Routes every adverse record has, whatever rests on it (DOMAIN.md: repair, objection).
DEFAULT_REMEDIES = ("repair", "objection")


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def measure_end(measure: Measure, records: Sequence[CreditRecord]) -> dt.date | None:
    """The last day the measure applies on these records, if the records fix one.

    A record ends on its ``publication_until``; without one, after the measure's
    ``max_years`` from the record's date. The measure lasts while any record
    that grounds it does; when one of them has no end, only an end condition
    (repair, delisting, …) ends it, and no date is given.
    """
    ends: list[dt.date] = []
    for record in records:
        if record.publication_until is not None:
            ends.append(record.publication_until)
        elif measure.max_years is not None:
            ends.append(_add_years(record.decided_on, measure.max_years))
        else:
            return None
    return max(ends) if ends else None


def _remedies(measures: MeasureList, codes: Iterable[str]) -> list[dict[str, Any]]:
    out = []
    for code in dict.fromkeys(codes):
        remedy = measures.remedies.get(code)
        if remedy is None:
            continue  # lint refuses a measure naming an unknown remedy
        entry: dict[str, Any] = {
            "code": code,
            "title": remedy.title,
            "route": remedy.route,
            "deadline": remedy.deadline,
        }
        if remedy.working_days is not None:
            entry["working_days"] = remedy.working_days
        out.append(entry)
    return out


def _record_ref(record: CreditRecord) -> dict[str, Any]:
    # The record's platform id and dates only: its title may describe a person.
    return {
        "record_id": record.record_id,
        "domain": record.domain,
        "decided_on": record.decided_on.isoformat(),
        "publication_until": (
            record.publication_until.isoformat() if record.publication_until else None
        ),
    }


def constraint_notice(
    measures: MeasureList, code: str, evidence: Sequence[CreditRecord]
) -> dict[str, Any]:
    """One entry of a decision's ``constraints``: the measure and the notice for the subject."""
    measure = measures.measures[code]
    grounds = [r for r in evidence if r.effective_document]
    until = measure_end(measure, grounds)
    return {
        "measure": code,
        "title": measure.title,
        "legal_basis": measure.legal_basis,
        "list": measure.list_,
        "initiating": measure.initiating,
        "implementing": measure.implementing,
        "records": [_record_ref(r) for r in grounds],
        "period": measure.period,
        "until": until.isoformat() if until else None,
        "ends": [{"event": e.event, "text": e.text} for e in measure.ends],
        "remedies": _remedies(measures, measure.remedies or DEFAULT_REMEDIES),
    }


def withheld_notice(
    measures: MeasureList, evidence: Sequence[CreditRecord]
) -> dict[str, Any] | None:
    """Why an incentive was withheld, when adverse records are why; else None.

    The routes offered are those of every measure resting on the records' kind
    of document (a court record is put right through the court), and repair and
    objection for every record.
    """
    adverse = [r for r in evidence if r.adverse]
    if not adverse:
        return None
    domains = {r.domain for r in adverse}
    codes: list[str] = []
    for measure in measures.measures.values():
        if domains.intersection(measure.documents or ()):
            codes.extend(measure.remedies)
    codes.extend(DEFAULT_REMEDIES)
    return {
        "records": [_record_ref(r) for r in adverse],
        "remedies": _remedies(measures, codes),
    }


# JSON Schemas of what this module builds, for the served OpenAPI document.
_STRINGS = {"type": "array", "items": {"type": "string"}}
_RECORD_REF = {
    "type": "object",
    "required": ["record_id", "domain", "decided_on"],
    "properties": {
        "record_id": {"type": "string"},
        "domain": {"type": "string"},
        "decided_on": {"type": "string", "format": "date"},
        "publication_until": {"type": ["string", "null"], "format": "date"},
    },
}
_REMEDY = {
    "type": "object",
    "required": ["code", "title", "route", "deadline"],
    "properties": {
        "code": {"type": "string"},
        "title": {"type": "string"},
        "route": {"type": "string"},
        "deadline": {"type": "string"},
        "working_days": {"type": "integer"},
    },
}
CONSTRAINT_SCHEMA = {
    "type": "object",
    "required": ["measure", "legal_basis"],
    "properties": {
        "measure": {"type": "string"},
        "title": {"type": "string"},
        "legal_basis": _STRINGS,
        "list": {"type": "string", "description": "the measures list it is on (措施清单)"},
        "initiating": {"type": "string"},
        "implementing": {"type": "string"},
        "records": {"type": "array", "items": _RECORD_REF},
        "period": {"type": ["string", "null"], "description": "惩戒期限"},
        "until": {
            "type": ["string", "null"],
            "format": "date",
            "description": "last day it applies on these records; null: only an end condition",
        },
        "ends": {
            "type": "array",
            "description": "终止条件",
            "items": {
                "type": "object",
                "properties": {"event": {"type": "string"}, "text": {"type": "string"}},
            },
        },
        "remedies": {"type": "array", "items": _REMEDY},
    },
}
NOTICE_SCHEMA = {
    "type": "object",
    "description": "an incentive withheld because of these adverse records, and the routes",
    "properties": {
        "records": {"type": "array", "items": _RECORD_REF},
        "remedies": {"type": "array", "items": _REMEDY},
    },
}
