"""A credit source driven by a function: for tests and for embedding.

``HandlerCreditSource(lambda kind, subject_id: [...])`` answers every lookup
by calling the handler, the way httpx's ``MockTransport`` answers requests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from adapters.credit.base import (
    AdapterContext,
    CreditRecord,
    CreditSource,
    CreditSourceError,
    SubjectKind,
)

__all__ = ["HandlerCreditSource"]

Handler = Callable[[SubjectKind, str], Sequence[CreditRecord] | Awaitable[Sequence[CreditRecord]]]


class HandlerCreditSource(CreditSource):
    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    @classmethod
    def from_options(cls, options: Mapping[str, Any], context: AdapterContext) -> CreditSource:
        raise CreditSourceError("the handler source is built in code, not from configuration")

    async def records(self, kind: SubjectKind, subject_id: str) -> Sequence[CreditRecord]:
        result = self._handler(kind, subject_id)
        if isinstance(result, Awaitable):
            return await result
        return result

    async def check(self) -> None:
        return None
