"""A decision's first response, rebuilt for a retry with its Idempotency-Key.

The token is signed again from its stored claims; Ed25519 signatures are
deterministic, so it is the same token, byte for byte.
"""

from __future__ import annotations

from typing import Any

from gateway.settings import Partner
from gateway.store.base import IdempotencyRecord, Store
from gateway.tokens.signer import BENEFIT_TYP, Signer

__all__ = ["DecisionReplay"]


class DecisionReplay:
    def __init__(self, store: Store, signer: Signer) -> None:
        self._store = store
        self._signer = signer

    async def __call__(self, partner: Partner, record: IdempotencyRecord) -> dict[str, Any] | None:
        """The response the first request got; None when its decision is not the partner's
        (or there is none to give)."""
        if record.decision_id is None:
            return None
        found = await self._store.get_decision(record.decision_id)
        if found is None or found[0] != partner.id:
            return None
        response = dict(found[1])
        if record.token_jti is not None:
            token = await self._store.get_token(record.token_jti)
            if token is not None:
                key = self._signer.ring.get(token.kid)
                if key is None or key.status == "retired":
                    key = self._signer.key_for(partner.token_alg)
                response["token"] = self._signer.sign_with(key, token.claims, BENEFIT_TYP)
        return response
