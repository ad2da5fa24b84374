"""POST /oauth/token: private_key_jwt client assertions (RFC 7523 as FAPI 2.0 profiles it).

One valid exchange, then every way an assertion must be refused: algorithm
confusion (``none``, HS256 keyed with a public key), key selection attacks
(unknown, path-like or injected ``kid``; ``jku``/``x5u``/``jwk`` headers),
time claims at both edges of the 60 s skew, audience and lifetime rules,
replay, and assertions signed with another partner's key. Refusals use the
RFC 6749 §5.2 error shape with ``Cache-Control: no-store``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.oauth.jose_kit import b64u, b64u_decode, compact

if TYPE_CHECKING:
    from tests.oauth.conftest import MakeOAuthDemo, OAuthDemo

LIBRARY = "demo-library"
BANK = "demo-bank"
PLATFORM = "demo-platform"
PERSON_650 = "person, credit score 650"

Build = Callable[["OAuthDemo"], Awaitable[str]]
# Tests on the module's shared gateway (``shared_oauth_demo``) run on the module's loop.
SHARED = pytest.mark.asyncio(loop_scope="module")


def _attacker() -> tuple[Ed25519PrivateKey, dict[str, str]]:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key, {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw), "kid": "attacker-1"}


async def _assert_oauth_error(response: Any, error: str, status: int = 401) -> dict[str, Any]:
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = await response.json()
    assert set(body) == {"error", "error_description"}, body
    assert body["error"] == error, body
    assert isinstance(body["error_description"], str)
    assert body["error_description"]
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "access_token" not in text
    return body


async def _assert_issued(response: Any) -> dict[str, Any]:
    assert response.status == 200, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = await response.json()
    assert body["token_type"] == "Bearer"
    assert body["access_token"].startswith("xat_")
    assert 0 < body["expires_in"] <= 3600
    return body


# -- the happy path ---------------------------------------------------------------------------
@SHARED
async def test_metadata_names_issuer_endpoints_and_only_asymmetric_algorithms(
    shared_oauth_demo: OAuthDemo,
) -> None:
    demo = shared_oauth_demo
    response = await demo.client.get("/.well-known/oauth-authorization-server")
    assert response.status == 200
    meta = await response.json()
    issuer = demo.issuer
    assert meta["issuer"] == issuer
    assert meta["token_endpoint"] == f"{issuer}/oauth/token"
    assert meta["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert meta["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert set(meta["token_endpoint_auth_signing_alg_values_supported"]) == {
        "EdDSA",
        "ES256",
        "PS256",
    }
    assert "client_credentials" in meta["grant_types_supported"]


@SHARED
async def test_a_valid_assertion_buys_an_access_token_that_serves_decisions(
    shared_oauth_demo: OAuthDemo,
) -> None:
    demo = shared_oauth_demo
    body = await _assert_issued(await demo.exchange(demo.assertion(LIBRARY)))
    assert body["scope"] == "library"
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    response = await demo.decide(demo.subject(PERSON_650), "library", LIBRARY, headers=headers)
    assert response.status == 200, await response.text()
    assert (await response.json())["outcome"] == "granted"
    # The access token is the partner, not anyone else: a platform-only endpoint refuses it.
    refused = await demo.client.post("/v1/events/credit", json={}, headers=headers)
    assert refused.status == 403
    assert (await refused.json())["code"] == "forbidden_kind"


@SHARED
async def test_client_id_matching_the_assertion_is_accepted(shared_oauth_demo: OAuthDemo) -> None:
    demo = shared_oauth_demo
    await _assert_issued(await demo.exchange(demo.assertion(LIBRARY), client_id=LIBRARY))


async def test_scope_narrows_the_contract(make_oauth_demo: MakeOAuthDemo) -> None:
    def two_scenes(partners: list[dict[str, Any]]) -> None:
        library = next(p for p in partners if p["id"] == LIBRARY)
        library["scenes"] = ["library", "transit"]

    demo = await make_oauth_demo(two_scenes)
    person = demo.subject(PERSON_650)
    both = await _assert_issued(await demo.exchange(demo.assertion(LIBRARY)))
    assert set(both["scope"].split()) == {"library", "transit"}

    narrow = await _assert_issued(await demo.exchange(demo.assertion(LIBRARY), scope="library"))
    assert narrow["scope"] == "library"
    headers = {"Authorization": f"Bearer {narrow['access_token']}"}
    granted = await demo.decide(person, "library", LIBRARY, headers=headers)
    assert granted.status == 200, await granted.text()
    # The consent covers only the library scene; the scope check comes before consent.
    outside = await demo.decide(person, "transit", LIBRARY, headers=headers)
    assert outside.status == 403
    assert (await outside.json())["code"] == "forbidden_scene"


async def test_scope_narrows_a_platform_token_to_its_endpoints(oauth_demo: OAuthDemo) -> None:
    """A platform token granted ``consents`` cannot post credit events, and vice versa."""
    demo = oauth_demo
    person = demo.subject(PERSON_650)
    consent_id = person["consents"][LIBRARY]["consent_id"]
    event = {
        "subject": {"kind": person["kind"], "id": person["id"]},
        "event": "record_added",
        "record": {
            "record_id": "ev-scope-1",
            "type": "registration",
            "domain": "market_registration",
            "adverse": False,
            "decided_on": demo.gateway.today().isoformat(),
        },
    }
    consents_only = await demo.bearer(PLATFORM, scope="consents")
    events_only = await demo.bearer(PLATFORM, scope="events")

    refused = await demo.client.post("/v1/events/credit", json=event, headers=consents_only)
    assert refused.status == 403, await refused.text()
    assert (await refused.json())["code"] == "insufficient_scope"
    for call in (
        demo.client.delete(f"/v1/consents/{consent_id}", headers=events_only),
        demo.client.post("/v1/consents", json={}, headers=events_only),
    ):
        response = await call
        assert response.status == 403, await response.text()
        assert (await response.json())["code"] == "insufficient_scope"
    # Nothing happened: the consent still serves decisions.
    assert (await demo.decide(person, "library", LIBRARY)).status == 200

    accepted = await demo.client.post("/v1/events/credit", json=event, headers=events_only)
    assert accepted.status == 202, await accepted.text()
    full = await demo.bearer(PLATFORM)
    assert (await demo.client.delete(f"/v1/consents/{consent_id}", headers=full)).status == 204


@SHARED
@pytest.mark.parametrize("scope", ["loan", "library loan", "admin", "events", "library\x00"])
async def test_a_scope_outside_the_contract_is_invalid_scope(
    shared_oauth_demo: OAuthDemo, scope: str
) -> None:
    demo = shared_oauth_demo
    response = await demo.exchange(demo.assertion(LIBRARY), scope=scope)
    await _assert_oauth_error(response, "invalid_scope", 400)


# -- algorithm confusion --------------------------------------------------------------------
def _unsigned(demo: OAuthDemo, alg: str) -> str:
    header = {"alg": alg, "typ": "JWT", "kid": demo.kid(LIBRARY)}
    return compact(header, demo.claims(LIBRARY), lambda _: b"")


def _hs256(demo: OAuthDemo, secret: bytes, kid: str | None) -> str:
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    return compact(
        header,
        demo.claims(LIBRARY),
        lambda data: hmac.new(secret, data, hashlib.sha256).digest(),
    )


async def _server_key_x(demo: OAuthDemo) -> tuple[str, str]:
    jwk = (await demo.jwks())["keys"][0]
    return jwk["x"], jwk["kid"]


async def _hs256_server_x_raw(demo: OAuthDemo) -> str:
    x, kid = await _server_key_x(demo)
    return _hs256(demo, b64u_decode(x), kid)


async def _hs256_server_x_text(demo: OAuthDemo) -> str:
    x, _ = await _server_key_x(demo)
    return _hs256(demo, x.encode(), demo.kid(LIBRARY))


async def _hs256_partner_pem(demo: OAuthDemo) -> str:
    pem = (
        demo.signing_key(LIBRARY)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return _hs256(demo, pem, demo.kid(LIBRARY))


async def _hs256_partner_raw_no_kid(demo: OAuthDemo) -> str:
    raw = (
        demo.signing_key(LIBRARY)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return _hs256(demo, raw, None)


async def _none(demo: OAuthDemo) -> str:
    return _unsigned(demo, "none")


async def _none_upper(demo: OAuthDemo) -> str:
    return _unsigned(demo, "NONE")


async def _none_with_real_signature_stripped(demo: OAuthDemo) -> str:
    _, payload, _ = demo.assertion(LIBRARY).split(".")
    none_header = b64u(b'{"alg":"none"}')
    return f"{none_header}.{payload}."


async def _real_header_no_signature(demo: OAuthDemo) -> str:
    header, payload, _ = demo.assertion(LIBRARY).split(".")
    return f"{header}.{payload}."


async def _eddsa_header_hs_signature(demo: OAuthDemo) -> str:
    # The header says EdDSA, the "signature" is an HMAC keyed with the public key.
    raw = (
        demo.signing_key(LIBRARY)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    header = {"alg": "EdDSA", "kid": demo.kid(LIBRARY)}
    return compact(
        header, demo.claims(LIBRARY), lambda data: hmac.new(raw, data, hashlib.sha256).digest()
    )


async def _es256_header_on_eddsa_key(demo: OAuthDemo) -> str:
    header = {"alg": "ES256", "kid": demo.kid(LIBRARY)}
    return compact(header, demo.claims(LIBRARY), demo.signing_key(LIBRARY).sign)


# -- key selection ---------------------------------------------------------------------------
async def _unknown_kid(demo: OAuthDemo) -> str:
    return demo.assertion(LIBRARY, kid="no-such-key")


async def _path_kid(demo: OAuthDemo) -> str:
    return demo.assertion(LIBRARY, kid="../../keys/x.pem")


async def _absolute_path_kid(demo: OAuthDemo) -> str:
    return demo.assertion(LIBRARY, kid=f"{demo.gateway.settings.state_dir}/clients/{LIBRARY}")


async def _server_kid(demo: OAuthDemo) -> str:
    # Our own signing key's kid is no client key, even though a file of that name exists.
    _, kid = await _server_key_x(demo)
    return demo.assertion(LIBRARY, kid=kid)


async def _sql_kid(demo: OAuthDemo) -> str:
    return demo.assertion(LIBRARY, kid="x' OR '1'='1")


async def _nul_kid(demo: OAuthDemo) -> str:
    return demo.assertion(LIBRARY, kid=demo.kid(LIBRARY) + "\x00")


async def _kid_prefix(demo: OAuthDemo) -> str:
    return demo.assertion(LIBRARY, kid=demo.kid(LIBRARY)[:-1])


async def _list_kid(demo: OAuthDemo) -> str:
    header = {"alg": "EdDSA", "kid": [demo.kid(LIBRARY)]}
    return compact(header, demo.claims(LIBRARY), demo.signing_key(LIBRARY).sign)


async def _crit_unknown(demo: OAuthDemo) -> str:
    # RFC 7515 §4.1.11: an extension the recipient does not understand must be refused.
    header = {"alg": "EdDSA", "kid": demo.kid(LIBRARY), "crit": ["urn:x:ext"], "urn:x:ext": 1}
    return compact(header, demo.claims(LIBRARY), demo.signing_key(LIBRARY).sign)


async def _exp_infinity(demo: OAuthDemo) -> str:
    # orjson cannot write Infinity, Python's json module reads it: build the payload by hand.
    now = int(time.time())
    payload = (
        f'{{"iss":"{LIBRARY}","sub":"{LIBRARY}","aud":"{demo.issuer}",'
        f'"iat":{now},"exp":Infinity,"jti":"{secrets.token_urlsafe(12)}"}}'
    )
    header = b64u(orjson.dumps({"alg": "EdDSA", "kid": demo.kid(LIBRARY)}))
    signing_input = f"{header}.{b64u(payload.encode())}".encode()
    signature = demo.signing_key(LIBRARY).sign(signing_input)
    return f"{signing_input.decode()}.{b64u(signature)}"


async def _jku_attacker(demo: OAuthDemo) -> str:
    key, public = _attacker()
    return demo.assertion(
        LIBRARY,
        key=key,
        kid=public["kid"],
        headers={"jku": "https://attacker.example/jwks.json"},
    )


async def _jku_attacker_real_kid(demo: OAuthDemo) -> str:
    key, _ = _attacker()
    return demo.assertion(LIBRARY, key=key, headers={"jku": "https://attacker.example/jwks.json"})


async def _x5u_attacker(demo: OAuthDemo) -> str:
    key, public = _attacker()
    return demo.assertion(
        LIBRARY, key=key, kid=public["kid"], headers={"x5u": "https://attacker.example/cert.pem"}
    )


async def _jwk_attacker(demo: OAuthDemo) -> str:
    key, public = _attacker()
    return demo.assertion(LIBRARY, key=key, kid=public["kid"], headers={"jwk": public})


async def _jwk_attacker_real_kid(demo: OAuthDemo) -> str:
    key, public = _attacker()
    return demo.assertion(LIBRARY, key=key, headers={"jwk": public | {"kid": demo.kid(LIBRARY)}})


async def _jwk_attacker_no_kid(demo: OAuthDemo) -> str:
    key, public = _attacker()
    return demo.assertion(LIBRARY, key=key, kid=None, headers={"jwk": public})


# -- claims -------------------------------------------------------------------------------------
def _claims_case(**changes: Any) -> Build:
    async def build(demo: OAuthDemo) -> str:
        now = int(time.time())
        resolved = {k: v(now, demo) if callable(v) else v for k, v in changes.items()}
        return demo.assertion(LIBRARY, **resolved)

    return build


def _from_now(seconds: int) -> Callable[[int, OAuthDemo], int]:
    return lambda now, _: now + seconds


REFUSED: dict[str, Build] = {
    "alg-none": _none,
    "alg-NONE": _none_upper,
    "alg-none-header-on-real-payload": _none_with_real_signature_stripped,
    "signature-stripped": _real_header_no_signature,
    "hs256-keyed-with-server-jwks-x-bytes": _hs256_server_x_raw,
    "hs256-keyed-with-server-jwks-x-text": _hs256_server_x_text,
    "hs256-keyed-with-partner-public-pem": _hs256_partner_pem,
    "hs256-keyed-with-partner-raw-public-key-no-kid": _hs256_partner_raw_no_kid,
    "eddsa-header-hmac-signature": _eddsa_header_hs_signature,
    "es256-header-on-an-ed25519-key": _es256_header_on_eddsa_key,
    "unknown-kid": _unknown_kid,
    "path-kid": _path_kid,
    "absolute-path-kid": _absolute_path_kid,
    "server-signing-kid": _server_kid,
    "sql-injected-kid": _sql_kid,
    "kid-with-nul": _nul_kid,
    "kid-prefix": _kid_prefix,
    "kid-not-a-string": _list_kid,
    "crit-unknown-extension": _crit_unknown,
    "exp-infinity": _exp_infinity,
    "jku-attacker-key": _jku_attacker,
    "jku-attacker-key-real-kid": _jku_attacker_real_kid,
    "x5u-attacker-key": _x5u_attacker,
    "embedded-jwk-attacker-key": _jwk_attacker,
    "embedded-jwk-attacker-key-real-kid": _jwk_attacker_real_kid,
    "embedded-jwk-attacker-key-no-kid": _jwk_attacker_no_kid,
    "expired": _claims_case(iat=_from_now(-3700), exp=_from_now(-3600)),
    "exp-61s-past": _claims_case(iat=_from_now(-181), exp=_from_now(-61)),
    "iat-61s-future": _claims_case(iat=_from_now(61), exp=_from_now(181)),
    "nbf-61s-future": _claims_case(nbf=_from_now(61)),
    "nbf-1h-future": _claims_case(nbf=_from_now(3600), exp=_from_now(3700), iat=_from_now(3600)),
    "lifetime-301s": _claims_case(exp=_from_now(301)),
    "lifetime-1-day": _claims_case(exp=_from_now(86_400)),
    "aud-other-url": _claims_case(aud="https://attacker.example"),
    "aud-token-endpoint": _claims_case(aud=lambda _, d: f"{d.issuer}/oauth/token"),
    "aud-trailing-slash": _claims_case(aud=lambda _, d: f"{d.issuer}/"),
    "aud-list-with-issuer": _claims_case(aud=lambda _, d: [d.issuer]),
    "aud-list-issuer-and-other": _claims_case(aud=lambda _, d: [d.issuer, "other"]),
    "aud-missing": _claims_case(aud=None),
    "exp-missing": _claims_case(exp=None),
    "iat-missing": _claims_case(iat=None),
    "jti-missing": _claims_case(jti=None),
    "jti-too-short": _claims_case(jti="abc"),
    "jti-not-a-string": _claims_case(jti=12345678901),
    "sub-missing": _claims_case(sub=None),
    "sub-other-partner": _claims_case(sub=BANK),
    "iss-unknown": _claims_case(iss="nobody", sub="nobody"),
    "exp-not-a-number": _claims_case(exp="tomorrow"),
    # NumericDate is a JSON number: PyJWT would coerce these strings and bools.
    "iat-numeric-string": _claims_case(iat=lambda now, _: str(now)),
    "exp-numeric-string": _claims_case(exp=lambda now, _: str(now + 100)),
    "nbf-numeric-string": _claims_case(nbf=lambda now, _: str(now)),
    "iat-bool": _claims_case(iat=True),
    "exp-astronomical": _claims_case(exp=10**400),
}


async def _signed_by_other_partner(demo: OAuthDemo) -> str:
    return demo.assertion(LIBRARY, key=demo.signing_key(BANK), kid=demo.kid(BANK))


async def _signed_by_other_partner_no_kid(demo: OAuthDemo) -> str:
    return demo.assertion(LIBRARY, key=demo.signing_key(BANK), kid=None)


async def _signed_by_other_partner_own_kid(demo: OAuthDemo) -> str:
    return demo.assertion(LIBRARY, key=demo.signing_key(BANK))


REFUSED |= {
    "claims-library-signed-by-bank-with-bank-kid": _signed_by_other_partner,
    "claims-library-signed-by-bank-without-kid": _signed_by_other_partner_no_kid,
    "claims-library-signed-by-bank-with-library-kid": _signed_by_other_partner_own_kid,
}


@SHARED
@pytest.mark.parametrize("case", sorted(REFUSED))
async def test_refused_assertions_are_invalid_client(
    shared_oauth_demo: OAuthDemo, case: str
) -> None:
    assertion = await REFUSED[case](shared_oauth_demo)
    await _assert_oauth_error(await shared_oauth_demo.exchange(assertion), "invalid_client")


async def _jwk_header_on_real_signature(demo: OAuthDemo) -> str:
    _, public = _attacker()
    return demo.assertion(
        LIBRARY,
        headers={"jwk": public, "jku": "https://a.example/k", "x5u": "https://a.example/c"},
    )


ACCEPTED: dict[str, Build] = {
    "iat-59s-future": _claims_case(iat=_from_now(59), exp=_from_now(179)),
    "exp-59s-past": _claims_case(iat=_from_now(-179), exp=_from_now(-59)),
    "nbf-59s-future": _claims_case(nbf=_from_now(59)),
    "lifetime-300s": _claims_case(exp=_from_now(300)),
    "no-kid-single-key": _claims_case(kid=None),
    "jku-ignored": _claims_case(headers={"jku": "https://attacker.example/jwks.json"}),
    "x5u-ignored": _claims_case(headers={"x5u": "https://attacker.example/cert.pem"}),
    "jwk-jku-x5u-ignored": _jwk_header_on_real_signature,
}


@SHARED
@pytest.mark.parametrize("case", sorted(ACCEPTED))
async def test_accepted_edges_and_ignored_headers(shared_oauth_demo: OAuthDemo, case: str) -> None:
    """The other side of each edge: proves the refusals above are about the one change."""
    assertion = await ACCEPTED[case](shared_oauth_demo)
    await _assert_issued(await shared_oauth_demo.exchange(assertion))


@SHARED
async def test_the_jwk_header_never_supplies_the_key(shared_oauth_demo: OAuthDemo) -> None:
    """Same attacker key, embedded as jwk: refused; real key plus the same header: accepted."""
    demo = shared_oauth_demo
    key, public = _attacker()
    forged = demo.assertion(LIBRARY, key=key, kid=None, headers={"jwk": public})
    await _assert_oauth_error(await demo.exchange(forged), "invalid_client")
    real = demo.assertion(LIBRARY, kid=None, headers={"jwk": public})
    await _assert_issued(await demo.exchange(real))


# -- replay and client binding --------------------------------------------------------------
@SHARED
async def test_a_replayed_assertion_is_refused(shared_oauth_demo: OAuthDemo) -> None:
    demo = shared_oauth_demo
    assertion = demo.assertion(LIBRARY)
    await _assert_issued(await demo.exchange(assertion))
    body = await _assert_oauth_error(await demo.exchange(assertion), "invalid_client")
    assert "already used" in body["error_description"]
    # A new jti from the same client is fine: the cache is keyed by jti, not by client.
    await _assert_issued(await demo.exchange(demo.assertion(LIBRARY)))


@SHARED
async def test_a_jti_reused_in_a_fresh_assertion_is_refused(shared_oauth_demo: OAuthDemo) -> None:
    demo = shared_oauth_demo
    first = demo.assertion(LIBRARY, jti="jti-fixed-0001")
    await _assert_issued(await demo.exchange(first))
    again = demo.assertion(LIBRARY, jti="jti-fixed-0001", exp=int(time.time()) + 100)
    assert again != first
    await _assert_oauth_error(await demo.exchange(again), "invalid_client")


@SHARED
async def test_a_refused_assertion_does_not_burn_its_jti(shared_oauth_demo: OAuthDemo) -> None:
    """An attacker who replays a victim's jti with a bad signature must not lock the victim out."""
    demo = shared_oauth_demo
    key, _ = _attacker()
    forged = demo.assertion(LIBRARY, key=key, jti="jti-victim-0001")
    await _assert_oauth_error(await demo.exchange(forged), "invalid_client")
    real = demo.assertion(LIBRARY, jti="jti-victim-0001")
    await _assert_issued(await demo.exchange(real))


@SHARED
async def test_client_id_must_match_the_assertion(shared_oauth_demo: OAuthDemo) -> None:
    demo = shared_oauth_demo
    response = await demo.exchange(demo.assertion(LIBRARY), client_id=BANK)
    await _assert_oauth_error(response, "invalid_client")


# -- the request itself ----------------------------------------------------------------------
@SHARED
async def test_only_client_credentials_is_supported(shared_oauth_demo: OAuthDemo) -> None:
    demo = shared_oauth_demo
    for grant in ("password", "authorization_code", "", None):
        response = await demo.exchange(demo.assertion(LIBRARY), grant_type=grant)
        await _assert_oauth_error(response, "unsupported_grant_type", 400)


@SHARED
async def test_the_assertion_type_must_be_jwt_bearer(shared_oauth_demo: OAuthDemo) -> None:
    demo = shared_oauth_demo
    for kind in ("urn:ietf:params:oauth:client-assertion-type:saml2-bearer", "", None):
        response = await demo.exchange(demo.assertion(LIBRARY), client_assertion_type=kind)
        await _assert_oauth_error(response, "invalid_client")


@SHARED
async def test_a_missing_or_malformed_assertion(shared_oauth_demo: OAuthDemo) -> None:
    demo = shared_oauth_demo
    await _assert_oauth_error(
        await demo.exchange("", client_assertion=None), "invalid_request", 400
    )
    for garbage in ("not-a-jwt", "a.b.c", "e30.e30.", "...."):
        await _assert_oauth_error(await demo.exchange(garbage), "invalid_client")


@SHARED
async def test_a_json_body_is_invalid_request(shared_oauth_demo: OAuthDemo) -> None:
    demo = shared_oauth_demo
    response = await demo.client.post("/oauth/token", json=demo.form(demo.assertion(LIBRARY)))
    await _assert_oauth_error(response, "invalid_request", 400)


@SHARED
async def test_the_assertion_must_travel_in_the_body_not_the_query(
    shared_oauth_demo: OAuthDemo,
) -> None:
    demo = shared_oauth_demo
    response = await demo.client.post(
        "/oauth/token", params=demo.form(demo.assertion(LIBRARY)), data={}
    )
    # Only the body is read: it is empty, so even the grant type is missing (the first check).
    await _assert_oauth_error(response, "unsupported_grant_type", 400)
    assert "access_token" not in await response.text()


# -- access tokens on /v1/ -------------------------------------------------------------------
async def _assert_unauthenticated(response: Any) -> None:
    assert response.status == 401, await response.text()
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["code"] == "unauthenticated"
    assert body["status"] == 401


@SHARED
async def test_an_unknown_access_token_is_unauthenticated(shared_oauth_demo: OAuthDemo) -> None:
    demo = shared_oauth_demo
    real = await demo.access_token(LIBRARY)
    for token in ("xat_" + "A" * 43, real[:-1], real + "x", "xat_", real.upper()):
        response = await demo.client.get("/v1/scenes", headers={"Authorization": f"Bearer {token}"})
        await _assert_unauthenticated(response)
    ok = await demo.client.get("/v1/scenes", headers={"Authorization": f"Bearer {real}"})
    assert ok.status == 200


async def test_an_expired_access_token_is_unauthenticated(
    oauth_demo: OAuthDemo, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await oauth_demo.access_token(LIBRARY)
    headers = {"Authorization": f"Bearer {token}"}
    person = oauth_demo.subject(PERSON_650)
    assert (await oauth_demo.decide(person, "library", LIBRARY, headers=headers)).status == 200
    real_time = time.time
    later = SimpleNamespace(time=lambda: real_time() + 601, monotonic=time.monotonic)
    monkeypatch.setattr("gateway.store.embedded.access_tokens.time", later)
    await _assert_unauthenticated(
        await oauth_demo.decide(person, "library", LIBRARY, headers=headers)
    )


async def test_api_keys_stop_working_where_the_contract_disallows_them(
    make_oauth_demo: MakeOAuthDemo,
) -> None:
    def oauth_only(partners: list[dict[str, Any]]) -> None:
        library = next(p for p in partners if p["id"] == LIBRARY)
        library["allow_api_keys"] = False
        library["api_key_sha256"] = []

    demo = await make_oauth_demo(oauth_only)
    await _assert_unauthenticated(
        await demo.client.get("/v1/scenes", headers=demo.api_auth(LIBRARY))
    )
    ok = await demo.client.get("/v1/scenes", headers=await demo.bearer(LIBRARY))
    assert ok.status == 200


@SHARED
async def test_an_assertion_is_not_an_access_token(shared_oauth_demo: OAuthDemo) -> None:
    demo = shared_oauth_demo
    assertion = demo.assertion(LIBRARY)
    response = await demo.client.get("/v1/scenes", headers={"Authorization": f"Bearer {assertion}"})
    await _assert_unauthenticated(response)


def test_pyjwt_itself_refuses_to_make_an_hs256_token_from_a_public_key() -> None:
    """Why the HS256 cases above are hand-made: the library would not help an attacker."""
    pem = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(jwt.InvalidKeyError):
        jwt.encode({"a": 1}, pem, algorithm="HS256")
