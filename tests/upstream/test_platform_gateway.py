"""The platform adapter through the gateway's HTTP API, against a real upstream.

Every failure the platform can show — 500s, hangs, answers slower than the
deadline, malformed, cut-off and schema-breaking bodies — ends in 503
``dependency_unavailable`` with ``Retry-After`` and no decision; retries mend
short faults inside the deadline; the circuit opens, fails fast, and closes
again once the platform answers.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.upstream.conftest import TIGHT, Clock, MakeUpstream, Upstream

SCENES_BY_KIND = {"enterprise": ("loan", "approval"), "person": ("library", "transit")}


async def _decide(up: Upstream, kind: str = "enterprise", scene: str = "loan") -> Any:
    demo = up.demo
    subject = demo.subject(kind, {scene: "granted"})
    return await demo.decide(subject, scene)


async def _assert_unavailable(up: Upstream, response: Any) -> None:
    assert response.status == 503, await response.text()
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["code"] == "dependency_unavailable"
    assert int(response.headers["Retry-After"]) >= 1


async def test_every_demo_subject_decides_as_expected_over_the_platform(
    make_upstream: MakeUpstream,
) -> None:
    up = await make_upstream()
    for subject in up.demo.subjects:
        for scene in SCENES_BY_KIND[subject["kind"]]:
            response = await up.demo.decide(subject, scene)
            assert response.status == 200, await response.text()
            assert (await response.json())["outcome"] == subject["expected"][scene], (
                subject["label"],
                scene,
            )
    assert up.sample("xinyi_credit_upstream_seconds_count", adapter="platform", outcome="ok") > 0
    assert up.sample("xinyi_credit_circuit_state", adapter="platform") == 0


async def test_short_runs_of_500s_are_retried_within_the_deadline(
    make_upstream: MakeUpstream,
) -> None:
    up = await make_upstream()
    up.platform.fail("error", times=2)
    response = await _decide(up)
    assert response.status == 200, await response.text()
    assert (await response.json())["outcome"] == "granted"
    assert up.platform.lookups == 3
    assert (
        up.sample("xinyi_credit_upstream_seconds_count", adapter="platform", outcome="http_5xx")
        == 2
    )


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        ("error", "http_5xx"),
        ("hang", "timeout"),
        ("malformed", "invalid"),
        ("partial", "connection"),
        ("invalid", "invalid"),
    ],
)
async def test_a_failing_platform_gives_503_and_no_decision(
    make_upstream: MakeUpstream, fault: Any, outcome: str
) -> None:
    up = await make_upstream(**TIGHT)
    before = up.decisions_made()
    up.platform.fail(fault)
    response = await _decide(up)
    await _assert_unavailable(up, response)
    assert up.decisions_made() == before
    assert up.platform.lookups >= 2  # retried before giving up
    text = await up.metrics()
    assert f'xinyi_credit_upstream_seconds_count{{adapter="platform",outcome="{outcome}"}}' in text
    assert 'xinyi_upstream_calls_total{adapter="platform",result="error"} 1.0' in text


async def test_an_answer_slower_than_the_deadline_is_not_used(
    make_upstream: MakeUpstream,
) -> None:
    # Each attempt may take 0.3 s, the whole lookup 0.8 s: a 1.5 s answer never arrives.
    up = await make_upstream(**TIGHT)
    up.platform.fail("slow", delay=1.5)
    response = await _decide(up)
    await _assert_unavailable(up, response)
    up.platform.heal()
    assert (await _decide(up)).status == 200


async def test_one_slow_answer_within_the_deadline_is_waited_for(
    make_upstream: MakeUpstream,
) -> None:
    up = await make_upstream(timeout_seconds=2.0, deadline_seconds=3.0)
    up.platform.fail("slow", times=1, delay=0.2)
    response = await _decide(up)
    assert response.status == 200, await response.text()
    assert up.platform.lookups == 1


async def test_the_circuit_opens_fails_fast_and_closes_again(
    make_upstream: MakeUpstream, clock: Clock
) -> None:
    up = await make_upstream(breaker_threshold=2, breaker_reset_seconds=10)
    up.platform.fail("error")
    for _ in range(2):
        await _assert_unavailable(up, await _decide(up))
    assert up.sample("xinyi_credit_circuit_state", adapter="platform") == 2
    assert (
        up.sample("xinyi_credit_circuit_transitions_total", adapter="platform", state="opened") == 1
    )

    # Open: the platform is not asked at all, and the answer says when to come back.
    asked = up.platform.lookups
    response = await _decide(up)
    await _assert_unavailable(up, response)
    assert up.platform.lookups == asked
    assert 8 <= int(response.headers["Retry-After"]) <= 10  # when the circuit half-opens
    # The gateway's own view of it: refused lookups are not upstream calls.
    assert up.sample("xinyi_upstream_circuit_open", adapter="platform") == 1
    assert up.sample("xinyi_upstream_calls_total", adapter="platform", result="error") == 2
    assert (
        up.sample("xinyi_upstream_calls_total", adapter="platform", result="short_circuited") == 1
    )
    clock.advance(6)
    response = await _decide(up)
    await _assert_unavailable(up, response)
    assert 2 <= int(response.headers["Retry-After"]) <= 4
    assert up.platform.lookups == asked

    # The platform recovers; after the reset time one trial lookup closes the circuit.
    up.platform.heal()
    clock.advance(5)
    response = await _decide(up)
    assert response.status == 200, await response.text()
    assert up.platform.lookups == asked + 1
    assert up.sample("xinyi_credit_circuit_state", adapter="platform") == 0
    assert up.sample("xinyi_upstream_circuit_open", adapter="platform") == 0
    for state in ("half-opened", "closed"):
        assert (
            up.sample("xinyi_credit_circuit_transitions_total", adapter="platform", state=state)
            == 1
        )
    text = await up.metrics()
    assert 'xinyi_credit_circuit_state{adapter="platform"} 0.0' in text


async def test_a_failed_trial_reopens_the_circuit(
    make_upstream: MakeUpstream, clock: Clock
) -> None:
    up = await make_upstream(breaker_threshold=1, breaker_reset_seconds=10)
    up.platform.fail("malformed")
    await _assert_unavailable(up, await _decide(up))
    clock.advance(11)
    asked = up.platform.lookups
    await _assert_unavailable(up, await _decide(up))  # the half-open trial fails too
    assert up.platform.lookups > asked
    assert up.sample("xinyi_credit_circuit_state", adapter="platform") == 2
    assert (
        up.sample("xinyi_credit_circuit_transitions_total", adapter="platform", state="opened") == 2
    )


async def test_readiness_reports_the_platform(make_upstream: MakeUpstream) -> None:
    up = await make_upstream(breaker_threshold=1, breaker_reset_seconds=30)
    assert (await up.demo.client.get("/readyz")).status == 200
    up.platform.fail("error")
    await _assert_unavailable(up, await _decide(up))
    ready = await up.demo.client.get("/readyz")
    assert ready.status == 503
    # While open, Retry-After says when the circuit lets a trial lookup through.
    response = await _decide(up)
    await _assert_unavailable(up, response)
    assert 20 <= int(response.headers["Retry-After"]) <= 30


async def test_wrong_credentials_are_not_retried(make_upstream: MakeUpstream) -> None:
    up = await make_upstream(bearer_token="not-the-token")
    response = await _decide(up)
    await _assert_unavailable(up, response)
    assert up.platform.lookups == 1
    text = await up.metrics()
    assert 'outcome="http_4xx"' in text


async def test_a_credit_event_evicts_cached_platform_records(make_upstream: MakeUpstream) -> None:
    """The gateway caches the platform's answers; a credit event makes the next
    decision read the platform again (the adapter keeps no cache of its own)."""
    up = await make_upstream(cache_seconds=3600)
    demo = up.demo
    subject = demo.subject("enterprise", {"loan": "granted"})
    assert (await (await demo.decide(subject, "loan")).json())["outcome"] == "granted"
    asked = up.platform.lookups
    assert (await (await demo.decide(subject, "loan")).json())["outcome"] == "granted"
    assert up.platform.lookups == asked  # served from the gateway's cache

    listing = {
        "record_id": "ev-upstream-1",
        "type": "serious_dishonesty_listed",
        "domain": "serious_dishonesty_list",
        "effective_document": True,
        "adverse": True,
        "decided_on": demo.gateway.today().isoformat(),
    }
    # The platform holds the change first, then tells the gateway.
    from adapters.credit.base import CreditRecord, RecordStatus

    current = list(up.platform.records[("enterprise", subject["id"])])
    current.append(
        CreditRecord(
            record_id="ev-upstream-1",
            type="serious_dishonesty_listed",
            domain="serious_dishonesty_list",
            effective_document=True,
            adverse=True,
            decided_on=demo.gateway.today(),
            publication_until=None,
            status=RecordStatus.ACTIVE,
        )
    )
    up.platform.put("enterprise", subject["id"], current)
    event = await demo.client.post(
        "/v1/events/credit",
        json={
            "subject": {"kind": "enterprise", "id": subject["id"]},
            "event": "listed",
            "record": listing,
        },
        headers=demo.auth("demo-platform"),
    )
    assert event.status == 202, await event.text()
    after = await (await demo.decide(subject, "loan")).json()
    assert after["outcome"] == "constrained"
