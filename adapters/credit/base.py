"""The credit-source contract: where a subject's credit records come from.

A credit source answers one question — the records the credit platform holds
on a subject — and says whether it is reachable. Sources are found through the
``xinyi_gateway.credit_sources`` entry-point group; the built-in ones register
there too (see ``pyproject.toml``), so a bank's or a province's own source
plugs in the same way.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = [
    "AdapterContext",
    "CreditEvent",
    "CreditRecord",
    "CreditSource",
    "CreditSourceError",
    "RecordStatus",
    "SubjectKind",
    "UnknownRecord",
]

SubjectKind = Literal["person", "enterprise"]


class RecordStatus(StrEnum):
    ACTIVE = "active"
    REPAIRED = "repaired"  # 信用修复 granted: no longer a basis for anything adverse
    EXPIRED = "expired"  # publication period over
    UNDER_OBJECTION = "under_objection"  # 异议 pending: carries a dispute mark


@dataclass(frozen=True, slots=True)
class CreditRecord:
    """One entry of a subject's public credit information.

    ``effective_document`` says whether the record rests on a legally effective
    document (judgment, award, penalty decision, formal list determination);
    only such records may feed a fact of class ``effective_document``.
    """

    record_id: str
    type: str
    domain: str
    effective_document: bool
    adverse: bool
    decided_on: dt.date
    publication_until: dt.date | None
    status: RecordStatus
    value: str | int | float | bool | None = None
    title: str | None = None


class CreditEvent(StrEnum):
    """Status changes the upstream platform pushes (API.md "Credit events")."""

    LISTED = "listed"
    DELISTED = "delisted"
    REPAIRED = "repaired"
    OBJECTION_OPENED = "objection_opened"
    OBJECTION_CLOSED = "objection_closed"
    RECORD_ADDED = "record_added"


class CreditSourceError(Exception):
    """The source could not answer (unreachable, timed out, broken reply).

    ``retry_after_s`` is the source's own estimate of when asking again makes
    sense (e.g. when an open circuit half-opens); the gateway passes it on as
    ``Retry-After``.
    """

    def __init__(self, message: str = "", *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class CircuitOpen(CreditSourceError):
    """The source's circuit breaker refused the lookup without asking upstream.

    The gateway counts it as ``short_circuited`` (not an upstream call) and
    shows ``xinyi_upstream_circuit_open`` 1 until a lookup succeeds again.
    """


class UnknownRecord(CreditSourceError):
    """An event names a record the source does not hold."""


@dataclass(frozen=True, slots=True)
class AdapterContext:
    """What the gateway hands an adapter when it builds one.

    ``registry`` is the gateway's Prometheus registry: an adapter registers its
    own collectors there and they appear on ``/metrics``.
    """

    state_dir: Path
    config_dir: Path
    registry: CollectorRegistry | None = None


class CreditSource(ABC):
    """A source of credit records. Implementations must be safe to call concurrently."""

    @classmethod
    @abstractmethod
    def from_options(cls, options: Mapping[str, Any], context: AdapterContext) -> CreditSource:
        """Build the source from its configuration block (``credit_source.options``)."""

    @abstractmethod
    async def records(self, kind: SubjectKind, subject_id: str) -> Sequence[CreditRecord]:
        """Every record held on the subject; an unknown subject has none.

        Raise :class:`CreditSourceError` when the source cannot answer.
        """

    async def records_many(
        self, kind: SubjectKind, subject_ids: Sequence[str]
    ) -> dict[str, Sequence[CreditRecord]]:
        """Every record held on each of many subjects (a 名单推荐 reads thousands).

        This default asks one subject at a time; a source that can answer many
        in one query (the embedded SQLite dataset does) overrides it.
        """
        return {sid: await self.records(kind, sid) for sid in dict.fromkeys(subject_ids)}

    @abstractmethod
    async def check(self) -> None:
        """Raise :class:`CreditSourceError` unless the source answers (readiness)."""

    async def apply_event(  # noqa: B027 - optional hook
        self,
        kind: SubjectKind,
        subject_id: str,
        event: CreditEvent,
        record: CreditRecord | None,
        record_id: str,
    ) -> None:
        """Take in a change the platform pushed.

        A source that reads the platform live already holds the change and does
        nothing; a source that keeps its own copy (the embedded dataset) applies
        it. ``record`` is the full record for ``listed`` and ``record_added``.
        """

    async def close(self) -> None:  # noqa: B027 - optional hook, most sources hold nothing
        """Release connections; called once when the gateway stops."""
