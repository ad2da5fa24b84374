"""A breached commitment as the record policies read (``commitment_breached``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from adapters.credit.base import CreditRecord, RecordStatus
from gateway.commitments.models import BREACH_RECORD_TYPE, Commitment

__all__ = ["breach_records"]


def breach_records(breaches: Iterable[Commitment]) -> list[CreditRecord]:
    """The breaches (still withholding) as records the fact builder reads."""
    return [
        CreditRecord(
            record_id=c.commitment_id,
            type=BREACH_RECORD_TYPE,
            domain="credit_commitment",
            effective_document=True,  # the signed commitment and the hall's finding
            adverse=True,
            decided_on=dt.date.fromisoformat((c.closed_at or c.created_at)[:10]),
            publication_until=c.withhold_until,
            status=RecordStatus.ACTIVE,
            title="违背信用承诺",
        )
        for c in breaches
    ]
