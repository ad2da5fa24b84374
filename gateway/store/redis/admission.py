"""A decision's admission on Redis: one function call, or one pipeline pass on a cluster.

On one Redis, ``xinyi_admit`` (gateway/store/xinyi.lua) takes the rate-limit
token, reads the consent and the Idempotency-Key's record and claims the key,
in one round trip. On Redis Cluster those keys live in different slots, so no
one function may touch them all: the bucket, consent and record are asked
concurrently (they leave in the same auto-pipeline pass), and the key is
claimed afterwards only if the request passed and the key has no record — a
second pass that only requests with an Idempotency-Key pay.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from redis.asyncio.cluster import RedisCluster

from gateway.store.admission import Admission, IdempotencyClaim
from gateway.store.base import IdempotencyRecord, consent_from_json

if TYPE_CHECKING:
    from gateway.store.redis.core import RedisStore

__all__ = ["admit"]


def interval_us(per_second: float) -> int:
    return max(1, int(1_000_000 / per_second))


async def admit(
    store: RedisStore,
    rate_key: str,
    per_second: float,
    burst: int,
    consent_id: str | None,
    idempotency: IdempotencyClaim | None,
) -> Admission:
    if isinstance(store.client, RedisCluster):
        return await _admit_cluster(store, rate_key, per_second, burst, consent_id, idempotency)
    keys = [store.key("rl", rate_key)]
    if consent_id is not None:
        keys.append(store.key("c", consent_id))
    lock_ms = 0
    if idempotency is not None:
        keys += [store.audit_key("idem", idempotency.key), store.key("jti", idempotency.lock)]
        lock_ms = max(1, int(idempotency.lock_ttl_s * 1000))
    args = [
        interval_us(per_second),
        burst,
        1 if consent_id is not None else 0,
        1 if idempotency is not None else 0,
        lock_ms,
    ]
    wait, consent, record, claimed = await store.fcall("xinyi_admit", keys, args)
    if int(wait) > 0:
        return Admission(int(wait) / 1_000_000)
    return Admission(
        0.0,
        consent=consent_from_json(consent) if consent else None,
        consent_read=consent_id is not None,
        idempotency=IdempotencyRecord.from_json(record) if record else None,
        claimed=bool(claimed),
    )


async def _admit_cluster(
    store: RedisStore,
    rate_key: str,
    per_second: float,
    burst: int,
    consent_id: str | None,
    idempotency: IdempotencyClaim | None,
) -> Admission:
    asked: list[Any] = [
        store.fcall("xinyi_rate", [store.key("rl", rate_key)], [interval_us(per_second), burst])
    ]
    if consent_id is not None:
        asked.append(store.run("GET", store.key("c", consent_id)))
    if idempotency is not None:
        asked.append(store.run("GET", store.audit_key("idem", idempotency.key)))
    answers = await asyncio.gather(*asked)
    wait = int(answers[0])
    if wait > 0:
        return Admission(wait / 1_000_000)
    admission = Admission(0.0)
    if consent_id is not None:
        raw = answers[1]
        admission.consent = consent_from_json(raw) if raw else None
        admission.consent_read = True
    if idempotency is not None:
        raw = answers[-1]
        if raw:
            admission.idempotency = IdempotencyRecord.from_json(raw)
        else:
            admission.claimed = await store.claim_once(idempotency.lock, idempotency.lock_ttl_s)
    return admission
