"""Benefit tokens as a kiosk sees them: verified offline with two independent JOSE
libraries (PyJWT, joserfc) through /.well-known/jwks.json, before and after a key
rotation done through the admin API; forged and tampered tokens are inactive on
introspection; only the token's audience learns anything.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import TYPE_CHECKING, Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import errors as jose_errors

from tests.oauth.jose_kit import (
    b64u,
    compact,
    joserfc_claims_check,
    joserfc_decode,
    pyjwt_decode,
    split_jws,
)

if TYPE_CHECKING:
    from tests.oauth.conftest import MakeOAuthDemo, OAuthDemo

LIBRARY = "demo-library"
TRANSIT = "demo-transit"
OPERATOR = "demo-operator"
PERSON_650 = "person, credit score 650"
REQUIRED = ["iss", "sub", "aud", "iat", "nbf", "exp", "jti"]


async def _verify_both(demo: OAuthDemo, token: str, audience: str) -> dict[str, Any]:
    """Verify ``token`` with PyJWT and joserfc through the served JWKS; both must agree."""
    jwks = await demo.jwks()
    header = jwt.get_unverified_header(token)
    served = {k["kid"]: k for k in jwks["keys"]}
    assert header["kid"] in served
    assert header["alg"] == served[header["kid"]]["alg"]
    assert header["typ"] == "benefit+jwt"
    by_pyjwt = pyjwt_decode(
        token,
        jwks,
        audience=audience,
        issuer=demo.issuer,
        options={"require": REQUIRED, "strict_aud": True},
    )
    by_joserfc = joserfc_decode(token, jwks, [header["alg"]])
    joserfc_claims_check(by_joserfc, iss=demo.issuer, aud=audience)
    assert by_joserfc.header["kid"] == header["kid"]
    assert by_joserfc.claims == by_pyjwt
    return by_pyjwt


def _refused_by_both(jwks: dict[str, Any], token: str, audience: str, issuer: str) -> None:
    with pytest.raises(jwt.InvalidTokenError):
        pyjwt_decode(token, jwks, audience=audience, issuer=issuer)
    alg = jwt.get_unverified_header(token)["alg"]
    with pytest.raises(jose_errors.JoseError):
        joserfc_claims_check(joserfc_decode(token, jwks, [alg]), iss=issuer, aud=audience)


# -- verification through the JWKS -----------------------------------------------------------
async def test_the_jwks_serves_public_keys_only_with_pinned_algorithms(
    oauth_demo: OAuthDemo,
) -> None:
    response = await oauth_demo.client.get("/.well-known/jwks.json")
    assert response.status == 200
    assert "max-age" in response.headers["Cache-Control"]
    jwks = await response.json()
    assert jwks["keys"]
    for jwk in jwks["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(jwk), jwk
        assert jwk["use"] == "sig"
        assert (jwk["kty"], jwk.get("crv"), jwk["alg"]) in {
            ("OKP", "Ed25519", "EdDSA"),
            ("EC", "P-256", "ES256"),
        }
        assert jwt.PyJWK(jwk).key is not None  # a well-formed public key
    # Partners' client keys are not ours to publish.
    client_kids = {oauth_demo.kid(p["id"]) for p in oauth_demo.partners}
    assert not client_kids & {k["kid"] for k in jwks["keys"]}


async def test_a_granted_token_verifies_with_pyjwt_and_joserfc(oauth_demo: OAuthDemo) -> None:
    person = oauth_demo.subject(PERSON_650)
    token = await oauth_demo.granted_token(person, "library", LIBRARY)
    claims = await _verify_both(oauth_demo, token, LIBRARY)

    assert claims["iss"] == oauth_demo.issuer
    assert claims["aud"] == LIBRARY
    assert claims["scene"] == "library"
    # jti: milliseconds of issue, then 80 random bits (gateway/ids.py).
    raw = bytes.fromhex(claims["jti"])
    assert len(raw) == 16
    assert abs(int.from_bytes(raw[:6], "big") / 1000 - claims["iat"]) < 2
    assert claims["nbf"] == claims["iat"]
    assert 0 < claims["exp"] - claims["iat"] <= 31 * 86_400  # days, not months
    entry = claims["status"]["status_list"]
    assert isinstance(entry["idx"], int)
    assert entry["uri"].startswith(f"{oauth_demo.issuer}/v1/status-lists/")
    # Least disclosure: a pseudonym, never the national id; no scores, no reasons.
    assert person["id"] not in token
    assert person["id"] not in str(claims)
    assert claims["sub"] != person["id"]
    assert not {"reasons", "score", "credit_score", "facts"} & set(claims)

    # The same libraries refuse it for anyone else, or from anyone else.
    jwks = await oauth_demo.jwks()
    _refused_by_both(jwks, token, TRANSIT, oauth_demo.issuer)
    _refused_by_both(jwks, token, LIBRARY, "https://attacker.example")


async def test_the_introspection_answer_for_the_audience(oauth_demo: OAuthDemo) -> None:
    token = await oauth_demo.granted_token(oauth_demo.subject(PERSON_650), "library", LIBRARY)
    body = await oauth_demo.introspect(token, LIBRARY)
    assert body["active"] is True
    assert body["aud"] == LIBRARY
    assert body["jti"] == split_jws(token)[1]["jti"]
    # form-encoded, as RFC 7662 clients send it
    response = await oauth_demo.client.post(
        "/v1/tokens/introspect", data={"token": token}, headers=oauth_demo.api_auth(LIBRARY)
    )
    assert (await response.json())["active"] is True


@pytest.mark.parametrize("caller", [TRANSIT, "demo-bank", "demo-platform", OPERATOR])
async def test_anyone_but_the_audience_learns_exactly_nothing(
    oauth_demo: OAuthDemo, caller: str
) -> None:
    token = await oauth_demo.granted_token(oauth_demo.subject(PERSON_650), "library", LIBRARY)
    assert await oauth_demo.introspect(token, caller) == {"active": False}
    # Same answer as for garbage: the response does not even say the token is ours.
    assert await oauth_demo.introspect("x.y.z", caller) == {"active": False}


async def test_introspection_needs_credentials(oauth_demo: OAuthDemo) -> None:
    token = await oauth_demo.granted_token(oauth_demo.subject(PERSON_650), "library", LIBRARY)
    response = await oauth_demo.client.post("/v1/tokens/introspect", json={"token": token})
    assert response.status == 401
    assert response.content_type == "application/problem+json"


# -- forged and tampered tokens ---------------------------------------------------------------
def _gateway_key(demo: OAuthDemo) -> Any:
    key = demo.gateway.keys.active("EdDSA")
    assert key is not None
    return key


def _resign(demo: OAuthDemo, claims: dict[str, Any], **header: Any) -> str:
    """Sign with the gateway's own active key using PyJWT (not the gateway's signer)."""
    key = _gateway_key(demo)
    headers = {"kid": key.kid, "typ": "benefit+jwt"} | header
    return jwt.encode(claims, key.private, algorithm="EdDSA", headers=headers)


def _forge(demo: OAuthDemo, token: str, case: str) -> str:
    header, claims = split_jws(token)
    key = _gateway_key(demo)
    now = int(time.time())
    if case == "control-resigned-unchanged":
        return _resign(demo, claims)
    if case == "typ-JWT":
        return _resign(demo, claims, typ="JWT")
    if case == "typ-missing":
        return jwt.encode(claims, key.private, algorithm="EdDSA", headers={"kid": key.kid})
    if case == "typ-statuslist":
        return _resign(demo, claims, typ="statuslist+jwt")
    if case == "aud-other-partner":
        return _resign(demo, claims | {"aud": TRANSIT})
    if case == "aud-list":
        return _resign(demo, claims | {"aud": [LIBRARY, TRANSIT]})
    if case == "iss-other":
        return _resign(demo, claims | {"iss": "https://attacker.example"})
    if case == "expired-61s":
        return _resign(demo, claims | {"iat": now - 3600, "nbf": now - 3600, "exp": now - 61})
    if case == "expired-1d":
        return _resign(demo, claims | {"exp": now - 86_400})
    if case == "nbf-future":
        return _resign(demo, claims | {"nbf": now + 3600})
    if case == "status-missing":
        return _resign(demo, {k: v for k, v in claims.items() if k != "status"})
    if case == "alg-none":
        return compact(header | {"alg": "none"}, claims, lambda _: b"")
    if case == "hs256-keyed-with-jwks-x":
        secret = key.private.public_key().public_bytes_raw()
        return compact(
            header | {"alg": "HS256"},
            claims,
            lambda data: hmac.new(secret, data, hashlib.sha256).digest(),
        )
    if case == "payload-edited":
        claims["benefits"] = [{"code": "deposit_waiver", "params": {"max_items": 999}}]
        head, _, sig = token.split(".")
        return f"{head}.{b64u(orjson.dumps(claims))}.{sig}"
    if case == "signature-stripped":
        head, body, _ = token.split(".")
        return f"{head}.{body}."
    if case in ("kid-unknown", "kid-path"):
        kid = "nope" if case == "kid-unknown" else f"../keys/{key.kid}"
        return _resign(demo, claims, kid=kid)
    if case == "attacker-key-jwk-header":
        attacker = Ed25519PrivateKey.generate()
        public = {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64u(attacker.public_key().public_bytes_raw()),
        }
        return jwt.encode(
            claims,
            attacker,
            algorithm="EdDSA",
            headers={"kid": key.kid, "typ": "benefit+jwt", "jwk": public},
        )
    raise AssertionError(case)


FORGERIES = [
    "typ-JWT",
    "typ-missing",
    "typ-statuslist",
    "aud-other-partner",
    "aud-list",
    "iss-other",
    "expired-61s",
    "expired-1d",
    "nbf-future",
    "status-missing",
    "alg-none",
    "hs256-keyed-with-jwks-x",
    "payload-edited",
    "signature-stripped",
    "kid-unknown",
    "kid-path",
    "attacker-key-jwk-header",
]


async def test_forged_tokens_are_inactive(oauth_demo: OAuthDemo) -> None:
    """Each forgery changes one thing in a live token; the unchanged re-signing stays active."""
    token = await oauth_demo.granted_token(oauth_demo.subject(PERSON_650), "library", LIBRARY)
    control = _forge(oauth_demo, token, "control-resigned-unchanged")
    assert (await oauth_demo.introspect(control, LIBRARY))["active"] is True
    answers = {}
    for case in FORGERIES:
        answers[case] = await oauth_demo.introspect(_forge(oauth_demo, token, case), LIBRARY)
    assert answers == {case: {"active": False} for case in FORGERIES}
    # The real token is still fine: nothing above disturbed it.
    assert (await oauth_demo.introspect(token, LIBRARY))["active"] is True


# -- key rotation through HTTP ------------------------------------------------------------------
async def _admin(demo: OAuthDemo, path: str, headers: dict[str, str], **body: Any) -> Any:
    return await demo.client.post(path, json=body, headers=headers)


async def test_key_rotation_then_emergency_retirement(oauth_demo: OAuthDemo) -> None:
    demo = oauth_demo
    person = demo.subject(PERSON_650)
    admin = await demo.bearer(OPERATOR, scope="admin")
    old_token = await demo.granted_token(person, "library", LIBRARY)
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    await _verify_both(demo, old_token, LIBRARY)

    # Only an operator may touch the ring.
    refused = await _admin(demo, "/v1/admin/keys", await demo.bearer(LIBRARY))
    assert refused.status == 403
    assert (await refused.json())["code"] == "forbidden_kind"

    # 1. publish
    response = await _admin(demo, "/v1/admin/keys", admin)
    assert response.status == 201, await response.text()
    new_kid = (await response.json())["kid"]
    assert (await response.json())["status"] == "published"
    assert {k["kid"] for k in (await demo.jwks())["keys"]} == {old_kid, new_kid}
    # published is not signing yet
    still_old = await demo.granted_token(person, "library", LIBRARY)
    assert jwt.get_unverified_header(still_old)["kid"] == old_kid

    # 2. activate: refused inside the publish-before-use wait, allowed with force
    early = await _admin(demo, f"/v1/admin/keys/{new_kid}/activate", admin)
    assert early.status == 409
    assert (await early.json())["code"] == "key_state_conflict"
    assert (await early.json())["title"] == "Conflict"
    forced = await _admin(demo, f"/v1/admin/keys/{new_kid}/activate", admin, force=True)
    assert forced.status == 200, await forced.text()
    assert (await forced.json())["status"] == "active"

    new_token = await demo.granted_token(person, "library", LIBRARY)
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    # Both verify through the JWKS, with both libraries.
    await _verify_both(demo, old_token, LIBRARY)
    await _verify_both(demo, new_token, LIBRARY)
    assert (await demo.introspect(old_token, LIBRARY))["active"] is True

    # 3. retire: the active key never; the old one not while its tokens may live
    active = await _admin(demo, f"/v1/admin/keys/{new_kid}/retire", admin, force=True)
    assert active.status == 409
    early = await _admin(demo, f"/v1/admin/keys/{old_kid}/retire", admin)
    assert early.status == 409
    assert (await early.json())["code"] == "key_state_conflict"
    assert old_kid in {k["kid"] for k in (await demo.jwks())["keys"]}

    # 4. emergency: force revokes what the old key signed
    retired = await _admin(demo, f"/v1/admin/keys/{old_kid}/retire", admin, force=True)
    assert retired.status == 200, await retired.text()
    body = await retired.json()
    assert body["status"] == "retired"
    assert body["tokens_revoked"] >= 2  # old_token and still_old
    jwks = await demo.jwks()
    assert {k["kid"] for k in jwks["keys"]} == {new_kid}
    for token in (old_token, still_old):
        with pytest.raises(jwt.InvalidKeyError):
            pyjwt_decode(token, jwks, audience=LIBRARY)
        with pytest.raises(jose_errors.InvalidKeyIdError):
            joserfc_decode(token, jwks, ["EdDSA"])
        assert await demo.introspect(token, LIBRARY) == {"active": False}
        assert await demo.status_bit(token) == 1
    # What the new key signed is untouched.
    await _verify_both(demo, new_token, LIBRARY)
    assert (await demo.introspect(new_token, LIBRARY))["active"] is True
    assert await demo.status_bit(new_token) == 0

    listed = await demo.client.get("/v1/admin/keys", headers=admin)
    states = {k["kid"]: k["status"] for k in (await listed.json())["keys"]}
    assert states[old_kid] == "retired"
    assert states[new_kid] == "active"


async def test_unknown_kid_on_admin_paths_is_404(oauth_demo: OAuthDemo) -> None:
    admin = await oauth_demo.bearer(OPERATOR)
    for kid in ("nope", "..%2F..%2Fring.json", "x'--"):
        response = await _admin(oauth_demo, f"/v1/admin/keys/{kid}/retire", admin, force=True)
        assert response.status == 404, kid


# -- ES256 for partners whose stacks cannot verify Ed25519 -------------------------------------
async def test_an_es256_partner_gets_es256_tokens_both_libraries_verify(
    make_oauth_demo: MakeOAuthDemo,
) -> None:
    def transit_es256(partners: list[dict[str, Any]]) -> None:
        next(p for p in partners if p["id"] == TRANSIT)["token_alg"] = "ES256"

    demo = await make_oauth_demo(transit_es256)
    person = demo.subject(PERSON_650)
    token = await demo.granted_token(person, "transit", TRANSIT)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    served = {k["kid"]: k for k in (await demo.jwks())["keys"]}
    assert served[header["kid"]]["kty"] == "EC"
    assert served[header["kid"]]["crv"] == "P-256"
    assert served[header["kid"]]["alg"] == "ES256"
    claims = await _verify_both(demo, token, TRANSIT)
    assert claims["aud"] == TRANSIT
    assert (await demo.introspect(token, TRANSIT))["active"] is True

    # The other partners keep EdDSA.
    library_token = await demo.granted_token(person, "library", LIBRARY)
    assert jwt.get_unverified_header(library_token)["alg"] == "EdDSA"
    await _verify_both(demo, library_token, LIBRARY)

    # The algorithm is pinned per kid: the ES256 kid with an EdDSA header is inactive.
    es_key = demo.gateway.keys.get(header["kid"])
    assert es_key is not None
    _, body = split_jws(token)
    confused = compact(
        {"alg": "EdDSA", "kid": es_key.kid, "typ": "benefit+jwt"},
        body,
        lambda data: Ed25519PrivateKey.generate().sign(data),
    )
    assert await demo.introspect(confused, TRANSIT) == {"active": False}
