"""The signed status-list cache is bounded (issue 14, item 4: it was an unbounded dict)."""

from __future__ import annotations

from gateway.tokens.status_cache import StatusListCache


def test_the_cache_keeps_at_most_its_bound_dropping_the_least_recently_served() -> None:
    cache = StatusListCache(max_entries=3)
    for i in range(3):
        cache.put(f"list-{i}", f"jwt-{i}", fresh_until=100.0)
    assert cache.get("list-0", now=1.0) == "jwt-0"  # list-0 is now the most recent
    cache.put("list-3", "jwt-3", fresh_until=100.0)
    assert len(cache) == 3
    assert cache.get("list-1", now=1.0) is None
    assert cache.get("list-0", now=1.0) == "jwt-0"
    for i in range(1000):
        cache.put(f"more-{i}", "jwt", fresh_until=100.0)
    assert len(cache) == 3


def test_a_stale_entry_is_not_served() -> None:
    cache = StatusListCache()
    cache.put("list", "jwt", fresh_until=5.0)
    assert cache.get("list", now=5.0) == "jwt"
    assert cache.get("list", now=5.1) is None
    cache.clear()
    assert len(cache) == 0
