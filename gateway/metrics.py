"""Prometheus metrics (DESIGN §10), in a registry per application, not a global one."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["LoopHistogram", "Metrics"]

_FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class _Series:
    __slots__ = ("_bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self._bounds, value)] += 1
        self.total += value


class LoopHistogram(Collector):
    """A histogram with one label, observed from the event loop's thread only.

    prometheus_client's Histogram takes a lock and walks its buckets in Python
    on every observation (~1 µs); a decision records four stages, so the
    decision path uses this one: a bisect and two additions. Scrapes run on
    the same loop, so nothing needs a lock. Exposition is that of a Histogram.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        label: str,
        buckets: tuple[float, ...],
        registry: CollectorRegistry,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._label = label
        self._bounds = buckets
        # The le labels exactly as prometheus_client writes them.
        self._les = [floatToGoString(b) for b in buckets] + ["+Inf"]  # type: ignore[no-untyped-call]
        self._series: dict[str, _Series] = {}
        registry.register(self)

    def labels(self, value: str) -> _Series:
        series = self._series.get(value)
        if series is None:
            series = self._series[value] = _Series(self._bounds)
        return series

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield HistogramMetricFamily(self._name, self._documentation, labels=[self._label])

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=[self._label])
        for value, series in list(self._series.items()):
            cumulative = accumulate(series.counts)
            family.add_metric([value], list(zip(self._les, cumulative, strict=True)), series.total)
        yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.decisions = Counter(
            "xinyi_decisions_total",
            "Decisions by scene, outcome and partner",
            ["scene", "outcome", "partner"],
            registry=r,
        )
        self.stage_seconds = LoopHistogram(
            "xinyi_stage_seconds", "Time spent per decision stage", "stage", _FAST, r
        )
        self.upstream_calls = Counter(
            "xinyi_upstream_calls_total",
            "Calls to credit sources",
            ["adapter", "result"],
            registry=r,
        )
        self.circuit_open = Gauge(
            "xinyi_upstream_circuit_open",
            "1 while a credit source's circuit is open",
            ["adapter"],
            registry=r,
        )
        self.tokens_issued = Counter(
            "xinyi_tokens_issued_total", "Benefit tokens signed", ["scene"], registry=r
        )
        self.tokens_revoked = Counter(
            "xinyi_tokens_revoked_total", "Benefit tokens revoked", ["reason"], registry=r
        )
        self.audit_append_seconds = LoopHistogram(
            "xinyi_audit_append_seconds",
            "Time until a decision's audit record is durable, by store backend",
            "store",
            _FAST,
            r,
        )
        self.audit_append_failures = Counter(
            "xinyi_audit_append_failures_total",
            "Decisions withheld because their audit record could not be made durable",
            registry=r,
        )
        self.guard_rejections = Counter(
            "xinyi_guard_rejections_total",
            "Policy problems refused by the guard",
            ["code"],
            registry=r,
        )
        self.guard_violations = Counter(
            "xinyi_guard_violations_total",
            "Constraints dropped at run time by the guard (should stay 0)",
            ["scene"],
            registry=r,
        )
        self.oauth_tokens = Counter(
            "xinyi_oauth_token_requests_total",
            "Token endpoint answers by result (issued or error)",
            ["result"],
            registry=r,
        )
        self.policy_reloads = Counter(
            "xinyi_policy_reloads_total",
            "Policy reloads by result (loaded or refused)",
            ["result"],
            registry=r,
        )
        self.rate_limited = Counter(
            "xinyi_rate_limited_total", "Requests refused by a rate limit", ["partner"], registry=r
        )
        self.errors = Counter(
            "xinyi_errors_total", "Problem responses by code", ["code"], registry=r
        )
        self.records_dropped = Counter(
            "xinyi_records_ignored_total",
            "Credit records ignored because their domain may not enter credit supervision",
            registry=r,
        )
        self.outbox_deliveries = Counter(
            "xinyi_outbox_deliveries_total",
            "Event delivery attempts by partner and result (delivered, retry, dead)",
            ["partner", "result"],
            registry=r,
        )
        self.commitments = Counter(
            "xinyi_commitments_total",
            "Commitment transitions by hall, kind and new status (open, fulfilled, breached)",
            ["partner", "kind", "status"],
            registry=r,
        )
