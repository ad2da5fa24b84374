"""The record-change feed in Redis: a capped stream of internal pseudonyms.

{P:credit}:changes   stream; field ``s`` holds the subject's internal pseudonym
"""

from __future__ import annotations

import re
from typing import Any

from gateway.facts.changes import RecordChanges
from gateway.store.redis import RedisStore

__all__ = ["RedisChanges"]

# Far more than a replica can fall behind by in one poll; older entries go.
MAX_ENTRIES = 100_000
_CURSOR = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisChanges(RecordChanges):
    def __init__(self, store: RedisStore) -> None:
        self._store = store
        self._key = f"{{{store.prefix}:credit}}:changes"

    async def publish(self, subject_key: str) -> None:
        await self._store.command(
            "XADD", self._key, "MAXLEN", "~", MAX_ENTRIES, "*", "s", subject_key
        )

    async def read(self, cursor: str | None) -> tuple[str | None, list[str]]:
        if cursor is None:
            last = await self._store.command("XREVRANGE", self._key, "+", "-", "COUNT", 1)
            return (_text(last[0][0]) if last else "0-0"), []
        if not _CURSOR.match(cursor):
            raise ValueError("not a cursor of the change feed")
        entries = await self._store.command("XRANGE", self._key, f"({cursor}", "+", "COUNT", 1000)
        keys = []
        for entry_id, fields in entries or ():
            cursor = _text(entry_id)
            items = (
                fields.items()
                if isinstance(fields, dict)
                else zip(fields[::2], fields[1::2], strict=True)
            )
            data = {_text(k): _text(v) for k, v in items}
            if "s" in data:
                keys.append(data["s"])
        return cursor, keys
