"""Pairwise pseudonyms: a keyed HMAC of sector and subject.

What a partner receives cannot be linked to what another sector receives, nor
turned back into a national id without the gateway's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from gateway.tokens.keys import b64url

__all__ = ["Pseudonyms"]

# The sector the gateway uses for its own records (consents), never a partner's.
INTERNAL_SECTOR = "xinyi:internal"


class Pseudonyms:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the pseudonym secret must have at least 32 bytes")
        # An HMAC keyed once and copied per message: the one-shot hmac.digest sets
        # the key up (and, on OpenSSL 3, looks the digest up) every call. The copy
        # is of the OpenSSL object hmac.HMAC wraps where there is one: the
        # wrapper's Python-level copy() cost as much again (~2 µs a pseudonym).
        keyed = hmac.new(secret, digestmod=hashlib.sha256)
        self._copy = getattr(keyed, "_hmac", None) or keyed

    @classmethod
    def load(cls, path: Path, *, create: bool = False) -> Pseudonyms:
        if not path.exists() and create:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
        return cls(path.read_bytes())

    def of(self, sector: str, kind: str, subject_id: str) -> str:
        mac = self._copy.copy()
        mac.update(f"{sector}\x1f{kind}\x1f{subject_id}".encode())
        return b64url(mac.digest())

    def internal(self, kind: str, subject_id: str) -> str:
        return self.of(INTERNAL_SECTOR, kind, subject_id)
