"""The decision path's lock-free histogram exposes what prometheus_client's would."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from gateway.metrics import LoopHistogram

BUCKETS = (0.0001, 0.00025, 0.001, 0.1, 1.0)
VALUES = (0.0, 0.0001, 0.00010001, 0.0002, 0.00025, 0.5, 1.0, 3.0, 0.05)


def exposition(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    # prometheus_client adds a _created sample per series; the loop histogram does not.
    return [line for line in text.splitlines() if "_created" not in line]


def test_matches_prometheus_client_histogram_sample_for_sample() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopHistogram("x_seconds", "Stage time", "stage", BUCKETS, ours)
    reference = Histogram("x_seconds", "Stage time", ["stage"], buckets=BUCKETS, registry=theirs)
    for stage, values in (("fetch", VALUES), ("sign", VALUES[:3]), ("idle", ())):
        mine, ref = loop.labels(stage), reference.labels(stage)
        for value in values:
            mine.observe(value)
            ref.observe(value)
    assert exposition(ours) == exposition(theirs)
    assert 'x_seconds_bucket{le="0.0001",stage="fetch"} 2.0' in exposition(ours)
    assert 'x_seconds_count{stage="sign"} 3.0' in exposition(ours)


def test_a_name_taken_twice_is_refused() -> None:
    registry = CollectorRegistry(auto_describe=True)
    LoopHistogram("y_seconds", "y", "stage", BUCKETS, registry)
    with pytest.raises(ValueError, match="Duplicated"):
        Histogram("y_seconds", "y", registry=registry)
