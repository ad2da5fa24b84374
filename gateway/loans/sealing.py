"""Sealing an enterprise's id and name inside a demand (AES-256-GCM).

The store never holds a subject id in the clear (DESIGN §8). A demand must
still lead back to its enterprise: its credit records are fetched by id, and
an enterprise may let a bank see who it is. So the id and name are encrypted
under a key in the state directory (like the pseudonym secret, shared by the
replicas), bound to the demand's id so a ciphertext cannot be moved to
another demand. Opened values are kept in memory: a demand's seal never changes.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["Sealer"]


class Sealer:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the sealing key has 32 bytes")
        self._aead = AESGCM(key)
        self._opened: dict[str, tuple[str, str | None]] = {}

    @classmethod
    def load(cls, path: Path) -> Sealer:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another replica made it meanwhile
                return cls(path.read_bytes())
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
        return cls(path.read_bytes())

    def seal(self, demand_id: str, subject_id: str, name: str | None) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, orjson.dumps([subject_id, name]), demand_id.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, demand_id: str, sealed: str) -> tuple[str, str | None]:
        """(subject id, name); raises cryptography's InvalidTag on a forged seal."""
        hit = self._opened.get(demand_id)
        if hit is not None:
            return hit
        raw = base64.urlsafe_b64decode(sealed)
        plain = orjson.loads(self._aead.decrypt(raw[:12], raw[12:], demand_id.encode()))
        opened = (str(plain[0]), plain[1])
        if len(self._opened) > 500_000:
            self._opened.clear()
        self._opened[demand_id] = opened
        return opened
