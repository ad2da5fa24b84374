"""Partner registry: who is calling, and what their contract allows.

Development API keys are looked up by their SHA-256 digest; the plaintext key
exists only in the caller's hands (and in demo mode's demo.json).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from gateway.errors import Forbidden, Unauthenticated
from gateway.settings import Partner

__all__ = ["PartnerRegistry", "hash_api_key", "new_api_key"]


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    # 256 random bits: a plain digest is enough, nothing here is a low-entropy password.
    return "xk_dev_" + secrets.token_urlsafe(32)


class PartnerRegistry:
    def __init__(self, partners: Iterable[Partner]) -> None:
        self.by_id = {p.id: p for p in partners}
        self._by_key = {
            digest: p
            for p in self.by_id.values()
            if p.allow_api_keys
            for digest in p.api_key_sha256
        }

    def authenticate(self, authorization: str | None) -> Partner:
        if not authorization:
            raise Unauthenticated("send Authorization: Bearer <access token or API key>")
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise Unauthenticated("the Authorization header must use the Bearer scheme")
        partner = self._by_key.get(hash_api_key(credential.strip()))
        if partner is None:
            raise Unauthenticated("the credential is not valid")
        return partner

    @staticmethod
    def require_kind(partner: Partner, *kinds: str) -> None:
        if partner.kind not in kinds:
            raise Forbidden(
                f"partners of kind {partner.kind} may not call this endpoint "
                f"(allowed: {', '.join(kinds)})",
                code="forbidden_kind",
            )
