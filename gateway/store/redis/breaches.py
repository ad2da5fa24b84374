"""A subject's breached commitments on Redis: where they are, and which withhold.

    {P:ev}:cb:<subject key>  ZSET breached commitment id -> last withheld day (ordinal)
    {P:ev}:cm:<id>           the commitment (JSON)

A breach withholds on a day while its score is at least that day's ordinal;
the index is read in score order and the commitments in that order, skipping
any that is gone. The commitments store (``RedisCommitments.breaches``) and a
decision's admission (``xinyi_admit``, or its cluster path) both read by these
rules, so they give one answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from gateway.commitments.models import Commitment

__all__ = [
    "body_keys",
    "body_prefix",
    "events_tag",
    "first_withheld",
    "index_key",
    "withholding",
]


def events_tag(prefix: str) -> str:
    """The hash tag the outbox and commitments share (one cluster slot)."""
    return f"{{{prefix}:ev}}"


def index_key(prefix: str, subject_key: str) -> str:
    return f"{events_tag(prefix)}:cb:{subject_key}"


def body_prefix(prefix: str) -> str:
    return f"{events_tag(prefix)}:cm:"


def body_keys(prefix: str, ids: Iterable[bytes]) -> list[str]:
    start = body_prefix(prefix)
    return [start + i.decode() for i in ids]


def first_withheld(today: dt.date) -> int:
    """The lowest index score of a breach that still withholds on ``today``."""
    return today.toordinal()


def withholding(raws: Iterable[bytes | None]) -> list[Commitment]:
    """The commitments read for the index's ids, in its order."""
    return [Commitment.from_json(raw) for raw in raws if raw]
