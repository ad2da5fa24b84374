"""What a hall may register: at most what its own decision allowed.

A 容缺 commitment rests on a decision that granted ``tolerant_acceptance``: no
more missing materials than its ``max_missing_materials``, due no later than
its ``commitment_days`` after the decision. A 告知承诺 rests on a decision that
granted ``notification_commitment``; its due date is when the hall checks it,
within the same ``commitment_days``. The granting policy may name how long a
breach withholds these incentives (``breach_withhold_days``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from gateway.commitments.models import CommitmentKind
from gateway.errors import FieldError, InvalidRequest

__all__ = ["BENEFIT_OF_KIND", "Allowance", "allowance"]

BENEFIT_OF_KIND: dict[CommitmentKind, str] = {
    "tolerant_acceptance": "tolerant_acceptance",
    "notification": "notification_commitment",
}


@dataclass(frozen=True, slots=True)
class Allowance:
    withhold_days: int


def _invalid(pointer: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        "the commitment exceeds its decision", errors=[FieldError(pointer, message)]
    )


def allowance(
    decision: dict[str, Any],
    kind: CommitmentKind,
    missing_materials: list[str],
    due: dt.date,
    today: dt.date,
    default_withhold_days: int,
) -> Allowance:
    """Check the commitment against its decision's benefit; 422 naming the field."""
    code = BENEFIT_OF_KIND[kind]
    params: dict[str, Any] | None = next(
        (b.get("params", {}) for b in decision.get("benefits", []) if b.get("code") == code), None
    )
    if decision.get("scene") != "approval" or params is None:
        raise _invalid("/decision_id", f"the decision did not grant {code}")
    issued = dt.date.fromisoformat(str(decision["issued_at"])[:10])
    days = params.get("commitment_days")
    if isinstance(days, int) and due > issued + dt.timedelta(days=days):
        raise _invalid(
            "/due",
            f"the decision allows at most {days} days (until "
            f"{(issued + dt.timedelta(days=days)).isoformat()})",
        )
    if due < today:
        raise _invalid("/due", "the due date has passed")
    most = params.get("max_missing_materials")
    if kind == "tolerant_acceptance":
        if not missing_materials:
            raise _invalid("/missing_materials", "name the materials the applicant will supply")
        if isinstance(most, int) and len(missing_materials) > most:
            raise _invalid("/missing_materials", f"the decision allows at most {most} materials")
    withhold = params.get("breach_withhold_days")
    return Allowance(withhold if isinstance(withhold, int) else default_withhold_days)
