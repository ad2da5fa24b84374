"""Revocation reaches partners: a revoked consent takes its live tokens along, and
the partner's webhook hears ``consent_revoked`` and ``token_revoked``."""

from __future__ import annotations

from tests.events.conftest import PLATFORM, EventDemo
from tests.events.receiver import eventually


async def test_revoking_a_consent_revokes_its_tokens_and_tells_the_partner(
    events_demo: EventDemo,
) -> None:
    demo, receiver = events_demo.demo, events_demo.receiver
    person = demo.subject("person", {"library": "granted"})
    granted = await (await demo.decide(person, "library")).json()
    assert granted["outcome"] == "granted"
    library = demo.asker("library")
    introspect = await demo.client.post(
        "/v1/tokens/introspect", json={"token": granted["token"]}, headers=demo.auth(library)
    )
    assert (await introspect.json())["active"] is True

    consent_id = person["consents"][library]["consent_id"]
    gone = await demo.client.delete(f"/v1/consents/{consent_id}", headers=demo.auth(PLATFORM))
    assert gone.status == 204

    introspect = await demo.client.post(
        "/v1/tokens/introspect", json={"token": granted["token"]}, headers=demo.auth(library)
    )
    assert (await introspect.json())["active"] is False

    await eventually(
        lambda: (
            bool(receiver.events("/library", "token_revoked"))
            and bool(receiver.events("/library", "consent_revoked"))
        )
    )
    (revoked,) = receiver.events("/library", "token_revoked").values()
    assert revoked["data"]["decision_id"] == granted["decision_id"]
    assert revoked["data"]["reason"] == "consent_revoked"
    assert granted["token"] not in str(revoked)  # a jti, never the token itself
    (notice,) = receiver.events("/library", "consent_revoked").values()
    assert notice["data"] == {
        "consent_id": consent_id,
        "revoked_at": notice["data"]["revoked_at"],
        "tokens_revoked": 1,
    }
    assert person["id"] not in str(receiver.processed["/library"])


async def test_a_credit_event_that_ends_a_benefit_tells_the_token_audience(
    events_demo: EventDemo,
) -> None:
    demo, receiver = events_demo.demo, events_demo.receiver
    person = next(s for s in demo.subjects if s["label"] == "person, credit score 650")
    granted = await (await demo.decide(person, "library")).json()
    assert granted["outcome"] == "granted"
    listing = {
        "subject": {"kind": person["kind"], "id": person["id"]},
        "event": "listed",
        "record": {
            "record_id": "ev-events-1",
            "type": "dishonest_executed",
            "domain": "court_enforcement",
            "effective_document": True,
            "adverse": True,
            "decided_on": demo.gateway.today().isoformat(),
        },
    }
    answer = await demo.client.post("/v1/events/credit", json=listing, headers=demo.auth(PLATFORM))
    assert (await answer.json())["tokens_revoked"] >= 1
    await eventually(lambda: bool(receiver.events("/library", "token_revoked")))
    revoked = receiver.events("/library", "token_revoked").values()
    assert {e["data"]["decision_id"] for e in revoked} >= {granted["decision_id"]}
    assert {e["data"]["reason"] for e in revoked} == {"credit_event"}
