"""Decisions per scene, outcome and minute, folded from the shared audit log.

The audit log is the one record every replica shares and every decision is
on, so counting from it is honest across replicas (a per-process counter is
not). Each replica keeps a fold of the log's tail in memory and reads only the
records appended since its last look; the first look starts at most
``max_scan`` records before the head, and says so when that cut the window.
The same pass checks that each record read links to the one before it (the
hash chain), so the dashboard can say whether the tail it read is intact.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from gateway.audit.chain import GENESIS, verify_chain
from gateway.store.base import Store

__all__ = ["OUTCOMES", "DecisionStats", "StatsView"]

OUTCOMES = ("granted", "standard", "constrained")
_PAGE = 1000


@dataclass(frozen=True, slots=True)
class StatsView:
    """The window as a page shows it: minutes oldest first, counts per scene and outcome."""

    minutes: tuple[int, ...]  # epoch minutes, oldest first
    per_scene: dict[str, dict[str, list[int]]]  # scene → outcome → count per minute
    tokens_issued: int
    first_seq: int
    last_seq: int
    read: int
    capped: bool
    head_hash: str  # the last record's hash (GENESIS for an empty log)
    chain_problem: str | None  # None while every record read links to the one before

    def total(self, scene: str, outcome: str | None = None) -> int:
        counts = self.per_scene.get(scene, {})
        if outcome is not None:
            return sum(counts.get(outcome, ()))
        return sum(sum(v) for v in counts.values())


@dataclass
class DecisionStats:
    window_minutes: int = 60
    max_scan: int = 20_000
    _next: int | None = None  # records with seq > _next are still to read
    _first: int = 0
    _read: int = 0
    _oldest_time: float | None = None
    _prev_hash: str = GENESIS
    _problem: str | None = None
    _buckets: dict[int, Counter[tuple[str, str]]] = field(default_factory=dict)
    _tokens: Counter[int] = field(default_factory=Counter)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def view(self, store: Store, now: dt.datetime) -> StatsView:
        async with self._lock:
            await self._catch_up(store)
        current = int(now.timestamp()) // 60
        minutes = tuple(range(current - self.window_minutes + 1, current + 1))
        for old in [m for m in self._buckets if m < minutes[0]]:
            del self._buckets[old]
        for old in [m for m in self._tokens if m < minutes[0]]:
            del self._tokens[old]
        scenes = sorted({scene for b in self._buckets.values() for scene, _ in b})
        per_scene = {
            scene: {
                outcome: [self._buckets.get(m, Counter())[(scene, outcome)] for m in minutes]
                for outcome in OUTCOMES
            }
            for scene in scenes
        }
        window_start = minutes[0] * 60
        capped = self._first > 0 and (self._oldest_time is None or self._oldest_time > window_start)
        return StatsView(
            minutes=minutes,
            per_scene=per_scene,
            tokens_issued=sum(self._tokens[m] for m in minutes),
            first_seq=self._first + 1,
            last_seq=self._next or 0,
            read=self._read,
            capped=capped,
            head_hash=self._prev_hash,
            chain_problem=self._problem,
        )

    async def _catch_up(self, store: Store) -> None:
        if self._next is None:
            head = await _head(store)
            self._next = self._first = max(0, head - self.max_scan)
            if self._first > 0:
                # The tail is checked from the record before it: its hash is where it starts.
                before = await store.audit_records(self._first - 1, 1)
                self._prev_hash = before[0].hash if before else GENESIS
        budget = self.max_scan
        while budget > 0:
            records = await store.audit_records(self._next, min(_PAGE, budget))
            if records and self._problem is None:
                self._problem = verify_chain(records, self._prev_hash, self._next)
            for record in records:
                self._fold(record.entry)
                self._next = record.seq
                self._prev_hash = record.hash
            self._read += len(records)
            budget -= len(records)
            if len(records) < _PAGE:
                break

    def _fold(self, entry: dict[str, object]) -> None:
        if "kind" in entry:  # a record that is not a decision
            return
        try:
            at = dt.datetime.fromisoformat(str(entry["time"])).timestamp()
            scene, outcome = str(entry["scene"]), str(entry["outcome"])
        except (KeyError, ValueError):
            return
        if self._oldest_time is None:
            self._oldest_time = at
        minute = int(at) // 60
        self._buckets.setdefault(minute, Counter())[(scene, outcome)] += 1
        if entry.get("token_jti"):
            self._tokens[minute] += 1


async def _head(store: Store) -> int:
    """The last record's seq, found by probing: the store contract has no 'last'."""
    if not await store.audit_records(0, 1):
        return 0
    low, high = 1, 2  # a record with seq `low` exists
    while await store.audit_records(high - 1, 1):
        low, high = high, high * 2
    # seq `low` exists, seq `high` does not
    while high - low > 1:
        mid = (low + high) // 2
        if await store.audit_records(mid - 1, 1):
            low = mid
        else:
            high = mid
    return low
