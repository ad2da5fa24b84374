"""Every metric the gateway declares moves under the scenario that should move it.

Issue 14 found ``xinyi_audit_append_seconds`` and ``xinyi_records_ignored_total``
declared and never updated (and ``xinyi_upstream_circuit_open`` had no circuit
behind it). Each declared family here has a scenario; a family added to
``gateway.metrics.Metrics`` without one fails ``test_every_family_has_a_scenario``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.credit.base import CircuitOpen
from adapters.delivery.base import OutboundEvent
from gateway.metrics import Metrics
from gateway.outbox.models import OutboxItem
from gateway.store.base import StoreUnavailable
from tests.policy_ops._kit import copy_policies, replace_once
from tests.policy_ops.conftest import Serve, Served
from tests.policy_ops.test_runtime_guard import SCORE_CONSTRAINT, bypass_lint

SCORE_650 = "person, credit score 650"
SCORE_560 = "person, credit score 560"
CLEAN_ENTERPRISE = "tax grade A, clean for 3+ years"
PROHIBITED = "person, score 640, records in prohibited domains (信访, 养犬) with no effect"

Scenario = Callable[[Serve, Path, pytest.MonkeyPatch], Awaitable[Served]]
SCENARIOS: dict[str, Scenario] = {}


def moves(*families: str) -> Callable[[Scenario], Scenario]:
    def register(scenario: Scenario) -> Scenario:
        for family in families:
            SCENARIOS[family] = scenario
        return scenario

    return register


def total(exposition: str, family: str) -> float:
    """Sum of a family's counting samples (``_total``, ``_count``, or a gauge's value)."""
    for metric in text_string_to_metric_families(exposition):
        if metric.name == family.removesuffix("_total"):
            return sum(
                s.value
                for s in metric.samples
                if not s.name.endswith(("_bucket", "_sum", "_created"))
            )
    return 0.0


@moves(
    "xinyi_decisions_total",
    "xinyi_stage_seconds",
    "xinyi_upstream_calls_total",
    "xinyi_tokens_issued_total",
    "xinyi_audit_append_seconds",
)
async def granted_decision(serve: Serve, _: Path, __: pytest.MonkeyPatch) -> Served:
    served = await serve()
    assert (await served.decide("library", served.subject(SCORE_650))).status == 200
    return served


@moves("xinyi_records_ignored_total")
async def prohibited_records(serve: Serve, _: Path, __: pytest.MonkeyPatch) -> Served:
    served = await serve()
    assert (await served.decide("library", served.subject(PROHIBITED))).status == 200
    return served


@moves("xinyi_tokens_revoked_total")
async def listing_revokes(serve: Serve, _: Path, __: pytest.MonkeyPatch) -> Served:
    served = await serve()
    subject = served.subject(SCORE_650)
    assert (await served.decide("library", subject)).status == 200
    today = dt.date.today()
    event = {
        "subject": {"kind": subject.kind, "id": subject.id},
        "event": "listed",
        "record": {
            "record_id": "rec-metrics-0001",
            "type": "dishonest_executed",
            "domain": "court_enforcement",
            "effective_document": True,
            "adverse": True,
            "decided_on": (today - dt.timedelta(days=3)).isoformat(),
            "publication_until": (today + dt.timedelta(days=900)).isoformat(),
        },
    }
    posted = await served.client.post(
        "/v1/events/credit", json=event, headers=served.auth("demo-platform")
    )
    assert (await posted.json())["tokens_revoked"] == 1
    return served


@moves("xinyi_upstream_circuit_open")
async def credit_source_down(serve: Serve, _: Path, monkeypatch: pytest.MonkeyPatch) -> Served:
    served = await serve()

    async def open_circuit(*_a: object) -> None:
        # What a source's breaker raises while open (the platform adapter's purgatory;
        # tests/upstream drive the real one against the fake platform).
        raise CircuitOpen("the credit source's circuit is open", retry_after_s=5)

    monkeypatch.setattr(served.gateway.credit, "records", open_circuit)
    refused = await served.decide("library", served.subject(SCORE_650))
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "5"
    return served


@moves("xinyi_commitments_total")
async def commitment_registered(serve: Serve, _: Path, __: pytest.MonkeyPatch) -> Served:
    served = await serve()
    subject = served.subject(CLEAN_ENTERPRISE)
    context = {"matter_code": "LN-210100-0001", "missing_key_materials": False}
    decided = await served.decide("approval", subject, context=context)
    assert decided.status == 200
    registered = await served.client.post(
        "/v1/commitments",
        json={
            "decision_id": (await decided.json())["decision_id"],
            "subject": {"kind": subject.kind, "id": subject.id},
            "missing_materials": ["章程修正案"],
            "due": (dt.date.today() + dt.timedelta(days=10)).isoformat(),
        },
        headers=served.auth("demo-service-hall"),
    )
    assert registered.status == 201, await registered.text()
    return served


@moves("xinyi_outbox_deliveries_total")
async def undeliverable_event(serve: Serve, _: Path, __: pytest.MonkeyPatch) -> Served:
    # An event queued for a delivery the partner's configuration no longer names is
    # kept as a dead letter for an operator, and counted.
    served = await serve()
    event = OutboundEvent(
        "evt_metrics_1", "token_revoked", "2026-12-04T00:00:00Z", "demo-library", {}
    )
    await served.gateway.events.queue([OutboxItem("itm_metrics_1", "gone", event)])
    # The app's own dispatcher claims it (or this pass does, if it is first).
    dead = served.gateway.metrics.outbox_deliveries.labels("demo-library", "dead")
    for _ in range(200):
        if dead._value.get() or await served.gateway.dispatcher.run_once():
            break
        await asyncio.sleep(0.01)
    return served


@moves("xinyi_audit_append_failures_total")
async def audit_not_writable(serve: Serve, _: Path, monkeypatch: pytest.MonkeyPatch) -> Served:
    served = await serve()

    async def refused(*_a: object) -> None:
        raise StoreUnavailable("the disk is full")

    monkeypatch.setattr(served.gateway.store, "record_decision", refused)
    assert (await served.decide("library", served.subject(SCORE_650))).status == 503
    return served


@moves("xinyi_guard_rejections_total", "xinyi_policy_reloads_total")
async def refused_reload(serve: Serve, tmp: Path, __: pytest.MonkeyPatch) -> Served:
    policies = copy_policies(tmp / "policies")
    served = await serve(policy_dir=policies)
    transit = policies / "transit.yaml"
    replace_once(transit, "basic_public_service: true", "basic_public_service: false")
    replace_once(transit, "tests:", SCORE_CONSTRAINT)
    assert (await served.reload()).status == 409
    return served


@moves("xinyi_guard_violations_total")
async def runtime_guard(serve: Serve, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Served:
    policies = copy_policies(tmp / "policies")
    transit = policies / "transit.yaml"
    replace_once(transit, "basic_public_service: true", "basic_public_service: false")
    replace_once(transit, "tests:", SCORE_CONSTRAINT)
    bypass_lint(monkeypatch)
    served = await serve(policy_dir=policies)
    assert (await served.decide("transit", served.subject(SCORE_560))).status == 200
    return served


@moves("xinyi_oauth_token_requests_total")
async def bad_client_assertion(serve: Serve, _: Path, __: pytest.MonkeyPatch) -> Served:
    served = await serve()
    form = {"grant_type": "client_credentials", "client_assertion": "not-a-jwt"}
    answer = await served.client.post("/oauth/token", data=form)
    assert answer.status == 401
    assert (await answer.json())["error"] == "invalid_client"
    return served


@moves("xinyi_rate_limited_total")
async def over_the_rate(serve: Serve, _: Path, __: pytest.MonkeyPatch) -> Served:
    slow = {
        "id": "slow-platform",
        "kind": "platform",
        "rate_limit": {"per_second": 0.01, "burst": 1},
    }
    served = await serve(extra_partners={"slow-platform-key-" + "k" * 24: slow})
    headers = served.auth("slow-platform")
    assert (await served.client.get("/v1/scenes", headers=headers)).status == 200
    assert (await served.client.get("/v1/scenes", headers=headers)).status == 429
    return served


@moves("xinyi_errors_total")
async def not_found(serve: Serve, _: Path, __: pytest.MonkeyPatch) -> Served:
    served = await serve()
    headers = served.auth("demo-library")
    assert (await served.client.get("/v1/decisions/dec_none", headers=headers)).status == 404
    return served


def _declared() -> set[str]:
    return {
        family.name + ("_total" if family.type == "counter" else "")
        for family in Metrics().registry.collect()
    }


def test_every_family_has_a_scenario() -> None:
    assert _declared() == set(SCENARIOS)


@pytest.mark.parametrize("family", sorted(SCENARIOS))
async def test_the_family_moves(
    family: str, serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = await SCENARIOS[family](serve, tmp_path, monkeypatch)
    assert total(await served.metrics(), family) > 0, family
