"""The audit trail behind decisions (DESIGN §9): one record per decision, chained, pseudonymous."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from gateway.audit.chain import verify_chain
from gateway.store.base import AuditRecord, DecisionWrite, StoreUnavailable

if TYPE_CHECKING:
    from conftest import Demo


async def records(demo: Demo) -> list[AuditRecord]:
    return await demo.gateway.store.audit_records(0, 100_000)


async def test_each_decision_appends_one_record_and_the_chain_verifies(demo: Demo) -> None:
    before = len(await records(demo))
    decided = 0
    for subject in demo.subjects:
        for scene in subject["expected"]:
            response = await demo.decide(subject, scene)
            assert response.status == 200
            decided += 1
            body = await response.json()
            trail = await records(demo)
            assert len(trail) == before + decided
            assert trail[-1].entry["decision_id"] == body["decision_id"]
            assert trail[-1].entry["outcome"] == body["outcome"]
    trail = await records(demo)
    assert [r.seq for r in trail] == list(range(1, len(trail) + 1))
    assert verify_chain(trail) is None
    # the check is not vacuous: an edited outcome breaks the chain
    flipped = "standard" if trail[3].entry["outcome"] == "granted" else "granted"
    edited = dataclasses.replace(trail[3], entry=trail[3].entry | {"outcome": flipped})
    assert verify_chain([*trail[:3], edited, *trail[4:]]) is not None


async def test_refused_requests_leave_no_audit_record(demo: Demo) -> None:
    subject = demo.subject("person", {"library": "granted"})
    before = len(await records(demo))
    assert (await demo.decide(subject, "library", consent_id=None)).status == 403
    assert (await demo.decide(subject, "library", purpose="marketing")).status == 403
    assert len(await records(demo)) == before


async def test_records_hold_the_pseudonym_and_the_request_not_the_id(demo: Demo) -> None:
    gw = demo.gateway
    subject = demo.subject("person", {"library": "granted"})
    body = await (await demo.decide(subject, "library")).json()
    entry = (await records(demo))[-1].entry
    assert entry["subject"] == gw.pseudonyms.of("demo-library", "person", subject["id"])
    assert entry["partner"] == "demo-library"
    assert entry["scene"] == "library"
    assert entry["purpose"] == "deposit_waiver"
    assert entry["staff_id"] == "staff-0001"
    assert entry["consent_id"] == subject["consents"]["demo-library"]["consent_id"]
    assert entry["decision_id"] == body["decision_id"]
    assert entry["policy"] == f"{body['policy']['id']}@{body['policy']['version']}"
    assert entry["token_jti"]

    everything = orjson.dumps([r.entry for r in await records(demo)]).decode().upper()
    for s in demo.subjects:
        assert s["id"][:17] not in everything


async def test_audit_failure_answers_503_and_withholds_the_decision(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = demo.gateway.store
    before = len(await records(demo))
    attempts: list[DecisionWrite] = []

    async def unavailable(write: DecisionWrite) -> None:
        attempts.append(write)
        raise StoreUnavailable("disk full")

    monkeypatch.setattr(store, "record_decision", unavailable)
    subject = demo.subject("person", {"library": "granted"})
    response = await demo.decide(subject, "library")
    assert response.status == 503
    assert response.content_type == "application/problem+json"
    assert int(response.headers["Retry-After"]) >= 1
    body: dict[str, Any] = await response.json(content_type=None)
    assert body["code"] == "dependency_unavailable"
    assert not {"decision_id", "token", "outcome", "benefits"} & set(body)
    text = await response.text()
    assert "eyJ" not in text  # no JWS anywhere
    assert attempts, "the pipeline tried to write the audit record"
    assert attempts[0].decision_id not in text
    assert "disk full" not in text  # store details stay in the log

    monkeypatch.undo()
    assert len(await records(demo)) == before
    missing = await demo.client.get(
        f"/v1/decisions/{attempts[0].decision_id}", headers=demo.auth("demo-library")
    )
    assert missing.status == 404
    # once the store answers again, so does the gateway
    assert (await demo.decide(subject, "library")).status == 200
