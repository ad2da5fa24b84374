"""Restorations in Redis, shared by every replica.

Layout (``P`` is the store's key prefix):
    {P:restore}:l:<subject key>:<record id>   links (list of JSON), one per constrained decision
    {P:restore}:log                            the restorations log (a stream; ids are cursors)

Both carry one hash tag, so in a cluster the script that moves a record's
links to the log touches one slot and runs atomically: two replicas taking the
same event at once log each decision once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from gateway.restorations.store import ConstraintLink, Restoration, RestorationStore
from gateway.store.redis import RedisStore

__all__ = ["RedisRestorations"]

_RESTORE = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
local out = {}
for i, item in ipairs(items) do
  local id = redis.call('XADD', KEYS[2], '*', 'link', item, 'record', ARGV[1],
                        'event', ARGV[2], 'at', ARGV[3])
  out[i] = {id, item}
end
return out
"""
_CURSOR = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisRestorations(RestorationStore):
    def __init__(self, store: RedisStore) -> None:
        self._store = store
        tag = f"{{{store.prefix}:restore}}"
        self._k_links = f"{tag}:l:"
        self._k_log = f"{tag}:log"

    async def open(self) -> None:
        """Nothing to open: the Redis store's connection serves."""

    async def close(self) -> None:
        """Nothing to close: the Redis store owns the connection."""

    async def link(self, subject_key: str, record_ids: Sequence[str], link: ConstraintLink) -> None:
        raw = link.to_json()
        for record_id in dict.fromkeys(record_ids):
            await self._store.run("RPUSH", f"{self._k_links}{subject_key}:{record_id}", raw)

    async def restore(
        self, subject_key: str, record_id: str, event: str, at: str
    ) -> list[Restoration]:
        moved = await self._store.run(
            "EVAL",
            _RESTORE,
            2,
            f"{self._k_links}{subject_key}:{record_id}",
            self._k_log,
            record_id,
            event,
            at,
        )
        return [
            Restoration(_text(cursor), ConstraintLink.from_json(raw), record_id, event, at)
            for cursor, raw in moved or ()
        ]

    async def restorations(self, after: str | None, limit: int) -> list[Restoration]:
        if after is not None and not _CURSOR.match(after):
            raise ValueError("not a cursor this store handed out")
        start = "-" if after is None else f"({after}"
        entries = await self._store.run("XRANGE", self._k_log, start, "+", "COUNT", limit)
        out = []
        for cursor, fields in entries or ():
            data = {
                _text(k): v
                for k, v in (
                    fields.items()
                    if isinstance(fields, dict)
                    else zip(fields[::2], fields[1::2], strict=True)
                )
            }
            out.append(
                Restoration(
                    _text(cursor),
                    ConstraintLink.from_json(data["link"]),
                    _text(data["record"]),
                    _text(data["event"]),
                    _text(data["at"]),
                )
            )
        return out
