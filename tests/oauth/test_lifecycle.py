"""End to end through HTTP: consent revocation, credit events revoking tokens, consent
lifetime. Callers authenticate the production way (client assertion → access token)
except where a test says otherwise.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from gateway.trust.partners import hash_api_key, new_api_key

if TYPE_CHECKING:
    from tests.oauth.conftest import MakeOAuthDemo, OAuthDemo

LIBRARY = "demo-library"
TRANSIT = "demo-transit"
PLATFORM = "demo-platform"
OTHER_PLATFORM = "other-platform"
PERSON_650 = "person, credit score 650"


async def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = await response.json()
    assert body["code"] == code, body
    return body


async def _two_platforms(make_oauth_demo: MakeOAuthDemo) -> OAuthDemo:
    key = new_api_key()

    def add_platform(partners: list[dict[str, Any]]) -> None:
        partners.append(
            {
                "id": OTHER_PLATFORM,
                "kind": "platform",
                "allow_api_keys": True,
                "api_key_sha256": [hash_api_key(key)],
            }
        )

    return await make_oauth_demo(add_platform, {OTHER_PLATFORM: key})


# -- (a) consent revocation ---------------------------------------------------------------------
async def test_revoking_a_consent_stops_the_next_decision(make_oauth_demo: MakeOAuthDemo) -> None:
    demo = await _two_platforms(make_oauth_demo)
    person = demo.subject(PERSON_650)
    consent_id = person["consents"][LIBRARY]["consent_id"]
    library = await demo.bearer(LIBRARY)
    platform = await demo.bearer(PLATFORM, scope="consents")
    assert (await demo.decide(person, "library", LIBRARY, headers=library)).status == 200

    # A scene caller may not revoke; another platform does not even see the consent.
    await _problem(
        await demo.client.delete(f"/v1/consents/{consent_id}", headers=library),
        403,
        "forbidden_kind",
    )
    await _problem(
        await demo.client.delete(
            f"/v1/consents/{consent_id}", headers=demo.api_auth(OTHER_PLATFORM)
        ),
        404,
        "not_found",
    )
    assert (await demo.decide(person, "library", LIBRARY, headers=library)).status == 200

    # The platform that recorded it revokes it.
    response = await demo.client.delete(f"/v1/consents/{consent_id}", headers=platform)
    assert response.status == 204
    await _problem(
        await demo.decide(person, "library", LIBRARY, headers=library), 403, "consent_revoked"
    )
    # Other consents of the subject are untouched.
    assert (await demo.decide(person, "transit", TRANSIT)).status == 200

    await _problem(
        await demo.client.delete("/v1/consents/cns_does-not-exist", headers=platform),
        404,
        "not_found",
    )


async def test_a_platform_cannot_revoke_another_platforms_fresh_consent(
    make_oauth_demo: MakeOAuthDemo,
) -> None:
    demo = await _two_platforms(make_oauth_demo)
    person = demo.subject(PERSON_650)
    created = await demo.client.post(
        "/v1/consents",
        json=_consent_body(person, demo.gateway.now() + dt.timedelta(days=30)),
        headers=demo.api_auth(OTHER_PLATFORM),
    )
    assert created.status == 201, await created.text()
    consent_id = (await created.json())["consent_id"]
    await _problem(
        await demo.client.delete(f"/v1/consents/{consent_id}", headers=demo.api_auth(PLATFORM)),
        404,
        "not_found",
    )
    fresh = await demo.decide(person, "library", LIBRARY, consent_id=consent_id)
    assert fresh.status == 200, await fresh.text()
    own = await demo.client.delete(
        f"/v1/consents/{consent_id}", headers=demo.api_auth(OTHER_PLATFORM)
    )
    assert own.status == 204


# -- (b) credit events ------------------------------------------------------------------------
def _event(person: dict[str, Any], event: str, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "subject": {"kind": person["kind"], "id": person["id"]},
        "event": event,
        "record": record,
    }


def _listing_record(today: dt.date) -> dict[str, Any]:
    return {
        "record_id": "ev-1",
        "type": "dishonest_executed",
        "domain": "court_enforcement",
        "effective_document": True,
        "adverse": True,
        "decided_on": today.isoformat(),
    }


async def test_a_listing_revokes_live_tokens_and_a_repair_restores_the_grant(
    oauth_demo: OAuthDemo,
) -> None:
    demo = oauth_demo
    person = demo.subject(PERSON_650)
    bystander = demo.subject("person, score 640")
    platform = await demo.bearer(PLATFORM, scope="events")
    library_token = await demo.granted_token(person, "library", LIBRARY)
    transit_token = await demo.granted_token(person, "transit", TRANSIT)
    bystander_token = await demo.granted_token(bystander, "library", LIBRARY)

    # Only a platform posts events.
    await _problem(
        await demo.client.post(
            "/v1/events/credit",
            json=_event(person, "listed", _listing_record(demo.gateway.today())),
            headers=await demo.bearer(LIBRARY),
        ),
        403,
        "forbidden_kind",
    )
    assert (await demo.introspect(library_token, LIBRARY))["active"] is True

    listed = await demo.client.post(
        "/v1/events/credit",
        json=_event(person, "listed", _listing_record(demo.gateway.today())),
        headers=platform,
    )
    assert listed.status == 202, await listed.text()
    body = await listed.json()
    assert body["event"] == "listed"
    assert body["tokens_checked"] >= 2
    assert body["tokens_revoked"] >= 2

    for token, audience in ((library_token, LIBRARY), (transit_token, TRANSIT)):
        assert await demo.introspect(token, audience) == {"active": False}
        assert await demo.status_bit(token) == 1
    # Another subject's token is not touched.
    assert (await demo.introspect(bystander_token, LIBRARY))["active"] is True
    assert await demo.status_bit(bystander_token) == 0

    after = await (await demo.decide(person, "library", LIBRARY)).json()
    assert after["outcome"] == "standard"
    assert "token" not in after

    repaired = await demo.client.post(
        "/v1/events/credit",
        json=_event(person, "repaired", {"record_id": "ev-1"}),
        headers=platform,
    )
    assert repaired.status == 202, await repaired.text()
    assert (await repaired.json())["tokens_revoked"] == 0
    again = await demo.granted_token(person, "library", LIBRARY)
    assert (await demo.introspect(again, LIBRARY))["active"] is True
    # A repair does not resurrect the revoked tokens: they stay revoked.
    assert await demo.introspect(library_token, LIBRARY) == {"active": False}


async def test_an_event_that_changes_nothing_revokes_nothing(oauth_demo: OAuthDemo) -> None:
    demo = oauth_demo
    person = demo.subject(PERSON_650)
    token = await demo.granted_token(person, "library", LIBRARY)
    record = {
        "record_id": "ev-neutral",
        "type": "registration",
        "domain": "market_registration",
        "adverse": False,
        "decided_on": demo.gateway.today().isoformat(),
    }
    response = await demo.client.post(
        "/v1/events/credit",
        json=_event(person, "record_added", record),
        headers=demo.api_auth(PLATFORM),
    )
    assert response.status == 202, await response.text()
    body = await response.json()
    assert body["tokens_checked"] >= 1
    assert body["tokens_revoked"] == 0
    assert (await demo.introspect(token, LIBRARY))["active"] is True


async def test_an_event_for_an_unknown_record_is_refused(oauth_demo: OAuthDemo) -> None:
    person = oauth_demo.subject(PERSON_650)
    response = await oauth_demo.client.post(
        "/v1/events/credit",
        json=_event(person, "repaired", {"record_id": "no-such-record"}),
        headers=oauth_demo.api_auth(PLATFORM),
    )
    body = await _problem(response, response.status, "invalid_request")
    # Well-formed JSON naming a record the source does not hold: a field check, so 422.
    assert response.status == 422
    assert [e["pointer"] for e in body["errors"]] == ["/record/record_id"]


# -- (d) consent lifetime ----------------------------------------------------------------------
def _consent_body(person: dict[str, Any], expires_at: dt.datetime | str) -> dict[str, Any]:
    return {
        "subject": {"kind": person["kind"], "id": person["id"]},
        "partner": LIBRARY,
        "scenes": ["library"],
        "purpose": "deposit_waiver",
        "expires_at": expires_at if isinstance(expires_at, str) else expires_at.isoformat(),
    }


async def test_consent_lifetime_is_bounded(oauth_demo: OAuthDemo) -> None:
    demo = oauth_demo
    person = demo.subject(PERSON_650)
    platform = await demo.bearer(PLATFORM, scope="consents")
    now = demo.gateway.now()
    cases: dict[str, dt.datetime | str] = {
        "ten-years": now + dt.timedelta(days=3653),
        "a-day-past-the-maximum": now + dt.timedelta(days=367),
        "already-expired": now - dt.timedelta(minutes=1),
        "no-time-zone": (now + dt.timedelta(days=30)).replace(tzinfo=None).isoformat(),
    }
    for name, expires_at in cases.items():
        response = await demo.client.post(
            "/v1/consents", json=_consent_body(person, expires_at), headers=platform
        )
        body = await _problem(response, 422, "invalid_request")
        assert [e["pointer"] for e in body["errors"]] == ["/expires_at"], name

    ok = await demo.client.post(
        "/v1/consents",
        json=_consent_body(person, now + dt.timedelta(days=365)),
        headers=platform,
    )
    assert ok.status == 201, await ok.text()
    consent_id = (await ok.json())["consent_id"]
    granted = await demo.decide(person, "library", LIBRARY, consent_id=consent_id)
    assert granted.status == 200, await granted.text()
