"""Derivations: how a derived fact is computed from its declared inputs.

``clean_record_years`` — one records input, integer output: whole years since
the latest adverse record that still counts; with none, since the start of the
subject's credit history (its ``registration`` record); unknown when neither
exists. Also listed in docs/derivations.md.

A derivation gets only its declared inputs, already filtered by the fact
builder to records that count (not repaired, not expired, not under objection,
not in a prohibited domain), and the evaluation date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from adapters.credit.base import CreditRecord

__all__ = ["DERIVATIONS", "Derivation", "whole_years"]


@dataclass(frozen=True, slots=True)
class Derivation:
    name: str
    inputs: tuple[str, ...]  # fact types, in order
    output: str
    compute: Callable[[Sequence[Any], dt.date], Any]


def whole_years(start: dt.date, end: dt.date) -> int:
    years = end.year - start.year
    if (end.month, end.day) < (start.month, start.day):
        years -= 1
    return max(0, years)


def _clean_record_years(inputs: Sequence[Any], as_of: dt.date) -> int | None:
    records: Sequence[CreditRecord] = inputs[0] or ()
    adverse = [r.decided_on for r in records if r.adverse]
    if adverse:
        return whole_years(max(adverse), as_of)
    starts = [r.decided_on for r in records if r.type == "registration"]
    if starts:
        return whole_years(min(starts), as_of)
    return None


DERIVATIONS: Mapping[str, Derivation] = MappingProxyType(
    {
        "clean_record_years": Derivation(
            "clean_record_years", ("records",), "integer", _clean_record_years
        ),
    }
)
