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
    cache.put("person", "a", [RECORD])
    assert cache.get("person", "a") == [RECORD]
    assert cache.get("enterprise", "a") is None
    clock.now += 30
    assert cache.get("person", "a") == [RECORD]
    clock.now += 0.001
    assert cache.get("person", "a") is None


def test_forget_drops_the_entry(clock: Clock) -> None:
    cache = RecordCache(ttl_seconds=30, max_entries=10)
    cache.put("person", "a", [RECORD])
    cache.forget("person", "a")
    assert cache.get("person", "a") is None
    cache.forget("person", "never-cached")


def test_size_is_bounded(clock: Clock) -> None:
    cache = RecordCache(ttl_seconds=30, max_entries=2)
    for sid in ("a", "b", "c"):
        cache.put("person", sid, [])
    assert cache.get("person", "a") is None
    assert cache.get("person", "b") == []
    assert cache.get("person", "c") == []


@pytest.mark.parametrize(("ttl", "size"), [(0, 10), (30, 0)])
def test_disabled_cache_keeps_nothing(clock: Clock, ttl: float, size: int) -> None:
    cache = RecordCache(ttl_seconds=ttl, max_entries=size)
    cache.put("person", "a", [RECORD])
    assert cache.get("person", "a") is None


def test_forget_by_subject_key_drops_only_that_subject() -> None:
    cache = RecordCache(ttl_seconds=60, max_entries=2)
    cache.put("person", "a", [], "key-a")
    cache.put("person", "b", [], "key-b")
    cache.forget_subject_key("key-a")
    cache.forget_subject_key("key-unknown")
    assert cache.get("person", "a") is None
    assert cache.get("person", "b") == []
    # an evicted entry's pseudonym goes with it
    cache.put("person", "c", [], "key-c")
    cache.put("person", "d", [], "key-d")
    cache.forget_subject_key("key-b")
    assert cache.get("person", "c") == []
    assert cache.get("person", "d") == []
