"""Benefit tokens, status lists and the OpenAPI document, checked with standard libraries.

Tokens are verified the way a partner would: PyJWT with the keys from
/.well-known/jwks.json, the algorithm pinned, audience and issuer required.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
import zlib
from typing import TYPE_CHECKING, Any

import jwt
import orjson
import pytest
from openapi_spec_validator import validate

if TYPE_CHECKING:
    from conftest import Demo

CLAIMS = {
    "iss",
    "sub",
    "aud",
    "iat",
    "nbf",
    "exp",
    "jti",
    "vct",
    "scene",
    "benefits",
    "policy",
    "decision_id",
    "status",
}
DAY = 86_400


def b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


async def jwks(demo: Demo) -> jwt.PyJWKSet:
    response = await demo.client.get("/.well-known/jwks.json")
    assert response.status == 200
    keys = await response.json()
    for key in keys["keys"]:
        assert "d" not in key, "a private member in the JWKS"
    return jwt.PyJWKSet.from_dict(keys)


def verify(token: str, keys: jwt.PyJWKSet, audience: str | None, issuer: str) -> dict[str, Any]:
    kid = jwt.get_unverified_header(token)["kid"]
    claims: dict[str, Any] = jwt.decode(
        token,
        key=keys[kid],
        algorithms=["EdDSA"],
        audience=audience,
        issuer=issuer,
        options={"require": ["iss", "iat", "exp"]},
    )
    return claims


async def granted(demo: Demo, scene: str, subject: dict[str, Any] | None = None) -> dict[str, Any]:
    subject = subject or demo.subject("person", {scene: "granted"})
    response = await demo.decide(subject, scene)
    body: dict[str, Any] = await response.json()
    assert body["outcome"] == "granted", body
    return body


def status_at(lst: str, idx: int) -> int:
    """The 2-bit status of entry ``idx`` (draft-ietf-oauth-status-list: LSB first)."""
    packed = zlib.decompress(b64decode(lst))
    return (packed[idx // 4] >> (2 * (idx % 4))) & 0b11


async def test_granted_token_verifies_through_the_jwks(demo: Demo) -> None:
    keys = await jwks(demo)
    body = await granted(demo, "library")
    token = body["token"]
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "benefit+jwt"
    assert header["alg"] == "EdDSA"
    assert header["kid"] in {k.key_id for k in keys.keys}
    assert not {"jku", "x5u", "jwk"} & set(header)

    claims = verify(token, keys, "demo-library", demo.gateway.settings.issuer)
    assert set(claims) >= CLAIMS
    assert claims["aud"] == "demo-library"
    assert claims["scene"] == "library"
    assert claims["vct"].startswith("library.")
    assert claims["benefits"] == body["benefits"]
    assert claims["policy"] == body["policy"]
    assert claims["decision_id"] == body["decision_id"]
    assert claims["nbf"] == claims["iat"]
    assert abs(claims["iat"] - time.time()) < 60
    # Unique and time-ordered: 48 bits of milliseconds, 80 random bits (gateway/ids.py).
    assert len(bytes.fromhex(claims["jti"])) == 16
    entry = claims["status"]["status_list"]
    assert set(entry) == {"idx", "uri"}
    assert isinstance(entry["idx"], int)
    assert entry["uri"].startswith(demo.gateway.settings.issuer + "/v1/status-lists/")


async def test_token_is_refused_for_another_audience_or_when_altered(demo: Demo) -> None:
    keys = await jwks(demo)
    token = (await granted(demo, "library"))["token"]
    issuer = demo.gateway.settings.issuer
    with pytest.raises(jwt.InvalidAudienceError):
        verify(token, keys, "demo-transit", issuer)
    with pytest.raises(jwt.InvalidIssuerError):
        verify(token, keys, "demo-library", "https://elsewhere.example")
    header, payload, signature = token.split(".")
    claims = orjson.loads(b64decode(payload)) | {"aud": "demo-transit"}
    forged = ".".join([header, base64.urlsafe_b64encode(orjson.dumps(claims)).decode(), signature])
    with pytest.raises(jwt.InvalidSignatureError):
        verify(forged.replace("=", ""), keys, "demo-transit", issuer)


async def test_token_lifetime_is_days_not_months(demo: Demo) -> None:
    for scene in ("library", "transit", "loan", "approval"):
        kind = "person" if scene in ("library", "transit") else "enterprise"
        body = await granted(demo, scene, demo.subject(kind, {scene: "granted"}))
        claims = jwt.decode(body["token"], options={"verify_signature": False})
        lifetime = claims["exp"] - claims["iat"]
        assert DAY <= lifetime <= 14 * DAY, scene
        assert lifetime % DAY == 0, scene
        # the business end date is a separate claim, not the token's lifetime
        until = dt.date.fromisoformat(claims["benefit_until"])
        assert until >= dt.datetime.fromtimestamp(claims["exp"], dt.UTC).date()
        # the body states the same instants as the token, in whole seconds, UTC
        assert body["issued_at"] == dt.datetime.fromtimestamp(claims["iat"], dt.UTC).isoformat()
        assert body["expires_at"] == dt.datetime.fromtimestamp(claims["exp"], dt.UTC).isoformat()
        assert body["benefit_until"] == claims["benefit_until"]
        assert abs(claims["iat"] - time.time()) < 5


async def test_sub_is_a_pairwise_pseudonym(demo: Demo) -> None:
    person = demo.subject("person", {"library": "granted", "transit": "granted"})
    unverified = {"verify_signature": False}
    library = jwt.decode((await granted(demo, "library", person))["token"], options=unverified)
    again = jwt.decode((await granted(demo, "library", person))["token"], options=unverified)
    transit = jwt.decode((await granted(demo, "transit", person))["token"], options=unverified)
    assert library["sub"] == again["sub"], "stable for one partner"
    assert library["sub"] != transit["sub"], "unlinkable across partners"
    assert library["jti"] != again["jti"]
    for sub in (library["sub"], transit["sub"]):
        assert person["id"][:17] not in sub.upper()
        assert len(sub) >= 32


async def test_no_score_or_national_id_anywhere_in_the_token(demo: Demo) -> None:
    checked = 0
    for subject in demo.subjects:
        records = await demo.gateway.credit.records(subject["kind"], subject["id"])
        values = {r.value for r in records if r.value is not None and r.type == "credit_score"}
        for scene, outcome in subject["expected"].items():
            if outcome != "granted":
                continue
            token = (await (await demo.decide(subject, scene)).json())["token"]
            header, payload, _ = token.split(".")
            text = (b64decode(header) + b64decode(payload)).decode()
            assert subject["id"][:17] not in text.upper()
            assert "score" not in text.lower()
            claims = orjson.loads(b64decode(payload))
            assert not {"reasons", "facts", "constraints"} & set(claims)
            assert not values & set(_leaves(claims)), subject["label"]
            checked += 1
    assert checked >= 6


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


async def test_status_list_is_a_signed_public_jwt_with_the_tokens_status(demo: Demo) -> None:
    keys = await jwks(demo)
    issuer = demo.gateway.settings.issuer
    unverified = {"verify_signature": False}
    first = demo.subject("person", {"library": "granted"})
    second = next(
        s
        for s in demo.subjects
        if s["expected"].get("library") == "granted" and s["id"] != first["id"]
    )
    kept = jwt.decode((await granted(demo, "library", second))["token"], options=unverified)
    revoked = jwt.decode((await granted(demo, "library", first))["token"], options=unverified)

    # the upstream platform lists the first reader as a dishonest judgement debtor
    today = dt.date.today()
    event = {
        "subject": {"kind": "person", "id": first["id"]},
        "event": "listed",
        "record": {
            "record_id": "rec-test-0001",
            "type": "dishonest_executed",
            "domain": "court_enforcement",
            "effective_document": True,
            "adverse": True,
            "decided_on": (today - dt.timedelta(days=3)).isoformat(),
            "publication_until": (today + dt.timedelta(days=900)).isoformat(),
        },
    }
    posted = await demo.client.post(
        "/v1/events/credit", json=event, headers=demo.auth("demo-platform")
    )
    assert posted.status == 202, await posted.text()
    assert (await posted.json())["tokens_revoked"] == 1

    uri = revoked["status"]["status_list"]["uri"]
    assert uri == kept["status"]["status_list"]["uri"], "one list holds both tokens"
    response = await demo.client.get(uri.removeprefix(issuer))  # public: no credentials
    assert response.status == 200
    assert response.content_type == "application/statuslist+jwt"
    status_jwt = await response.text()
    header = jwt.get_unverified_header(status_jwt)
    assert header["typ"] == "statuslist+jwt"
    assert header["kid"] in {k.key_id for k in keys.keys}
    claims = verify(status_jwt, keys, None, issuer)
    assert claims["sub"] == uri
    assert claims["exp"] > claims["iat"]
    assert claims["ttl"] > 0
    status_list = claims["status_list"]
    assert status_list["bits"] == 2
    assert len(zlib.decompress(b64decode(status_list["lst"]))) * 4 >= 131_072
    assert status_at(status_list["lst"], kept["status"]["status_list"]["idx"]) == 0
    assert status_at(status_list["lst"], revoked["status"]["status_list"]["idx"]) == 1


def test_status_list_bit_order_matches_the_drafts_example() -> None:
    # draft-ietf-oauth-status-list, 2-bit example: statuses 1,2,0,3,0,1,0,1,1,2,3,3
    lst = base64.urlsafe_b64encode(zlib.compress(bytes([0xC9, 0x44, 0xF9]))).decode()
    expected = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]
    assert [status_at(lst.rstrip("="), i) for i in range(12)] == expected


async def test_unknown_status_list_is_404(demo: Demo) -> None:
    response = await demo.client.get("/v1/status-lists/0000000000000000")
    assert response.status == 404
    assert response.content_type == "application/problem+json"


async def test_openapi_is_valid_3_1_and_names_every_route(demo: Demo) -> None:
    response = await demo.client.get("/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    validate(document)
    routed: set[tuple[str, str]] = set()
    for route in demo.client.app.router.routes():
        # /ui is HTML for people, not the partner contract (docs/ui.md)
        if route.method != "HEAD" and not route.resource.canonical.startswith("/ui"):
            routed.add((route.resource.canonical, route.method.lower()))
    documented = {
        (path, method)
        for path, operations in document["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert routed - documented == set()
    assert documented - routed == set()


async def test_each_scene_states_its_own_policys_periods(demo: Demo) -> None:
    # Decisions of one second share their formatted dates; the periods still come
    # from each scene's policy (loan: 90 benefit days, the others 30).
    gw = demo.gateway
    seen: set[int] = set()
    for scene in ("loan", "library", "approval", "transit", "loan"):
        kind = "person" if scene in ("library", "transit") else "enterprise"
        body = await granted(demo, scene, demo.subject(kind, {scene: "granted"}))
        policy = gw.policies.active(scene, gw.today())
        assert policy is not None
        claims = jwt.decode(body["token"], options={"verify_signature": False})
        until = gw.today() + dt.timedelta(days=policy.policy.benefit_days)
        assert body["benefit_until"] == claims["benefit_until"] == until.isoformat(), scene
        assert claims["exp"] - claims["iat"] == policy.policy.token_days * DAY, scene
        seen.add(policy.policy.benefit_days)
    assert len(seen) > 1, "the demo policies should differ in their benefit periods"


def test_dates_of_one_second_differ_by_policy(demo: Demo) -> None:
    pipeline = demo.gateway.pipeline
    now = dt.datetime(2026, 12, 2, 10, 0, 0, 700_000, tzinfo=dt.UTC)
    today = dt.date(2026, 12, 2)
    loan = pipeline._times(now, today, 7, 90)
    library = pipeline._times(now, today, 3, 30)
    assert (loan.benefit_until, library.benefit_until) == ("2027-03-02", "2027-01-01")
    assert (loan.exp - loan.iat, library.exp - library.iat) == (7 * DAY, 3 * DAY)
    assert loan.issued_at == library.issued_at == "2026-12-02T10:00:00+00:00"
    assert library.expires_at == "2026-12-05T10:00:00+00:00"
    assert pipeline._times(now, today, 7, 90) is loan  # the same second and policy: memoised
