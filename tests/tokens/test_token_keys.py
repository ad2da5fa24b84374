"""The signing key ring: files, RFC 7638 kids, passphrases, the JWKS and key life."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import shutil
import stat
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.tokens.keys import KeyRing, KeyRingError, jwk_thumbprint
from gateway.tokens.signer import Signer


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def thumbprint(members: dict[str, str]) -> str:
    """RFC 7638 §3: required members, sorted, no whitespace, SHA-256, base64url."""
    text = json.dumps(members, sort_keys=True, separators=(",", ":"))
    return b64(hashlib.sha256(text.encode("utf-8")).digest())


@pytest.fixture(autouse=True)
def no_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XINYI_KEY_PASSPHRASE", raising=False)


def test_rfc7638_example_thumbprint() -> None:
    # RFC 7638 §3.1's RSA example: the published thumbprint
    members = {
        "e": "AQAB",
        "kty": "RSA",
        "n": (
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
            "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
            "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
            "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        ),
    }
    assert jwk_thumbprint(members) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    assert thumbprint(members) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    # member order in the input does not matter: the canonical form sorts them
    shuffled = {"n": members["n"], "kty": "RSA", "e": "AQAB"}
    assert jwk_thumbprint(shuffled) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_create_makes_an_active_key_in_a_0600_file(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    ring = KeyRing.load(directory, create=True)
    key = ring.active("EdDSA")
    assert key is not None
    pem = directory / f"{key.kid}.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in pem.read_bytes()
    assert (directory / "ring.json").is_file()
    assert [p.name for p in directory.glob("*.pem")] == [pem.name]


def test_kid_is_the_rfc7638_thumbprint(tmp_path: Path) -> None:
    ring = KeyRing.load(tmp_path / "keys", create=True)
    key = ring.active("EdDSA")
    assert key is not None
    private = serialization.load_pem_private_key(
        (tmp_path / "keys" / f"{key.kid}.pem").read_bytes(), password=None
    )
    assert isinstance(private, Ed25519PrivateKey)
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert key.kid == thumbprint({"crv": "Ed25519", "kty": "OKP", "x": b64(raw)})


def test_es256_kid_is_the_rfc7638_thumbprint(tmp_path: Path) -> None:
    ring = KeyRing.load(tmp_path / "keys", create=True)
    key = ring.add("ES256", activate=True)
    assert isinstance(key.private, ec.EllipticCurvePrivateKey)
    numbers = key.private.public_key().public_numbers()
    members = {
        "crv": "P-256",
        "kty": "EC",
        "x": b64(numbers.x.to_bytes(32, "big")),
        "y": b64(numbers.y.to_bytes(32, "big")),
    }
    assert key.kid == thumbprint(members)


def test_reload_gives_the_same_keys(tmp_path: Path) -> None:
    first = KeyRing.load(tmp_path / "keys", create=True)
    kid = first.active("EdDSA").kid
    second = KeyRing.load(tmp_path / "keys", create=True)
    again = second.active("EdDSA")
    assert again is not None
    assert again.kid == kid
    assert len(second.entries()) == 1
    assert second.jwks() == first.jwks()


def test_load_without_create_on_an_empty_dir(tmp_path: Path) -> None:
    ring = KeyRing.load(tmp_path / "keys")
    assert ring.active("EdDSA") is None
    assert ring.jwks() == {"keys": []}


def test_passphrase_encrypts_the_pem_and_roundtrips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XINYI_KEY_PASSPHRASE", "correct horse battery staple")
    ring = KeyRing.load(tmp_path / "keys", create=True)
    key = ring.active("EdDSA")
    assert key is not None
    pem = (tmp_path / "keys" / f"{key.kid}.pem").read_bytes()
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in pem
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(pem, password=None)
    with pytest.raises(ValueError):  # noqa: PT011 - cryptography's wrong-password error
        serialization.load_pem_private_key(pem, password=b"wrong")
    reloaded = KeyRing.load(tmp_path / "keys")
    again = reloaded.active("EdDSA")
    assert again is not None
    assert again.kid == key.kid
    # the reloaded key signs what the original's public key verifies
    token = Signer(reloaded).sign({"sub": "x"}, "benefit+jwt")
    public = jwt.PyJWK(ring.jwks()["keys"][0]).key
    assert jwt.decode(token, public, algorithms=["EdDSA"]) == {"sub": "x"}


def test_jwks_has_no_private_material(tmp_path: Path) -> None:
    ring = KeyRing.load(tmp_path / "keys", create=True)
    ring.add("ES256", activate=True)
    jwks = ring.jwks()
    assert len(jwks["keys"]) == 2
    for jwk in jwks["keys"]:
        assert "d" not in jwk
        assert set(jwk) <= {"kty", "crv", "x", "y", "kid", "use", "alg"}
        assert jwk["use"] == "sig"
    assert {k["alg"] for k in jwks["keys"]} == {"EdDSA", "ES256"}


def test_signed_tokens_verify_through_the_jwks(tmp_path: Path) -> None:
    ring = KeyRing.load(tmp_path / "keys", create=True)
    ring.add("ES256", activate=True)
    signer = Signer(ring)
    for alg in ("EdDSA", "ES256"):
        token = signer.sign({"n": 1}, "benefit+jwt", alg)
        kid = jwt.get_unverified_header(token)["kid"]
        jwk = next(k for k in ring.jwks()["keys"] if k["kid"] == kid)
        assert jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=[alg]) == {"n": 1}


def test_rotation_life_cycle(tmp_path: Path) -> None:
    ring = KeyRing.load(tmp_path / "keys", create=True)
    old = ring.active("EdDSA")
    assert old is not None
    new = ring.add("EdDSA")
    assert new.status == "published"
    assert {k["kid"] for k in ring.jwks()["keys"]} == {old.kid, new.kid}
    with pytest.raises(KeyRingError, match="wait"):
        ring.activate(new.kid)
    now = new.created + dt.timedelta(minutes=11)
    ring.activate(new.kid, now=now)
    assert ring.active("EdDSA").kid == new.kid
    verifying = ring.get(old.kid)
    assert verifying is not None
    assert verifying.status == "verifying"
    with pytest.raises(KeyRingError):
        ring.retire(old.kid, now=now + dt.timedelta(days=1))
    with pytest.raises(KeyRingError, match="active"):
        ring.retire(new.kid, now=now)
    ring.retire(old.kid, now=now + dt.timedelta(days=32))
    assert [k["kid"] for k in ring.jwks()["keys"]] == [new.kid]
    reloaded = KeyRing.load(tmp_path / "keys")
    assert reloaded.get(old.kid).status == "retired"
    assert reloaded.active("EdDSA").kid == new.kid


def test_a_second_active_key_is_refused(tmp_path: Path) -> None:
    ring = KeyRing.load(tmp_path / "keys", create=True)
    with pytest.raises(KeyRingError):
        ring.add("EdDSA", activate=True)


def test_libsodium_signatures_equal_cryptographys(tmp_path: Path) -> None:
    # Ed25519 is deterministic: the signer's libsodium path must give the very
    # bytes cryptography gives for the same key and signing input.
    ring = KeyRing.load(tmp_path, create=True)
    key = ring.active("EdDSA")
    assert key is not None
    assert isinstance(key.private, Ed25519PrivateKey)
    signer = Signer(ring)
    for claims in ({"a": 1}, {"sub": "x" * 700, "n": list(range(40))}):
        token = signer.sign_with(key, claims, "benefit+jwt")
        signing_input, _, signature = token.rpartition(".")
        expected = key.private.sign(signing_input.encode())
        assert base64.urlsafe_b64decode(signature + "==") == expected
        key.private.public_key().verify(expected, signing_input.encode())


def test_a_new_ring_drops_what_the_signer_derived_from_the_old_one(tmp_path: Path) -> None:
    # A ring reloaded with other key material under the same kid (a PEM swapped by
    # hand) must sign with the new key, not with a secret cached from the old one.
    first = KeyRing.load(tmp_path / "a", create=True)
    signer = Signer(first)
    signer.sign({"n": 1}, "benefit+jwt")
    key = first.active("EdDSA")
    assert key is not None
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    other = Ed25519PrivateKey.generate()
    pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "b" / f"{key.kid}.pem").write_bytes(pem)
    signer.ring = KeyRing.load(tmp_path / "b")
    signing_input, _, signature = signer.sign({"n": 1}, "benefit+jwt").rpartition(".")
    other.public_key().verify(base64.urlsafe_b64decode(signature + "=="), signing_input.encode())


def test_a_first_es256_key_on_a_published_ring_waits_before_it_signs(tmp_path: Path) -> None:
    """Issue 14: partners already cache a JWKS without it, so it is published first."""
    from gateway.errors import DependencyUnavailable
    from gateway.tokens.keys import PUBLISH_BEFORE_USE

    ring = KeyRing.load(tmp_path, create=True)  # a deployment already serving EdDSA
    published = ring.add("ES256")
    signer = Signer(ring)
    with pytest.raises(DependencyUnavailable, match="may not sign before"):
        signer.key_for("ES256")
    assert ring.active("ES256") is None
    assert published.kid in {k["kid"] for k in ring.jwks()["keys"]}

    later = published.created + PUBLISH_BEFORE_USE
    assert ring.activate_first("ES256", now=later - dt.timedelta(seconds=1)) is None
    active = ring.activate_first("ES256", now=later)
    assert active is not None
    assert active.kid == published.kid
    assert signer.key_for("ES256").kid == published.kid
    # Saved: a restart finds it active.
    assert KeyRing.load(tmp_path).active("ES256") is not None


async def test_the_gateway_publishes_an_es256_key_for_a_new_es256_partner(
    tmp_path: Path,
) -> None:
    import yaml

    from gateway.demo import prepare_demo
    from gateway.runtime import Gateway
    from gateway.settings import load_settings

    setup = prepare_demo(tmp_path / "state", dt.date.today())
    settings = load_settings(None, setup.settings_overrides())
    first = await Gateway.open(settings)  # EdDSA only: its JWKS goes out to partners
    await first.close()
    data = yaml.safe_load(setup.partners_file.read_text(encoding="utf-8"))
    data["partners"][0]["token_alg"] = "ES256"
    setup.partners_file.write_text(yaml.safe_dump(data), encoding="utf-8")
    again = await Gateway.open(settings)
    try:
        es256 = [k for k in again.keys.entries() if k.alg == "ES256"]
        assert [k.status for k in es256] == ["published"]
    finally:
        await again.close()


async def test_a_fresh_gateway_may_sign_es256_at_once(tmp_path: Path) -> None:
    import yaml

    from gateway.demo import prepare_demo
    from gateway.runtime import Gateway
    from gateway.settings import load_settings

    setup = prepare_demo(tmp_path / "state", dt.date.today())
    data = yaml.safe_load(setup.partners_file.read_text(encoding="utf-8"))
    data["partners"][0]["token_alg"] = "ES256"
    setup.partners_file.write_text(yaml.safe_dump(data), encoding="utf-8")
    gateway = await Gateway.open(load_settings(None, setup.settings_overrides()))
    try:
        assert gateway.keys.active("ES256") is not None
    finally:
        await gateway.close()
