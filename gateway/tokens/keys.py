"""The signing key ring: private keys as 0600 files, public keys as a JWKS.

A key's ``kid`` is its RFC 7638 JWK thumbprint, so a kid names exactly one
public key and is never a path: verifiers look it up in a dict, and an unknown
or crafted kid never reaches the file system. Private keys may be encrypted
with a passphrase from ``XINYI_KEY_PASSPHRASE``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["KeyRing", "SigningKey", "b64url", "jwk_thumbprint"]

KeyStatus = Literal["active", "published", "retired"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(members: Mapping[str, str]) -> str:
    # RFC 7638: the required members only, lexicographic order, no whitespace.
    return b64url(hashlib.sha256(orjson.dumps(dict(sorted(members.items())))).digest())


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    alg: str
    status: KeyStatus
    private: Ed25519PrivateKey

    @property
    def public_jwk(self) -> dict[str, str]:
        raw = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64url(raw),
            "kid": self.kid,
            "use": "sig",
            "alg": "EdDSA",
        }


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
        entries: list[dict[str, Any]] = []
        if ring_file.is_file():
            entries = orjson.loads(ring_file.read_bytes())["keys"]
        keys = []
        for entry in entries:
            pem = (directory / f"{entry['kid']}.pem").read_bytes()
            private = serialization.load_pem_private_key(pem, password=cls._passphrase())
            if not isinstance(private, Ed25519PrivateKey):
                raise ValueError(f"key {entry['kid']} is not an Ed25519 key")
            keys.append(SigningKey(entry["kid"], entry["alg"], entry["status"], private))
        ring = cls(directory, keys)
        if create and ring.active is None:
            ring.add(Ed25519PrivateKey.generate(), status="active")
        return ring

    def add(self, private: Ed25519PrivateKey, status: KeyStatus = "published") -> SigningKey:
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        kid = jwk_thumbprint({"crv": "Ed25519", "kty": "OKP", "x": b64url(raw)})
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
        path = self.directory / f"{kid}.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        key = SigningKey(kid, "EdDSA", status, private)
        self._keys[kid] = key
        self._save()
        return key

    def _save(self) -> None:
        body = {
            "keys": [{"kid": k.kid, "alg": k.alg, "status": k.status} for k in self._keys.values()]
        }
        tmp = self.directory / "ring.json.tmp"
        tmp.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
        tmp.replace(self.directory / "ring.json")

    @property
    def active(self) -> SigningKey | None:
        return next((k for k in self._keys.values() if k.status == "active"), None)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Every key a verifier may meet: the active one and those published or still verifying."""
        return {"keys": [k.public_jwk for k in self._keys.values() if k.status != "retired"]}
