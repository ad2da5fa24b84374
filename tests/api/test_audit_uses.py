"""Every use and every change on the record, and a subject's own view of its uses."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from gateway.audit.log import ring_public_keys
from gateway.audit.verify import verify_log

if TYPE_CHECKING:
    from conftest import Demo


async def _entries(demo: Demo) -> list[dict[str, Any]]:
    return [r.entry for r in await demo.gateway.store.audit_records(0, 100_000)]


async def _kinds(demo: Demo) -> list[str]:
    return [e.get("kind", "decision") for e in await _entries(demo)]


async def test_uses_and_changes_are_records_counted_by_verify(demo: Demo) -> None:
    gw, client = demo.gateway, demo.client
    platform, operator = demo.auth("demo-platform"), demo.auth("demo-operator")
    person = demo.subject("person", {"library": "granted"})
    before = await _kinds(demo)
    assert before.count("consent_recorded") >= 1  # the demo's seeded consents

    created = await client.post(
        "/v1/consents",
        json={
            "subject": {"kind": "person", "id": person["id"]},
            "partner": "demo-library",
            "scenes": ["library"],
            "purpose": "deposit_waiver",
            "expires_at": (gw.now() + dt.timedelta(days=30)).isoformat(),
        },
        headers=platform,
    )
    assert created.status == 201
    consent_id = (await created.json())["consent_id"]
    assert (await client.delete(f"/v1/consents/{consent_id}", headers=platform)).status == 204

    decision = await (await demo.decide(person, "library")).json()
    feedback = await client.post(
        f"/v1/decisions/{decision['decision_id']}/feedback",
        json={"applied": True},
        headers=demo.auth("demo-library"),
    )
    assert feedback.status == 202
    introspected = await client.post(
        "/v1/tokens/introspect",
        json={"token": decision["token"]},
        headers=demo.auth("demo-library"),
    )
    assert (await introspected.json())["active"] is True
    event = await client.post(
        "/v1/events/credit",
        json={
            "subject": {"kind": "person", "id": person["id"]},
            "event": "record_added",
            "record": {
                "record_id": "ev-audit-1",
                "type": "honour_award",
                "domain": "civil",
                "adverse": False,
                "decided_on": gw.today().isoformat(),
            },
        },
        headers=platform,
    )
    assert event.status == 202, await event.text()
    assert (await client.post("/v1/admin/policies/reload", headers=operator)).status == 200
    added = await client.post("/v1/admin/keys", json={}, headers=operator)
    assert added.status == 201

    new = (await _kinds(demo))[len(before) :]
    assert new == [
        "consent_recorded",
        "consent_revoked",
        "decision",
        "feedback_received",
        "token_introspected",
        "credit_event_received",
        "policy_reloaded",
        "key_added",
    ]
    entries = await _entries(demo)
    revoked = next(e for e in entries if e.get("kind") == "consent_revoked")
    assert revoked["detail"]["consent_id"] == consent_id
    assert revoked["partner"] == "demo-platform"
    assert next(e for e in entries if e.get("kind") == "key_added")["partner"] == "demo-operator"
    # no personal id in any record
    assert person["id"] not in str(entries)
    assert decision["token"] not in str(entries)

    await gw.audit.checkpoint_now()
    result = await verify_log(gw.audit, gw.audit.origin, ring_public_keys(gw.keys))
    assert result.ok, result
    assert result.records == len(entries)


async def test_a_subject_sees_exactly_the_uses_of_its_own_data(demo: Demo) -> None:
    gw = demo.gateway
    persons = [s for s in demo.subjects if s["kind"] == "person" and "library" in s["expected"]]
    mine, other = persons[0], persons[1]
    for subject in (mine, other, mine):
        assert (await demo.decide(subject, "library")).status == 200
    loan_subject = demo.subject("enterprise")
    assert (await demo.decide(loan_subject, "loan")).status == 200

    response = await demo.client.post(
        "/v1/subjects/uses",
        json={"subject": {"kind": "person", "id": mine["id"]}},
        headers=demo.auth("demo-platform"),
    )
    assert response.status == 200, await response.text()
    uses = (await response.json())["uses"]

    names = {gw.pseudonyms.internal("person", mine["id"])} | {
        gw.pseudonyms.of(p.pseudonym_sector, "person", mine["id"])
        for p in gw.partners.by_id.values()
    }
    expected = [
        seq for seq, e in enumerate(await _entries(demo), start=1) if e.get("subject") in names
    ]
    assert [u["seq"] for u in uses] == expected
    decisions = [u for u in uses if u["kind"] == "decision"]
    assert len(decisions) == 2
    assert {u["partner"] for u in decisions} == {"demo-library"}
    assert all(u["scene"] == "library" and u["purpose"] == "deposit_waiver" for u in decisions)
    assert any(u["kind"] == "consent_recorded" for u in uses)
    explanation = decisions[0]["explanation"]
    assert explanation["policy"]
    assert all({"rule", "legal_basis", "facts"} <= set(r) for r in explanation["reasons"])

    for partner, status in (("demo-library", 403), ("demo-auditor", 403)):
        refused = await demo.client.post(
            "/v1/subjects/uses",
            json={"subject": {"kind": "person", "id": mine["id"]}},
            headers=demo.auth(partner),
        )
        assert refused.status == status
    bad = await demo.client.post(
        "/v1/subjects/uses",
        json={"subject": {"kind": "person", "id": "123"}},
        headers=demo.auth("demo-platform"),
    )
    assert bad.status == 422
    assert (await bad.json())["errors"][0]["pointer"] == "/subject/id"


async def test_after_a_retention_sweep_views_and_reports_read_the_archive(demo: Demo) -> None:
    from gateway.audit.retention import Retention
    from gateway.settings import RetentionSettings

    gw = demo.gateway
    person = demo.subject("person", {"library": "granted"})
    for _ in range(3):
        assert (await demo.decide(person, "library")).status == 200
    ask = {"json": {"subject": {"kind": "person", "id": person["id"]}}}
    platform = demo.auth("demo-platform")
    before = await (await demo.client.post("/v1/subjects/uses", headers=platform, **ask)).json()
    month = gw.now().astimezone(gw.tz).strftime("%Y-%m")
    report = {"params": {"month": month}, "headers": demo.auth("demo-auditor")}
    rows_before = (await (await demo.client.get("/v1/audit/report", **report)).read()).count(b"\n")

    sweeper = Retention(gw.audit, RetentionSettings(audit_days=0))
    archived, _ = await sweeper.sweep(gw.now() + dt.timedelta(seconds=5))
    assert archived == len(await gw.audit.records(0, 100_000))
    assert await gw.store.audit_records(0, 10) == []

    after = await (await demo.client.post("/v1/subjects/uses", headers=platform, **ask)).json()
    # the same uses, less the explanations whose decision bodies left with the records
    strip = [{k: v for k, v in u.items() if k != "explanation"} for u in before["uses"]]
    assert after["uses"] == strip
    rows_after = (await (await demo.client.get("/v1/audit/report", **report)).read()).count(b"\n")
    assert rows_after == rows_before
    records = await demo.client.get(
        "/v1/audit/records", params={"limit": "1000"}, headers=demo.auth("demo-auditor")
    )
    assert len((await records.json())["records"]) == archived
