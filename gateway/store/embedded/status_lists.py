"""Token status lists on the embedded store: the bits in memory, the slots in SQLite.

A token's slot is written with its row in the decision batch (core.py); a slot
without a token, and every status other than VALID, has a row in
``status_entries``. Opening rebuilds the in-memory lists from both.
"""

from __future__ import annotations

import secrets
import sqlite3
from typing import TYPE_CHECKING

from gateway.ids import random_below
from gateway.store.base import StatusRef

if TYPE_CHECKING:
    from gateway.store.embedded.core import EmbeddedStore

__all__ = ["SCHEMA", "STATUS_LIST_SIZE", "EmbeddedStatusLists"]

# Entries per status list: the IETF draft's privacy advice is a large list, so
# one token's index says nothing about who holds it.
STATUS_LIST_SIZE = 131_072
# Start a new list once this share of the current one is handed out, so random
# allocation stays cheap and indexes stay unguessable.
_LIST_FILL = 0.5

SCHEMA = """
CREATE TABLE IF NOT EXISTS status_entries (
    list_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    status INTEGER NOT NULL,
    PRIMARY KEY (list_id, idx)
);
"""


class _StatusList:
    __slots__ = ("allocated", "bits")

    def get(self, index: int) -> int:
        byte, shift = divmod(index, 4)
        return (self.bits[byte] >> (shift * 2)) & 0b11

    def __init__(self) -> None:
        self.bits = bytearray(STATUS_LIST_SIZE // 4)
        self.allocated: set[int] = set()

    def set(self, index: int, status: int) -> None:
        # Draft bit order: entry i sits in byte i // 4, starting at the least significant bits.
        byte, shift = divmod(index, 4)
        shift *= 2
        self.bits[byte] = (self.bits[byte] & ~(0b11 << shift)) | ((status & 0b11) << shift)


class EmbeddedStatusLists:
    def __init__(self, store: EmbeddedStore) -> None:
        self._store = store
        self.lists: dict[str, _StatusList] = {}
        self._current_list = ""

    def load(self, reader: sqlite3.Connection) -> None:
        # A token's status index is in its row; status_entries holds only the
        # entries set to something other than VALID (older state files also
        # hold VALID rows, which are harmless).
        for list_id, idx in reader.execute(
            "SELECT json_extract(body, '$.status.list_id'), json_extract(body, '$.status.index')"
            " FROM tokens"
        ):
            self.lists.setdefault(list_id, _StatusList()).allocated.add(idx)
        for list_id, idx, status in reader.execute(
            "SELECT list_id, idx, status FROM status_entries"
        ):
            slist = self.lists.setdefault(list_id, _StatusList())
            slist.allocated.add(idx)
            if status:
                slist.set(idx, status)
        self._current_list = next(
            (k for k, v in self.lists.items() if len(v.allocated) < STATUS_LIST_SIZE * _LIST_FILL),
            "",
        )

    async def allocate_status(self) -> StatusRef:
        slist = self.lists.get(self._current_list)
        if slist is None or len(slist.allocated) >= STATUS_LIST_SIZE * _LIST_FILL:
            if slist is not None:
                # A filled list never hands out an index again: only its bits are read.
                slist.allocated = set()
            self._current_list = secrets.token_hex(8)
            slist = self.lists.setdefault(self._current_list, _StatusList())
        while True:
            index = random_below(STATUS_LIST_SIZE)
            if index not in slist.allocated:
                slist.allocated.add(index)
                return StatusRef(self._current_list, index)

    async def set_status(self, ref: StatusRef, status: int) -> None:
        await self._store.write(
            [
                (
                    "INSERT INTO status_entries VALUES (?, ?, ?)"
                    " ON CONFLICT (list_id, idx) DO UPDATE SET status = excluded.status",
                    (ref.list_id, ref.index, status),
                )
            ],
        )
        self.lists.setdefault(ref.list_id, _StatusList()).set(ref.index, status)

    async def status_list(self, list_id: str) -> tuple[bytes, int] | None:
        slist = self.lists.get(list_id)
        return (bytes(slist.bits), STATUS_LIST_SIZE) if slist else None

    async def token_status(self, ref: StatusRef) -> int:
        slist = self.lists.get(ref.list_id)
        return slist.get(ref.index) if slist else 0
