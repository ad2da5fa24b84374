"""The per-subject record cache: TTL, size bound, forget."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from adapters.credit.base import CreditRecord, RecordStatus
from gateway.facts import cache as cache_module
from gateway.facts.cache import RecordCache

RECORD = CreditRecord(
    "r1",
    "credit_score",
    "market_credit_score",
    False,
    False,
    dt.date(2025, 1, 1),
    None,
    RecordStatus.ACTIVE,
    650,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(cache_module, "time", SimpleNamespace(monotonic=c))
    return c


def test_hit_until_the_ttl_passes(clock: Clock) -> None:
    cache = RecordCache(ttl_seconds=30, max_entries=10)
    cache.put("key-a", [RECORD])
    assert cache.get("key-a") == [RECORD]
    assert cache.get("key-b") is None
    clock.now += 30
    assert cache.get("key-a") == [RECORD]
    clock.now += 0.001
    assert cache.get("key-a") is None


def test_forget_drops_the_entry(clock: Clock) -> None:
    cache = RecordCache(ttl_seconds=30, max_entries=10)
    cache.put("key-a", [RECORD])
    cache.forget("key-a")
    assert cache.get("key-a") is None
    cache.forget("key-never-cached")


def test_clear_drops_every_entry(clock: Clock) -> None:
    cache = RecordCache(ttl_seconds=30, max_entries=10)
    cache.put("key-a", [RECORD])
    cache.put("key-b", [RECORD])
    cache.clear()
    assert cache.get("key-a") is None
    assert cache.get("key-b") is None


def test_size_is_bounded(clock: Clock) -> None:
    cache = RecordCache(ttl_seconds=30, max_entries=2)
    for sid in ("key-a", "key-b", "key-c"):
        cache.put(sid, [])
    assert cache.get("key-a") is None
    assert cache.get("key-b") == []
    assert cache.get("key-c") == []


@pytest.mark.parametrize(("ttl", "size"), [(0, 10), (30, 0)])
def test_disabled_cache_keeps_nothing(clock: Clock, ttl: float, size: int) -> None:
    cache = RecordCache(ttl_seconds=ttl, max_entries=size)
    cache.put("key-a", [RECORD])
    assert cache.get("key-a") is None


def test_expired_entries_are_swept_without_being_asked_for(clock: Clock) -> None:
    # Traffic over many subjects asks for each one once: held memory must follow
    # the subjects of the last TTL, not every subject ever asked about.
    cache = RecordCache(ttl_seconds=30, max_entries=1_000)
    for i in range(100):
        cache.put(f"early-{i}", [RECORD])
        clock.now += 0.1
    clock.now += 30
    cache.put("late", [RECORD])
    assert len(cache) == 1
    assert cache.get("late") == [RECORD]


def test_a_refreshed_entry_outlives_older_ones(clock: Clock) -> None:
    cache = RecordCache(ttl_seconds=30, max_entries=2)
    cache.put("key-a", [RECORD])
    clock.now += 10
    cache.put("key-b", [])
    clock.now += 10
    cache.put("key-a", [RECORD])  # refreshed: now expires after key-b
    cache.put("key-c", [])  # over the bound: the oldest entry, key-b, goes
    assert cache.get("key-b") is None
    assert cache.get("key-a") == [RECORD]
    assert cache.get("key-c") == []
