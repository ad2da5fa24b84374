"""Partner registry: who is calling, and what their contract allows.

Development API keys are looked up by their SHA-256 digest; the plaintext key
exists only in the caller's hands (and in demo mode's demo.json).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from gateway.errors import Forbidden, Unauthenticated
from gateway.hashing import sha256
from gateway.settings import Partner

__all__ = ["PartnerRegistry", "hash_api_key", "new_api_key"]


def hash_api_key(key: str) -> str:
    return sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    # 256 random bits: a plain digest is enough, nothing here is a low-entropy password.
    return "xk_dev_" + secrets.token_urlsafe(32)


class PartnerRegistry:
    def __init__(self, partners: Iterable[Partner]) -> None:
        self.by_id = {p.id: p for p in partners}
        # Only partners whose configuration allows API keys can use one (development).
        self._by_key = {
            digest: p
            for p in self.by_id.values()
            if p.allow_api_keys
            for digest in p.api_key_sha256
        }

        self._scoped: dict[tuple[str, tuple[str, ...]], Partner] = {}

    @staticmethod
    def bearer(authorization: str | None) -> str:
        """The credential of an ``Authorization: Bearer`` header, or Unauthenticated."""
        if not authorization:
            raise Unauthenticated("send Authorization: Bearer <access token or API key>")
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise Unauthenticated("the Authorization header must use the Bearer scheme")
        return credential.strip()

    def authenticate(self, authorization: str | None) -> Partner:
        """The partner an ``Authorization: Bearer <API key>`` header belongs to."""
        return self.by_api_key(self.bearer(authorization))

    def by_api_key(self, credential: str) -> Partner:
        """The partner a development API key (the bearer credential) belongs to."""
        partner = self._by_key.get(hash_api_key(credential))
        if partner is None:
            raise Unauthenticated("the credential is not valid")
        return partner

    def scoped(self, partner_id: str, scopes: tuple[str, ...]) -> Partner | None:
        """The partner's contract narrowed to an access token's scopes (cached)."""
        key = (partner_id, scopes)
        cached = self._scoped.get(key)
        if cached is None:
            partner = self.by_id.get(partner_id)
            if partner is None:
                return None
            cached = partner.model_copy(
                update={"scenes": [s for s in partner.scenes if s in scopes]}
            )
            self._scoped[key] = cached
        return cached

    @staticmethod
    def require_kind(partner: Partner, *kinds: str) -> None:
        if partner.kind not in kinds:
            raise Forbidden(
                f"partners of kind {partner.kind} may not call this endpoint "
                f"(allowed: {', '.join(kinds)})",
                code="forbidden_kind",
            )
