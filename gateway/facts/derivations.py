"""Derivations: how a derived fact is computed from its declared inputs.

``clean_record_years`` — one records input, integer output: whole years since
the latest adverse record that still counts; with none, since the start of the
subject's credit history (its ``registration`` record); with neither, since the
fact's documented ``record_start`` (doubt favours the subject: no record held
is no adverse record); unknown only when none of these exists. Also listed in
docs/derivations.md and docs/policies.md.

A derivation gets only its declared inputs, already filtered by the fact
builder to records that count (not repaired, not expired, not under objection,
not in a prohibited domain), and the evaluation date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from adapters.credit.base import CreditRecord

__all__ = ["DERIVATIONS", "Derivation", "whole_years"]


class Compute(Protocol):
    def __call__(
        self, inputs: Sequence[Any], as_of: dt.date, start: dt.date | None = None
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class Derivation:
    name: str
    inputs: tuple[str, ...]  # fact types, in order
    output: str
    # ``start``: the fact's ``record_start``, the documented date records count from.
    compute: Compute


def whole_years(start: dt.date, end: dt.date) -> int:
    years = end.year - start.year
    if (end.month, end.day) < (start.month, start.day):
        years -= 1
    return max(0, years)


def _clean_record_years(
    inputs: Sequence[Any], as_of: dt.date, start: dt.date | None = None
) -> int | None:
    records: Sequence[CreditRecord] = inputs[0] or ()
    adverse = [r.decided_on for r in records if r.adverse]
    if adverse:
        return whole_years(max(adverse), as_of)
    starts = [r.decided_on for r in records if r.type == "registration"]
    if starts:
        # A subject registered after the record start cannot be clean for longer.
        return whole_years(min(starts), as_of)
    if start is not None and start <= as_of:
        return whole_years(start, as_of)
    return None


DERIVATIONS: Mapping[str, Derivation] = MappingProxyType(
    {
        "clean_record_years": Derivation(
            "clean_record_years", ("records",), "integer", _clean_record_years
        ),
    }
)
