"""Idempotency-Key: a retried POST gets the first response, never a second decision."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.conftest import Demo


async def _post(demo: Demo, key: str | None, body: dict[str, Any], scene: str, partner: str) -> Any:
    headers = demo.auth(partner) | {"Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return await demo.client.post(f"/v1/scenes/{scene}/decisions", json=body, headers=headers)


async def test_a_retried_decision_returns_the_first_response(demo: Demo) -> None:
    subject = demo.subject("person", {"library": "granted"})
    body = demo.body(subject, "library")
    audit_before = len(await demo.gateway.store.audit_records(0, 10_000))

    first = await _post(demo, "retry-1", body, "library", "demo-library")
    second = await _post(demo, "retry-1", body, "library", "demo-library")
    assert first.status == second.status == 200
    one, two = await first.json(), await second.json()
    assert one["outcome"] == "granted"
    assert two == one  # same decision id, same token byte for byte
    assert second.headers.get("Idempotent-Replayed") == "true"
    records = await demo.gateway.store.audit_records(0, 10_000)
    assert len(records) == audit_before + 1

    # Without the key the same body is a new decision.
    third = await (await _post(demo, None, body, "library", "demo-library")).json()
    assert third["decision_id"] != one["decision_id"]


async def test_a_key_reused_with_another_body_is_refused(demo: Demo) -> None:
    first_subject = demo.subject("person", {"library": "granted"})
    other = demo.subject("person", {"library": "standard"})
    ok = await _post(
        demo, "reuse-1", demo.body(first_subject, "library"), "library", "demo-library"
    )
    assert ok.status == 200
    refused = await _post(demo, "reuse-1", demo.body(other, "library"), "library", "demo-library")
    assert refused.status == 422
    problem = await refused.json()
    assert problem["code"] == "idempotency_key_reused"


async def test_keys_belong_to_one_partner(demo: Demo) -> None:
    subject = demo.subject("person", {"library": "granted"})
    library = await _post(
        demo, "shared-1", demo.body(subject, "library"), "library", "demo-library"
    )
    transit = await _post(
        demo, "shared-1", demo.body(subject, "transit"), "transit", "demo-transit"
    )
    assert library.status == transit.status == 200
    assert (await library.json())["decision_id"] != (await transit.json())["decision_id"]


async def test_a_malformed_key_is_refused(demo: Demo) -> None:
    subject = demo.subject("person", {"library": "granted"})
    refused = await _post(
        demo, "has spaces", demo.body(subject, "library"), "library", "demo-library"
    )
    assert refused.status == 400
    assert (await refused.json())["code"] == "invalid_request"


async def test_a_retried_consent_is_created_once(demo: Demo) -> None:
    subject = demo.subject("person", {"library": "standard"})
    body = {
        "subject": {"kind": subject["kind"], "id": subject["id"]},
        "partner": "demo-library",
        "scenes": ["library"],
        "purpose": "deposit_waiver",
        "expires_at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=90)).isoformat(),
    }
    headers = demo.auth("demo-platform") | {"Idempotency-Key": "consent-1"}
    first = await demo.client.post("/v1/consents", json=body, headers=headers)
    second = await demo.client.post("/v1/consents", json=body, headers=headers)
    assert first.status == second.status == 201
    assert (await first.json())["consent_id"] == (await second.json())["consent_id"]


async def test_a_failed_first_attempt_frees_its_key(demo: Demo) -> None:
    subject = demo.subject("person", {"library": "granted"})
    body = demo.body(subject, "library")
    body.pop("consent_id")
    refused = await _post(demo, "after-failure", body, "library", "demo-library")
    assert refused.status == 403  # no consent: nothing is stored under the key
    again = await _post(demo, "after-failure", body, "library", "demo-library")
    assert again.status == 403
    assert (await again.json())["code"] == "consent_required"
