"""The signing key ring: private keys as 0600 files, public keys as a JWKS.

A key's ``kid`` is its RFC 7638 JWK thumbprint, so a kid names exactly one
public key and is never a path: verifiers look it up in a dict, and an unknown
or crafted kid never reaches the file system. Private keys may be encrypted
with a passphrase from ``XINYI_KEY_PASSPHRASE``.

Life of a key (DESIGN §6): ``published`` (in the JWKS, not signing yet) →
``active`` (signs; one per algorithm) → ``verifying`` (replaced; stays in the
JWKS until every token and status list it signed has expired) → ``retired``
(gone from the JWKS). Ed25519 is the primary algorithm; an ES256 key serves
partners whose stacks cannot verify Ed25519.
"""

from __future__ import annotations

import binascii
import datetime as dt
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["KeyRing", "KeyRingError", "SigningKey", "b64url", "b64url_bytes", "jwk_thumbprint"]

KeyStatus = Literal["published", "active", "verifying", "retired"]
Alg = Literal["EdDSA", "ES256"]
PrivateKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey

# Partners cache the JWKS for at most this long (the Cache-Control we send).
JWKS_MAX_AGE_S = 300
# A key must be published this long before it signs, so every cached JWKS has it.
PUBLISH_BEFORE_USE = dt.timedelta(seconds=2 * JWKS_MAX_AGE_S)
# The longest a token or status list signed by a key stays valid after signing.
LONGEST_SIGNED_LIFETIME = dt.timedelta(days=31)


class KeyRingError(Exception):
    """A key operation that would break verification for someone."""


# base64's urlsafe_b64encode is two Python calls around these two C ones; a
# decision makes five of them (three for its token, two pseudonyms).
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64url_bytes(data: bytes) -> bytes:
    """Unpadded base64url (RFC 7515 §2), as bytes for building a JWS."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


def b64url(data: bytes) -> str:
    return b64url_bytes(data).decode("ascii")


def jwk_thumbprint(members: Mapping[str, str]) -> str:
    """RFC 7638: the required members only, lexicographic order, no whitespace."""
    return b64url(hashlib.sha256(orjson.dumps(dict(sorted(members.items())))).digest())


def _public_members(private: PrivateKey) -> dict[str, str]:
    if isinstance(private, Ed25519PrivateKey):
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return {"crv": "Ed25519", "kty": "OKP", "x": b64url(raw)}
    numbers = private.public_key().public_numbers()
    return {
        "crv": "P-256",
        "kty": "EC",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
    }


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    alg: Alg
    status: KeyStatus
    private: PrivateKey
    created: dt.datetime
    active_since: dt.datetime | None = None
    verify_until: dt.datetime | None = None

    @property
    def public_jwk(self) -> dict[str, str]:
        return {**_public_members(self.private), "kid": self.kid, "use": "sig", "alg": self.alg}


def _ts(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dt(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


class KeyRing:
    """Keys in ``<dir>/<kid>.pem`` with their states in ``<dir>/ring.json``."""

    def __init__(self, directory: Path, keys: list[SigningKey]) -> None:
        self.directory = directory
        self._keys = {k.kid: k for k in keys}

    @staticmethod
    def _passphrase() -> bytes | None:
        value = os.environ.get("XINYI_KEY_PASSPHRASE")
        return value.encode() if value else None

    @classmethod
    def load(cls, directory: Path, *, create: bool = False) -> KeyRing:
        """Load the ring; with ``create``, make a first active Ed25519 key if there is none."""
        ring_file = directory / "ring.json"
        entries: list[dict[str, str]] = []
        if ring_file.is_file():
            entries = orjson.loads(ring_file.read_bytes())["keys"]
        keys = []
        for entry in entries:
            pem = (directory / f"{entry['kid']}.pem").read_bytes()
            private = serialization.load_pem_private_key(pem, password=cls._passphrase())
            if not isinstance(private, Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
                raise KeyRingError(f"key {entry['kid']} is neither Ed25519 nor P-256")
            keys.append(
                SigningKey(
                    kid=entry["kid"],
                    alg="ES256" if entry["alg"] == "ES256" else "EdDSA",
                    status=entry["status"],  # type: ignore[arg-type]
                    private=private,
                    created=_dt(entry.get("created")) or dt.datetime.now(dt.UTC),
                    active_since=_dt(entry.get("active_since")),
                    verify_until=_dt(entry.get("verify_until")),
                )
            )
        ring = cls(directory, keys)
        if create and ring.active("EdDSA") is None:
            ring.add("EdDSA", activate=True)
        return ring

    # -- reading -----------------------------------------------------------------------
    def active(self, alg: str = "EdDSA") -> SigningKey | None:
        return next((k for k in self._keys.values() if k.status == "active" and k.alg == alg), None)

    def get(self, kid: str) -> SigningKey | None:
        return self._keys.get(kid)

    def entries(self) -> list[SigningKey]:
        return sorted(self._keys.values(), key=lambda k: k.created)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Every key a verifier may meet: published, active and still-verifying ones."""
        return {"keys": [k.public_jwk for k in self.entries() if k.status != "retired"]}

    # -- changing ----------------------------------------------------------------------
    def add(self, alg: Alg = "EdDSA", *, activate: bool = False) -> SigningKey:
        private: PrivateKey = (
            Ed25519PrivateKey.generate()
            if alg == "EdDSA"
            else ec.generate_private_key(ec.SECP256R1())
        )
        kid = jwk_thumbprint(_public_members(private))
        passphrase = self._passphrase()
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.directory / f"{kid}.pem", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        now = dt.datetime.now(dt.UTC)
        key = SigningKey(kid, alg, "published", private, created=now)
        self._keys[kid] = key
        if activate:
            # A first key has nobody's cache to wait for; a later one must use activate().
            if self.active(alg) is not None:
                raise KeyRingError(f"an {alg} key is already active; publish, then activate")
            self._keys[kid] = replace(key, status="active", active_since=now)
        self._save()
        return self._keys[kid]

    def activate(
        self, kid: str, *, now: dt.datetime | None = None, force: bool = False
    ) -> SigningKey:
        """Make a published key the signer for its algorithm; the old one keeps verifying."""
        now = now or dt.datetime.now(dt.UTC)
        key = self._require(kid)
        if key.status != "published":
            raise KeyRingError(f"key {kid} is {key.status}; only a published key can be activated")
        if not force and now - key.created < PUBLISH_BEFORE_USE:
            wait = PUBLISH_BEFORE_USE - (now - key.created)
            raise KeyRingError(
                f"key {kid} was published {int((now - key.created).total_seconds())} s ago; "
                f"partners may not have it yet: wait {int(wait.total_seconds())} s"
            )
        old = self.active(key.alg)
        if old is not None:
            self._keys[old.kid] = replace(
                old, status="verifying", verify_until=now + LONGEST_SIGNED_LIFETIME
            )
        self._keys[kid] = replace(key, status="active", active_since=now)
        self._save()
        return self._keys[kid]

    def activate_first(self, alg: Alg, now: dt.datetime | None = None) -> SigningKey | None:
        """With no key of ``alg`` active yet, activate the oldest published one that has
        been in the JWKS for PUBLISH_BEFORE_USE; None while none has."""
        now = now or dt.datetime.now(dt.UTC)
        if self.active(alg) is not None:
            return None
        due = [
            k
            for k in self.entries()
            if k.alg == alg and k.status == "published" and now - k.created >= PUBLISH_BEFORE_USE
        ]
        return self.activate(due[0].kid, now=now) if due else None

    def retire(
        self, kid: str, *, now: dt.datetime | None = None, force: bool = False
    ) -> SigningKey:
        """Drop a key from the JWKS once nothing it signed can still be valid.

        ``force`` is the emergency path (a leaked key): the caller must revoke
        the tokens the key signed, which then stop verifying at once.
        """
        now = now or dt.datetime.now(dt.UTC)
        key = self._require(kid)
        if key.status == "active":
            raise KeyRingError(f"key {kid} is active: activate its successor first")
        if not force and key.status == "verifying" and key.verify_until and now < key.verify_until:
            raise KeyRingError(
                f"key {kid} signed tokens valid until {key.verify_until.isoformat()}; "
                "retire it after that, or with --force as an emergency rotation"
            )
        self._keys[kid] = replace(key, status="retired")
        self._save()
        return self._keys[kid]

    def _require(self, kid: str) -> SigningKey:
        key = self._keys.get(kid)
        if key is None:
            raise KeyRingError(f"no key {kid!r} in the ring")
        return key

    def _save(self) -> None:
        body = {
            "keys": [
                {
                    "kid": k.kid,
                    "alg": k.alg,
                    "status": k.status,
                    "created": _ts(k.created),
                    "active_since": _ts(k.active_since),
                    "verify_until": _ts(k.verify_until),
                }
                for k in self.entries()
            ]
        }
        tmp = self.directory / "ring.json.tmp"
        tmp.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
        tmp.replace(self.directory / "ring.json")
