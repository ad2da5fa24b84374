"""Prometheus metrics (DESIGN §10), in a registry per application, not a global one."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]

_FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


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
        self.stage_seconds = Histogram(
            "xinyi_stage_seconds",
            "Time spent per decision stage",
            ["stage"],
            buckets=_FAST,
            registry=r,
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
        self.audit_append_seconds = Histogram(
            "xinyi_audit_append_seconds",
            "Time until a decision's audit record is durable",
            buckets=_FAST,
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
