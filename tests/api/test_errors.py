"""Every error of API.md: status, stable code, problem+json envelope, pointers, check order.

Each case below is one request that must fail in one way; ``CASES`` feeds the
status/code test, the envelope test and the no-subject-id test alike.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from aiohttp import ClientResponse

from gateway.api.http import MAX_BODY_BYTES

if TYPE_CHECKING:
    from conftest import Demo

ENVELOPE = {"type", "title", "status", "detail", "code"}

Send = Callable[["Demo"], Awaitable[ClientResponse]]


@dataclass(frozen=True)
class Case:
    status: int
    code: str
    pointers: tuple[str, ...]
    send: Send


CASES: dict[str, Case] = {}


def case(status: int, code: str, *pointers: str) -> Callable[[Send], Send]:
    def register(send: Send) -> Send:
        CASES[send.__name__] = Case(status, code, pointers, send)
        return send

    return register


# -- helpers ------------------------------------------------------------------------------


def enterprise(demo: Demo) -> dict[str, Any]:
    return demo.subject("enterprise", {"loan": "granted"})


def person(demo: Demo) -> dict[str, Any]:
    return demo.subject("person", {"library": "granted"})


def other_person(demo: Demo) -> dict[str, Any]:
    return demo.subject("person", {"library": "standard"})


def wrong_check(subject_id: str) -> str:
    """The id with another check character, one both id alphabets allow."""
    return subject_id[:-1] + next(c for c in "01" if c != subject_id[-1])


async def post_raw(
    demo: Demo,
    scene: str,
    data: Any,
    *,
    partner: str | None = None,
    content_type: str = "application/json",
    auth: dict[str, str] | None = None,
) -> ClientResponse:
    headers = demo.auth(partner or demo.asker(scene)) if auth is None else auth
    return await demo.client.post(
        f"/v1/scenes/{scene}/decisions", data=data, headers=headers | {"Content-Type": content_type}
    )


def oversize() -> io.BytesIO:
    # Valid JSON but for its size: only the size can be at fault.
    return io.BytesIO(b'{"purpose": "x"' + b" " * MAX_BODY_BYTES + b"}")


async def chunks() -> AsyncIterator[bytes]:
    for _ in range(3):
        yield b" " * (MAX_BODY_BYTES // 2)


def consent_body(demo: Demo, **changes: Any) -> dict[str, Any]:
    subject = person(demo)
    expires = demo.gateway.now() + dt.timedelta(days=30)
    return {
        "subject": {"kind": "person", "id": subject["id"]},
        "partner": "demo-library",
        "scenes": ["library"],
        "purpose": "deposit_waiver",
        "expires_at": expires.isoformat(),
    } | changes


async def direct_consent(demo: Demo, **changes: Any) -> str:
    """A consent written straight through the service, bypassing the API's own checks."""
    gw = demo.gateway
    fields: dict[str, Any] = {
        "created_by": "demo-platform",
        "kind": "person",
        "subject_id": person(demo)["id"],
        "partner": "demo-library",
        "scenes": ["library"],
        "purpose": "deposit_waiver",
        "expires_at": gw.now() + dt.timedelta(days=30),
        "now": gw.now(),
    } | changes
    return (await gw.consents.create(**fields)).consent_id


# -- 401 unauthenticated ------------------------------------------------------------------


@case(401, "unauthenticated")
async def no_credentials(demo: Demo) -> ClientResponse:
    return await demo.client.post(
        "/v1/scenes/loan/decisions", json=demo.body(enterprise(demo), "loan")
    )


@case(401, "unauthenticated")
async def unknown_api_key(demo: Demo) -> ClientResponse:
    body = demo.body(enterprise(demo), "loan")
    auth = {"Authorization": "Bearer xk_dev_not-a-key"}
    return await demo.client.post("/v1/scenes/loan/decisions", json=body, headers=auth)


@case(401, "unauthenticated")
async def basic_scheme(demo: Demo) -> ClientResponse:
    body = demo.body(enterprise(demo), "loan")
    auth = {"Authorization": f"Basic {demo.partner('demo-bank')['api_key']}"}
    return await demo.client.post("/v1/scenes/loan/decisions", json=body, headers=auth)


@case(401, "unauthenticated")
async def bad_credentials_before_bad_body(demo: Demo) -> ClientResponse:
    auth = {"Authorization": "Bearer nope"}
    return await post_raw(demo, "casino", b"{not json", content_type="text/plain", auth=auth)


# -- 404 / 403 scene ----------------------------------------------------------------------


@case(404, "not_found")
async def unknown_scene(demo: Demo) -> ClientResponse:
    body = demo.body(enterprise(demo), "loan")
    return await demo.client.post(
        "/v1/scenes/casino/decisions", json=body, headers=demo.auth("demo-bank")
    )


@case(404, "not_found")
async def unknown_scene_before_bad_body(demo: Demo) -> ClientResponse:
    return await post_raw(demo, "casino", oversize(), partner="demo-bank")


@case(403, "forbidden_scene")
async def scene_outside_contract(demo: Demo) -> ClientResponse:
    return await demo.decide(person(demo), "library", partner_id="demo-bank")


@case(403, "forbidden_scene")
async def forbidden_scene_before_oversize_body(demo: Demo) -> ClientResponse:
    return await post_raw(demo, "library", oversize(), partner="demo-bank")


@case(403, "forbidden_scene")
async def forbidden_scene_before_wrong_media_type(demo: Demo) -> ClientResponse:
    return await post_raw(
        demo, "loan", b"subject=x", partner="demo-library", content_type="text/plain"
    )


# -- 413 / 415 / 400 ----------------------------------------------------------------------


@case(413, "payload_too_large")
async def oversize_with_content_length(demo: Demo) -> ClientResponse:
    return await post_raw(demo, "loan", oversize())


@case(413, "payload_too_large")
async def oversize_chunked(demo: Demo) -> ClientResponse:
    return await post_raw(demo, "loan", chunks())


@case(413, "payload_too_large")
async def oversize_before_wrong_media_type(demo: Demo) -> ClientResponse:
    return await post_raw(demo, "loan", oversize(), content_type="text/plain")


@case(415, "unsupported_media_type")
async def text_plain(demo: Demo) -> ClientResponse:
    body = b'{"subject": {"kind": "enterprise", "id": "x"}, "purpose": "p"}'
    return await post_raw(demo, "loan", body, content_type="text/plain")


@case(415, "unsupported_media_type")
async def form_encoded(demo: Demo) -> ClientResponse:
    return await post_raw(
        demo,
        "loan",
        b"purpose=credit_loan_assessment",
        content_type="application/x-www-form-urlencoded",
    )


@case(415, "unsupported_media_type")
async def wrong_media_type_before_malformed_json(demo: Demo) -> ClientResponse:
    return await post_raw(demo, "loan", b"{not json", content_type="application/xml")


@case(400, "invalid_request", "")
async def malformed_json(demo: Demo) -> ClientResponse:
    return await post_raw(demo, "loan", b'{"subject": {"kind": "enterprise",')


# -- 422 schema, subject id, context ------------------------------------------------------


@case(422, "invalid_request", "")
async def body_not_an_object(demo: Demo) -> ClientResponse:
    return await post_raw(demo, "loan", b'["credit_loan_assessment"]')


@case(422, "invalid_request", "/purpose")
async def missing_purpose(demo: Demo) -> ClientResponse:
    body = demo.body(enterprise(demo), "loan")
    del body["purpose"]
    return await demo.client.post(
        "/v1/scenes/loan/decisions", json=body, headers=demo.auth("demo-bank")
    )


@case(422, "invalid_request", "/subject/kind")
async def unknown_subject_kind(demo: Demo) -> ClientResponse:
    subject = enterprise(demo)
    return await demo.decide(subject, "loan", subject={"kind": "company", "id": subject["id"]})


@case(422, "invalid_request", "/subject/kind")
async def person_in_an_enterprise_scene(demo: Demo) -> ClientResponse:
    return await demo.decide(person(demo), "loan", context={"loan_amount": 1000})


@case(422, "invalid_request", "/score")
async def unknown_top_level_field(demo: Demo) -> ClientResponse:
    return await demo.decide(enterprise(demo), "loan", score=700)


@case(422, "invalid_request", "/subject/id")
async def enterprise_id_with_wrong_check_character(demo: Demo) -> ClientResponse:
    subject = enterprise(demo)
    return await demo.decide(
        subject, "loan", subject={"kind": "enterprise", "id": wrong_check(subject["id"])}
    )


@case(422, "invalid_request", "/subject/id")
async def person_id_with_wrong_check_character(demo: Demo) -> ClientResponse:
    subject = person(demo)
    return await demo.decide(
        subject, "library", subject={"kind": "person", "id": wrong_check(subject["id"])}
    )


@case(422, "invalid_request", "/subject/id")
async def invalid_id_before_forbidden_purpose_and_consent(demo: Demo) -> ClientResponse:
    subject = person(demo)
    return await demo.decide(
        subject,
        "library",
        subject={"kind": "person", "id": wrong_check(subject["id"])},
        purpose="marketing",
        consent_id=None,
    )


@case(422, "invalid_request", "/context/loan_amount")
async def missing_required_context(demo: Demo) -> ClientResponse:
    return await demo.decide(enterprise(demo), "loan", context={})


@case(422, "invalid_request", "/context/loan_amount")
async def context_of_the_wrong_type(demo: Demo) -> ClientResponse:
    return await demo.decide(enterprise(demo), "loan", context={"loan_amount": "a lot"})


@case(422, "invalid_request", "/context/colour")
async def unknown_context_field(demo: Demo) -> ClientResponse:
    subject = enterprise(demo)
    context = subject["context"]["approval"] | {"colour": "red"}
    return await demo.decide(subject, "approval", context=context)


# -- 403 purpose and consent --------------------------------------------------------------


@case(403, "forbidden_purpose")
async def purpose_outside_contract(demo: Demo) -> ClientResponse:
    return await demo.decide(enterprise(demo), "loan", purpose="deposit_waiver")


@case(403, "forbidden_purpose")
async def forbidden_purpose_before_missing_consent(demo: Demo) -> ClientResponse:
    return await demo.decide(person(demo), "library", purpose="marketing", consent_id=None)


@case(403, "consent_required")
async def enterprise_without_authorisation(demo: Demo) -> ClientResponse:
    return await demo.decide(enterprise(demo), "loan", consent_id=None)


@case(403, "consent_required")
async def person_without_consent(demo: Demo) -> ClientResponse:
    return await demo.decide(person(demo), "library", consent_id=None)


@case(403, "consent_required")
async def unknown_consent_id(demo: Demo) -> ClientResponse:
    return await demo.decide(person(demo), "library", consent_id="cns_unknown")


@case(403, "consent_required")
async def consent_given_to_another_partner(demo: Demo) -> ClientResponse:
    subject = person(demo)
    transit_consent = subject["consents"]["demo-transit"]["consent_id"]
    return await demo.decide(subject, "library", consent_id=transit_consent)


@case(403, "consent_required")
async def consent_of_another_subject(demo: Demo) -> ClientResponse:
    borrowed = person(demo)["consents"]["demo-library"]["consent_id"]
    return await demo.decide(other_person(demo), "library", consent_id=borrowed)


@case(403, "consent_required")
async def consent_for_another_purpose(demo: Demo) -> ClientResponse:
    consent_id = await direct_consent(demo, purpose="reading_statistics")
    return await demo.decide(person(demo), "library", consent_id=consent_id)


@case(403, "consent_required")
async def consent_for_another_scene(demo: Demo) -> ClientResponse:
    consent_id = await direct_consent(demo, scenes=["transit"])
    return await demo.decide(person(demo), "library", consent_id=consent_id)


# -- consent endpoints --------------------------------------------------------------------


@case(403, "forbidden_kind")
async def consent_created_by_a_library(demo: Demo) -> ClientResponse:
    return await demo.client.post(
        "/v1/consents", json=consent_body(demo), headers=demo.auth("demo-library")
    )


@case(403, "forbidden_kind")
async def consent_revoked_by_a_library(demo: Demo) -> ClientResponse:
    consent_id = person(demo)["consents"]["demo-library"]["consent_id"]
    return await demo.client.delete(f"/v1/consents/{consent_id}", headers=demo.auth("demo-library"))


@case(404, "not_found")
async def revoke_unknown_consent(demo: Demo) -> ClientResponse:
    return await demo.client.delete("/v1/consents/cns_unknown", headers=demo.auth("demo-platform"))


@case(422, "invalid_request", "/expires_at")
async def lifetime_consent(demo: Demo) -> ClientResponse:
    forever = demo.gateway.now() + dt.timedelta(days=365 * 50)
    body = consent_body(demo, expires_at=forever.isoformat())
    return await demo.client.post("/v1/consents", json=body, headers=demo.auth("demo-platform"))


@case(422, "invalid_request", "/expires_at")
async def consent_expired_already(demo: Demo) -> ClientResponse:
    past = demo.gateway.now() - dt.timedelta(minutes=1)
    body = consent_body(demo, expires_at=past.isoformat())
    return await demo.client.post("/v1/consents", json=body, headers=demo.auth("demo-platform"))


@case(422, "invalid_request", "/expires_at")
async def consent_without_time_zone(demo: Demo) -> ClientResponse:
    body = consent_body(demo, expires_at="2030-01-01T00:00:00")
    return await demo.client.post("/v1/consents", json=body, headers=demo.auth("demo-platform"))


@case(422, "invalid_request", "/scenes/0")
async def consent_for_a_scene_outside_the_partners_contract(demo: Demo) -> ClientResponse:
    body = consent_body(demo, scenes=["transit"])
    return await demo.client.post("/v1/consents", json=body, headers=demo.auth("demo-platform"))


@case(422, "invalid_request", "/subject/id")
async def consent_with_wrong_check_character(demo: Demo) -> ClientResponse:
    body = consent_body(demo)
    body["subject"]["id"] = wrong_check(body["subject"]["id"])
    return await demo.client.post("/v1/consents", json=body, headers=demo.auth("demo-platform"))


# -- router-level refusals ----------------------------------------------------------------


@case(404, "not_found")
async def unknown_path(demo: Demo) -> ClientResponse:
    return await demo.client.get("/v1/nowhere", headers=demo.auth("demo-bank"))


@case(405, "method_not_allowed")
async def wrong_method(demo: Demo) -> ClientResponse:
    return await demo.client.get("/v1/scenes/loan/decisions", headers=demo.auth("demo-bank"))


# -- the tests ----------------------------------------------------------------------------


async def problem(response: ClientResponse) -> dict[str, Any]:
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = await response.json(content_type="application/problem+json")
    assert set(body) - {"errors"} == ENVELOPE, sorted(body)
    assert body["status"] == response.status
    assert body["type"].endswith("/" + body["code"])
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    return body


@pytest.mark.parametrize("name", CASES)
async def test_error(demo: Demo, name: str) -> None:
    expected = CASES[name]
    response = await expected.send(demo)
    assert response.status == expected.status, await response.text()
    body = await problem(response)
    assert body["code"] == expected.code
    if expected.status in (400, 422):
        assert sorted({e["pointer"] for e in body["errors"]}) == sorted(expected.pointers)
        assert all(isinstance(e["message"], str) and e["message"] for e in body["errors"])
    else:
        assert "errors" not in body
    if expected.status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_every_problem_body_is_exactly_the_envelope(demo: Demo) -> None:
    for name, expected in CASES.items():
        response = await expected.send(demo)
        body = await response.json(content_type=None)
        keys = {"type", "title", "status", "detail", "code"} | ({"errors"} & set(body))
        assert set(body) == keys, name
        assert response.content_type == "application/problem+json", name
        for error in body.get("errors", []):
            assert set(error) == {"pointer", "message"}, name


async def test_no_problem_body_echoes_a_subject_id(demo: Demo) -> None:
    # The first 17 characters identify a subject even with its check character changed.
    prefixes = [s["id"][:17] for s in demo.subjects]
    for name, expected in CASES.items():
        text = (await (await expected.send(demo)).text()).upper()
        assert not [p for p in prefixes if p in text], name


async def test_exactly_one_mebibyte_is_accepted(demo: Demo) -> None:
    body = demo.body(enterprise(demo), "loan")
    raw = (
        b'{"subject": {"kind": "enterprise", "id": "%s"}, "purpose": "%s", "consent_id": "%s", '
        b'"context": {"loan_amount": 1000000}}'
    ) % (body["subject"]["id"].encode(), body["purpose"].encode(), body["consent_id"].encode())
    padded = raw[:-1] + b" " * (MAX_BODY_BYTES - len(raw)) + b"}"
    assert len(padded) == MAX_BODY_BYTES
    response = await post_raw(demo, "loan", io.BytesIO(padded))
    assert response.status == 200, await response.text()
    assert (await response.json())["outcome"] == "granted"


async def test_revoked_consent_answers_consent_revoked(demo: Demo) -> None:
    platform = demo.auth("demo-platform")
    created = await demo.client.post("/v1/consents", json=consent_body(demo), headers=platform)
    assert created.status == 201
    consent_id = (await created.json())["consent_id"]

    allowed = await demo.decide(person(demo), "library", consent_id=consent_id)
    assert allowed.status == 200
    assert (await allowed.json())["outcome"] == "granted"

    revoked = await demo.client.delete(f"/v1/consents/{consent_id}", headers=platform)
    assert revoked.status == 204
    refused = await demo.decide(person(demo), "library", consent_id=consent_id)
    assert refused.status == 403
    assert (await problem(refused))["code"] == "consent_revoked"
    # revoking twice changes nothing; the subject's other consents still hold
    assert (await demo.client.delete(f"/v1/consents/{consent_id}", headers=platform)).status == 204
    assert (await demo.decide(person(demo), "library")).status == 200


async def test_rate_limit_answers_429_with_retry_after(make_demo: Any) -> None:
    demo = await make_demo(rate_per_second=0.5)  # a burst of one request
    subject = enterprise(demo)
    assert (await demo.decide(subject, "loan")).status == 200

    limited = await demo.decide(subject, "loan")
    assert limited.status == 429
    assert (await problem(limited))["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1

    # the rate limit comes after credentials and before everything else
    unknown_scene = await demo.client.post(
        "/v1/scenes/casino/decisions", data=b"{", headers=demo.auth("demo-bank")
    )
    assert unknown_scene.status == 429
    no_credentials = await demo.client.post("/v1/scenes/loan/decisions", json={})
    assert no_credentials.status == 401
    # each partner has its own bucket
    assert (await demo.decide(person(demo), "library")).status == 200


async def test_a_consent_without_a_recorded_creator_is_no_platforms_to_revoke(
    demo: Demo,
) -> None:
    """Issue 14: any platform partner could revoke a consent seeded without a creator."""
    subject = person(demo)
    seeded = await demo.gateway.consents.create(
        kind="person",
        subject_id=subject["id"],
        partner="demo-library",
        scenes=["library"],
        purpose="deposit_waiver",
        expires_at=demo.gateway.now() + dt.timedelta(days=30),
        now=demo.gateway.now(),
    )
    assert seeded.created_by is None
    platform = demo.auth("demo-platform")
    refused = await demo.client.delete(f"/v1/consents/{seeded.consent_id}", headers=platform)
    assert refused.status == 404
    assert (await problem(refused))["code"] == "not_found"
    allowed = await demo.decide(subject, "library", consent_id=seeded.consent_id)
    assert allowed.status == 200


@pytest.mark.parametrize(
    "raw",
    [
        b'{"subject": {"kind": "person", "kind": "enterprise"}}',
        b'{"purpose": "deposit_waiver", "purpose" : "other"}',
        b'{"context": {}, "a": [{"x": 1, "x": 2}]}',
        # escaped quotes the body does not show must not hide a repeated name
        b'{"purpose": 1, "purpose": 2, "staff_id": "\\u0022\\u0022"}',
        b'{"staff_id": "a", "staff\\u005fid": "b"}',
    ],
)
async def test_a_member_named_twice_is_refused(demo: Demo, raw: bytes) -> None:
    """Issue 14: duplicate names were accepted silently (the last one won)."""
    response = await post_raw(demo, "library", io.BytesIO(raw))
    assert response.status == 422
    body = await problem(response)
    assert body["code"] == "invalid_request"
    assert "appears twice" in body["errors"][0]["message"]


async def test_a_string_holding_a_name_end_is_not_a_duplicate(demo: Demo) -> None:
    subject = person(demo)
    body = demo.body(subject, "library") | {"staff_id": 'staff "x": 1'}
    response = await post_raw(demo, "library", io.BytesIO(orjson.dumps(body)))
    assert response.status == 200


@pytest.mark.parametrize("depth", [300, 1000, 2000])
async def test_deep_nesting_is_a_4xx_not_a_500(demo: Demo, depth: int) -> None:
    """JSON, however deep, is checked against the schema (422); past orjson's parsing
    depth (1024) it is not read as JSON at all (400)."""
    raw = b'{"a":' * depth + b"1" + b"}" * depth
    response = await post_raw(demo, "library", io.BytesIO(raw))
    assert response.status == (422 if depth <= 1024 else 400)
    assert (await problem(response))["code"] == "invalid_request"
