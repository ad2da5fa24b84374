"""The decision endpoint's checks in API.md's order, now that the rate limit, the
consent and the Idempotency-Key are asked in one admission call (Store.admit).

The body is parsed before that call, so these pin down that a request that is
both rate limited and wrong in some other way still gets 429, and that the
key's state still comes before the body's schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Demo


def _person(demo: Demo) -> dict[str, Any]:
    return demo.subject("person", {"library": "granted"})


def _key(raw: str, scene: str = "library", partner: str = "demo-library") -> str:
    return f"{partner}:POST:/v1/scenes/{scene}/decisions:{raw}"


async def _code(response: Any) -> str:
    return str((await response.json())["code"])


@pytest.fixture
async def limited(make_demo: Any) -> Demo:
    """A demo whose partners get a burst of one request; the library's is spent."""
    demo = await make_demo(rate_per_second=0.5)
    assert (await demo.decide(_person(demo), "library")).status == 200
    return demo


async def test_a_rate_limited_request_gets_429_before_its_body_is_judged(limited: Demo) -> None:
    demo = limited
    person = _person(demo)
    auth = demo.auth("demo-library")
    wrong_schema = await demo.decide(person, "library", subject={"kind": "person"})
    assert wrong_schema.status == 429
    assert await _code(wrong_schema) == "rate_limited"
    assert int(wrong_schema.headers["Retry-After"]) >= 1
    wrong_purpose = await demo.decide(person, "library", purpose="marketing")
    assert wrong_purpose.status == 429
    no_consent = await demo.decide(person, "library", consent_id=None)
    assert no_consent.status == 429
    not_json = await demo.client.post("/v1/scenes/library/decisions", data=b"{", headers=auth)
    assert not_json.status == 429
    bad_key = await demo.client.post(
        "/v1/scenes/library/decisions",
        json=demo.body(person, "library"),
        headers={**auth, "Idempotency-Key": "no spaces allowed"},
    )
    assert bad_key.status == 429
    other_scene = await demo.decide(person, "loan", partner_id="demo-library")
    assert other_scene.status == 429


async def test_a_rate_limited_request_leaves_its_key_unclaimed(limited: Demo) -> None:
    demo = limited
    response = await demo.client.post(
        "/v1/scenes/library/decisions",
        json=demo.body(_person(demo), "library"),
        headers={**demo.auth("demo-library"), "Idempotency-Key": "limited-1"},
    )
    assert response.status == 429
    store = demo.gateway.store
    assert await store.get_idempotency(_key("limited-1")) is None
    assert await store.claim_once("idem-lock:" + _key("limited-1"), 10) is True


async def test_the_keys_state_comes_before_the_bodys_schema(demo: Demo) -> None:
    person = _person(demo)
    headers = {**demo.auth("demo-library"), "Idempotency-Key": "order-1"}
    first = await demo.client.post(
        "/v1/scenes/library/decisions", json=demo.body(person, "library"), headers=headers
    )
    assert first.status == 200
    invalid = {**demo.body(person, "library"), "subject": {"kind": "person"}}
    reused = await demo.client.post("/v1/scenes/library/decisions", json=invalid, headers=headers)
    assert reused.status == 422
    assert await _code(reused) == "idempotency_key_reused"

    # A key still held by a request in flight: 409, whatever the body.
    assert await demo.gateway.store.claim_once("idem-lock:" + _key("order-2"), 10)
    busy = await demo.client.post(
        "/v1/scenes/library/decisions",
        json=invalid,
        headers={**demo.auth("demo-library"), "Idempotency-Key": "order-2"},
    )
    assert busy.status == 409
    assert await _code(busy) == "idempotency_in_progress"


async def test_a_request_refused_for_its_body_or_consent_frees_its_key(demo: Demo) -> None:
    person = _person(demo)
    headers = {**demo.auth("demo-library"), "Idempotency-Key": "order-3"}
    invalid = {**demo.body(person, "library"), "subject": {"kind": "person"}}
    refused = await demo.client.post("/v1/scenes/library/decisions", json=invalid, headers=headers)
    assert refused.status == 422
    assert await _code(refused) == "invalid_request"
    unconsented = {**demo.body(person, "library"), "consent_id": "cns_unknown"}
    refused = await demo.client.post(
        "/v1/scenes/library/decisions", json=unconsented, headers=headers
    )
    assert refused.status == 403
    assert await _code(refused) == "consent_required"
    # Neither left a record nor held the key: a corrected retry runs at once.
    retried = await demo.client.post(
        "/v1/scenes/library/decisions", json=demo.body(person, "library"), headers=headers
    )
    assert retried.status == 200
    again = await demo.client.post(
        "/v1/scenes/library/decisions", json=demo.body(person, "library"), headers=headers
    )
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert (await again.json())["decision_id"] == (await retried.json())["decision_id"]
