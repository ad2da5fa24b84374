"""A decision's admission: rate limit, consent and Idempotency-Key state, asked together.

A decision needs three small things from the store before it can run: a token
from the partner's rate-limit bucket, the consent it names, and whether its
Idempotency-Key was seen before (claiming the key if not) — and, in a scene
whose policy reads commitment breaches, the subject's breaches still
withholding. Asked one by one they cost a Redis round trip each;
``Store.admit`` asks them in one call (one function call on Redis, concurrent
commands on Redis Cluster, where the keys live in different slots).

A rate-limited request is refused before anything else is read or claimed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # store/base.py imports this module
    from gateway.commitments.models import Commitment
    from gateway.store.base import Consent, IdempotencyRecord, Store

__all__ = ["Admission", "BreachRead", "IdempotencyClaim", "admit_in_turn"]


@dataclass(slots=True)  # per request, not frozen (see store/base.py)
class IdempotencyClaim:
    """The key whose record is read, and the lock claimed while no record exists."""

    key: str
    lock: str
    lock_ttl_s: float


@dataclass(slots=True)
class BreachRead:
    """The subject's commitment breaches still withholding on ``today``.

    ``read`` is the commitments store's own query (``CommitmentStore.breaches``),
    which a store asked in turn calls; Redis reads the same index by the same
    rule inside its admission call (gateway/store/redis/breaches.py).
    """

    subject_key: str
    today: dt.date
    read: Callable[[str, dt.date], Awaitable[list[Commitment]]]


@dataclass(slots=True)
class Admission:
    """What one admission call found."""

    wait_s: float  # 0.0: the request may pass; else seconds until it may
    consent: Consent | None = None
    # Only meaningful when the request passed and asked for a consent.
    consent_read: bool = False
    idempotency: IdempotencyRecord | None = None
    claimed: bool = False  # the key had no record and this request now holds its lock
    # The breaches asked for (BreachRead); None when not asked or rate limited.
    breaches: list[Commitment] | None = None


async def admit_in_turn(
    store: Store,
    rate_key: str,
    per_second: float,
    burst: int,
    consent_id: str | None,
    idempotency: IdempotencyClaim | None,
    breaches: BreachRead | None = None,
) -> Admission:
    """The admission from the store's plain methods, one after the other.

    For a store whose calls are local and cheap (the embedded one); Redis
    answers all of it in one round trip instead.
    """
    wait = await store.rate_limit(rate_key, per_second, burst)
    if wait > 0:
        return Admission(wait)
    admission = Admission(0.0)
    if consent_id is not None:
        admission.consent = await store.get_consent(consent_id)
        admission.consent_read = True
    if breaches is not None:
        # Before the key's claim: a read that fails leaves no claim behind.
        admission.breaches = await breaches.read(breaches.subject_key, breaches.today)
    if idempotency is not None:
        admission.idempotency = await store.get_idempotency(idempotency.key)
        if admission.idempotency is None:
            admission.claimed = await store.claim_once(idempotency.lock, idempotency.lock_ttl_s)
    return admission
