"""The key ring on /metrics: each key's dates, read at scrape time (reloads show at once)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.tokens.keys import KeyRing

__all__ = ["KeyRingCollector"]


class KeyRingCollector(Collector):
    """``xinyi_signing_key_created_timestamp_seconds`` and ``…_verify_until_…`` per key.

    Alert rules compute a key's age from the first (rotation due) and the
    end of a verifying key's life from the second (config/prometheus/).
    """

    def __init__(self, ring: Callable[[], KeyRing]) -> None:
        self._ring = ring

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(self._families())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        created, until = self._families()
        for key in self._ring().entries():
            labels = [key.kid, key.alg, key.status]
            created.add_metric(labels, key.created.timestamp())
            if key.verify_until is not None:
                until.add_metric(labels, key.verify_until.timestamp())
        yield created
        yield until

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        labels = ["kid", "alg", "status"]
        return (
            GaugeMetricFamily(
                "xinyi_signing_key_created_timestamp_seconds",
                "When each signing key was made (Unix time)",
                labels=labels,
            ),
            GaugeMetricFamily(
                "xinyi_signing_key_verify_until_timestamp_seconds",
                "Until when a replaced key still verifies (Unix time)",
                labels=labels,
            ),
        )
